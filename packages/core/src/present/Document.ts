/**
 * A small document model — headings, paragraphs, lists, tables, code blocks and collapsible
 * `<details>` — and its two renderings: GitHub-flavoured Markdown and HTML. The run report is
 * written once as blocks (`RunReport.sections`) and comes out as both, so the Markdown report
 * and the HTML timeline page say the same.
 *
 * @since 0.3.0
 */

/** A piece of inline text: plain (escaped on output), code, bold, or a link. */
export type Span =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Code"; readonly text: string }
  | { readonly _tag: "Bold"; readonly text: string }
  | { readonly _tag: "Link"; readonly text: string; readonly href: string }

/** Inline content: a plain string, or spans. */
export type Inline = string | ReadonlyArray<Span>

/** One block of a document. */
export type Block =
  | { readonly _tag: "Heading"; readonly level: 1 | 2 | 3 | 4; readonly text: Inline; readonly id?: string }
  | { readonly _tag: "Paragraph"; readonly text: Inline }
  | { readonly _tag: "List"; readonly items: ReadonlyArray<ListItem> }
  | { readonly _tag: "Table"; readonly header: ReadonlyArray<Inline>; readonly rows: ReadonlyArray<ReadonlyArray<Inline>> }
  | { readonly _tag: "CodeBlock"; readonly text: string }
  | { readonly _tag: "Details"; readonly summary: Inline; readonly blocks: ReadonlyArray<Block> }

/** A list item, with blocks nested under it. */
export interface ListItem {
  readonly text: Inline
  readonly children?: ReadonlyArray<Block>
}

export const text = (text: string): Span => ({ _tag: "Text", text })
export const code = (text: string): Span => ({ _tag: "Code", text })
export const bold = (text: string): Span => ({ _tag: "Bold", text })
export const link = (text: string, href: string): Span => ({ _tag: "Link", text, href })
/** Text whose `backtick` spans (as reviewers and agents write them) become code spans. */
export const withCode = (s: string): Array<Span> =>
  s.split(/(`[^`\n]+`)/).filter((p) => p !== "").map((p) => p.length > 2 && p.startsWith("`") && p.endsWith("`") ? code(p.slice(1, -1)) : text(p))
export const heading = (level: 1 | 2 | 3 | 4, text: Inline, id?: string): Block =>
  id === undefined ? { _tag: "Heading", level, text } : { _tag: "Heading", level, text, id }
export const paragraph = (text: Inline): Block => ({ _tag: "Paragraph", text })
export const list = (items: ReadonlyArray<ListItem | Inline>): Block => ({
  _tag: "List",
  items: items.map((i) => typeof i === "string" || Array.isArray(i) ? { text: i as Inline } : i as ListItem)
})
export const table = (header: ReadonlyArray<Inline>, rows: ReadonlyArray<ReadonlyArray<Inline>>): Block => ({ _tag: "Table", header, rows })
export const codeBlock = (text: string): Block => ({ _tag: "CodeBlock", text })
export const details = (summary: Inline, blocks: ReadonlyArray<Block>): Block => ({ _tag: "Details", summary, blocks })

const spans = (inline: Inline): ReadonlyArray<Span> => typeof inline === "string" ? [text(inline)] : inline

// ---- Markdown ----

/** Escapes what GitHub would read as formatting or HTML in plain text. */
const mdEscape = (s: string) => s.replace(/([\\`*_<|])/g, "\\$1")

const mdCode = (s: string) => {
  const flat = s.replace(/\s*\n\s*/g, " ")
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((m) => m.length))
  const fence = "`".repeat(longest + 1)
  const pad = flat.startsWith("`") || flat.endsWith("`") ? " " : ""
  return `${fence}${pad}${flat}${pad}${fence}`
}

const mdInline = (inline: Inline): string =>
  spans(inline).map((s) => {
    switch (s._tag) {
      case "Text":
        return mdEscape(s.text.replace(/\s*\n\s*/g, " "))
      case "Code":
        return mdCode(s.text)
      case "Bold":
        return `**${mdEscape(s.text)}**`
      case "Link":
        return `[${mdEscape(s.text)}](${s.href})`
    }
  }).join("")

const mdBlock = (block: Block, indent: string): Array<string> => {
  switch (block._tag) {
    case "Heading":
      return [`${"#".repeat(block.level)} ${mdInline(block.text)}`]
    case "Paragraph":
      return [mdInline(block.text)]
    case "List":
      return block.items.flatMap((item) => {
        const children = (item.children ?? []).flatMap((b) => ["", ...mdBlock(b, "  ").map((l) => l === "" ? "" : `  ${l}`)])
        return [`- ${mdInline(item.text)}`, ...children]
      })
    case "Table":
      return [
        `| ${block.header.map(mdInline).join(" | ")} |`,
        `|${block.header.map(() => "---").join("|")}|`,
        ...block.rows.map((row) => `| ${row.map((c) => mdInline(c) || " ").join(" | ")} |`)
      ]
    case "CodeBlock": {
      const longest = Math.max(2, ...(block.text.match(/`{3,}/g) ?? []).map((m) => m.length))
      const fence = "`".repeat(longest + 1)
      return [fence, ...block.text.replace(/\s+$/, "").split("\n"), fence]
    }
    case "Details":
      return [
        `<details><summary>${htmlInline(block.summary)}</summary>`,
        "",
        ...blocksToMarkdown(block.blocks, indent),
        "",
        "</details>"
      ]
  }
}

const blocksToMarkdown = (blocks: ReadonlyArray<Block>, indent = ""): Array<string> =>
  blocks.flatMap((b, i) => [...(i > 0 ? [""] : []), ...mdBlock(b, indent)])

/** The blocks as GitHub-flavoured Markdown (ends with a newline). */
export const toMarkdown = (blocks: ReadonlyArray<Block>): string => `${blocksToMarkdown(blocks).join("\n")}\n`

// ---- HTML ----

/** Escapes text for HTML content and attribute values. */
export const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")

const htmlInline = (inline: Inline): string =>
  spans(inline).map((s) => {
    switch (s._tag) {
      case "Text":
        return escapeHtml(s.text)
      case "Code":
        return `<code>${escapeHtml(s.text)}</code>`
      case "Bold":
        return `<strong>${escapeHtml(s.text)}</strong>`
      case "Link":
        return `<a href="${escapeHtml(s.href)}">${escapeHtml(s.text)}</a>`
    }
  }).join("")

const htmlBlock = (block: Block): string => {
  switch (block._tag) {
    case "Heading":
      return `<h${block.level}${block.id !== undefined ? ` id="${escapeHtml(block.id)}"` : ""}>${htmlInline(block.text)}</h${block.level}>`
    case "Paragraph":
      return `<p>${htmlInline(block.text)}</p>`
    case "List":
      return `<ul>${block.items.map((i) => `<li>${htmlInline(i.text)}${(i.children ?? []).map(htmlBlock).join("")}</li>`).join("")}</ul>`
    case "Table":
      return `<table><thead><tr>${block.header.map((h) => `<th>${htmlInline(h)}</th>`).join("")}</tr></thead><tbody>${
        block.rows.map((r) => `<tr>${r.map((c) => `<td>${htmlInline(c)}</td>`).join("")}</tr>`).join("")
      }</tbody></table>`
    case "CodeBlock":
      return `<pre><code>${escapeHtml(block.text.replace(/\s+$/, ""))}</code></pre>`
    case "Details":
      return `<details><summary>${htmlInline(block.summary)}</summary>${block.blocks.map(htmlBlock).join("\n")}</details>`
  }
}

/** The blocks as an HTML fragment (no page around it). */
export const toHtml = (blocks: ReadonlyArray<Block>): string => blocks.map(htmlBlock).join("\n")
