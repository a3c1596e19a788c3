/**
 * Dispatch: every stream is a fiber running its tasks one after another; a task starts when
 * the tasks it depends on (in any stream) have settled and an agent slot is free. At most
 * `maxParallel` tasks hold a slot at once. A stream's failure never loses another's results.
 * Each task's result is a durable step (`stream/<s>/task/<t>[/retry/<r>]`); a stream's
 * worktree exists only while one of its tasks is at work.
 *
 * @since 0.1.0
 */
import { Cause, Clock, DateTime, Deferred, Effect, Either, type Schedule } from "effect"
import * as Agent from "../ports/Agent.js"
import * as AgentSlots from "./AgentSlots.js"
import * as Budget from "./Budget.js"
import * as ConflictResolver from "../ports/ConflictResolver.js"
import * as ConflictStrategy from "./ConflictStrategy.js"
import * as Conflicts from "./Conflicts.js"
import type * as ExecutionPlan from "./ExecutionPlan.js"
import type * as Plan from "../run/Plan.js"
import * as Progress from "../ports/Progress.js"
import * as ProviderLimits from "./ProviderLimits.js"
import * as QualityGate from "./QualityGate.js"
import * as Review from "../ports/Review.js"
import * as RunState from "../run/RunState.js"
import * as Steps from "../ports/Steps.js"
import * as Environment from "./Environment.js"
import * as TaskExecutor from "./TaskExecutor.js"
import * as Workspace from "../ports/Workspace.js"

export interface DispatchInput {
  readonly runId: string
  /** The run's workspace: each task holds its stream's checkout from it while it works. */
  readonly workspace: Workspace.Run
  readonly plan: Plan.Plan
  readonly execution: ExecutionPlan.ExecutionPlan
  readonly reviewRetry?: Schedule.Schedule<unknown, Review.ReviewFailed>
  /** Rounds of tasks a person asked to run again, oldest first. */
  readonly retries?: ReadonlyArray<Retry>
  /** Every stream keeps its worktree once made (`--keep-worktrees`): none is given back. */
  readonly keepWorktrees?: boolean
  /** What the run's attempts spent before (from its journal, per `Budget.attemptId`), counted against its budget. */
  readonly spent?: ReadonlyMap<string, Budget.Spend>
  /** Which execution of the run this is, for a `TaskExecutor` (default: the run id). */
  readonly executionId?: string
  /** How each checkout is made ready as it is opened (`environment:`; default: as it is). */
  readonly environments?: Environment.Environments
}

/** A retry round: these tasks run again, each with three fresh gate runs and the note. */
export interface Retry {
  readonly round: number
  readonly tasks: ReadonlyArray<string>
  readonly note?: string | undefined
}

/** What dispatch did with one stream. */
export interface StreamOutcome {
  readonly stream: Plan.PlannedStream
  readonly agent: string
  /** Each task's result in its latest round, as journaled. */
  readonly results: ReadonlyArray<RunState.TaskRecord>
  /** Each retried task's latest round and its earlier rounds' results as journaled, oldest first (the report shows every attempt once). */
  readonly rounds: ReadonlyMap<string, TaskRounds>
}

/** A task run again by `braid retry`: the round of its latest result, and its results before. */
export interface TaskRounds {
  readonly round: number
  readonly earlier: ReadonlyArray<RunState.Settled>
}

/** What dispatch did: every stream's tasks, and the first thing that halted work, if any did. */
export interface DispatchOutcome {
  readonly streams: ReadonlyArray<StreamOutcome>
  /** Each stream's head as the journal holds it (its latest settled task's): what integrates. */
  readonly heads: ReadonlyMap<string, string>
  /** What was found in the repository that braid did not record (a moved or deleted branch), and put right. */
  readonly integrity: ReadonlyArray<string>
  /** Set when a task's outcome halted its stream or the run: the work is not integrated. */
  readonly halted: string | undefined
}

/**
 * The plan's gate-failure policy applied to one task's result: whether it stops the rest of
 * its stream, or the whole run. The one place this policy is computed.
 */
export const haltOf = (plan: Plan.Plan, result: RunState.TaskRecord): { readonly stream?: string; readonly run?: string } => {
  if (result.status !== "needs-review" && result.status !== "failed") return {}
  const why = `task ${result.taskId} ${result.status}`
  if (result.status === "failed") return { stream: why }
  if (plan.onGateFailure === "fail-run") return { stream: why, run: `${why} (onGateFailure: fail-run)` }
  if (plan.onGateFailure === "halt-stream") return { stream: why }
  return {}
}

/** A conflict bringing a dependency's work into a stream that the strategy did not settle: the task fails with it. */
class DependencyConflict {
  readonly _tag = "DependencyConflict"
  constructor(readonly conflict: RunState.ConflictRecord) {}
  get message(): string {
    return this.conflict.detail
  }
}

/** What stops a whole run, resumable: a provider's usage limit, the run's budget, or a checkout's failed setup. */
type RunStopError = Agent.UsageLimitReached | Budget.BudgetReached | Environment.SetupFailed

/**
 * Carries what stops the run out of a stream's fiber past the handler that turns defects into
 * task results; as a defect it interrupts the other streams (their attempts are cut off).
 */
class RunStop {
  constructor(readonly error: RunStopError) {}
}

const stopIn = (cause: Cause.Cause<unknown>): RunStopError | undefined => {
  for (const defect of Cause.defects(cause)) if (defect instanceof RunStop) return defect.error
  return undefined
}

/** The run's budget is reached (`onExceeded: finish`): the stream starts nothing more, and its unsettled tasks stay unsettled. */
class Paused {
  readonly _tag = "Paused"
  constructor(readonly error: Budget.BudgetReached) {}
}

/**
 * What stops the run from inside a task, wherever the task's work was done: a usage limit, or
 * the budget with `onExceeded: stop`, stops it at once (`RunStop`); the budget with `finish`
 * lets it finish what is at work (`Paused`).
 */
const stopping = (plan: Plan.Plan, error: RunStopError): Effect.Effect<never, Paused> =>
  error._tag !== "BudgetReached" || plan.budget?.onExceeded === "stop" ? Effect.die(new RunStop(error)) : Effect.fail(new Paused(error))

const now = DateTime.now.pipe(Effect.map(DateTime.formatIso))

/** Changed files of a task: every file its attempts changed. */
const changedFilesOf = (result: RunState.TaskRecord): ReadonlyArray<string> =>
  [...new Set(result.attempts.flatMap((a) => a.changedFiles))].sort()

/** A task that did not start (`failed`: it could not), and why. */
const skipped = (
  task: Plan.Task,
  reason: string,
  status: "skipped" | "failed" = "skipped",
  conflicts?: ReadonlyArray<RunState.ConflictRecord>
) => RunState.taskRecord({ task, attempts: [], status, error: reason, durationMs: 0, conflicts })

/** What doing a task's work needs, wherever it is done (here, or on a runner of a cluster). */
interface WorkContext {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly reviewRetry: Schedule.Schedule<unknown, Review.ReviewFailed>
  readonly tracker: Budget.Tracker
  readonly limits: ProviderLimits.Service
  readonly workspace: Workspace.Run
  readonly reviewer: Review.Service
  readonly progress: Progress.Service
  readonly steps: Steps.Service
  readonly resolver: ConflictResolver.Service
}

/** Where a task's attempts are: its step key, its retry round and note, whether to look for an attempt a crash cut off. */
interface TaskAt {
  readonly key: string
  readonly round: number
  readonly note: string | undefined
  readonly recover: boolean
}

/** A dependency in another stream whose work a task brings in first: its stream's head when it settled. */
interface DependencyHead {
  readonly taskId: string
  readonly from: string
  readonly head: string
}

/**
 * A task's work, in the stream's open worktree: bring in the dependencies' work (a conflict
 * settled by the run's strategy), then run the quality gate. The one body of a task, whether
 * dispatch runs it here or a runner of a cluster does.
 */
const makeWork = (ctx: WorkContext) => {
  const { limits, plan, progress, resolver, reviewRetry, reviewer, runId, steps, tracker, workspace } = ctx
  /**
   * Brings a dependency's work (its stream's head when it settled) into the task's stream. A
   * conflict is settled by the run's strategy (`ConflictStrategy.settleInStream`); a resolver's
   * resolution is a durable step (`<task>/absorb/<dependency>/resolve`). Unless it is resolved,
   * the task fails with the conflict.
   */
  const bringIn = (checkout: Workspace.Checkout, stream: Plan.PlannedStream, depId: string, from: string, commit: string, taskKey: string) =>
    Effect.gen(function*() {
      yield* Effect.annotateCurrentSpan({ "braid.stream": stream.name, "braid.dependency": depId, "braid.from": from })
      const reason = `${depId} from stream ${from}`
      const outcome = yield* checkout.absorb(commit, reason, "none")
      if (outcome._tag === "Absorbed") return undefined
      const paths = outcome.paths
      const fromStream = plan.streams.find((s) => s.name === from)!
      const streams = [stream.name, from]
      const record = (settlement: ConflictStrategy.Settlement) =>
        new RunState.ConflictRecord({
          streams,
          paths: [...paths],
          strategy: plan.conflictStrategy,
          outcome: settlement.outcome,
          commit: settlement.commit,
          detail: settlement.detail,
          kind: "dependency",
          ...(settlement.resolver !== undefined ? { resolver: settlement.resolver } : {}),
          ...(settlement.said !== undefined ? { said: settlement.said } : {}),
          ...(settlement.agent !== undefined ? { agent: settlement.agent } : {})
        })
      const settledAs = (c: RunState.ConflictRecord) =>
        Effect.flatMap(now, (time) =>
          progress.publish({ _tag: "ConflictSettled", at: time, streams: c.streams, paths: c.paths, strategy: c.strategy, outcome: c.outcome, commit: c.commit, detail: c.detail }))
      yield* progress.publish({ _tag: "ConflictDetected", at: yield* now, streams, paths: [...paths], kind: "textual" })

      const key = RunState.keys.absorbResolution(taskKey, depId)
      const settlement = yield* ConflictStrategy.named(plan.conflictStrategy).settleInStream({
        stream,
        from: fromStream,
        commit,
        paths,
        conflicted: `bringing ${reason} into stream "${stream.name}" conflicts in ${paths.join(", ")}`,
        resolverName: resolver.name,
        discard: checkout.discard,
        keep: (side) => Effect.map(checkout.absorb(commit, reason, side), (merged) => merged._tag === "Absorbed" ? merged.commit : null),
        resolve: Effect.scoped(Effect.gen(function*() {
          // The worktree is the resolver's meanwhile: other streams' confinement checks leave it alone.
          yield* checkout.attempting
          const resolved = yield* Conflicts.resolveDurably({
            key,
            resolver,
            steps,
            request: {
              runId,
              stream,
              against: [fromStream],
              paths,
              files: checkout.files,
              kind: "dependency",
              intents: yield* ConflictResolver.intentsOf(workspace, [stream, fromStream], paths),
              verify: plan.verify,
              key
            }
          })
          // Nothing the resolver wrote outside the stream's worktree may go unnoticed.
          const strays = yield* checkout.strays.pipe(Effect.orElseSucceed(() => [] as Workspace.Strays))
          if (strays.length > 0) {
            return yield* new ConflictResolver.ResolutionFailed({
              paths: [...paths],
              message: `the resolver changed files outside stream "${stream.name}"'s worktree: ${strays.map((f) => `${f.where}: ${f.paths.join(", ")}`).join("; ")}`,
              said: resolved.summary,
              ...(resolved.agent !== null ? { agent: resolved.agent } : {})
            })
          }
          const head = yield* checkout.concludeAbsorb(reason).pipe(
            Effect.mapError((e) =>
              new ConflictResolver.ResolutionFailed({ paths: [...paths], message: e.message, said: resolved.summary, ...(resolved.agent !== null ? { agent: resolved.agent } : {}) })
            )
          )
          return Either.right({ commit: head, resolved })
        })).pipe(Effect.catchTag("ResolutionFailed", (f) => Effect.succeed(Either.left(f))))
      })
      const c = record(settlement)
      yield* settledAs(c)
      if (settlement.outcome !== "resolved") return yield* Effect.fail(new DependencyConflict(c))
      return c
    }).pipe(Effect.withSpan("Dispatch.bringIn"))

  const runTask = (
    checkout: Workspace.Checkout,
    stream: Plan.PlannedStream,
    agent: Agent.Service,
    task: Plan.Task,
    at: TaskAt,
    earlier: ReadonlyArray<Agent.EarlierResult>,
    broughtIn: ReadonlyArray<Agent.BroughtIn>,
    conflicts: ReadonlyArray<RunState.ConflictRecord>
  ) =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const outcome = yield* QualityGate.run({
        runId,
        plan,
        stream,
        task,
        agent,
        earlier,
        broughtIn,
        userNote: at.note,
        reviewRetry,
        key: at.key,
        round: at.round,
        recover: at.recover
      }, { steps, checkout, reviewer, progress, limits, budget: tracker }).pipe(Effect.either)
      // A usage limit or the run's budget is not the task's failure: it stops or pauses the run, resumable.
      if (outcome._tag === "Left") {
        const error = outcome.left.error
        if (error._tag === "UsageLimitReached" || error._tag === "BudgetReached") return yield* stopping(plan, error)
      }
      const failure = outcome._tag === "Left" ? outcome.left : undefined
      const attempts = outcome._tag === "Right" ? outcome.right.attempts : outcome.left.attempts
      const status: RunState.TaskStatus = outcome._tag === "Left"
        ? "failed"
        : outcome.right.passed
        ? "completed"
        : "needs-review"
      return RunState.taskRecord({
        task,
        attempts,
        status,
        error: failure?.error.message,
        durationMs: (yield* Clock.currentTimeMillis) - started,
        conflicts
      })
    })

  const perform = (
    checkout: Workspace.Checkout,
    stream: Plan.PlannedStream,
    agent: Agent.Service,
    task: Plan.Task,
    at: TaskAt,
    earlier: ReadonlyArray<Agent.EarlierResult>,
    broughtIn: ReadonlyArray<Agent.BroughtIn>,
    deps: ReadonlyArray<DependencyHead>
  ) =>
    Effect.gen(function*() {
      // A task sees the work of the tasks it depends on in other streams; a conflict
      // bringing it in is settled by the run's conflict strategy.
      const conflicts: Array<RunState.ConflictRecord> = []
      const absorbed = yield* Effect.forEach(
        deps,
        (dep) => Effect.map(bringIn(checkout, stream, dep.taskId, dep.from, dep.head, at.key), (c) => void (c !== undefined && conflicts.push(c))),
        { discard: true }
      ).pipe(Effect.either)
      if (absorbed._tag === "Left") {
        const e = absorbed.left
        if (e instanceof DependencyConflict) conflicts.push(e.conflict)
        return skipped(task, e.message, "failed", conflicts)
      }
      return yield* runTask(checkout, stream, agent, task, at, earlier, broughtIn, conflicts)
    })
  return { perform }
}

/**
 * Runs every stream. Problems become task results; only a provider's usage limit stops it
 * (`UsageLimitReached`): nothing more is dispatched, agents at work are stopped, and the run
 * can be resumed once the limit resets.
 */
export const run = Effect.fn("Dispatch.run")(
  function*(input: DispatchInput) {
    const workspace = input.workspace
    const reviewer = yield* Review.Reviewer
    const progress = yield* Progress.Progress
    const registry = yield* Agent.AgentRegistry
    const steps = yield* Steps.Steps
    const resolver = yield* ConflictResolver.ConflictResolver
    const { execution, plan } = input
    const slots = yield* AgentSlots.make(plan.maxParallel)
    const limits = yield* ProviderLimits.make(plan.limits, plan.maxParallel)
    const tracker = Budget.make(plan.budget, input.spent)
    // Set once the run's budget is reached under `onExceeded: finish`: nothing more starts.
    let paused: Budget.BudgetReached | undefined
    const pause = (error: Budget.BudgetReached) => {
      paused ??= error
    }
    const reviewRetry = input.reviewRetry ?? QualityGate.defaultReviewRetry
    const work = makeWork({ runId: input.runId, plan, reviewRetry, tracker, limits, workspace, reviewer, progress, steps, resolver })
    // A cluster run hands each task to a runner; embedded, its work is done here.
    const executor = yield* Effect.serviceOption(TaskExecutor.TaskExecutor)
    /** Settles the task on a runner; what stops the run stops it as if the work were done here. */
    const elsewhere = (
      executor: TaskExecutor.Service,
      stream: Plan.PlannedStream,
      task: Plan.Task,
      at: TaskAt,
      earlier: ReadonlyArray<Agent.EarlierResult>,
      broughtIn: ReadonlyArray<Agent.BroughtIn>,
      heads: ReadonlyArray<DependencyHead>
    ) =>
      executor.settle({
        runId: input.runId,
        execution: input.executionId ?? input.runId,
        key: at.key,
        stream: stream.name,
        taskId: task.id,
        round: at.round,
        note: at.note ?? null,
        deps: heads.map((h) => ({ taskId: h.taskId, stream: h.from, head: h.head })),
        earlier,
        broughtIn
      }).pipe(Effect.catchAll((stop) => stopping(plan, stop)))
    // The latest round each task is in, and the note a person gave it.
    const rounds = new Map<string, Retry>()
    for (const retry of input.retries ?? []) for (const t of retry.tasks) rounds.set(t, retry)
    /**
     * A retried task's earlier rounds as journaled, beside its latest: the report shows every
     * attempt the run made once, with its round, and counts their conflicts and time.
     */
    const roundsOf = (stream: string, taskId: string, round: number) =>
      Effect.gen(function*() {
        const before = [0, ...(input.retries ?? []).filter((r) => r.round < round && r.tasks.includes(taskId)).map((r) => r.round)]
        const earlier: Array<RunState.Settled> = []
        for (const r of before) {
          const settled = yield* steps.recall(RunState.keys.task(stream, taskId, r), RunState.Settled)
          if (settled._tag === "Some") earlier.push(settled.value)
        }
        return { round, earlier } satisfies TaskRounds
      })

    const settledOf = new Map<string, Deferred.Deferred<RunState.TaskRecord>>()
    // The stream head each task settled at: what a dependent task brings into its own stream.
    const settledAt = new Map<string, string>()
    // Each stream's head from its latest settled task (latest round, then latest in the stream).
    const streamHeads = new Map<string, { readonly round: number; readonly head: string }>()
    const integrity: Array<string> = []
    for (const id of plan.tasks.keys()) settledOf.set(id, yield* Deferred.make<RunState.TaskRecord>())
    // A cluster run executed again (the runner it was on died) finds tasks whose work goes on
    // on other runners: they take the run's slots back before any new task gets one, so the
    // run never has more agents at work than `maxParallel`.
    const unfinished = new Set<string>()
    if (executor._tag === "Some") {
      for (const id of plan.tasks.keys()) {
        const key = RunState.keys.task(plan.streamOf.get(id)!, id, rounds.get(id)?.round ?? 0)
        const started = yield* steps.recall(RunState.keys.taskStarted(key), RunState.TaskStarted)
        if (started._tag === "Some" && (yield* steps.recall(key, RunState.Settled))._tag === "None") unfinished.add(id)
      }
    }
    const reclaimed = yield* Deferred.make<void>()
    const reclaim = (id: string) =>
      Effect.suspend(() => unfinished.delete(id) && unfinished.size === 0 ? Deferred.succeed(reclaimed, undefined) : Effect.void)
    if (unfinished.size === 0) yield* Deferred.succeed(reclaimed, undefined)
    let haltedBy: string | undefined
    let firstHalt: string | undefined

    // Stream checkouts: a task holds its stream's checkout while it works (`Workspace.Run.checkout`):
    // the run's workspace keeps at most `maxParallel` open (prepared so by the orchestrator),
    // closing the one idle longest to make room; a stream's stays open while it waits.
    /**
     * The stream's branch back where the journal has it before a task builds on it: its last
     * journaled attempt of this task (a continued run), else the stream's last settled head. A
     * commit of the task's next attempt that a crash kept from the journal stays (the gate
     * finds it by its `Braid-Step`); anything else on the branch that braid did not record goes.
     */
    const pinStream = (stream: string, task: Plan.Task, key: string) =>
      Effect.gen(function*() {
        let expected = streamHeads.get(stream)?.head
        let next = 1
        for (;; next++) {
          const done = yield* steps.recall(RunState.keys.attempt(key, next), RunState.AttemptDone)
          if (done._tag === "None") break
          if (done.value.commit !== null) expected = done.value.commit
        }
        if (expected === undefined) return
        const found = yield* workspace.branch(stream).pin(expected, { taskId: task.id, attempt: next, step: RunState.keys.attempt(key, next) })
        if (found !== undefined) integrity.push(found)
      })
    /**
     * Holds the stream's checkout for a task until the scope closes, its branch put back where
     * the journal has it, its environment ready: a failed setup stops the run before the task
     * uses a gate run.
     */
    const environments = input.environments ?? Environment.none
    const takeCheckout = (stream: Plan.PlannedStream, task: Plan.Task, key: string) =>
      workspace.checkout(stream.name).pipe(
        Effect.tap(() => pinStream(stream.name, task, key)),
        Effect.flatMap((checkout) => environments.ready(checkout, stream)),
        Effect.catchTag("SetupFailed", (e) => Effect.die(new RunStop(e)))
      )

    const runStream = (stream: Plan.PlannedStream) =>
      Effect.gen(function*() {
        const agent = registry.forStream(stream)
        yield* Effect.annotateCurrentSpan("braid.backend", agent.name)
        yield* progress.publish({ _tag: "StreamStarted", at: yield* now, stream: stream.name })
        const results: Array<RunState.TaskRecord> = []
        const retried = new Map<string, TaskRounds>()
        // What each task is told of the ones before it, built once per result.
        const earlierResults: Array<Agent.EarlierResult> = []
        let haltedStream: string | undefined
        // The stream's worktree: taken when one of its tasks gets an agent slot, given back when
        // its last task has settled (or earlier, when another stream needs the room).
        const closeTree = (keep: boolean) => workspace.close(stream.name, { keep })
        yield* Effect.addFinalizer(() =>
          Effect.orDie(closeTree(input.keepWorktrees === true)).pipe(Effect.catchAllDefect(() => Effect.void))
        )

        for (const task of stream.tasks) {
          const retry = rounds.get(task.id)
          const round = retry?.round ?? 0
          const key = RunState.keys.task(stream.name, task.id, round)
          const settle = Effect.gen(function*() {
            // Wait for cross-stream dependencies without holding an agent slot.
            const dependsOn = plan.dependsOn.get(task.id) ?? []
            const open: Array<string> = []
            for (const d of dependsOn) if ((yield* Deferred.poll(settledOf.get(d)!))._tag === "None") open.push(d)
            if (open.length > 0) {
              yield* progress.publish({ _tag: "TaskWaiting", at: yield* now, stream: stream.name, taskId: task.id, for: "dependency", on: open })
            }
            const deps = yield* Effect.forEach(dependsOn, (d) => Deferred.await(settledOf.get(d)!))
            if (paused !== undefined) return yield* Effect.fail(new Paused(paused))
            const blocking = deps.find((d) => d.status === "failed" || d.status === "skipped")
            let result: RunState.TaskRecord
            if (haltedBy !== undefined) result = skipped(task, `not started: ${haltedBy}`)
            else if (haltedStream !== undefined) result = skipped(task, `not started: ${haltedStream}`)
            else if (blocking !== undefined) {
              result = skipped(task, `not started: dependency ${blocking.taskId} ${blocking.status}`)
            } else {
              const earlier = earlierResults.slice()
              const broughtIn = deps.filter((d) => plan.streamOf.get(d.taskId) !== stream.name).map((d) => ({
                taskId: d.taskId,
                title: plan.tasks.get(d.taskId)?.title ?? d.title,
                stream: plan.streamOf.get(d.taskId)!,
                summary: d.result,
                changedFiles: changedFilesOf(d)
              }))
              const priority = [-(execution.criticalPath.get(task.id) ?? 1), stream.rank, stream.name]
              yield* progress.publish({ _tag: "TaskWaiting", at: yield* now, stream: stream.name, taskId: task.id, for: "slot", on: [] })
              if (!unfinished.has(task.id)) yield* Deferred.await(reclaimed)
              result = yield* slots.withSlot(priority)(
                Effect.gen(function*() {
                  yield* reclaim(task.id)
                  // The run may have been halted (fail-run) or paused while this task waited for a slot.
                  if (paused !== undefined) return yield* Effect.fail(new Paused(paused))
                  if (haltedBy !== undefined) return skipped(task, `not started: ${haltedBy}`)
                  const startedAt = yield* now
                  yield* steps.record(RunState.keys.taskStarted(key), RunState.TaskStarted, new RunState.TaskStarted({ stream: stream.name, taskId: task.id, round, at: startedAt }, RunState.unchecked))
                  yield* progress.publish({ _tag: "TaskStarted", at: startedAt, stream: stream.name, taskId: task.id, round })
                  const heads = deps.flatMap((dep) => {
                    const from = plan.streamOf.get(dep.taskId)!
                    const head = settledAt.get(dep.taskId)
                    return from === stream.name || head === undefined ? [] : [{ taskId: dep.taskId, from, head }]
                  })
                  const at = { key, round, note: retry?.note, recover: false }
                  if (executor._tag === "Some") return yield* elsewhere(executor.value, stream, task, at, earlier, broughtIn, heads)
                  return yield* Effect.scoped(Effect.flatMap(
                    takeCheckout(stream, task, key),
                    (checkout) => work.perform(checkout, stream, agent, task, { ...at, recover: checkout.opened }, earlier, broughtIn, heads)
                  ))
                })
              )
            }
            const head = yield* workspace.branch(stream.name).head
            return new RunState.Settled({ stream: stream.name, round, result, head }, RunState.unchecked)
          })
          const outcome = yield* steps.step(key, RunState.Settled, Effect.ensuring(settle, reclaim(task.id))).pipe(
            Effect.tap((settled) => Effect.annotateCurrentSpan("braid.status", settled.result.status)),
            Effect.catchIf((e): e is Paused => e instanceof Paused, (e) => Effect.sync(() => void pause(e.error))),
            Effect.withSpan("Dispatch.task", { attributes: { "braid.stream": stream.name, "braid.task": task.id, "braid.round": round } })
          )
          if (outcome === undefined) {
            // Paused by the budget: this task and the stream's later ones stay unsettled (nothing
            // journaled); tasks waiting on them wake up to find the run paused.
            for (const later of stream.tasks.slice(stream.tasks.indexOf(task))) {
              yield* Deferred.succeed(settledOf.get(later.id)!, skipped(later, "not started: the run's budget is reached"))
            }
            break
          }
          const settled = outcome
          // What its attempts spent counts against the run's budget (once per attempt, replayed or not).
          const spends: Array<[string, Budget.Spend]> = []
          Budget.countSettled(round, settled.result, (id, s) => void spends.push([id, s]))
          yield* Effect.forEach(spends, ([id, s]) => tracker.spent(id, s), { discard: true })
          const result = settled.result
          if (settled.head !== null) settledAt.set(task.id, settled.head)
          if (settled.head !== null && settled.round >= (streamHeads.get(stream.name)?.round ?? -1)) {
            streamHeads.set(stream.name, { round: settled.round, head: settled.head })
          }
          yield* progress.publish({
            _tag: "TaskSettled",
            at: yield* now,
            stream: stream.name,
            taskId: task.id,
            status: result.status,
            score: result.quality?.score ?? null,
            error: result.error ?? null,
            durationMs: result.durationMs,
            head: settled.head
          })
          results.push(result)
          if (settled.round > 0) retried.set(task.id, yield* roundsOf(stream.name, task.id, settled.round))
          earlierResults.push({
            taskId: result.taskId,
            title: task.title,
            status: result.status,
            summary: result.result,
            changedFiles: changedFilesOf(result)
          })
          yield* Deferred.succeed(settledOf.get(task.id)!, result)
          const halt = haltOf(plan, result)
          if (halt.stream !== undefined) {
            haltedStream ??= `${halt.stream} earlier in stream ${stream.name}`
            firstHalt ??= halt.stream
          }
          if (halt.run !== undefined) haltedBy ??= halt.run
        }
        // A stream with a task that failed or needs review keeps its worktree for a person.
        yield* closeTree(input.keepWorktrees === true || results.some((r) => r.status === "failed" || r.status === "needs-review"))
        yield* progress.publish({ _tag: "StreamFinished", at: yield* now, stream: stream.name, started: results.some((r) => r.status !== "skipped") })
        return { stream, agent: agent.name, results, rounds: retried } satisfies StreamOutcome
      }).pipe(
        Effect.scoped,
        // A defect in one stream must not lose the others: record it on its unsettled tasks.
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) || stopIn(cause) !== undefined ? Effect.failCause(cause) : Effect.gen(function*() {
            const message = Cause.pretty(cause).split("\n")[0] ?? "stream failed"
            const results: Array<RunState.TaskRecord> = []
            for (const task of stream.tasks) {
              const deferred = settledOf.get(task.id)!
              const existing = yield* Deferred.poll(deferred)
              if (existing._tag === "Some") results.push(yield* existing.value)
              else {
                const failed = skipped(task, message, "failed")
                yield* Deferred.succeed(deferred, failed)
                results.push(failed)
              }
            }
            firstHalt ??= `stream ${stream.name} failed: ${message}`
            return { stream, agent: "unknown", results, rounds: new Map() } satisfies StreamOutcome
          })
        ),
        Effect.withSpan("Dispatch.stream", { attributes: { "braid.stream": stream.name } })
      )

    // Every stream is its own fiber; the agent slots, not the fiber count, cap the work.
    // A usage limit in one stream interrupts the others: their attempts are cut off and run
    // again on resume, as after a crash.
    const streams = yield* Effect.forEach(plan.streams, runStream, { concurrency: "unbounded" }).pipe(
      Effect.catchAllCause((cause): Effect.Effect<never, RunStopError | Workspace.WorkspaceError> => {
        const limit = stopIn(cause)
        return limit === undefined ? Effect.failCause(cause) : Effect.fail(limit)
      })
    )
    // Every stream has stopped starting work (running attempts finished): the run pauses, resumable.
    if (paused !== undefined) return yield* Effect.fail(paused)
    return {
      streams,
      halted: firstHalt ?? haltedBy,
      heads: new Map([...streamHeads].map(([name, h]) => [name, h.head])),
      integrity
    } satisfies DispatchOutcome
  }
)

/**
 * Does one task's work in this process, for a runner of a cluster run (`TaskExecutor`): the
 * stream's worktree is opened, an attempt a dying runner cut off is found again in git (or
 * run again), the dependencies' work is brought in and the gate run; the worktree is given
 * back after, whatever happens. What stops the run is its typed error.
 */
export const settleHere = (input: {
  readonly plan: Plan.Plan
  /** The run's workspace on this runner. */
  readonly workspace: Workspace.Run
  readonly request: TaskExecutor.TaskRequest
  /** What the run's attempts spent before, counted against its budget. */
  readonly spent?: ReadonlyMap<string, Budget.Spend>
  readonly reviewRetry?: Schedule.Schedule<unknown, Review.ReviewFailed>
}) =>
  Effect.gen(function*() {
    const { plan, request, workspace } = input
    const registry = yield* Agent.AgentRegistry
    const stream = plan.streams.find((s) => s.name === request.stream)
    const task = plan.tasks.get(request.taskId)
    if (stream === undefined || task === undefined) {
      return yield* Effect.dieMessage(`the run's plan has no task ${request.taskId} in stream ${request.stream}`)
    }
    const work = makeWork({
      runId: request.runId,
      plan,
      reviewRetry: input.reviewRetry ?? QualityGate.defaultReviewRetry,
      tracker: Budget.make(plan.budget, input.spent),
      limits: yield* ProviderLimits.make(plan.limits, plan.maxParallel),
      workspace,
      reviewer: yield* Review.Reviewer,
      progress: yield* Progress.Progress,
      steps: yield* Steps.Steps,
      resolver: yield* ConflictResolver.ConflictResolver
    })
    const environments = yield* Environment.make({ plan, source: workspace.source })
    const checkout = workspace.checkout(stream.name).pipe(
      Effect.flatMap((c) => environments.ready(c, stream)),
      Effect.catchTag("SetupFailed", (e) => Effect.die(new RunStop(e)))
    )
    return yield* Effect.scoped(Effect.flatMap(checkout, (checkout) =>
      work.perform(
      checkout,
      stream,
      registry.forStream(stream),
      task,
      { key: request.key, round: request.round, note: request.note ?? undefined, recover: true },
      request.earlier,
      request.broughtIn,
      request.deps.map((d) => ({ taskId: d.taskId, from: d.stream, head: d.head }))
    ))).pipe(Effect.ensuring(Effect.ignore(workspace.close(stream.name, { keep: false }))))
  }).pipe(
    Effect.catchIf((e): e is Paused => e instanceof Paused, (e) => Effect.fail(e.error)),
    Effect.catchAllDefect((defect) => defect instanceof RunStop ? Effect.fail(defect.error) : Effect.die(defect))
  )
