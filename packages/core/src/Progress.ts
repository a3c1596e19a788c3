/**
 * Run events and the `Progress` port that publishes them. The CLI renders them; the
 * journal records them; a library user can subscribe.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, Schema } from "effect"
import * as Plan from "./Plan.js"
import * as RunReport from "./RunReport.js"
import { CommandResult } from "./Workspace.js"

const at = { at: Schema.String }

export const RunStarted = Schema.TaggedStruct("RunStarted", {
  ...at,
  runId: Schema.String,
  streams: Schema.Array(Schema.String),
  tasks: Schema.Number,
  /** The commit every stream started from, and the target branch. */
  base: Schema.String,
  target: Schema.String,
  targetAt: Schema.String
})
export const StreamStarted = Schema.TaggedStruct("StreamStarted", { ...at, stream: Schema.String })
export const AttemptStarted = Schema.TaggedStruct("AttemptStarted", { ...at, stream: Schema.String, taskId: Schema.String, attempt: Schema.Number })
export const AttemptFinished = Schema.TaggedStruct("AttemptFinished", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  commit: Schema.NullOr(Schema.String),
  files: Schema.Array(Schema.String),
  summary: Schema.String,
  /** What the agent's tool reported about the attempt (absent in journals of older versions). */
  agent: Schema.optional(RunReport.AgentRecord)
})
/** The session an agent is about to open or continue; journaled before its process starts. */
export const AgentSession = Schema.TaggedStruct("AgentSession", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  sessionId: Schema.String
})
/** A process an agent started: what `braid resume` ends if braid itself was killed. */
export const AgentProcess = Schema.TaggedStruct("AgentProcess", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  pid: Schema.Number,
  /** The process's start time as the system records it (so a reused pid is never mistaken for it). */
  startTime: Schema.String,
  command: Schema.String
})
/** A provider was busy (429, 529, 5xx, unreachable): the attempt waits and tries again, using no gate run. */
export const ProviderWaited = Schema.TaggedStruct("ProviderWaited", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  provider: Schema.String,
  message: Schema.String,
  /** Which transient failure of this attempt this was (1, 2, …). */
  failure: Schema.Number,
  waitMs: Schema.Number,
  /** The provider's concurrency after lowering it. */
  concurrency: Schema.Number
})
export const ReviewRecorded = Schema.TaggedStruct("ReviewRecorded", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  score: Schema.Number,
  passes: Schema.Boolean,
  issues: Schema.Array(Schema.String),
  suggestions: Schema.Array(Schema.String),
  reviewer: Schema.String,
  durationMs: Schema.Number,
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costUsd: Schema.Number
})
export const ReviewRetried = Schema.TaggedStruct("ReviewRetried", { ...at, stream: Schema.String, taskId: Schema.String, attempt: Schema.Number, message: Schema.String })
export const TaskSettled = Schema.TaggedStruct("TaskSettled", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  status: RunReport.TaskStatus,
  score: Schema.NullOr(Schema.Number),
  error: Schema.NullOr(Schema.String),
  durationMs: Schema.Number,
  /** The stream's head when the task settled: what tasks depending on it bring in. */
  head: Schema.NullOr(Schema.String)
})
export const StreamFinished = Schema.TaggedStruct("StreamFinished", { ...at, stream: Schema.String })
export const ConflictDetected = Schema.TaggedStruct("ConflictDetected", { ...at, streams: Schema.Array(Schema.String), paths: Schema.Array(Schema.String), kind: Schema.Literal("overlap", "textual") })
export const ConflictSettled = Schema.TaggedStruct("ConflictSettled", {
  ...at,
  streams: Schema.Array(Schema.String),
  paths: Schema.Array(Schema.String),
  strategy: Plan.ConflictStrategy,
  outcome: RunReport.ConflictOutcome,
  commit: Schema.NullOr(Schema.String),
  detail: Schema.String
})
export const StreamMerged = Schema.TaggedStruct("StreamMerged", { ...at, stream: Schema.String, commit: Schema.String })
export const VerificationFinished = Schema.TaggedStruct("VerificationFinished", {
  ...at,
  passed: Schema.Boolean,
  commit: Schema.NullOr(Schema.String),
  checks: Schema.Array(CommandResult)
})
export const Landed = Schema.TaggedStruct("Landed", {
  ...at,
  target: Schema.String,
  commit: Schema.String,
  previous: Schema.String,
  /** `local`, `push` or `pr` (absent: `local`). */
  mode: Schema.optional(Schema.Literal("local", "push", "pr")),
  /** The remote pushed to (`push`, `pr`). */
  remote: Schema.optional(Schema.String),
  /** The pull request's URL (`pr`). */
  pullRequest: Schema.optional(Schema.String)
})
export const RunFinished = Schema.TaggedStruct("RunFinished", { ...at, status: RunReport.RunStatus })
/** The run was interrupted (Ctrl-C, SIGTERM); it can be resumed. */
export const RunInterrupted = Schema.TaggedStruct("RunInterrupted", { ...at, reason: Schema.String })

/** Every event a run publishes. */
export const RunEvent = Schema.Union(
  RunStarted,
  StreamStarted,
  AttemptStarted,
  AttemptFinished,
  AgentSession,
  AgentProcess,
  ProviderWaited,
  ReviewRecorded,
  ReviewRetried,
  TaskSettled,
  StreamFinished,
  ConflictDetected,
  ConflictSettled,
  StreamMerged,
  VerificationFinished,
  Landed,
  RunFinished,
  RunInterrupted
)
export type RunEvent = typeof RunEvent.Type

export interface Service {
  readonly publish: (event: RunEvent) => Effect.Effect<void>
}

/** The version of the event lines `eventLine` writes (and `braid … --events` prints); raised on any incompatible change. */
export const EVENTS_VERSION = 1

const encodeEvent = Schema.encodeSync(RunEvent)

/** One event as a line of NDJSON: `{"v": EVENTS_VERSION, "_tag": …, "at": …, …}` (the `RunEvent` Schema's encoding). */
export const eventLine = (event: RunEvent): string => JSON.stringify({ v: EVENTS_VERSION, ...encodeEvent(event) })

/** Where a run's events go. */
export class Progress extends Context.Tag("@braid/core/Progress")<Progress, Service>() {}

/** Drops every event. */
export const layerSilent: Layer.Layer<Progress> = Layer.succeed(Progress, { publish: () => Effect.void })

/** Publishes every event to a `PubSub` a caller can subscribe to. */
export const layerPubSub = (pubsub: PubSub.PubSub<RunEvent>): Layer.Layer<Progress> =>
  Layer.succeed(Progress, { publish: (event) => PubSub.publish(pubsub, event).pipe(Effect.asVoid) })

/** Calls a function for every event (the CLI's renderer, a test's recorder). */
export const layerCallback = (f: (event: RunEvent) => void): Layer.Layer<Progress> =>
  Layer.succeed(Progress, { publish: (event) => Effect.sync(() => f(event)) })

/** Sends every event to each service in turn (the journal first, so it is durable before anything else sees it). */
export const fanOut = (...services: ReadonlyArray<Service>): Service => ({
  publish: (event) => Effect.forEach(services, (s) => s.publish(event), { discard: true })
})
