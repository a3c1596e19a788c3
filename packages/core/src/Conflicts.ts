/**
 * Conflict detection and resolution, two stages over the `Workspace`:
 * detection finds changed-file overlaps between streams, then, stream by stream against the
 * accumulating integration, the real textual conflicts (git merge-tree; no working tree is
 * touched); resolution applies the plan's strategy (`agent`, `priority`, `manual`) and merges.
 *
 * @since 0.1.0
 */
import { DateTime, Effect, Schema } from "effect"
import * as ConflictResolver from "./ConflictResolver.js"
import type * as Plan from "./Plan.js"
import * as Progress from "./Progress.js"
import * as RunReport from "./RunReport.js"
import * as Workspace from "./Workspace.js"

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
export const detectOverlaps = (changed: ReadonlyArray<{ readonly stream: string; readonly files: ReadonlyArray<string> }>) =>
  Effect.gen(function*() {
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
    return overlaps
  })

export interface IntegrationInput {
  readonly runId: string
  readonly plan: Plan.Plan
  /** Streams to merge, in order. */
  readonly order: ReadonlyArray<Plan.PlannedStream>
  readonly changed: ReadonlyMap<string, ReadonlyArray<string>>
  readonly strategy: Plan.ConflictStrategy
  /** What a resumed run had already integrated (kept when the integration still holds it). */
  readonly already?: {
    readonly merged: ReadonlyArray<{ readonly stream: string; readonly commit: string }>
    readonly conflicts: ReadonlyArray<RunReport.ConflictRecord>
  }
}

export interface IntegrationOutcome {
  readonly merged: ReadonlyArray<string>
  readonly conflicts: ReadonlyArray<RunReport.ConflictRecord>
  /** Set when a conflict stopped the integration (manual strategy, or resolution failed). */
  readonly stoppedAt: { readonly stream: string; readonly outcome: "blocked" | "failed" } | undefined
}

/**
 * Tier two and resolution: merges the streams one at a time into the integration; before
 * each merge a probe (no working tree touched) finds the textual conflicts, which the
 * strategy then resolves.
 */
export const integrate = (input: IntegrationInput) =>
  Effect.gen(function*() {
    const workspace = yield* Workspace.Workspace
    const progress = yield* Progress.Progress
    const resolver = yield* ConflictResolver.ConflictResolver
    const failed = (stream: string) => (e: { readonly message: string }) => new IntegrationFailed({ stream, message: e.message })

    yield* workspace.beginIntegration().pipe(Effect.mapError(failed("(integration)")))
    const merged: Array<string> = []
    const conflicts: Array<RunReport.ConflictRecord> = []
    // Keep what a resumed run had merged if the integration is still exactly there.
    const already = input.already
    const head = yield* workspace.head(Workspace.integrationLocation).pipe(Effect.mapError(failed("(integration)")))
    if (already !== undefined && already.merged.length > 0 && already.merged.at(-1)!.commit === head) {
      merged.push(...already.merged.map((m) => m.stream))
      conflicts.push(...already.conflicts.filter((c) => c.outcome === "resolved" && merged.includes(c.streams[0]!)))
    } else if (already !== undefined) {
      yield* workspace.beginIntegration({ restart: true }).pipe(Effect.mapError(failed("(integration)")))
    }
    for (const stream of input.order) {
      if (merged.includes(stream.name)) continue
      const paths = yield* workspace.probeMerge(stream.name).pipe(
        Effect.mapError((e) => new DetectionFailed({ message: `probing ${stream.name}: ${e.message}` }))
      )
      if (paths.length === 0) {
        const outcome = yield* workspace.mergeStream(stream.name, "none").pipe(Effect.mapError(failed(stream.name)))
        if (outcome._tag === "Conflicted") {
          return yield* new IntegrationFailed({ stream: stream.name, message: `merge conflicted although the probe found none: ${outcome.paths.join(", ")}` })
        }
        merged.push(stream.name)
        yield* progress.publish({ _tag: "StreamMerged", at: yield* now, stream: stream.name, commit: outcome.commit })
        continue
      }
      // The integrated streams whose own changes touch the conflicted paths.
      const against = input.order.filter((s) =>
        merged.includes(s.name) && (input.changed.get(s.name) ?? []).some((f) => paths.includes(f))
      )
      const streams = [stream.name, ...against.map((s) => s.name)]
      yield* progress.publish({ _tag: "ConflictDetected", at: yield* now, streams, paths: [...paths], kind: "textual" })
      const record = (outcome: RunReport.ConflictRecord["outcome"], commit: string | null, detail: string) =>
        Effect.gen(function*() {
          const c = new RunReport.ConflictRecord({ streams, paths: [...paths], strategy: input.strategy, outcome, commit, detail })
          conflicts.push(c)
          yield* progress.publish({
            _tag: "ConflictSettled",
            at: yield* now,
            streams,
            paths: [...paths],
            strategy: input.strategy,
            outcome,
            commit,
            detail
          })
          return c
        })

      if (input.strategy === "priority") {
        const best = Math.min(...against.map((s) => s.rank))
        const streamWins = stream.rank < best
        const winner = streamWins ? stream.name : against.filter((s) => s.rank === best).map((s) => s.name).join(", ")
        const outcome = yield* workspace.mergeStream(stream.name, streamWins ? "stream" : "integration").pipe(
          Effect.mapError(failed(stream.name))
        )
        if (outcome._tag === "Conflicted") {
          return yield* new IntegrationFailed({ stream: stream.name, message: `conflict remained after priority merge: ${outcome.paths.join(", ")}` })
        }
        yield* record("resolved", outcome.commit, `${winner} has the higher priority; its side was kept for the conflicted hunks`)
        merged.push(stream.name)
        yield* progress.publish({ _tag: "StreamMerged", at: yield* now, stream: stream.name, commit: outcome.commit })
        continue
      }

      const opened = yield* workspace.mergeStream(stream.name, "none").pipe(Effect.mapError(failed(stream.name)))
      if (opened._tag === "Merged") {
        // The probe and the merge disagree only if the branches moved; trust the merge.
        yield* record("resolved", opened.commit, "merged without conflict")
        merged.push(stream.name)
        continue
      }
      if (input.strategy === "manual") {
        const dir = workspace.integrationFiles().dir
        yield* record(
          "blocked",
          null,
          `left for a person${dir ? ` in ${dir}` : ""}: edit ${opened.paths.join(", ")} to remove the conflict markers, commit the merge, then merge the remaining streams`
        )
        return { merged, conflicts, stoppedAt: { stream: stream.name, outcome: "blocked" } } satisfies IntegrationOutcome
      }
      const resolution = yield* resolver.resolve({
        runId: input.runId,
        stream,
        against,
        paths: opened.paths,
        files: workspace.integrationFiles()
      }).pipe(
        Effect.flatMap((r) => Effect.map(workspace.concludeMerge(stream.name), (commit) => ({ commit, summary: r.summary }))),
        Effect.either
      )
      if (resolution._tag === "Left") {
        yield* record("failed", null, `${resolver.name} could not resolve: ${resolution.left.message}`)
        return { merged, conflicts, stoppedAt: { stream: stream.name, outcome: "failed" } } satisfies IntegrationOutcome
      }
      yield* record("resolved", resolution.right.commit, `${resolver.name}: ${resolution.right.summary}`)
      merged.push(stream.name)
      yield* progress.publish({ _tag: "StreamMerged", at: yield* now, stream: stream.name, commit: resolution.right.commit })
    }
    return { merged, conflicts, stoppedAt: undefined } satisfies IntegrationOutcome
  })
