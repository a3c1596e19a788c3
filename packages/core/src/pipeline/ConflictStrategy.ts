/**
 * Conflict strategies: how a textual conflict is settled, both when a task brings its
 * dependencies' work into its stream (`Dispatch`) and when the integration merges a stream
 * (`Conflicts.integrate`). Each strategy is one value in `all`, and the plan's
 * `conflictStrategy` accepts their names (`Plan.ConflictStrategy` is made from this list).
 *
 * A strategy decides; the stage offers the means (keep one side, open the merge, ask the
 * resolver, drop the half-done merge) and turns the strategy's `Settlement` into the conflict's
 * record and event, and — unless it is resolved — stops the task or the integration. This
 * module imports nothing of braid at run time, so `Plan` can take the names from it.
 *
 * @since 0.1.0
 */
import { Array as Arr, Effect, Either } from "effect"
import type * as Attempt from "../run/Attempt.js"
import type * as ConflictResolver from "../ports/ConflictResolver.js"
import type * as Plan from "../run/Plan.js"
import type * as RunState from "../run/RunState.js"
import type * as Workspace from "../ports/Workspace.js"

/** What a strategy made of one conflict: the record's outcome, commit and detail, and who resolved it. */
export interface Settlement {
  readonly outcome: RunState.ConflictRecord["outcome"]
  readonly commit: string | null
  readonly detail: string
  /** The conflicted paths, when the merge found others than the probe did. */
  readonly paths?: ReadonlyArray<string> | undefined
  readonly resolver?: string | undefined
  readonly said?: string | undefined
  readonly agent?: Attempt.AgentRecord | undefined
}

/** A resolution the resolver made and the stage concluded: the commit, and what the resolver did. */
export interface Resolution {
  readonly commit: string
  readonly resolved: RunState.Resolved
}

/** A conflict met bringing a dependency's work into a stream, and the means to settle it. */
export interface InStream<E, R> {
  readonly stream: Plan.PlannedStream
  /** The dependency's stream. */
  readonly from: Plan.PlannedStream
  /** The dependency's commit being brought in. */
  readonly commit: string
  readonly paths: ReadonlyArray<string>
  /** What conflicted, in words ("bringing … into stream … conflicts in …"). */
  readonly conflicted: string
  readonly resolverName: string
  /** Drops the half-done merge from the stream's worktree. */
  readonly discard: Effect.Effect<void, E, R>
  /** Brings the work in keeping one side of the conflicted hunks (`ours`: the stream's); the commit made, if one was. */
  readonly keep: (side: "ours" | "theirs") => Effect.Effect<string | null, E, R>
  /** The resolver settles the open merge in the stream's worktree (a durable step), which is then concluded. */
  readonly resolve: Effect.Effect<Either.Either<Resolution, ConflictResolver.ResolutionFailed>, E, R>
}

/** A conflict met merging a stream into the integration, and the means to settle it. */
export interface InIntegration<E, R> {
  readonly stream: Plan.PlannedStream
  /** The integrated streams whose own changes touch the conflicted paths. */
  readonly others: ReadonlyArray<Plan.PlannedStream>
  /** The conflicted paths the probe found. */
  readonly paths: ReadonlyArray<string>
  readonly resolverName: string
  /** The integration's worktree, when it is on disk. */
  readonly dir: string | undefined
  /** Merges the stream keeping one side of the conflicted hunks; the merge commit. */
  readonly keep: (side: "stream" | "integration") => Effect.Effect<string, E, R>
  /** Opens the merge taking no side: merged after all, or the conflicted paths, the merge left open. */
  readonly open: Effect.Effect<Workspace.MergeOutcome, E, R>
  /** The resolver settles the open merge (a durable step), which is then concluded. */
  readonly resolve: (paths: ReadonlyArray<string>) => Effect.Effect<Either.Either<Resolution, ConflictResolver.ResolutionFailed>, E, R>
}

/** Continuing a run: the integration stopped at this stream's conflict, and its merge is there to be looked at. */
export interface Reopened<E, R> {
  /** The paths of the conflict it stopped at. */
  readonly paths: ReadonlyArray<string>
  readonly dir: string | undefined
  /** Those of `paths` that still hold conflict markers. */
  readonly marked: Effect.Effect<ReadonlyArray<string>, E, R>
  /** The merge as it was left: its commit, committed by a person or concluded now. */
  readonly conclude: Effect.Effect<string, E, R>
}

/** One conflict strategy: a value in `all`. */
export interface Strategy<N extends string = string> {
  readonly name: N
  readonly description: string
  /** Whether it asks the `ConflictResolver` (so the run needs a resolver backend). */
  readonly needsResolver: boolean
  /** Settles a conflict bringing a dependency's work into a stream; anything but `resolved` fails the task. */
  readonly settleInStream: <E, R>(conflict: InStream<E, R>) => Effect.Effect<Settlement, E, R>
  /** Settles a conflict merging a stream into the integration; anything but `resolved` stops the integration there. */
  readonly settleInIntegration: <E, R>(conflict: InIntegration<E, R>) => Effect.Effect<Settlement, E, R>
  /**
   * Continuing a run whose integration this strategy stopped at a stream (its merge committed
   * or still open): how that merge is taken up. Without it the merge is done again.
   */
  readonly resumeInIntegration?: <E, R>(conflict: Reopened<E, R>) => Effect.Effect<Settlement, E, R>
}

const said = (f: ConflictResolver.ResolutionFailed) => f.said !== undefined && f.said !== "" ? ` — it said: ${f.said}` : ""

const resolvedBy = (r: Resolution, paths?: ReadonlyArray<string>): Settlement => ({
  outcome: "resolved",
  commit: r.commit,
  detail: `${r.resolved.resolver}: ${r.resolved.summary}`,
  paths,
  resolver: r.resolved.resolver,
  said: r.resolved.summary,
  agent: r.resolved.agent ?? undefined
})

/** The probe and the merge disagree only if the branches moved; the merge is trusted. */
const mergedAfterAll = (commit: string): Settlement => ({ outcome: "resolved", commit, detail: "merged without conflict" })

/** The resolver (an agent, or the plan's `resolve` command) edits the conflicted files; the default. */
export const agent: Strategy<"agent"> = {
  name: "agent",
  description: "an agent resolves them",
  needsResolver: true,
  settleInStream: (c) =>
    Effect.gen(function*() {
      const resolution = yield* c.resolve
      if (Either.isRight(resolution)) return resolvedBy(resolution.right)
      const f = resolution.left
      yield* c.discard
      return {
        outcome: "failed",
        commit: null,
        detail: `${c.conflicted}; ${c.resolverName} could not resolve it: ${f.message}${said(f)}`,
        resolver: c.resolverName,
        said: f.said,
        agent: f.agent
      }
    }),
  settleInIntegration: (c) =>
    Effect.gen(function*() {
      const opened = yield* c.open
      if (opened._tag === "Merged") return mergedAfterAll(opened.commit)
      const resolution = yield* c.resolve(opened.paths)
      if (Either.isRight(resolution)) return resolvedBy(resolution.right, opened.paths)
      const f = resolution.left
      return {
        outcome: "failed",
        commit: null,
        detail: `${c.resolverName} could not resolve: ${f.message}${said(f)}`,
        paths: opened.paths,
        resolver: c.resolverName,
        said: f.said,
        agent: f.agent
      }
    })
}

/** The higher-priority stream's side of the conflicted hunks is kept (a tie: the side being merged into). */
export const priority: Strategy<"priority"> = {
  name: "priority",
  description: "the higher-priority stream wins",
  needsResolver: false,
  settleInStream: (c) =>
    Effect.gen(function*() {
      yield* c.discard
      const ours = c.stream.rank <= c.from.rank
      const commit = yield* c.keep(ours ? "ours" : "theirs")
      return {
        outcome: "resolved",
        commit,
        detail: `${ours ? c.stream.name : c.from.name} has the higher priority${
          c.stream.rank === c.from.rank ? " (a tie: the stream's own side)" : ""
        }; its side was kept for the conflicted hunks`
      }
    }),
  settleInIntegration: (c) =>
    Effect.gen(function*() {
      const best = Math.min(...c.others.map((s) => s.rank))
      const streamWins = c.stream.rank < best
      const winner = streamWins ? c.stream.name : c.others.filter((s) => s.rank === best).map((s) => s.name).join(", ")
      const commit = yield* c.keep(streamWins ? "stream" : "integration")
      return { outcome: "resolved", commit, detail: `${winner} has the higher priority; its side was kept for the conflicted hunks` }
    })
}

/** The conflict is left for a person: the task does not start, or the integration stops until they resolved it. */
export const manual: Strategy<"manual"> = {
  name: "manual",
  description: "the run stops for you",
  needsResolver: false,
  settleInStream: (c) =>
    Effect.gen(function*() {
      yield* c.discard
      return {
        outcome: "blocked",
        commit: null,
        detail: `${c.conflicted}; conflictStrategy is manual, so the task did not start: merge ${c.commit.slice(0, 10)} into the stream's branch by hand ` +
          `(resolving ${c.paths.join(", ")}), then braid retry --task <id>`
      }
    }),
  settleInIntegration: (c) =>
    Effect.gen(function*() {
      const opened = yield* c.open
      if (opened._tag === "Merged") return mergedAfterAll(opened.commit)
      return {
        outcome: "blocked",
        commit: null,
        paths: opened.paths,
        detail: `left for a person${c.dir ? ` in ${c.dir}` : ""}: edit ${
          opened.paths.join(", ")
        } to remove the conflict markers, commit the merge, then run braid resume`
      }
    }),
  // Resolved once the person left no conflict markers (the merge committed, or resolved and not committed).
  resumeInIntegration: (c) =>
    Effect.gen(function*() {
      const marked = yield* c.marked
      if (marked.length > 0) {
        return {
          outcome: "blocked",
          commit: null,
          detail: `conflict markers remain in ${marked.join(", ")}${c.dir ? ` (in ${c.dir})` : ""}: remove them, commit the merge, then run braid resume`
        }
      }
      return { outcome: "resolved", commit: yield* c.conclude, detail: "resolved by a person" }
    })
}

/** Every conflict strategy; the plan's `conflictStrategy` is one of their names. */
export const all = [agent, priority, manual] as const

/** A strategy's name. */
export type Name = (typeof all)[number]["name"]

/** The strategies' names, in the list's order. */
export const names = Arr.map(all, (s): Name => s.name)

/** The strategy with this name. */
export const named = (name: Name): Strategy => all.find((s) => s.name === name)!
