/**
 * The journal of a run: one Schema-encoded record per line, each with the schema version,
 * a sequence number and the stable key of the step it belongs to. Replaying it maps records
 * to steps by meaning (`stream/<name>/task/<id>/attempt/<n>`, `conflict/<paths>`, `verify`,
 * `land`), never by position.
 *
 * @since 0.1.0
 */
import { Either, Schema } from "effect"
import * as Progress from "./Progress.js"

/** The journal format this build writes and reads. */
export const SCHEMA_VERSION = 1

/** One journal line. */
export const Record = Schema.Struct({
  v: Schema.Number,
  seq: Schema.Number,
  key: Schema.String,
  event: Progress.RunEvent
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

/** The stable key of the step an event belongs to. */
export const stepKey = (event: Progress.RunEvent): string => {
  switch (event._tag) {
    case "RunStarted":
      return "run"
    case "StreamStarted":
    case "StreamFinished":
      return `stream/${event.stream}`
    case "AttemptStarted":
    case "AttemptFinished":
    case "ReviewRecorded":
    case "ReviewRetried":
    case "AgentSession":
    case "AgentProcess":
    case "ProviderWaited":
      return `stream/${event.stream}/task/${event.taskId}/attempt/${event.attempt}`
    case "TaskSettled":
      return `stream/${event.stream}/task/${event.taskId}`
    case "ConflictDetected":
    case "ConflictSettled":
      return `conflict/${[...event.paths].sort().join(",")}`
    case "StreamMerged":
      return `merge/${event.stream}`
    case "VerificationFinished":
      return "verify"
    case "Landed":
      return "land"
    case "RunFinished":
    case "RunInterrupted":
      return "run"
  }
}

const decodeRecord = Schema.decodeUnknownEither(Record)

/**
 * One line of journal text (with its newline). Events are plain data whose encoded form is
 * their own shape, so they are written with `JSON.stringify` (reading decodes them through
 * the Schema); a test holds the two in step.
 */
export const line = (seq: number, event: Progress.RunEvent): string =>
  `${JSON.stringify({ v: SCHEMA_VERSION, seq, key: stepKey(event), event })}\n`

export interface Parsed {
  readonly records: ReadonlyArray<Record>
  /** Set when the last line was torn (a crash mid-write) and was ignored. */
  readonly warning: string | undefined
}

/**
 * Parses journal text. A torn last line (no newline, or not valid JSON) is ignored with a
 * warning; any other bad line is an error naming it; a newer schema version is refused.
 */
export const parse = (file: string, text: string): Either.Either<Parsed, JournalCorrupt | JournalTooNew> => {
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
