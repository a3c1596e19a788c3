/**
 * Run events and the `Progress` port that publishes them. The CLI renders them; the
 * journal records them; a library user can subscribe.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, Schema } from "effect"

const at = { at: Schema.String }

export const RunStarted = Schema.TaggedStruct("RunStarted", { ...at, runId: Schema.String, streams: Schema.Array(Schema.String), tasks: Schema.Number })
export const StreamStarted = Schema.TaggedStruct("StreamStarted", { ...at, stream: Schema.String })
export const AttemptStarted = Schema.TaggedStruct("AttemptStarted", { ...at, stream: Schema.String, taskId: Schema.String, attempt: Schema.Number })
export const AttemptFinished = Schema.TaggedStruct("AttemptFinished", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  commit: Schema.NullOr(Schema.String),
  files: Schema.Array(Schema.String),
  summary: Schema.String
})
export const ReviewRecorded = Schema.TaggedStruct("ReviewRecorded", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  score: Schema.Number,
  passes: Schema.Boolean,
  issues: Schema.Array(Schema.String)
})
export const ReviewRetried = Schema.TaggedStruct("ReviewRetried", { ...at, stream: Schema.String, taskId: Schema.String, attempt: Schema.Number, message: Schema.String })
export const TaskSettled = Schema.TaggedStruct("TaskSettled", { ...at, stream: Schema.String, taskId: Schema.String, status: Schema.String, score: Schema.NullOr(Schema.Number) })
export const StreamFinished = Schema.TaggedStruct("StreamFinished", { ...at, stream: Schema.String })
export const ConflictDetected = Schema.TaggedStruct("ConflictDetected", { ...at, streams: Schema.Array(Schema.String), paths: Schema.Array(Schema.String), kind: Schema.Literal("overlap", "textual") })
export const ConflictSettled = Schema.TaggedStruct("ConflictSettled", { ...at, streams: Schema.Array(Schema.String), paths: Schema.Array(Schema.String), outcome: Schema.String, commit: Schema.NullOr(Schema.String) })
export const StreamMerged = Schema.TaggedStruct("StreamMerged", { ...at, stream: Schema.String, commit: Schema.String })
export const VerificationFinished = Schema.TaggedStruct("VerificationFinished", { ...at, passed: Schema.Boolean, commit: Schema.NullOr(Schema.String) })
export const Landed = Schema.TaggedStruct("Landed", { ...at, target: Schema.String, commit: Schema.String })
export const RunFinished = Schema.TaggedStruct("RunFinished", { ...at, status: Schema.String })

/** Every event a run publishes. */
export const RunEvent = Schema.Union(
  RunStarted,
  StreamStarted,
  AttemptStarted,
  AttemptFinished,
  ReviewRecorded,
  ReviewRetried,
  TaskSettled,
  StreamFinished,
  ConflictDetected,
  ConflictSettled,
  StreamMerged,
  VerificationFinished,
  Landed,
  RunFinished
)
export type RunEvent = typeof RunEvent.Type

/** An event before its timestamp is set. */
export type Draft = RunEvent extends infer E ? E extends { readonly at: string } ? Omit<E, "at"> : never : never

export interface Service {
  readonly publish: (event: RunEvent) => Effect.Effect<void>
}

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
