/**
 * Dispatch: every stream is a fiber running its tasks one after another; a task starts when
 * the tasks it depends on (in any stream) have settled and an agent slot is free. At most
 * `maxParallel` tasks hold a slot at once. A stream's failure never loses another's results.
 * Each task's result is a durable step (`stream/<s>/task/<t>[/retry/<r>]`); a stream's
 * worktree exists only while one of its tasks is at work.
 *
 * @since 0.1.0
 */
import { Cause, DateTime, Deferred, Effect, type Schedule } from "effect"
import * as Agent from "./Agent.js"
import * as AgentSlots from "./AgentSlots.js"
import type * as ExecutionPlan from "./ExecutionPlan.js"
import type * as Plan from "./Plan.js"
import * as Progress from "./Progress.js"
import * as ProviderLimits from "./ProviderLimits.js"
import * as QualityGate from "./QualityGate.js"
import * as Review from "./Review.js"
import * as RunReport from "./RunReport.js"
import * as RunState from "./RunState.js"
import * as Steps from "./Steps.js"
import * as Workspace from "./Workspace.js"

export interface DispatchInput {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly execution: ExecutionPlan.ExecutionPlan
  readonly reviewRetry?: Schedule.Schedule<unknown, Review.ReviewFailed>
  /** Rounds of tasks a person asked to run again, oldest first. */
  readonly retries?: ReadonlyArray<Retry>
  /** Every stream keeps its worktree once made (`--keep-worktrees`): none is given back. */
  readonly keepWorktrees?: boolean
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
  readonly results: ReadonlyArray<RunReport.TaskResult>
}

/** What dispatch did: every stream's tasks, and the first thing that halted work, if any did. */
export interface DispatchOutcome {
  readonly streams: ReadonlyArray<StreamOutcome>
  /** Set when a task's outcome halted its stream or the run: the work is not integrated. */
  readonly halted: string | undefined
}

/**
 * The plan's gate-failure policy applied to one task's result: whether it stops the rest of
 * its stream, or the whole run. The one place this policy is computed.
 */
export const haltOf = (plan: Plan.Plan, result: RunReport.TaskResult): { readonly stream?: string; readonly run?: string } => {
  if (result.status !== "needs-review" && result.status !== "failed") return {}
  const why = `task ${result.taskId} ${result.status}`
  if (result.status === "failed") return { stream: why }
  if (plan.onGateFailure === "fail-run") return { stream: why, run: `${why} (onGateFailure: fail-run)` }
  if (plan.onGateFailure === "halt-stream") return { stream: why }
  return {}
}

/** Carries a usage limit out of a stream's fiber past the handler that turns defects into task results. */
class UsageLimitStop {
  constructor(readonly error: Agent.UsageLimitReached) {}
}

const usageLimitIn = (cause: Cause.Cause<unknown>): Agent.UsageLimitReached | undefined => {
  for (const defect of Cause.defects(cause)) if (defect instanceof UsageLimitStop) return defect.error
  return undefined
}

const now = DateTime.now.pipe(Effect.map(DateTime.formatIso))

const summaryOf = (attempts: ReadonlyArray<RunReport.AttemptRecord>) => attempts.at(-1)?.summary ?? ""

/** Changed files of a task: every file its attempts changed. */
const changedFilesOf = (result: RunReport.TaskResult): ReadonlyArray<string> =>
  [...new Set(result.attempts.flatMap((a) => a.changedFiles))].sort()

/**
 * Runs every stream. Problems become task results; only a provider's usage limit stops it
 * (`UsageLimitReached`): nothing more is dispatched, agents at work are stopped, and the run
 * can be resumed once the limit resets.
 */
export const run = (input: DispatchInput) =>
  Effect.gen(function*() {
    const workspace = yield* Workspace.Workspace
    const reviewer = yield* Review.Reviewer
    const progress = yield* Progress.Progress
    const registry = yield* Agent.AgentRegistry
    const steps = yield* Steps.Steps
    const { execution, plan } = input
    const slots = yield* AgentSlots.make(plan.maxParallel)
    const limits = yield* ProviderLimits.make(plan.limits, plan.maxParallel)
    const reviewRetry = input.reviewRetry ?? QualityGate.defaultReviewRetry
    // The latest round each task is in, and the note a person gave it.
    const rounds = new Map<string, Retry>()
    for (const retry of input.retries ?? []) for (const t of retry.tasks) rounds.set(t, retry)

    const settledOf = new Map<string, Deferred.Deferred<RunReport.TaskResult>>()
    // The stream head each task settled at: what a dependent task brings into its own stream.
    const settledAt = new Map<string, string>()
    for (const id of plan.tasks.keys()) settledOf.set(id, yield* Deferred.make<RunReport.TaskResult>())
    let haltedBy: string | undefined
    let firstHalt: string | undefined

    // Stream checkouts: a stream opens its worktree when one of its tasks gets an agent slot
    // and keeps it while it waits (no churn: reopening a checkout of a large repository costs
    // seconds), unless a stream about to work needs room. Then the checkout idle longest is
    // given back, so the run holds at most `maxParallel` stream checkouts (plus the integration),
    // whatever its number of streams. Streams at work are never evicted: they hold slots, and
    // there are no more slots than room.
    const budget = plan.maxParallel
    const checkouts = new Map<string, { busy: boolean; since: number }>()
    const checkoutLock = yield* Effect.makeSemaphore(1)
    let tick = 0
    const closeCheckout = (stream: string, keep: boolean) =>
      Effect.suspend(() =>
        !checkouts.has(stream)
          ? Effect.void
          : Effect.tap(workspace.closeStream(stream, { keep }), () => checkouts.delete(stream))
      )
    /** Takes the stream's checkout for a task (opening it, making room if needed); true when it was opened now. */
    const takeCheckout = (stream: string) =>
      checkoutLock.withPermits(1)(Effect.gen(function*() {
        const held = checkouts.get(stream)
        if (held !== undefined) {
          held.busy = true
          return false
        }
        while (checkouts.size >= budget) {
          const idle = [...checkouts.entries()].filter(([, c]) => !c.busy).sort(([, a], [, b]) => a.since - b.since)[0]
          if (idle === undefined) break
          yield* closeCheckout(idle[0], input.keepWorktrees === true)
        }
        yield* workspace.openStream(stream)
        checkouts.set(stream, { busy: true, since: tick++ })
        return true
      }))
    /** The task is done with the checkout; the stream keeps it until room is needed or it finishes. */
    const idleCheckout = (stream: string) =>
      Effect.sync(() => {
        const held = checkouts.get(stream)
        if (held !== undefined) {
          held.busy = false
          held.since = tick++
        }
      })

    const skipped = (task: Plan.Task, reason: string) =>
      new RunReport.TaskResult({
        taskId: task.id,
        title: task.title,
        result: "",
        quality: null,
        qualityIterations: 0,
        status: "skipped",
        attempts: [],
        error: reason,
        durationMs: 0
      })

    const runTask = (
      stream: Plan.PlannedStream,
      agent: Agent.Service,
      task: Plan.Task,
      at: { readonly key: string; readonly round: number; readonly note: string | undefined; readonly recover: boolean },
      earlier: ReadonlyArray<Agent.EarlierResult>,
      broughtIn: ReadonlyArray<Agent.BroughtIn>
    ) =>
      Effect.gen(function*() {
        const started = Date.now()
        const outcome = yield* QualityGate.run({
          runId: input.runId,
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
        }, { steps, workspace, reviewer, progress, limits }).pipe(
          // A usage limit is not the task's failure: it stops the run, resumable.
          Effect.catchAll((failure) =>
            failure.error._tag === "UsageLimitReached" ? Effect.die(new UsageLimitStop(failure.error)) : Effect.fail(failure)
          ),
          Effect.either
        )
        const attempts = outcome._tag === "Right" ? outcome.right.attempts : outcome.left.attempts
        const last = attempts.at(-1)?.review ?? null
        const status: RunReport.TaskStatus = outcome._tag === "Left"
          ? "failed"
          : outcome.right.passed
          ? "completed"
          : "needs-review"
        return new RunReport.TaskResult({
          taskId: task.id,
          title: task.title,
          result: summaryOf(attempts),
          quality: last,
          qualityIterations: Math.max(0, attempts.length - 1),
          status,
          attempts,
          ...(outcome._tag === "Left" ? { error: outcome.left.error.message } : {}),
          durationMs: Date.now() - started
          // Built from typed values, so not validated again: with classes among its fields,
          // Schema compiles a fresh validator on every construction (~120 µs a task).
        }, true)
      })

    const runStream = (stream: Plan.PlannedStream) =>
      Effect.gen(function*() {
        const agent = registry.forStream(stream)
        yield* progress.publish({ _tag: "StreamStarted", at: yield* now, stream: stream.name })
        const results: Array<RunReport.TaskResult> = []
        // What each task is told of the ones before it, built once per result.
        const earlierResults: Array<Agent.EarlierResult> = []
        let haltedStream: string | undefined
        // The stream's worktree: taken when one of its tasks gets an agent slot, given back when
        // its last task has settled (or earlier, when another stream needs the room).
        const closeTree = (keep: boolean) => checkoutLock.withPermits(1)(closeCheckout(stream.name, keep))
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
            const blocking = deps.find((d) => d.status === "failed" || d.status === "skipped")
            let result: RunReport.TaskResult
            if (haltedBy !== undefined) result = skipped(task, `not started: ${haltedBy}`)
            else if (haltedStream !== undefined) result = skipped(task, `not started: ${haltedStream}`)
            else if (blocking !== undefined) {
              result = skipped(task, `not started: dependency ${blocking.taskId} ${blocking.status}`)
            } else {
              const earlier = earlierResults.slice()
              const broughtIn = deps.filter((d) => plan.streamOf.get(d.taskId) !== stream.name).map((d) => ({
                taskId: d.taskId,
                title: d.title,
                stream: plan.streamOf.get(d.taskId)!,
                summary: d.result,
                changedFiles: changedFilesOf(d)
              }))
              const priority = [-(execution.criticalPath.get(task.id) ?? 1), stream.rank, stream.name]
              yield* progress.publish({ _tag: "TaskWaiting", at: yield* now, stream: stream.name, taskId: task.id, for: "slot", on: [] })
              result = yield* slots.withSlot(priority)(
                Effect.gen(function*() {
                  const startedAt = yield* now
                  yield* steps.record(RunState.keys.taskStarted(key), RunState.TaskStarted, new RunState.TaskStarted({ stream: stream.name, taskId: task.id, round, at: startedAt }))
                  yield* progress.publish({ _tag: "TaskStarted", at: startedAt, stream: stream.name, taskId: task.id, round })
                  // The run may have been halted (fail-run) while this task waited for a slot.
                  if (haltedBy !== undefined) return skipped(task, `not started: ${haltedBy}`)
                  const opened = yield* takeCheckout(stream.name)
                  // A task sees the work of the tasks it depends on in other streams.
                  const absorbed = yield* Effect.forEach(deps, (dep) => {
                    const from = plan.streamOf.get(dep.taskId)!
                    const at = settledAt.get(dep.taskId)
                    return from === stream.name || at === undefined
                      ? Effect.void
                      : Effect.asVoid(workspace.absorb(stream.name, at, `${dep.taskId} from stream ${from}`))
                  }, { discard: true }).pipe(Effect.either)
                  if (absorbed._tag === "Left") return new RunReport.TaskResult({ ...skipped(task, absorbed.left.message), status: "failed" })
                  return yield* runTask(stream, agent, task, { key, round, note: retry?.note, recover: opened }, earlier, broughtIn)
                }).pipe(Effect.ensuring(idleCheckout(stream.name)))
              )
            }
            const head = yield* workspace.head(Workspace.streamLocation(stream.name))
            return new RunState.Settled({ stream: stream.name, round, result, head })
          })
          const settled = yield* steps.step(key, RunState.Settled, settle)
          const result = new RunReport.TaskResult({ ...settled.result, title: task.title }, true)
          if (settled.head !== null) settledAt.set(task.id, settled.head)
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
          earlierResults.push({
            taskId: result.taskId,
            title: result.title,
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
        yield* progress.publish({ _tag: "StreamFinished", at: yield* now, stream: stream.name })
        return { stream, agent: agent.name, results } satisfies StreamOutcome
      }).pipe(
        Effect.scoped,
        // A defect in one stream must not lose the others: record it on its unsettled tasks.
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) || usageLimitIn(cause) !== undefined ? Effect.failCause(cause) : Effect.gen(function*() {
            const message = Cause.pretty(cause).split("\n")[0] ?? "stream failed"
            const results: Array<RunReport.TaskResult> = []
            for (const task of stream.tasks) {
              const deferred = settledOf.get(task.id)!
              const existing = yield* Deferred.poll(deferred)
              if (existing._tag === "Some") results.push(yield* existing.value)
              else {
                const failed = new RunReport.TaskResult({ ...skipped(task, message), status: "failed" })
                yield* Deferred.succeed(deferred, failed)
                results.push(failed)
              }
            }
            firstHalt ??= `stream ${stream.name} failed: ${message}`
            return { stream, agent: "unknown", results } satisfies StreamOutcome
          })
        )
      )

    // Every stream is its own fiber; the agent slots, not the fiber count, cap the work.
    // A usage limit in one stream interrupts the others: their attempts are cut off and run
    // again on resume, as after a crash.
    const streams = yield* Effect.forEach(plan.streams, runStream, { concurrency: "unbounded" }).pipe(
      Effect.catchAllCause((cause): Effect.Effect<never, Agent.UsageLimitReached | Workspace.WorkspaceError> => {
        const limit = usageLimitIn(cause)
        return limit === undefined ? Effect.failCause(cause) : Effect.fail(limit)
      })
    )
    return { streams, halted: firstHalt ?? haltedBy } satisfies DispatchOutcome
  })
