/**
 * The journal of a run: one record per line, each with the schema version, a sequence
 * number, the time it was written, the stable key of its step (`run`,
 * `stream/<name>/task/<id>/attempt/<n>`, `integration/<g>/merge/<stream>`, `land/<commit>`…)
 * and the step's Schema-encoded value (see `RunState`). It is what `Steps` replays; progress
 * events are not part of it.
 *
 * @since 0.1.0
 */
import { Either, Schema } from "effect"
import type * as Steps from "./Steps.js"

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

/** A line in the middle of the journal is not a valid record. */
export class JournalCorrupt extends Schema.TaggedError<JournalCorrupt>()("JournalCorrupt", {
  file: Schema.String,
  line: Schema.Number,
  problem: Schema.String
}) {
  override get message(): string {
    return `${this.file}:${this.line}: corrupt journal record (${this.problem})`
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

/** One line of journal text (with its newline); the entry's value is already Schema-encoded. */
export const line = (seq: number, at: string, entry: Steps.Entry): string =>
  `${JSON.stringify({ v: SCHEMA_VERSION, seq, at, key: entry.key, value: entry.value })}\n`

export interface Parsed {
  readonly records: ReadonlyArray<Record>
  /** Set when the last line was torn (a crash mid-write) and was ignored. */
  readonly warning: string | undefined
}

/**
 * Parses journal text. A torn last line (no newline, or not valid JSON) is ignored with a
 * warning; any other bad line is an error naming it; a newer schema version is refused.
 */
export const parse = (file: string, text: string): Either.Either<Parsed, JournalCorrupt | JournalTooNew | JournalTooOld> => {
  const lines = text.split("\n")
  const complete = text.endsWith("\n") || text === ""
  // After the split, the last element is "" when the text ends with a newline.
  const last = lines.length - 1
  const records: Array<Record> = []
  let warning: string | undefined
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    if (i === last && raw === "") break
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch {
      if (i === last && !complete) {
        warning = `${file}:${i + 1}: ignored a torn last record (the process stopped while writing it)`
        break
      }
      return Either.left(new JournalCorrupt({ file, line: i + 1, problem: "not valid JSON" }))
    }
    const v = typeof json === "object" && json !== null && "v" in json ? (json as { v: unknown }).v : undefined
    if (typeof v === "number" && v > SCHEMA_VERSION) return Either.left(new JournalTooNew({ file, line: i + 1, version: v }))
    if (typeof v === "number" && v < SCHEMA_VERSION) return Either.left(new JournalTooOld({ file, line: i + 1, version: v }))
    const decoded = decodeRecord(json)
    if (Either.isLeft(decoded)) {
      if (i === last && !complete) {
        warning = `${file}:${i + 1}: ignored a torn last record (the process stopped while writing it)`
        break
      }
      return Either.left(new JournalCorrupt({ file, line: i + 1, problem: decoded.left.message.split("\n")[0]! }))
    }
    records.push(decoded.right)
  }
  return Either.right({ records, warning })
}
