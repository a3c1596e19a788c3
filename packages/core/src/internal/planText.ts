/**
 * The checks that make a plan's text harmless before anything reads it as a plan: bytes that
 * are not UTF-8, control characters (a newline in an id forges commit trailers, ESC sequences
 * repaint the terminal, NUL cannot reach a process), documents too large or too deep (YAML
 * aliases expand a short file into billions of values), and where in the text a YAML alias is.
 * Every walk here is iterative: a hostile document must not exhaust the stack.
 *
 * @internal
 */
import { Option } from "effect"
import * as YAML from "yaml"

/** A path into the document: field names and list indexes. */
export type Path = ReadonlyArray<string | number>

/** `tasks[3].run.command[0]`. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`,
    ""
  )

const NAMES: Readonly<Record<number, string>> = {
  0x00: "a NUL character",
  0x09: "a tab",
  0x0a: "a line break",
  0x0d: "a carriage return",
  0x1b: "an escape character",
  0x7f: "a delete character"
}

/** How a character is written in a message: `\n`, `\t`, `\r`, else `\x1b`. */
const escaped = (code: number): string =>
  code === 0x0a ? "\\n" : code === 0x09 ? "\\t" : code === 0x0d ? "\\r" : `\\x${code.toString(16).padStart(2, "0")}`

// C0 controls, DEL and C1 controls; line break and tab are allowed where text may span lines.
// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\x00-\x1f\x7f-\x9f]/
// eslint-disable-next-line no-control-regex
const MULTI_LINE_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/

// Half of a UTF-16 surrogate pair without its other half (a JSON "\ud800" escape): not Unicode text.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Why `text` cannot stand in a plan field, or undefined: a control character (in a
 * `singleLine` field, a line break or a tab too), or a lone surrogate (text that is not Unicode).
 */
export const textProblem = (text: string, singleLine: boolean): string | undefined => {
  const match = (singleLine ? ANY_CONTROL : MULTI_LINE_CONTROL).exec(text)
  if (match !== null) {
    const code = match[0].charCodeAt(0)
    const what = NAMES[code] ?? (code >= 0x80 ? "a C1 control character" : "a control character")
    return `contains ${what} (${escaped(code)}) at character ${match.index + 1}; ${
      singleLine
        ? "this field must be a single line of printable text"
        : "only line breaks and tabs may stand in this text, no other control character"
    }`
  }
  const lone = LONE_SURROGATE.exec(text)
  if (lone !== null) return `contains an unpaired UTF-16 surrogate at character ${lone.index + 1}, which is not Unicode text`
  return undefined
}

/** The first byte of `bytes` that is not part of well-formed UTF-8, with its line and column (1-based). */
export const invalidUtf8 = (bytes: Uint8Array): { readonly byte: number; readonly line: number; readonly column: number } | undefined => {
  let i = 0
  let line = 1
  let lineStart = 0
  while (i < bytes.length) {
    const b = bytes[i]!
    if (b < 0x80) {
      if (b === 0x0a) {
        line++
        lineStart = i + 1
      }
      i++
      continue
    }
    const more = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0
    // The second byte's range excludes overlong forms, surrogates and code points over U+10FFFF.
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf
    let ok = more > 0 && i + more < bytes.length && bytes[i + 1]! >= lo && bytes[i + 1]! <= hi
    for (let k = 2; ok && k <= more; k++) ok = bytes[i + k]! >= 0x80 && bytes[i + k]! <= 0xbf
    if (!ok) {
      const column = new TextDecoder().decode(bytes.subarray(lineStart, i)).length + 1
      return { byte: b, line, column }
    }
    i += more + 1
  }
  return undefined
}

/** How large and deep a document may be. */
export interface ShapeLimits {
  readonly values: number
  readonly depth: number
}

/**
 * Problems with a document's size and shape, found without recursion: more values than
 * `limits.values` once aliases are expanded (a value reached twice counts twice), nesting deeper
 * than `limits.depth`, or a value that contains itself (a YAML alias inside its own anchor).
 * Stops at the first problem: the rest of such a document is not worth reading.
 */
export const shapeProblem = (input: unknown, limits: ShapeLimits): { readonly path: string; readonly message: string } | undefined => {
  interface Entry {
    readonly value: unknown
    readonly key: string | number | undefined
    readonly parent: Entry | undefined
    readonly depth: number
  }
  const pathOf = (entry: Entry): string => {
    const keys: Array<string | number> = []
    for (let e: Entry | undefined = entry; e !== undefined && e.key !== undefined; e = e.parent) keys.push(e.key)
    keys.reverse()
    // A path 64 levels long says less than its start.
    return keys.length > 8 ? `${formatPath(keys.slice(0, 6))}…` : formatPath(keys)
  }
  const tooMany = {
    path: "",
    message: `the plan holds more than ${limits.values.toLocaleString("en")} values (counting what YAML aliases repeat); ` +
      `braid reads plans up to that size`
  }
  let values = 0
  const stack: Array<Entry> = [{ value: input, key: undefined, parent: undefined, depth: 0 }]
  while (stack.length > 0) {
    const entry = stack.pop()!
    values++
    const value = entry.value
    if (typeof value !== "object" || value === null) continue
    if (entry.depth >= limits.depth) {
      for (let a = entry.parent; a !== undefined; a = a.parent) {
        if (a.value === value) {
          // Named where the value starts (the anchor), not where the walk noticed.
          let start = a
          for (let b = a.parent; b !== undefined; b = b.parent) if (b.value === value) start = b
          return { path: pathOf(start), message: "contains itself (a YAML alias inside its own anchor): a plan is a tree of values" }
        }
      }
      return { path: pathOf(entry), message: `is nested more than ${limits.depth} levels deep; no plan field goes that deep` }
    }
    const depth = entry.depth + 1
    // Every value on the stack will be counted: a list too long is refused before it is stacked.
    const children = Array.isArray(value) ? value.length : Object.keys(value).length
    if (values + stack.length + children > limits.values) return tooMany
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], key: i, parent: entry, depth })
    } else {
      const keys = Object.keys(value)
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (value as Record<string, unknown>)[keys[i]!], key: keys[i]!, parent: entry, depth })
      }
    }
  }
  return undefined
}

/** Where a value sits: its key in its parent, and the parent's place (paths are made only when needed). */
interface Place {
  readonly key: string | number | undefined
  readonly parent: Place | undefined
}

const pathAt = (place: Place): Path => {
  const keys: Array<string | number> = []
  for (let p: Place | undefined = place; p !== undefined && p.key !== undefined; p = p.parent) keys.push(p.key)
  return keys.reverse()
}

/**
 * Every string of a decoded plan and every key of its records, in document order, with a
 * function giving its path (called only for the few strings that have a problem).
 */
export const strings = (root: unknown, visit: (text: string, path: () => Path, isKey: boolean) => void): void => {
  const stack: Array<{ readonly value: unknown; readonly place: Place }> = [{ value: root, place: { key: undefined, parent: undefined } }]
  while (stack.length > 0) {
    const { place, value } = stack.pop()!
    if (typeof value === "string") visit(value, () => pathAt(place), false)
    else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], place: { key: i, parent: place } })
    } else if (typeof value === "object" && value !== null) {
      const keys = Object.keys(value)
      for (const key of keys) visit(key, () => pathAt({ key, parent: place }), true)
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (value as Record<string, unknown>)[keys[i]!], place: { key: keys[i]!, parent: place } })
      }
    }
  }
}

/**
 * `text` read as JSON when it is JSON and has no object with a key given twice (JSON.parse keeps
 * the last, YAML refuses it: such text is left to the YAML parser, which names the line). The
 * members are counted in the text (the ":" outside strings) and in the values read.
 */
export const readJson = (text: string): Option.Option<unknown> => {
  const none = Option.none()
  const start = /\S/.exec(text)
  if (start === null || (text[start.index] !== "{" && text[start.index] !== "[")) return none
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return none
  }
  let colons = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // Skip the string: a backslash escapes the next character.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) i++
        else if (d === 0x22) break
      }
    } else if (c === 0x3a) colons++
  }
  let members = 0
  const stack: Array<unknown> = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v !== "object" || v === null) continue
    if (Array.isArray(v)) {
      for (const item of v) stack.push(item)
    } else {
      for (const key of Object.keys(v)) {
        members++
        stack.push((v as Record<string, unknown>)[key])
      }
    }
  }
  return members === colons ? Option.some(value) : none
}

/** The aliases of a YAML document in document order (iteratively: documents may nest deeply). */
const aliasesOf = (doc: YAML.Document): Array<YAML.Alias> => {
  const found: Array<YAML.Alias> = []
  const stack: Array<unknown> = [doc.contents]
  while (stack.length > 0) {
    const node = stack.pop()
    if (YAML.isAlias(node)) found.push(node)
    else if (YAML.isPair(node)) stack.push(node.value, node.key)
    else if (YAML.isCollection(node)) for (let i = node.items.length - 1; i >= 0; i--) stack.push(node.items[i])
  }
  return found
}

/**
 * What went wrong turning a YAML document into values (the `yaml` package throws for an alias
 * whose anchor is not defined before it and for aliases that expand too far), at its line.
 */
export const aliasProblem = (
  doc: YAML.Document,
  lines: YAML.LineCounter,
  error: unknown,
  maxAliasCount: number
): { readonly path: string; readonly message: string } => {
  const text = error instanceof Error ? error.message : String(error)
  const aliases = aliasesOf(doc)
  const at = (alias: YAML.Alias | undefined) => {
    if (alias?.range === undefined || alias.range === null) return ""
    const { col, line } = lines.linePos(alias.range[0])
    return `line ${line}, column ${col}`
  }
  const unresolved = /^Unresolved alias.*: (.*)$/.exec(text)
  if (unresolved !== null) {
    const name = unresolved[1]!
    return { path: at(aliases.find((a) => a.source === name)), message: `the alias *${name} names no anchor &${name} defined before it` }
  }
  if (/Excessive alias count/.test(text)) {
    return {
      path: at(aliases[0]),
      message: `YAML aliases here expand too far (more than ${maxAliasCount.toLocaleString("en")} uses, ` +
        `an "alias bomb"): write the values out, or use fewer aliases`
    }
  }
  return { path: "", message: `the YAML document cannot be read: ${text.split("\n")[0]}` }
}
