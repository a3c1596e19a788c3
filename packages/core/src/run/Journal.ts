/**
 * The journal of a run: one record per line, each with the schema version, a sequence
 * number, the time it was written, the stable key of its step (`run`,
 * `stream/<name>/task/<id>/attempt/<n>`, `integration/<g>/merge/<stream>`, `land/<commit>`…)
 * and the step's Schema-encoded value (see `RunState`). It is what `Steps` replays; progress
 * events are not part of it.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"
import * as Secrets from "../system/Secrets.js"
import type * as Steps from "../ports/Steps.js"

/** The journal format this build writes and reads. */
export const SCHEMA_VERSION = 2

/** One journal line. */
export const Record = Schema.Struct({
  v: Schema.Number,
  seq: Schema.Number,
  at: Schema.String,
  key: Schema.String,
  value: Schema.Unknown
})
export type Record = typeof Record.Type

/**
 * A line before the last is not a valid record. `repair`, when set, is the command that shows
 * and drops such lines (`braid doctor <run> --repair`).
 */
export class JournalCorrupt extends Schema.TaggedError<JournalCorrupt>()("JournalCorrupt", {
  file: Schema.String,
  line: Schema.Number,
  problem: Schema.String,
  repair: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `${this.file}:${this.line}: corrupt journal record (${this.problem})${
      this.repair === undefined ? "" : `; ${this.repair} shows what a repair drops, ${this.repair} --repair drops it (keeping a copy of the journal)`
    }`
  }
}

/** The journal was written by a newer braid. */
export class JournalTooNew extends Schema.TaggedError<JournalTooNew>()("JournalTooNew", {
  file: Schema.String,
  line: Schema.Number,
  version: Schema.Number
}) {
  override get message(): string {
    return `${this.file}:${this.line}: journal schema version ${this.version} is newer than this braid understands (${SCHEMA_VERSION}); upgrade braid to resume this run`
  }
}

/** The journal was written by an earlier braid, whose runs this one cannot continue. */
export class JournalTooOld extends Schema.TaggedError<JournalTooOld>()("JournalTooOld", {
  file: Schema.String,
  line: Schema.Number,
  version: Schema.Number
}) {
  override get message(): string {
    return `${this.file}:${this.line}: journal schema version ${this.version} was written by an earlier braid; this one (${SCHEMA_VERSION}) cannot continue it: finish it with that braid, or remove it with braid clean`
  }
}

const decodeRecord = Schema.decodeUnknownEither(Record)

/**
 * A step's encoded value as a journal keeps it (the file journal and the cluster's table):
 * every string scrubbed of credentials (`Secrets.scrubValue`), except the text of the files a
 * resolution wrote (`content`), which a continued run writes back into the repository as it
 * was (the run's commits hold it anyway).
 */
export const stored = (value: unknown): unknown => Secrets.scrubValue(value, { keep: (key) => key === "content" })

/** One journal line, with its newline; the entry's value is already Schema-encoded. */
export const line = (seq: number, at: string, entry: Steps.Entry): string =>
  `${JSON.stringify({ v: SCHEMA_VERSION, seq, at, key: entry.key, value: stored(entry.value) })}\n`

/** A line that is not a valid record. */
export interface Damage {
  /** Its line number (1-based). */
  readonly line: number
  readonly problem: string
  /** The step it seems to record, when its text still names one. */
  readonly key: string | undefined
  /** The journal's last line: dropping it leaves what a crash while writing it would have. */
  readonly last: boolean
  /** The last line, cut short by a crash while it was written (no newline). */
  readonly torn: boolean
}

/** A journal read line by line: its records, the lines that are not records, and the text of the good ones. */
export interface Examined {
  readonly records: ReadonlyArray<Record>
  readonly damage: ReadonlyArray<Damage>
  /** The good lines, each ending in a newline: what a repair keeps. */
  readonly kept: string
}

/** The step key a damaged line's text still names, if any. */
const keyOf = (raw: string): string | undefined => /"key":"((?:[^"\\]|\\.)*)"/.exec(raw)?.[1]

/**
 * Reads every line of journal text, keeping the good records and naming every bad line (a
 * repair drops those). A newer or older schema version is refused: no repair makes another
 * braid's journal this one's.
 */
export const examine = (file: string, text: string): Either.Either<Examined, JournalTooNew | JournalTooOld> => {
  const lines = text.split("\n")
  // After the split, the last element is "" when the text ends with a newline.
  const complete = text.endsWith("\n") || text === ""
  const count = complete ? lines.length - 1 : lines.length
  const records: Array<Record> = []
  const damage: Array<Damage> = []
  const kept: Array<string> = []
  for (let i = 0; i < count; i++) {
    const raw = lines[i]!
    const last = i === count - 1
    const torn = last && !complete
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch {
      damage.push({ line: i + 1, problem: raw.trim() === "" ? "an empty line" : "not valid JSON", key: keyOf(raw), last, torn })
      continue
    }
    const v = typeof json === "object" && json !== null && "v" in json ? (json as { v: unknown }).v : undefined
    if (typeof v === "number" && v > SCHEMA_VERSION) return Either.left(new JournalTooNew({ file, line: i + 1, version: v }))
    if (typeof v === "number" && v < SCHEMA_VERSION) return Either.left(new JournalTooOld({ file, line: i + 1, version: v }))
    const decoded = decodeRecord(json)
    if (Either.isLeft(decoded)) {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
      const problem = issue === undefined ? "not a journal record" : `${issue.path.length > 0 ? `${issue.path.join(".")}: ` : ""}${issue.message}`
      damage.push({ line: i + 1, problem, key: keyOf(raw), last, torn })
      continue
    }
    records.push(decoded.right)
    kept.push(`${raw}\n`)
  }
  return Either.right({ records, damage, kept: kept.join("") })
}

/** What `parse` reads from a journal. */
export interface Parsed {
  readonly records: ReadonlyArray<Record>
  /** Set when the last line was torn or corrupt and was dropped: its step runs again. */
  readonly warning: string | undefined
  /** The text of the records read, when it differs from the journal's (a last line dropped, a newline missing). */
  readonly kept: string | undefined
}

/** How a dropped last line is described, in a warning and by `braid doctor`. */
export const describeDamage = (file: string, d: Damage): string =>
  d.torn
    ? `${file}:${d.line}: ignored a torn last record (the process stopped while writing it)${d.key === undefined ? "" : `; step ${d.key} runs again`}`
    : `${file}:${d.line}: ${d.last ? "ignored a corrupt last record" : "corrupt record"} (${d.problem})${
      d.key === undefined ? "" : d.last ? `; step ${d.key} runs again` : `; it was step ${d.key}`
    }`

/**
 * Parses journal text. A torn or corrupt last line is dropped with a warning (its step runs
 * again, as after a crash while it was written); a bad line before it is an error naming it
 * (with `repair`, the command that drops it); another schema version is refused.
 */
export const parse = (
  file: string,
  text: string,
  options?: { readonly repair?: string | undefined }
): Either.Either<Parsed, JournalCorrupt | JournalTooNew | JournalTooOld> =>
  Either.flatMap(examine(file, text), (examined) => {
    const middle = examined.damage.find((d) => !d.last)
    if (middle !== undefined) {
      return Either.left(new JournalCorrupt({ file, line: middle.line, problem: middle.problem, ...(options?.repair !== undefined ? { repair: options.repair } : {}) }))
    }
    const dropped = examined.damage.at(-1)
    return Either.right({
      records: examined.records,
      warning: dropped === undefined ? undefined : describeDamage(file, dropped),
      kept: examined.kept === text ? undefined : examined.kept
    })
  })
