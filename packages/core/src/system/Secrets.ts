/**
 * What braid hides from everything it writes: credentials an agent (or a tool, or a provider's
 * error) prints. One rule set — well-known credential shapes plus the values braid was given —
 * applied where text leaves braid: the journal, events, the report, GitHub request bodies, and
 * each backend's messages. A match becomes a marker naming its kind, `[redacted:anthropic-key]`.
 *
 * The shapes follow gitleaks' published rules (https://github.com/gitleaks/gitleaks,
 * `config/gitleaks.toml`: anthropic-api-key, openai-api-key, gcp-api-key, github-pat /
 * github-oauth / github-app-token / github-refresh-token / github-fine-grained-pat,
 * aws-access-token, slack-*-token, slack-webhook-url, private-key, stripe-access-token,
 * curl-auth-header), loosened where a scanner can afford precision and braid cannot: a key
 * cut short or masked (`sk-ant-t****0000`) is still hidden, and a private key block with no
 * end (output cut off) is hidden to the end of the text. gitleaks' generic "key = value"
 * rule is left out: it would hide ordinary words, hashes and ids.
 *
 * @since 0.6.0
 */

/** A kind of credential, as the marker names it. */
export type Kind =
  | "private-key"
  | "authorization"
  | "url-credentials"
  | "anthropic-key"
  | "openai-key"
  | "stripe-key"
  | "groq-key"
  | "xai-key"
  | "google-api-key"
  | "url-key"
  | "github-token"
  | "aws-access-key-id"
  | "aws-secret-key"
  | "slack-webhook"
  | "slack-token"
  | "secret"

/** One credential shape: what it matches, and what of the match stays (the name of a header, a URL's scheme). */
export interface Rule {
  readonly kind: Kind
  /** Global; capture group 1, when present, is kept before the marker. */
  readonly pattern: RegExp
  /** A match this also matches is left alone (gitleaks' allowlists: documentation examples). */
  readonly allow?: RegExp
}

/** The text that replaces a credential of `kind`. */
export const marker = (kind: Kind): string => `[redacted:${kind}]`

// Not inside a longer token: "task-sk-1…" and "mask-ant-…" are words, not keys.
const START = "(?<![A-Za-z0-9_-])"
// A value that is not already a marker.
const NOT_MARKER = "(?!\\[redacted:)"
const PEM_END = "-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"

/** The shapes, in the order they apply (a private key block first: its body could hold anything). */
export const rules: ReadonlyArray<Rule> = [
  // A block with no end (cut off) is hidden to the end of the text; one with no beginning, by `hideBlockEnds`.
  { kind: "private-key", pattern: new RegExp(`-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\\s\\S]*?(?:${PEM_END}|$)`, "gi") },
  // `Authorization: Bearer …` (also in JSON, `"authorization":"…"`); a lowercase word after it is prose.
  {
    kind: "authorization",
    pattern: new RegExp(
      `\\b((?:proxy-)?authorization["']?\\s*[:=]\\s*["']?(?:(?:bearer|basic|token|digest|negotiate)\\s+)?)${NOT_MARKER}(?![a-z]+(?:[\\s"',;]|$))[^\\s"',;]{8,}`,
      "gi"
    )
  },
  { kind: "authorization", pattern: new RegExp(`\\b([Bb]earer\\s+)${NOT_MARKER}(?=[A-Za-z._~+/-]*[0-9])[A-Za-z0-9._~+/-]{12,}=*`, "g") },
  // `scheme://user:password@` (not a password already masked as `***`), and `https://<token>@`.
  { kind: "url-credentials", pattern: /\b([a-z][a-z0-9+.-]{0,30}:\/\/[^\s/:@]+:)(?!\*+@)[^\s/@]+(?=@)/gi },
  { kind: "url-credentials", pattern: /\b(https?:\/\/)[^\s/:@]{8,}(?=@)/gi },
  // sk-ant-api03-…, sk-ant-admin01-…, sk-ant-oat01-… (gitleaks: exactly 93 characters and "AA").
  { kind: "anthropic-key", pattern: new RegExp(`${START}sk-ant-[A-Za-z0-9_*-]{8,}`, "g") },
  // Project, service account and admin keys; then the classic `sk-` + 48 (gitleaks: with "T3BlbkFJ").
  { kind: "openai-key", pattern: new RegExp(`${START}sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_*-]{16,}`, "g") },
  { kind: "openai-key", pattern: new RegExp(`${START}sk-(?=[A-Za-z*]*[0-9])[A-Za-z0-9*]{20,}`, "g") },
  { kind: "stripe-key", pattern: new RegExp(`${START}(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9*]{10,}`, "g") },
  { kind: "groq-key", pattern: new RegExp(`${START}gsk_[A-Za-z0-9*]{20,}`, "g") },
  { kind: "xai-key", pattern: new RegExp(`${START}xai-[A-Za-z0-9*]{20,}`, "g") },
  // gitleaks: AIza + exactly 35.
  { kind: "google-api-key", pattern: new RegExp(`${START}AIza[0-9A-Za-z_-]{30,}`, "g") },
  // A key in a URL's query (Google's `?key=…`).
  { kind: "url-key", pattern: new RegExp(`([?&](?:key|api_?key|access_token)=)${NOT_MARKER}[^&\\s"'#<>]{8,}`, "gi") },
  // gitleaks: gh[pousr]_ + exactly 36, github_pat_ + 82.
  { kind: "github-token", pattern: new RegExp(`${START}(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})`, "g") },
  { kind: "aws-access-key-id", pattern: /\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b/g, allow: /EXAMPLE$/ },
  { kind: "aws-secret-key", pattern: new RegExp(`(aws_?secret_?access_?key["']?\\s*[:=]\\s*["']?)${NOT_MARKER}[A-Za-z0-9/+=]{30,}`, "gi") },
  // gitleaks: 43 to 56 characters after the kind.
  { kind: "slack-webhook", pattern: /(?:https?:\/\/)?hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/]{20,}/g },
  { kind: "slack-token", pattern: new RegExp(`${START}(?:xox[abeoprs]-[0-9A-Za-z-]{10,}|xapp-\\d-[0-9A-Za-z-]{10,})`, "g") }
]

/**
 * Whether a text may hold a credential shape: one scan for the words the rules start with, so
 * text with none (nearly all of it) comes back untouched after that one scan.
 */
const MAYBE = new RegExp(
  `${START}(?:sk-|[sr]k_(?:test|live|prod)_|gsk_|xai-|gh[pousr]_|github_pat_|AIza|xox|xapp-)|A3T|AKIA|ASIA|ABIA|ACCA|` +
    "[Ss]ecret_?[Aa]ccess|SECRET_?ACCESS|hooks\\.slack\\.com|PRIVATE KEY|[Aa]uthorization|AUTHORIZATION|[Bb]earer|" +
    ":\\/\\/[^\\s/@]*@|[?&](?:key|api_?key|access_token)="
)

/** Known values shorter than this are not hidden: they would match ordinary text. */
const MIN_KNOWN = 8

const BLOCK_END = new RegExp(PEM_END, "g")
const BASE64_LINE = /^[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*\r?$/

/**
 * The end of a private key block whose beginning was cut off (the tail of some output): the END
 * line and the base64 lines right above it. Walked up from each END line rather than matched by
 * one pattern, which would try every line of a long base64 blob again and again.
 */
const hideBlockEnds = (text: string): string => {
  let out = ""
  let from = 0
  for (const end of text.matchAll(BLOCK_END)) {
    let start = end.index
    let lineStart = text.lastIndexOf("\n", start - 1) + 1
    if (text.slice(lineStart, start).trim() === "") {
      while (lineStart > from) {
        const above = text.lastIndexOf("\n", lineStart - 2) + 1
        if (!BASE64_LINE.test(text.slice(above, lineStart - 1))) break
        start = lineStart = above
      }
    }
    out += `${text.slice(from, start)}${marker("private-key")}`
    from = end.index + end[0].length
  }
  return from === 0 ? text : out + text.slice(from)
}

const applyRules = (text: string): string => {
  if (!MAYBE.test(text)) return text
  let out = text
  for (const rule of rules) {
    out = out.replace(rule.pattern, (match: string, kept: unknown) =>
      rule.allow?.test(match) === true ? match : `${typeof kept === "string" ? kept : ""}${marker(rule.kind)}`)
  }
  return out.includes("-----END") ? hideBlockEnds(out) : out
}

/** `scrub` for one set of known values (sorted once, longest first: a value holding another is hidden whole). */
const scrubberOf = (known: ReadonlyArray<string | undefined>): (text: string) => string => {
  const values = known.filter((k): k is string => k !== undefined && k.length >= MIN_KNOWN).sort((a, b) => b.length - a.length)
  if (values.length === 0) return applyRules
  return (text) => {
    let out = text
    for (const value of values) if (out.includes(value)) out = out.split(value).join(marker("secret"))
    return applyRules(out)
  }
}

/**
 * The text with every credential in it replaced by a marker naming its kind: the `known`
 * values (keys braid was given; 8 characters or more), then every shape in `rules`.
 */
export const scrub = (text: string, known: ReadonlyArray<string | undefined> = []): string => scrubberOf(known)(text)

/** How `scrubValue` walks a value. */
export interface ValueOptions {
  /** Values to hide wherever they appear (see `scrub`). */
  readonly known?: ReadonlyArray<string | undefined>
  /** Properties whose value is kept as it is (text that is data, not output: a file's content). */
  readonly keep?: (key: string) => boolean
}

const isPlain = (value: object): value is Record<string, unknown> => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * A JSON-like value (strings, arrays, plain objects) with every string in it scrubbed. What
 * holds no credential comes back as the same object, so the common case allocates nothing.
 * Other objects (class instances) are returned as they are: encode them first.
 */
export const scrubValue = <A>(value: A, options: ValueOptions = {}): A => {
  const scrubText = scrubberOf(options.known ?? [])
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return scrubText(v)
    if (typeof v !== "object" || v === null) return v
    if (Array.isArray(v)) {
      let copy: Array<unknown> | undefined
      for (let i = 0; i < v.length; i++) {
        const next = walk(v[i])
        if (next !== v[i]) (copy ??= v.slice())[i] = next
      }
      return copy ?? v
    }
    if (!isPlain(v)) return v
    let copy: Record<string, unknown> | undefined
    for (const key of Object.keys(v)) {
      if (options.keep?.(key) === true) continue
      const next = walk(v[key])
      if (next !== v[key]) (copy ??= { ...v })[key] = next
    }
    return copy ?? v
  }
  return walk(value) as A
}

const OPENS = new RegExp(`-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?![\\s\\S]*${PEM_END})`, "i")
const CLOSES = new RegExp(PEM_END, "i")

/**
 * A scrubber for text that arrives one line at a time (an agent's output): besides `scrub`,
 * it hides every line of a private key block, which no single line shows whole.
 */
export const lineScrubber = (known: ReadonlyArray<string | undefined> = []): (line: string) => string => {
  const scrubText = scrubberOf(known)
  let inKey = false
  return (line) => {
    if (inKey) {
      const end = CLOSES.exec(line)
      if (end === null) return marker("private-key")
      inKey = false
      return `${marker("private-key")}${scrubText(line.slice(end.index + end[0].length))}`
    }
    if (OPENS.test(line)) inKey = true
    return scrubText(line)
  }
}
