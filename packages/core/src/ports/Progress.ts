/**
 * Run events and the `Progress` port that publishes them. The CLI renders them; the
 * journal records them; a library user can subscribe.
 *
 * @since 0.1.0
 */
import { Context, Effect, Fiber, Layer, Option, PubSub, Queue, type Scope, Schema, Stream } from "effect"
import * as LandingMode from "../pipeline/LandingMode.js"
import * as Plan from "../run/Plan.js"
import * as RunReport from "../present/RunReport.js"
import * as Secrets from "../system/Secrets.js"
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
/** A task is ready in its stream's order but waits: for tasks it depends on (`on`), or for a free agent slot. */
export const TaskWaiting = Schema.TaggedStruct("TaskWaiting", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  for: Schema.Literal("dependency", "slot"),
  /** The tasks it waits for (dependency), empty for a slot. */
  on: Schema.Array(Schema.String)
})
/** A task got its agent slot: its attempts start (the stream's checkout is opened first, if needed). */
export const TaskStarted = Schema.TaggedStruct("TaskStarted", { ...at, stream: Schema.String, taskId: Schema.String, round: Schema.Number })
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
/** One line an agent printed while it works (shown with `--verbose`; not journaled). */
export const AgentOutput = Schema.TaggedStruct("AgentOutput", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  line: Schema.String
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
/** A provider's usage or quota limit stopped the attempt: the run pauses (exit 75) and resumes once it resets. */
export const ProviderLimitReached = Schema.TaggedStruct("ProviderLimitReached", {
  ...at,
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  provider: Schema.String,
  message: Schema.String,
  resetsAt: Schema.NullOr(Schema.String)
})
/** The reviewer started on an attempt's commit. */
export const ReviewStarted = Schema.TaggedStruct("ReviewStarted", { ...at, stream: Schema.String, taskId: Schema.String, attempt: Schema.Number })
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
export const StreamFinished = Schema.TaggedStruct("StreamFinished", {
  ...at,
  stream: Schema.String,
  /** False when none of its tasks started (each one skipped, or the run paused first); absent: not said. */
  started: Schema.optional(Schema.Boolean)
})
/** The integration starts merging the streams that changed something, in this order. */
export const IntegrationStarted = Schema.TaggedStruct("IntegrationStarted", { ...at, streams: Schema.Array(Schema.String), generation: Schema.Number })
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
/** The plan's verify commands start on the integration commit. */
export const VerificationStarted = Schema.TaggedStruct("VerificationStarted", {
  ...at,
  commit: Schema.NullOr(Schema.String),
  commands: Schema.Array(Schema.String)
})
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
  mode: Schema.optional(LandingMode.ModeName),
  /** The remote pushed to (`push`, `pr`). */
  remote: Schema.optional(Schema.String),
  /** The pull request's URL (`pr`). */
  pullRequest: Schema.optional(Schema.String)
})
/** The landing was refused (the target moved, its working tree has changes); `braid land` continues. */
export const LandingRefused = Schema.TaggedStruct("LandingRefused", { ...at, commit: Schema.String, message: Schema.String })
export const RunFinished = Schema.TaggedStruct("RunFinished", { ...at, status: RunReport.RunStatus })
/** The run was interrupted (Ctrl-C, SIGTERM); it can be resumed. */
export const RunInterrupted = Schema.TaggedStruct("RunInterrupted", { ...at, reason: Schema.String })

/** A checkout's environment is being made ready (`stream` null: the integration's). */
export const EnvironmentStarted = Schema.TaggedStruct("EnvironmentStarted", { ...at, stream: Schema.NullOr(Schema.String) })
/** A checkout's environment is ready: what was copied, shared and run. */
export const EnvironmentReady = Schema.TaggedStruct("EnvironmentReady", { ...at, record: RunReport.EnvironmentRecord })
/** A checkout's setup failed: the run stops, resumable. */
export const EnvironmentFailed = Schema.TaggedStruct("EnvironmentFailed", { ...at, stream: Schema.NullOr(Schema.String), message: Schema.String })

/** A notifier failed (it exited non-zero, could not start, or ran past its timeout and was killed): a warning; the run goes on unchanged. */
export const NotificationFailed = Schema.TaggedStruct("NotificationFailed", {
  ...at,
  /** The event it was told of. */
  event: Plan.NotifyEvent,
  /** The notifier's name (its command line, or "desktop"). */
  notifier: Schema.String,
  message: Schema.String
})

/** Every event a run publishes. */
export const RunEvent = Schema.Union(
  RunStarted,
  StreamStarted,
  TaskWaiting,
  TaskStarted,
  AttemptStarted,
  AgentOutput,
  AttemptFinished,
  AgentSession,
  AgentProcess,
  ProviderWaited,
  ProviderLimitReached,
  ReviewStarted,
  ReviewRecorded,
  ReviewRetried,
  TaskSettled,
  StreamFinished,
  IntegrationStarted,
  ConflictDetected,
  ConflictSettled,
  StreamMerged,
  VerificationStarted,
  VerificationFinished,
  Landed,
  LandingRefused,
  RunFinished,
  RunInterrupted,
  EnvironmentStarted,
  EnvironmentReady,
  EnvironmentFailed,
  NotificationFailed
)
export type RunEvent = typeof RunEvent.Type

export interface Service {
  readonly publish: (event: RunEvent) => Effect.Effect<void>
}

/**
 * The version of the event lines `eventLine` writes (and `braid … --events` prints); raised on
 * any incompatible change. New kinds of event (a new `_tag`) are not one: readers skip tags they do not know.
 */
export const EVENTS_VERSION = 1

const encodeEvent = Schema.encodeSync(RunEvent)
const decodeEvent = Schema.decodeSync(RunEvent)

/**
 * One event as a line of NDJSON: `{"v": EVENTS_VERSION, "_tag": …, "at": …, …}` (the `RunEvent`
 * Schema's encoding), its text scrubbed of credentials (`Secrets`).
 */
export const eventLine = (event: RunEvent): string => JSON.stringify({ v: EVENTS_VERSION, ...Secrets.scrubValue(encodeEvent(event)) })

/** The event with every credential in its text replaced by a marker (`Secrets.scrub`); the same event when it holds none. */
export const scrub = (event: RunEvent): RunEvent => {
  const encoded = encodeEvent(event)
  const clean = Secrets.scrubValue(encoded)
  return clean === encoded ? event : decodeEvent(clean)
}

/**
 * Passes every event on to `service` scrubbed (`scrub`): where events leave braid (the CLI's
 * lines, board and `--events`; the cluster's table). An attempt's output lines go through one
 * `Secrets.lineScrubber`, so every line of a private key the agent prints is hidden.
 */
export const scrubbed = (service: Service): Service => {
  const outputs = new Map<string, (line: string) => string>()
  const attemptOf = (e: { readonly stream: string; readonly taskId: string; readonly attempt: number }) => `${e.stream}/${e.taskId}/${e.attempt}`
  return {
    publish: (event) =>
      Effect.suspend(() => {
        if (event._tag === "AttemptFinished") outputs.delete(attemptOf(event))
        // A failed attempt has no AttemptFinished: its task's settling ends what it left open.
        if (event._tag === "TaskSettled") for (const key of outputs.keys()) if (key.startsWith(`${event.stream}/${event.taskId}/`)) outputs.delete(key)
        if (event._tag !== "AgentOutput") return service.publish(scrub(event))
        const key = attemptOf(event)
        const scrubLine = outputs.get(key) ?? Secrets.lineScrubber()
        outputs.set(key, scrubLine)
        return service.publish(scrub({ ...event, line: scrubLine(event.line) }))
      })
  }
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

/** Sends every event to each service in turn (the journal first, so it is durable before anything else sees it). */
export const fanOut = (...services: ReadonlyArray<Service>): Service => ({
  publish: (event) => Effect.forEach(services, (s) => s.publish(event), { discard: true })
})

/**
 * Subscribes to a `PubSub` of run events now (so nothing published from here on is missed) and
 * returns them as a `Stream`; the subscription lasts as long as the scope.
 */
export const subscribe = (pubsub: PubSub.PubSub<RunEvent>): Effect.Effect<Stream.Stream<RunEvent>, never, Scope.Scope> =>
  Effect.map(PubSub.subscribe(pubsub), (dequeue) => Stream.fromQueue(dequeue))

/**
 * Runs `run` with its events delivered to `consume` as a `Stream` that ends when `run` does;
 * returns both results once `consume` has seen every event. The library's way to watch a run:
 *
 * ```ts
 * const [report, tags] = yield* Progress.withEvents(Orchestrator.run(plan), (events) =>
 *   Stream.runCollect(Stream.map(events, (e) => e._tag)))
 * ```
 */
export const withEvents = <A, E, R, B, E2, R2>(
  run: Effect.Effect<A, E, R>,
  consume: (events: Stream.Stream<RunEvent>) => Effect.Effect<B, E2, R2>
): Effect.Effect<readonly [A, B], E | E2, Exclude<R, Progress> | R2> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Option.Option<RunEvent>>()
    const events = Stream.fromQueue(queue).pipe(Stream.takeWhile(Option.isSome), Stream.map((e) => e.value))
    const consumer = yield* Effect.fork(consume(events))
    const result = yield* run.pipe(
      Effect.provideService(Progress, { publish: (event) => Effect.asVoid(Queue.offer(queue, Option.some(event))) }),
      Effect.ensuring(Queue.offer(queue, Option.none()))
    )
    const consumed = yield* Fiber.join(consumer)
    return [result, consumed] as const
  })
