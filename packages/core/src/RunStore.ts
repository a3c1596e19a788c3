/**
 * The `RunStore` port: a run's durable record — the plan as given, the resolved options,
 * and the append-only journal of its steps (what `Steps` replays) — so a crashed, interrupted
 * or stopped run can be continued.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema, type Scope } from "effect"
import type * as Journal from "./Journal.js"
import type * as Steps from "./Steps.js"

/** The store itself failed (disk full, permissions). */
export class StoreFailed extends Schema.TaggedError<StoreFailed>()("StoreFailed", {
  operation: Schema.String,
  message: Schema.String
}) {}

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

export type RunStoreError = StoreFailed | RunNotFound | RunLocked | Journal.JournalCorrupt | Journal.JournalTooNew | Journal.JournalTooOld

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
  /** A torn last record that was ignored. */
  readonly warning: string | undefined
}

/** Appends step entries durably: each returns only once its record is on disk. */
export interface JournalWriter {
  readonly append: (entry: Steps.Entry) => Effect.Effect<void, StoreFailed>
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
