/**
 * Conflict detection and resolution, two stages over the `Workspace`:
 * detection finds changed-file overlaps between streams, then, stream by stream against the
 * accumulating integration, the real textual conflicts (git merge-tree; no working tree is
 * touched); resolution applies the plan's strategy (`agent`, `priority`, `manual`) and merges.
 *
 * @since 0.1.0
 */
import { DateTime, Effect, Either, Schema } from "effect"
import type * as Attempt from "../run/Attempt.js"
import * as ConflictResolver from "../ports/ConflictResolver.js"
import * as ConflictStrategy from "./ConflictStrategy.js"
import type * as Plan from "../run/Plan.js"
import * as Progress from "../ports/Progress.js"
import * as RunReport from "../present/RunReport.js"
import * as RunState from "../run/RunState.js"
import * as Sandbox from "../system/Sandbox.js"
import * as Steps from "../ports/Steps.js"
import * as Workspace from "../ports/Workspace.js"

/** Detection failed: the workspace could not answer. */
export class DetectionFailed extends Schema.TaggedError<DetectionFailed>()("DetectionFailed", {
  message: Schema.String
}) {}

/** Integration could not merge a stream for a reason other than a conflict. */
export class IntegrationFailed extends Schema.TaggedError<IntegrationFailed>()("IntegrationFailed", {
  stream: Schema.String,
  message: Schema.String
}) {}

/** Errors of the conflict stages. */
export type ConflictError = DetectionFailed | IntegrationFailed

const now = DateTime.now.pipe(Effect.map(DateTime.formatIso))

/** Tier one: pairs of streams that changed the same files. */
export const detectOverlaps = Effect.fn("Conflicts.detectOverlaps")(
  function*(changed: ReadonlyArray<{ readonly stream: string; readonly files: ReadonlyArray<string> }>) {
    const progress = yield* Progress.Progress
    const overlaps: Array<RunReport.Overlap> = []
    for (let i = 0; i < changed.length; i++) {
      const a = changed[i]!
      const mine = new Set(a.files)
      for (let j = i + 1; j < changed.length; j++) {
        const b = changed[j]!
        const paths = b.files.filter((f) => mine.has(f)).sort()
        if (paths.length > 0) {
          overlaps.push(new RunReport.Overlap({ streams: [a.stream, b.stream], paths }))
          yield* progress.publish({ _tag: "ConflictDetected", at: yield* now, streams: [a.stream, b.stream], paths, kind: "overlap" })
        }
      }
    }
    yield* Effect.annotateCurrentSpan("braid.overlaps", overlaps.length)
    return overlaps
  }
)

/**
 * A conflict settled by the resolver as a durable step (`key`): the resolver edits the
 * conflicted files, every one of them is checked for conflict markers (a resolution that left
 * any is refused, with what the resolver said), and the resolved text is journaled. A
 * continued run replays it: the journaled text is written over the reopened conflict, and the
 * resolver (an agent) is not asked again.
 */
export const resolveDurably = Effect.fn("Conflicts.resolve")(
  function*(input: {
    readonly key: string
    readonly resolver: ConflictResolver.Service
    readonly steps: Steps.Service
    readonly request: ConflictResolver.ResolutionRequest
  }) {
    const { files, paths } = input.request
    yield* Effect.annotateCurrentSpan({ "braid.stream": input.request.stream.name, "braid.conflict.kind": input.request.kind, "braid.resolver": input.resolver.name })
    const failed = (message: string, said?: string, agent?: Attempt.AgentRecord) =>
      new ConflictResolver.ResolutionFailed({ paths: [...paths], message, ...(said !== undefined ? { said } : {}), ...(agent !== undefined ? { agent } : {}) })
    const resolved = yield* input.steps.step(
      input.key,
      RunState.Resolved,
      Effect.gen(function*() {
        // Confined to the files it resolves in (the integration's, or the stream's checkout).
        const r = yield* Effect.flatMap(Sandbox.policyOf(files), (policy) => Sandbox.within(policy)(input.resolver.resolve(input.request)))
        const left = yield* ConflictResolver.markersLeft(files, paths).pipe(Effect.mapError((e) => failed(e.message, r.summary, r.agent)))
        if (left.length > 0) {
          return yield* failed(`conflict markers remain in ${left.join(", ")}; the resolution is refused`, r.summary, r.agent)
        }
        const contents = yield* Effect.forEach(paths, (p) => Effect.map(files.read(p), (content) => ({ path: p, content: content ?? null }))).pipe(
          Effect.mapError((e) => failed(e.message, r.summary, r.agent))
        )
        return new RunState.Resolved({ paths: [...paths], files: contents, resolver: input.resolver.name, summary: r.summary, agent: r.agent ?? null })
      })
    )
    // After a replay the merge was opened again with its markers: the journaled text goes back.
    yield* Effect.forEach(resolved.files, (f) => f.content === null ? files.remove(f.path) : files.write(f.path, f.content), { discard: true }).pipe(
      Effect.mapError((e) => failed(e.message, resolved.summary, resolved.agent ?? undefined))
    )
    return resolved
  }
)

export interface IntegrationInput {
  readonly runId: string
  readonly plan: Plan.Plan
  /** The run's workspace: its integration, and each stream's branch (a resolver sees their diffs). */
  readonly workspace: Workspace.Run
  /** Streams to merge, in order. */
  readonly order: ReadonlyArray<Plan.PlannedStream>
  readonly changed: ReadonlyMap<string, ReadonlyArray<string>>
  readonly strategy: Plan.ConflictStrategy
  /** The integration generation (one more for every retry): the merge steps' keys. */
  readonly generation: number
}

/** What the integration did: every stream merged, every conflict, and where it stopped, if it did. */
export interface IntegrationOutcome {
  readonly merged: ReadonlyArray<string>
  readonly conflicts: ReadonlyArray<RunState.ConflictRecord>
  /** Set when a conflict stopped the integration (manual strategy, or resolution failed). */
  readonly stoppedAt: { readonly stream: string; readonly outcome: "blocked" | "failed" } | undefined
}

/** A conflict stopped the merge of a stream; nothing is journaled, so the merge runs again when the run is continued. */
class MergeStopped {
  constructor(readonly conflict: RunState.ConflictRecord, readonly outcome: "blocked" | "failed") {}
}

/**
 * Tier two and resolution: merges the streams one at a time into the integration; before
 * each merge a probe (no working tree touched) finds the textual conflicts, which the
 * strategy then resolves. Each merge is a durable step (`integration/<g>/merge/<stream>`).
 * A conflict left for a person (`manual`) is taken as resolved once they committed the merge
 * (or left it resolved, not committed) with no conflict markers left.
 */
export const integrate = Effect.fn("Conflicts.integrate")(
  function*(input: IntegrationInput) {
    const workspace = input.workspace
    const integration = workspace.integration
    const progress = yield* Progress.Progress
    const resolver = yield* ConflictResolver.ConflictResolver
    const steps = yield* Steps.Steps
    const failed = (stream: string) => (e: { readonly message: string }) => new IntegrationFailed({ stream, message: e.message })
    const g = input.generation
    const strategy = ConflictStrategy.named(input.strategy)

    yield* integration.begin().pipe(Effect.mapError(failed("(integration)")))
    yield* progress.publish({ _tag: "IntegrationStarted", at: yield* now, streams: input.order.map((s) => s.name), generation: g })
    const merged: Array<string> = []
    const conflicts: Array<RunState.ConflictRecord> = []

    const mergeOne = (stream: Plan.PlannedStream) =>
      Effect.gen(function*() {
        const fail = failed(stream.name)
        const done = (commit: string, conflict: RunState.ConflictRecord | null) =>
          Effect.as(
            progress.publish({ _tag: "StreamMerged", at: DateTime.formatIso(DateTime.unsafeNow()), stream: stream.name, commit }),
            new RunState.Merged({ generation: g, stream: stream.name, commit, conflict })
          )
        const state = yield* integration.mergeState(stream.name).pipe(Effect.mapError(fail))
        const stopped = yield* steps.recall(RunState.keys.stopped(g, stream.name), RunState.Stopped)
        // The integrated streams whose own changes touch these paths.
        const against = (paths: ReadonlyArray<string>) =>
          input.order.filter((s) => merged.includes(s.name) && (input.changed.get(s.name) ?? []).some((f) => paths.includes(f)))
        const recordOf = (paths: ReadonlyArray<string>, s: ConflictStrategy.Settlement) =>
          new RunState.ConflictRecord({
            streams: [stream.name, ...against(paths).map((s) => s.name)],
            paths: [...paths],
            strategy: input.strategy,
            outcome: s.outcome,
            commit: s.commit,
            detail: s.detail,
            ...(s.resolver !== undefined ? { resolver: s.resolver } : {}),
            ...(s.said !== undefined ? { said: s.said } : {}),
            ...(s.agent !== undefined ? { agent: s.agent } : {})
          })
        const settled = (c: RunState.ConflictRecord) =>
          progress.publish({
            _tag: "ConflictSettled",
            at: DateTime.formatIso(DateTime.unsafeNow()),
            streams: c.streams,
            paths: c.paths,
            strategy: c.strategy,
            outcome: c.outcome,
            commit: c.commit,
            detail: c.detail
          })

        // A conflict this run stopped at, taken up as the strategy says (manual: once a person resolved it).
        const resume = strategy.resumeInIntegration
        if (stopped._tag === "Some" && resume !== undefined && (state.merged || state.open === stream.name)) {
          const paths = stopped.value.conflict.paths
          const files = integration.files
          const s = yield* resume({
            paths,
            dir: Workspace.directoryOf(files),
            marked: Effect.filter(paths, (p) =>
              Effect.map(files.read(p), (text) => text !== undefined && Workspace.hasConflictMarkers(text))).pipe(Effect.mapError(fail)),
            conclude: state.merged
              ? integration.head.pipe(Effect.mapError(fail))
              : integration.conclude(stream.name).pipe(Effect.mapError(fail))
          })
          const c = recordOf(s.paths ?? paths, s)
          if (s.outcome !== "resolved") return yield* Effect.fail(new MergeStopped(c, s.outcome))
          yield* settled(c)
          return yield* done(s.commit!, c)
        }
        // A merge another process left open is redone from the journal.
        if (state.open !== undefined) yield* integration.abort.pipe(Effect.mapError(fail))

        const paths = yield* integration.probe(stream.name).pipe(
          Effect.mapError((e) => new DetectionFailed({ message: `probing ${stream.name}: ${e.message}` }))
        )
        if (paths.length === 0) {
          const outcome = yield* integration.merge(stream.name, "none").pipe(Effect.mapError(fail))
          if (outcome._tag === "Conflicted") {
            return yield* new IntegrationFailed({ stream: stream.name, message: `merge conflicted although the probe found none: ${outcome.paths.join(", ")}` })
          }
          return yield* done(outcome.commit, null)
        }
        const others = against(paths)
        yield* progress.publish({
          _tag: "ConflictDetected",
          at: DateTime.formatIso(DateTime.unsafeNow()),
          streams: [stream.name, ...others.map((s) => s.name)],
          paths: [...paths],
          kind: "textual"
        })

        const key = RunState.keys.resolution(g, stream.name)
        const s = yield* strategy.settleInIntegration({
          stream,
          others,
          paths,
          resolverName: resolver.name,
          dir: Workspace.directoryOf(integration.files),
          keep: (side) =>
            Effect.flatMap(integration.merge(stream.name, side).pipe(Effect.mapError(fail)), (outcome) =>
              outcome._tag === "Conflicted"
                ? new IntegrationFailed({ stream: stream.name, message: `conflict remained after ${strategy.name} merge: ${outcome.paths.join(", ")}` })
                : Effect.succeed(outcome.commit)),
          open: integration.merge(stream.name, "none").pipe(Effect.mapError(fail)),
          resolve: (conflicted) =>
            Effect.gen(function*() {
              const r = yield* resolveDurably({
                key,
                resolver,
                steps,
                request: {
                  runId: input.runId,
                  stream,
                  against: others,
                  paths: conflicted,
                  files: integration.files,
                  kind: "integration",
                  intents: yield* ConflictResolver.intentsOf(workspace, [stream, ...others], conflicted),
                  verify: input.plan.verify,
                  key
                }
              })
              const commit = yield* integration.conclude(stream.name).pipe(
                Effect.mapError((e) => new ConflictResolver.ResolutionFailed({ paths: [...conflicted], message: e.message, said: r.summary, ...(r.agent !== null ? { agent: r.agent } : {}) }))
              )
              return Either.right({ commit, resolved: r })
            }).pipe(Effect.catchTag("ResolutionFailed", (f) => Effect.succeed(Either.left(f))))
        })
        const c = recordOf(s.paths ?? paths, s)
        if (s.outcome !== "resolved") {
          yield* steps.record(RunState.keys.stopped(g, stream.name), RunState.Stopped, new RunState.Stopped({ generation: g, stream: stream.name, conflict: c }))
          yield* settled(c)
          return yield* Effect.fail(new MergeStopped(c, s.outcome))
        }
        yield* settled(c)
        return yield* done(s.commit!, c)
      })

    for (const stream of input.order) {
      const result = yield* steps.step(RunState.keys.merge(g, stream.name), RunState.Merged, mergeOne(stream)).pipe(
        Effect.map((m) => ({ _tag: "Merged" as const, m })),
        Effect.catchIf((e): e is MergeStopped => e instanceof MergeStopped, (s) => Effect.succeed({ _tag: "Stopped" as const, s })),
        Effect.tap((r) => Effect.annotateCurrentSpan("braid.merge", r._tag === "Merged" ? (r.m.conflict === null ? "merged" : `merged, conflict ${r.m.conflict.outcome}`) : r.s.outcome)),
        Effect.withSpan("Conflicts.merge", { attributes: { "braid.stream": stream.name, "braid.generation": g } })
      )
      if (result._tag === "Stopped") {
        conflicts.push(result.s.conflict)
        return { merged, conflicts, stoppedAt: { stream: stream.name, outcome: result.s.outcome } } satisfies IntegrationOutcome
      }
      merged.push(stream.name)
      if (result.m.conflict !== null) conflicts.push(result.m.conflict)
    }
    return { merged, conflicts, stoppedAt: undefined } satisfies IntegrationOutcome
  }
)
