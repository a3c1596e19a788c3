/**
 * Dispatch: every stream is a fiber running its tasks one after another; a task starts when
 * the tasks it depends on (in any stream) have settled and an agent slot is free. At most
 * `maxParallel` tasks hold a slot at once. A stream's failure never loses another's results.
 *
 * @since 0.1.0
 */
import { Cause, DateTime, Deferred, Effect, Schedule } from "effect"
import * as Agent from "./Agent.js"
import * as AgentSlots from "./AgentSlots.js"
import type * as ExecutionPlan from "./ExecutionPlan.js"
import type * as Plan from "./Plan.js"
import * as Progress from "./Progress.js"
import * as ProviderLimits from "./ProviderLimits.js"
import * as QualityGate from "./QualityGate.js"
import * as Review from "./Review.js"
import * as RunReport from "./RunReport.js"
import * as Workspace from "./Workspace.js"

export interface DispatchInput {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly execution: ExecutionPlan.ExecutionPlan
  readonly reviewRetry?: Schedule.Schedule<unknown, Review.ReviewFailed>
  /** Results already settled (a resumed run does not run these again). */
  readonly settled?: ReadonlyMap<string, RunReport.TaskResult>
  /** Attempts recorded for tasks that had not settled. */
  readonly recorded?: ReadonlyMap<string, ReadonlyArray<RunReport.AttemptRecord>>
  /** Attempts committed but not reviewed (reviewed, not re-run). */
  readonly pending?: ReadonlyMap<string, QualityGate.GateInput["pending"] & {}>
  /** Attempts cut off before they were recorded: task id → attempt number. */
  readonly inFlight?: ReadonlyMap<string, number>
  /** Stream heads of settled tasks (what dependents bring in). */
  readonly settledAt?: ReadonlyMap<string, string>
  /** The latest session each unsettled task's agent noted (continued by its next attempt). */
  readonly sessions?: ReadonlyMap<string, string>
}

export interface StreamOutcome {
  readonly stream: Plan.PlannedStream
  readonly agent: string
  readonly results: ReadonlyArray<RunReport.TaskResult>
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
    const { execution, plan } = input
    const slots = yield* AgentSlots.make(plan.maxParallel)
    const limits = yield* ProviderLimits.make(plan.limits, plan.maxParallel)
    const reviewRetry = input.reviewRetry ?? QualityGate.defaultReviewRetry

    const settledOf = new Map<string, Deferred.Deferred<RunReport.TaskResult>>()
    // The stream head each task settled at: what a dependent task brings into its own stream.
    const settledAt = new Map<string, string>(input.settledAt ?? [])
    for (const id of plan.tasks.keys()) settledOf.set(id, yield* Deferred.make<RunReport.TaskResult>())
    let haltedBy: string | undefined

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
      earlier: ReadonlyArray<Agent.EarlierResult>,
      broughtIn: ReadonlyArray<Agent.BroughtIn>
    ) =>
      Effect.gen(function*() {
        const started = Date.now()
        // An attempt cut off by a crash: if its commit made it into git it is reviewed,
        // otherwise its half-done changes are dropped and it runs again.
        let pending = input.pending?.get(task.id)
        const cutOff = input.inFlight?.get(task.id)
        if (pending === undefined && cutOff !== undefined) {
          const found = yield* workspace.findAttempt(stream.name, { taskId: task.id, attempt: cutOff })
          if (found !== undefined) {
            pending = { attempt: cutOff, startedAt: DateTime.formatIso(yield* DateTime.now), change: found, summary: "(recovered from git after a crash)" }
            yield* progress.publish({
              _tag: "AttemptFinished",
              at: pending.startedAt,
              stream: stream.name,
              taskId: task.id,
              attempt: cutOff,
              commit: found.commit,
              files: found.files,
              summary: pending.summary
            })
          } else yield* workspace.discard(stream.name)
        }
        const outcome = yield* QualityGate.run({
          runId: input.runId,
          plan,
          stream,
          task,
          agent,
          earlier,
          broughtIn,
          session: input.sessions?.get(task.id),
          reviewRetry,
          ...(input.recorded?.has(task.id) ? { recorded: input.recorded.get(task.id)! } : {}),
          ...(pending !== undefined ? { pending } : {})
        }, { workspace, reviewer, progress, limits }).pipe(
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
        for (const task of stream.tasks) {
          const done = input.settled?.get(task.id)
          let result: RunReport.TaskResult
          if (done !== undefined) {
            result = new RunReport.TaskResult({ ...done, title: task.title })
          } else {
            // Wait for cross-stream dependencies without holding an agent slot.
            const deps = yield* Effect.forEach(plan.dependsOn.get(task.id) ?? [], (d) => Deferred.await(settledOf.get(d)!))
            const blocking = deps.find((d) => d.status === "failed" || d.status === "skipped")
            if (haltedBy !== undefined) result = skipped(task, `not started: ${haltedBy}`)
            else if (haltedStream !== undefined) result = skipped(task, `not started: ${haltedStream}`)
            else if (blocking !== undefined) {
              result = skipped(task, `not started: dependency ${blocking.taskId} ${blocking.status}`)
            } else {
              // A task sees the work of the tasks it depends on in other streams.
              const absorbed = yield* Effect.forEach(deps, (dep) => {
                const from = plan.streamOf.get(dep.taskId)!
                const at = settledAt.get(dep.taskId)
                return from === stream.name || at === undefined
                  ? Effect.void
                  : Effect.asVoid(workspace.absorb(stream.name, at, `${dep.taskId} from stream ${from}`))
              }, { discard: true }).pipe(Effect.either)
              const earlier = earlierResults.slice()
              const broughtIn = deps.filter((d) => plan.streamOf.get(d.taskId) !== stream.name).map((d) => ({
                taskId: d.taskId,
                title: d.title,
                stream: plan.streamOf.get(d.taskId)!,
                summary: d.result,
                changedFiles: changedFilesOf(d)
              }))
              const priority = [-(execution.criticalPath.get(task.id) ?? 1), stream.rank, stream.name]
              result = absorbed._tag === "Left"
                ? new RunReport.TaskResult({ ...skipped(task, absorbed.left.message), status: "failed" })
                : yield* slots.withSlot(priority)(
                  // The run may have been halted (fail-run) while this task waited for a slot.
                  Effect.suspend(() =>
                    haltedBy !== undefined
                      ? Effect.succeed(skipped(task, `not started: ${haltedBy}`))
                      : runTask(stream, agent, task, earlier, broughtIn)
                  )
                )
            }
            settledAt.set(task.id, yield* workspace.head(Workspace.streamLocation(stream.name)))
            yield* progress.publish({
              _tag: "TaskSettled",
              at: yield* now,
              stream: stream.name,
              taskId: task.id,
              status: result.status,
              score: result.quality?.score ?? null,
              error: result.error ?? null,
              durationMs: result.durationMs,
              head: settledAt.get(task.id) ?? null
            })
          }
          results.push(result)
          earlierResults.push({
            taskId: result.taskId,
            title: result.title,
            status: result.status,
            summary: result.result,
            changedFiles: changedFilesOf(result)
          })
          yield* Deferred.succeed(settledOf.get(task.id)!, result)
          if (result.status === "needs-review" || result.status === "failed") {
            const why = `task ${task.id} ${result.status}`
            if (result.status === "failed" || plan.onGateFailure === "halt-stream") {
              haltedStream ??= `${why} earlier in stream ${stream.name}`
            }
            if (plan.onGateFailure === "fail-run" && result.status === "needs-review") {
              haltedBy ??= `${why} (onGateFailure: fail-run)`
            }
          }
        }
        yield* progress.publish({ _tag: "StreamFinished", at: yield* now, stream: stream.name })
        return { stream, agent: agent.name, results } satisfies StreamOutcome
      }).pipe(
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
            return { stream, agent: "unknown", results } satisfies StreamOutcome
          })
        )
      )

    // Every stream is its own fiber; the agent slots, not the fiber count, cap the work.
    // A usage limit in one stream interrupts the others: their attempts are cut off and run
    // again on resume, as after a crash.
    return yield* Effect.forEach(plan.streams, runStream, { concurrency: "unbounded" }).pipe(
      Effect.catchAllCause((cause): Effect.Effect<never, Agent.UsageLimitReached | Workspace.WorkspaceError> => {
        const limit = usageLimitIn(cause)
        return limit === undefined ? Effect.failCause(cause) : Effect.fail(limit)
      })
    )
  })
