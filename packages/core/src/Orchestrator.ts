/**
 * The orchestrator wires the stages — dispatch, conflict detection and resolution,
 * integration verification, landing — into one run and its `RunReport`.
 *
 * @since 0.1.0
 */
import { DateTime, Effect, type Schedule } from "effect"
import * as Agent from "./Agent.js"
import * as Conflicts from "./Conflicts.js"
import type * as ConflictResolver from "./ConflictResolver.js"
import * as Dispatch from "./Dispatch.js"
import * as ExecutionPlan from "./ExecutionPlan.js"
import * as Landing from "./Landing.js"
import type * as Plan from "./Plan.js"
import * as Progress from "./Progress.js"
import type * as Replay from "./Replay.js"
import type * as Review from "./Review.js"
import * as RunReport from "./RunReport.js"
import * as Verification from "./Verification.js"
import * as Workspace from "./Workspace.js"

/** How a run is carried out (the plan says what; these say how). */
export interface RunOptions {
  /** Defaults to a timestamp plus a random suffix. */
  readonly runId?: string
  /** Advance the target after verification (default true). */
  readonly land?: boolean
  /** Keep the run's worktrees even after a successful landing (default false). */
  readonly keepWorktrees?: boolean
  /** Backoff for a failing reviewer (default: exponential from 500 ms, 4 retries). */
  readonly reviewRetry?: Schedule.Schedule<unknown, Review.ReviewFailed>
  /** Continue a run from its journal: settled work is not done again. */
  readonly resume?: Replay.State
}

/** Every error that stops a run before it can produce a report. */
export type RunError =
  | Agent.AgentUnavailable
  | Agent.UsageLimitReached
  | Workspace.WorkspaceError
  | Conflicts.ConflictError
  | Verification.VerificationUnavailable

/** Every service a run needs. */
export type RunServices =
  | Workspace.Workspace
  | Agent.AgentRegistry
  | Review.Reviewer
  | ConflictResolver.ConflictResolver
  | Progress.Progress

/** A fresh run id: sortable by time, unique enough for one repository. */
export const makeRunId = (date: Date = new Date()): string =>
  `${date.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}-${Math.random().toString(36).slice(2, 6)}`

const iso = DateTime.now.pipe(Effect.map(DateTime.formatIso))

/** Runs a plan to its report. */
export const run = (plan: Plan.Plan, options: RunOptions = {}): Effect.Effect<RunReport.RunReport, RunError, RunServices> =>
  Effect.gen(function*() {
    const registry = yield* Agent.AgentRegistry
    const workspace = yield* Workspace.Workspace
    const progress = yield* Progress.Progress
    const resume = options.resume
    const runId = options.runId ?? resume?.started?.runId ?? makeRunId()
    const land = options.land ?? true
    const startedAt = yield* iso
    const started = Date.now()
    const execution = ExecutionPlan.make(plan)

    // Refuse before anything starts: every task needs an agent, the repository must be usable.
    yield* registry.check(plan)
    const prepared = yield* workspace.prepare({
      runId,
      streams: plan.streams.map((s) => ({ name: s.name })),
      land,
      ...(resume?.started ? { resume: { base: resume.started.base, targetAt: resume.started.targetAt } } : {})
    })
    if (resume?.started === undefined) {
      yield* progress.publish({
      _tag: "RunStarted",
      at: startedAt,
      runId,
      streams: plan.streams.map((s) => s.name),
      tasks: plan.tasks.size,
      base: prepared.base,
      target: prepared.target,
      targetAt: prepared.targetAt
    })
    }

    const dispatched = yield* Dispatch.run({
      runId,
      plan,
      execution,
      ...(options.reviewRetry ? { reviewRetry: options.reviewRetry } : {}),
      ...(resume
        ? {
          settled: resume.settled,
          settledAt: resume.settledAt,
          recorded: resume.recorded,
          pending: resume.pending,
          inFlight: resume.inFlight,
          sessions: resume.sessions
        }
        : {})
    })
    const changed = new Map<string, ReadonlyArray<string>>()
    for (const s of plan.streams) changed.set(s.name, yield* workspace.changedFiles(s.name))
    const streamResults = dispatched.map((d) => {
      const results = d.results.map((t) => new RunReport.TaskResult({ ...t, usage: RunReport.usageOfAttempts(t.attempts) }, true))
      return new RunReport.StreamResult({
        streamName: d.stream.name,
        streamType: d.stream.type,
        role: Agent.roleOf(d.stream),
        agent: d.agent,
        results,
        changedFiles: changed.get(d.stream.name) ?? [],
        usage: RunReport.sumUsage(results.map((t) => t.usage!))
      }, true)
    })
    const tasks = streamResults.flatMap((s) => s.results)
    const count = (status: RunReport.TaskStatus) => tasks.filter((t) => t.status === status).length
    const notCompleted = tasks.length - count("completed")
    const halted = tasks.some((t) => t.status === "failed") ||
      (plan.onGateFailure !== "continue" && count("needs-review") > 0)

    // Conflicts: overlaps always; the integration only when the streams' work can be merged.
    const overlaps = yield* Conflicts.detectOverlaps(plan.streams.map((s) => ({ stream: s.name, files: changed.get(s.name)! })))
    const order = execution.integrationOrder.map((name) => plan.streams.find((s) => s.name === name)!)
      .filter((s) => (changed.get(s.name) ?? []).length > 0)
    // A resumed run keeps the integration it had only if no stream moved since: every task
    // had settled before the crash, so no branch changed.
    const keep = resume !== undefined && plan.streams.every((s) => s.tasks.every((t) => resume.settled.has(t.id)))
    const integration = halted ? undefined : yield* Conflicts.integrate({
      runId,
      plan,
      order,
      changed,
      strategy: plan.conflictStrategy,
      ...(resume !== undefined ? { already: keep ? { merged: resume.merged, conflicts: resume.conflicts } : { merged: [], conflicts: [] } } : {})
    })
    const conflictReport = new RunReport.ConflictReport({ overlaps, conflicts: integration?.conflicts ?? [] })

    const integrationHead = integration !== undefined && integration.stoppedAt === undefined
      ? yield* workspace.head(Workspace.integrationLocation)
      : undefined
    // Verification that passed on this very commit is not run again.
    const verification = integrationHead === undefined
      ? new RunReport.VerificationReport({ ran: false, passed: false, commit: null, checks: [], durationMs: 0 })
      : resume?.verification?.passed === true && resume.verification.commit === integrationHead
      ? resume.verification
      : yield* Verification.verify(plan.verify)

    const nextSteps: Array<string> = []
    let reason: string | undefined
    if (halted) reason = `not integrated: ${notCompleted} task(s) did not complete`
    else if (integration?.stoppedAt !== undefined) reason = `integration stopped at stream ${integration.stoppedAt.stream} (conflict ${integration.stoppedAt.outcome})`
    else if (!verification.passed && verification.ran) reason = "integration verification failed"
    else if (notCompleted > 0) reason = `${notCompleted} task(s) need review`
    else if (!land) reason = "landing not requested (--no-land)"

    let landing: Workspace.Landing | undefined = resume?.landed?.commit === integrationHead ? resume?.landed : undefined
    if (reason === undefined && landing === undefined) {
      const landed = yield* Landing.land().pipe(Effect.either)
      if (landed._tag === "Right") landing = landed.right
      else reason = `landing refused: ${landed.left.message}`
    }

    const integrationDir = workspace.integrationFiles().dir
    for (const t of tasks) {
      if (t.status === "needs-review") {
        nextSteps.push(`Review task ${t.taskId}: it scored ${t.quality?.score ?? "–"} (< ${plan.qualityThreshold}) after ${t.attempts.length} attempts.`)
      }
      if (t.status === "failed") nextSteps.push(`Task ${t.taskId} failed: ${t.error ?? "unknown error"}.`)
    }
    for (const c of conflictReport.conflicts) if (c.outcome !== "resolved") nextSteps.push(`Conflict ${c.streams.join(" ↔ ")} (${c.outcome}): ${c.detail}`)
    if (verification.ran && !verification.passed && integrationDir) {
      nextSteps.push(`Verification failed: inspect the integration in ${integrationDir}.`)
    }
    if (landing === undefined && integration !== undefined && integration.stoppedAt === undefined && integrationDir) {
      nextSteps.push(`The integrated result is in ${integrationDir}.`)
    }

    const status: RunReport.RunStatus = integration?.stoppedAt?.outcome === "blocked"
      ? "blocked"
      : count("failed") > 0 || integration?.stoppedAt !== undefined || (verification.ran && !verification.passed) ||
          (reason?.startsWith("landing refused") ?? false)
      ? "failed"
      : notCompleted > 0
      ? "needs-review"
      : "succeeded"

    const finishedAt = yield* iso
    // Journaled before the worktrees go: a crash during release leaves a finished run whose
    // leftovers `braid clean` removes, never a half-released run to resume.
    yield* progress.publish({ _tag: "RunFinished", at: finishedAt, status })
    yield* workspace.release({ keepWorktrees: (options.keepWorktrees ?? false) || status !== "succeeded" })

    const usage = RunReport.sumUsage(streamResults.map((s) => s.usage!))
    return new RunReport.RunReport({
      runId,
      projectName: plan.projectName,
      featureName: plan.featureName,
      status,
      success: status === "succeeded",
      startedAt,
      finishedAt,
      durationMs: Date.now() - started,
      qualityThreshold: plan.qualityThreshold,
      maxParallel: plan.maxParallel,
      streamResults,
      conflictsFound: overlaps.length > 0 || conflictReport.conflicts.length > 0,
      conflictReport,
      integrationResult: verification,
      mergeResult: new RunReport.MergeResult({
        landed: landing !== undefined,
        target: landing?.target ?? prepared.target,
        commit: landing?.commit ?? null,
        previous: landing?.previous ?? null,
        mergedStreams: integration?.merged ?? [],
        ...(reason !== undefined ? { reason } : {})
      }),
      summary: new RunReport.Summary({
        totalTasks: tasks.length,
        completedTasks: count("completed"),
        needsReviewTasks: count("needs-review"),
        failedTasks: count("failed"),
        skippedTasks: count("skipped"),
        streams: streamResults.map((s) => ({
          name: s.streamName,
          tasksCompleted: s.results.filter((r) => r.status === "completed").length,
          totalTasks: s.results.length
        }))
      }),
      usage,
      nextSteps
    })
  })
