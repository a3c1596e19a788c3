/**
 * The `RunStore` port: a run's durable record — the plan as given, the resolved options,
 * and the append-only journal of its steps (what `Steps` replays) — so a crashed, interrupted
 * or stopped run can be continued.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema, type Scope } from "effect"
import type * as Journal from "../run/Journal.js"
import type * as Steps from "./Steps.js"

/** The store itself failed (disk full, a read-only file system, permissions); `message` says what to do. */
export class StoreFailed extends Schema.TaggedError<StoreFailed>()("StoreFailed", {
  operation: Schema.String,
  message: Schema.String
}) {}

/** A run's record is there but cannot be read (a file missing or not what braid wrote). */
export class RunUnreadable extends Schema.TaggedError<RunUnreadable>()("RunUnreadable", {
  runId: Schema.String,
  file: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId} cannot be read: ${this.file} ${this.problem} (braid doctor ${this.runId} says what can be done)`
  }
}

/**
 * The run's journal was deleted or replaced while the run was writing it. The run is stopped;
 * the records the run held were written back as a new journal (`rewritten`), and a replacing
 * file was kept aside as `kept`.
 */
export class JournalReplaced extends Schema.TaggedError<JournalReplaced>()("JournalReplaced", {
  runId: Schema.String,
  file: Schema.String,
  found: Schema.Literal("deleted", "replaced"),
  records: Schema.Number,
  rewritten: Schema.Boolean,
  kept: Schema.optional(Schema.String),
  problem: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const what = this.found === "deleted" ? "was deleted" : `was replaced by another file${this.kept !== undefined ? ` (kept as ${this.kept})` : ""}`
    return this.rewritten
      ? `run ${this.runId} stopped: its journal ${this.file} ${what} while the run was working (by an agent?); braid wrote the ${this.records} records it holds back to ${this.file}. Find what touched it, then: braid resume ${this.runId}`
      : `run ${this.runId} stopped: its journal ${this.file} ${what} while the run was working, and writing back its ${this.records} records failed (${this.problem ?? "unknown"}), so the run cannot be continued; braid clean ${this.runId} removes its worktrees and branches`
  }
}

/** Another live braid process runs on the same target branch of the repository. */
export class TargetInUse extends Schema.TaggedError<TargetInUse>()("TargetInUse", {
  target: Schema.String,
  runId: Schema.String,
  pid: Schema.Number
}) {
  override get message(): string {
    return `run ${this.runId} (braid process ${this.pid}) is already working on ${this.target} in this repository, and a second run would only fail when it lands: wait for it (braid status ${this.runId}), or stop it first`
  }
}

/** No run with this id is recorded. */
export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", {
  runId: Schema.String,
  where: Schema.String
}) {
  override get message(): string {
    return `no run "${this.runId}" in ${this.where}`
  }
}

/** Another live braid process holds the run. */
export class RunLocked extends Schema.TaggedError<RunLocked>()("RunLocked", {
  runId: Schema.String,
  pid: Schema.Number
}) {
  override get message(): string {
    return `run ${this.runId} is in use by another braid process (pid ${this.pid}); wait for it to finish or stop it first`
  }
}

export type RunStoreError =
  | StoreFailed
  | RunNotFound
  | RunLocked
  | RunUnreadable
  | Journal.JournalCorrupt
  | Journal.JournalTooNew
  | Journal.JournalTooOld

/** What a run was started with. */
export class RunManifest extends Schema.Class<RunManifest>("RunManifest")({
  runId: Schema.String,
  createdAt: Schema.String,
  /** Where the plan was read from, and its directory (script paths are relative to it). */
  planSource: Schema.String,
  planBaseDir: Schema.String,
  /** The resolved options (workspace, agents, repository, base, target, landing, overrides). */
  options: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}) {}

/** A run as stored. */
export interface StoredRun {
  readonly manifest: RunManifest
  /** The plan text exactly as given. */
  readonly planText: string
  readonly records: ReadonlyArray<Journal.Record>
  /** A torn or corrupt last record that was ignored (its step runs again). */
  readonly warning: string | undefined
}

/** Appends step entries durably: each returns only once its record is on disk. */
export interface JournalWriter {
  readonly append: (entry: Steps.Entry) => Effect.Effect<void, StoreFailed | JournalReplaced>
}

export interface Service {
  /** Where runs are stored (for messages). */
  readonly location: string
  readonly create: (manifest: RunManifest, planText: string) => Effect.Effect<void, StoreFailed>
  /** Opens the run's journal for appending, continuing its sequence numbers. */
  readonly journal: (runId: string) => Effect.Effect<JournalWriter, RunStoreError, Scope.Scope>
  readonly load: (runId: string) => Effect.Effect<StoredRun, RunStoreError>
  /** Run ids, oldest first. */
  readonly list: () => Effect.Effect<ReadonlyArray<string>, StoreFailed>
  /** Holds the run for this process until the scope closes; a lock left by a dead process is taken over. */
  readonly lock: (runId: string) => Effect.Effect<void, RunLocked | StoreFailed, Scope.Scope>
  /** Whether a live process holds the run. */
  readonly isLocked: (runId: string) => Effect.Effect<boolean, StoreFailed>
  /** Keeps the run's final report (JSON text), written whole. */
  readonly saveReport: (runId: string, json: string) => Effect.Effect<void, StoreFailed>
  /** The run's final report, if it finished. */
  readonly loadReport: (runId: string) => Effect.Effect<string | undefined, StoreFailed>
  /** Deletes the run's record. */
  readonly remove: (runId: string) => Effect.Effect<void, StoreFailed>
}

/** The store a run journals to. */
export class RunStore extends Context.Tag("@braid/core/RunStore")<RunStore, Service>() {}
