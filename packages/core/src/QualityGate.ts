/**
 * The quality gate: attempt → review, repeated with `Effect.repeat` for at most three runs
 * in all, each retry fed the latest review. A reviewer error is retried with backoff and
 * does not use up one of the three runs.
 *
 * @since 0.1.0
 */
import { DateTime, Effect, Schedule, Schema } from "effect"
import * as Agent from "./Agent.js"
import * as CommandSpec from "./CommandSpec.js"
import type * as Plan from "./Plan.js"
import * as Progress from "./Progress.js"
import type * as ProviderLimits from "./ProviderLimits.js"
import * as Review from "./Review.js"
import * as RunReport from "./RunReport.js"
import * as Workspace from "./Workspace.js"

/** At most this many attempt+review runs per task. */
export const MAX_RUNS = 3

/** The reviewer kept failing after its retries. */
export class ReviewUnavailable extends Schema.TaggedError<ReviewUnavailable>()("ReviewUnavailable", {
  taskId: Schema.String,
  attempt: Schema.Number,
  message: Schema.String
}) {}

/** Default backoff for a failing reviewer: exponential from 500 ms with jitter, 4 retries. */
export const defaultReviewRetry: Schedule.Schedule<unknown, Review.ReviewFailed> = Schedule.exponential("500 millis")
  .pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(4)))

export interface GateInput {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly stream: Plan.PlannedStream
  readonly task: Plan.Task
  readonly agent: Agent.Service
  readonly earlier: ReadonlyArray<Agent.EarlierResult>
  readonly broughtIn: ReadonlyArray<Agent.BroughtIn>
  /** The latest session the task's agent noted before a crash (a resumed attempt continues it). */
  readonly session?: string | undefined
  /** A note from the person running braid, added to every attempt's feedback. */
  readonly userNote?: string | undefined
  readonly reviewRetry: Schedule.Schedule<unknown, Review.ReviewFailed>
  /** Attempts already recorded (a resumed task continues after them). */
  readonly recorded?: ReadonlyArray<RunReport.AttemptRecord>
  /** An attempt whose commit was recorded but whose review was not: it is reviewed, not re-run. */
  readonly pending?: {
    readonly attempt: number
    readonly startedAt: string
    readonly change: Workspace.AttemptChange
    readonly summary: string
    readonly agent?: RunReport.AgentRecord | undefined
  }
}

export interface GateServices {
  readonly workspace: Workspace.Service
  readonly reviewer: Review.Service
  readonly progress: Progress.Service
  readonly limits: ProviderLimits.Service
}

export type GateError =
  | Agent.AgentFailed
  | Agent.UsageLimitReached
  | ReviewUnavailable
  | Workspace.WorkspaceError
  | Workspace.ChangesOutsideWorktree

const now = DateTime.now.pipe(Effect.map(DateTime.formatIso))

const toQuality = (review: Review.Review, threshold: number) =>
  new RunReport.Quality({
    score: review.score,
    passes: Review.passes(review, threshold),
    issues: review.issues,
    suggestions: review.suggestions,
    reviewer: review.reviewer
  })

/** What the agent's tool reported, as the report keeps it. */
export const agentRecord = (backend: string, output: Agent.AttemptOutput, providerWaits: number): RunReport.AgentRecord =>
  new RunReport.AgentRecord({
    backend,
    sessionId: output.sessionId ?? null,
    turns: output.turns ?? null,
    model: output.model ?? null,
    inputTokens: output.usage?.inputTokens ?? 0,
    outputTokens: output.usage?.outputTokens ?? 0,
    cacheReadTokens: output.usage?.cacheReadTokens ?? 0,
    cacheWriteTokens: output.usage?.cacheWriteTokens ?? 0,
    costUsd: output.usage?.costUsd ?? null,
    durationMs: output.durationMs ?? null,
    permissionDenials: output.permissionDenials,
    providerWaits
  }, true)

/** The outcome of the gate: every attempt, and whether the latest review passed. */
export interface GateOutcome {
  readonly attempts: ReadonlyArray<RunReport.AttemptRecord>
  readonly passed: boolean
}

/** Runs a task through the gate. Fails with the attempts made so far when an attempt cannot finish. */
export const run = (input: GateInput, services: GateServices) =>
  Effect.gen(function*() {
    const { plan, stream, task } = input
    const { limits, progress, reviewer, workspace } = services
    const threshold = plan.qualityThreshold
    const attempts: Array<RunReport.AttemptRecord> = [...(input.recorded ?? [])]
    const files = workspace.files(stream.name)
    const latestReview = (): Review.Review | undefined => {
      const last = attempts.at(-1)?.review
      return last == null ? undefined : new Review.Review({
        score: last.score,
        issues: last.issues,
        suggestions: last.suggestions,
        reviewer: last.reviewer
      })
    }

    // The session to continue: the previous attempt's, or one noted by an attempt cut off.
    let session = input.session ?? [...attempts].reverse().find((a) => a.agent?.sessionId != null)?.agent?.sessionId ??
      undefined
    const checks = [
      ...(task.checks ?? []).flatMap((spec) => {
        const command = CommandSpec.toCommand(spec)
        return typeof command === "string" ? [] : [command]
      }),
      ...plan.checks
    ]

    const attemptAndCommit = (n: number, startedAt: string) =>
      Effect.gen(function*() {
        yield* progress.publish({ _tag: "AttemptStarted", at: startedAt, stream: stream.name, taskId: task.id, attempt: n })
        const at = { stream: stream.name, taskId: task.id, attempt: n }
        const note = (note: Agent.AttemptNote) =>
          Effect.flatMap(now, (time) => {
            if (note._tag === "Session") {
              session = note.sessionId
              return progress.publish({ _tag: "AgentSession", at: time, ...at, sessionId: note.sessionId })
            }
            return progress.publish({ _tag: "AgentProcess", at: time, ...at, pid: note.pid, startTime: note.startTime, command: note.command })
          })
        let waits = 0
        const feedback = latestReview()
        const output = yield* limits.run(
          input.agent.provider,
          task.id,
          () =>
            input.agent.attempt({
              runId: input.runId,
              projectName: plan.projectName,
              featureName: plan.featureName,
              plan,
              task,
              stream,
              role: Agent.roleOf(stream),
              attempt: n,
              feedback,
              userNote: input.userNote,
              earlier: input.earlier,
              broughtIn: input.broughtIn,
              checks,
              denied: attempts.at(-1)?.agent?.permissionDenials ?? [],
              session,
              note,
              files
            }),
          (wait) => {
            waits++
            return Effect.flatMap(now, (time) => progress.publish({ _tag: "ProviderWaited", at: time, ...at, ...wait }))
          }
        ).pipe(
          // Whatever the agent did, nothing it wrote outside its worktree may go unnoticed.
          Effect.tapErrorTag("AgentFailed", () => confined(n)),
          Effect.tap(() => confined(n))
        )
        // What changed comes from the workspace, never from the agent's report.
        const change = yield* workspace.commitAttempt(stream.name, { taskId: task.id, title: task.title, attempt: n })
        const agent = agentRecord(input.agent.name, output, waits)
        // Journaled before the review starts: a crash from here on reviews this commit, never re-runs it.
        yield* progress.publish({
          _tag: "AttemptFinished",
          at: yield* now,
          stream: stream.name,
          taskId: task.id,
          attempt: n,
          commit: change.commit,
          files: change.files,
          summary: output.summary,
          agent
        })
        return { output, change, agent }
      })

    const confined = (n: number) =>
      Effect.flatMap(workspace.strays(stream.name), (found) =>
        found.length === 0
          ? Effect.void
          : Effect.fail(new Workspace.ChangesOutsideWorktree({ stream: stream.name, taskId: task.id, attempt: n, found })))

    const once = Effect.gen(function*() {
      const n = attempts.length + 1
      const pending = input.pending?.attempt === n ? input.pending : undefined
      const startedAt = pending?.startedAt ?? (yield* now)
      const started = Date.now()
      const { agent, change, output } = pending !== undefined
        ? { change: pending.change, output: new Agent.AttemptOutput({ summary: pending.summary }), agent: pending.agent }
        : yield* attemptAndCommit(n, startedAt)
      const review = yield* reviewer.review({
        runId: input.runId,
        task,
        stream,
        attempt: n,
        threshold,
        output,
        change,
        files,
        planChecks: plan.checks
      }).pipe(
        Effect.tapError((e) =>
          Effect.flatMap(now, (at) =>
            progress.publish({ _tag: "ReviewRetried", at, stream: stream.name, taskId: task.id, attempt: n, message: e.message })
          )
        ),
        Effect.retry(input.reviewRetry),
        Effect.mapError((e) => new ReviewUnavailable({ taskId: task.id, attempt: n, message: e.message }))
      )
      const quality = toQuality(review, threshold)
      const durationMs = Date.now() - started
      yield* progress.publish({
        _tag: "ReviewRecorded",
        at: yield* now,
        stream: stream.name,
        taskId: task.id,
        attempt: n,
        score: quality.score,
        passes: quality.passes,
        issues: quality.issues,
        suggestions: quality.suggestions,
        reviewer: quality.reviewer,
        durationMs,
        inputTokens: output.usage?.inputTokens ?? 0,
        outputTokens: output.usage?.outputTokens ?? 0,
        costUsd: output.usage?.costUsd ?? 0
      })
      attempts.push(
        new RunReport.AttemptRecord({
          attempt: n,
          startedAt,
          durationMs,
          summary: output.summary,
          commit: change.commit,
          changedFiles: change.files,
          review: quality,
          inputTokens: output.usage?.inputTokens ?? 0,
          outputTokens: output.usage?.outputTokens ?? 0,
          costUsd: output.usage?.costUsd ?? 0,
          ...(agent !== undefined ? { agent } : {})
        }, true) // built from already-typed values; validating a class with class fields is costly
      )
      return quality.passes
    })

    const already = attempts.at(-1)?.review?.passes === true
    const remaining = MAX_RUNS - attempts.length
    const passed = already
      ? true
      : remaining <= 0
      ? false
      : yield* Effect.repeat(once, { times: remaining - 1, until: (passes) => passes }).pipe(
        Effect.mapError((error) => ({ error, attempts: [...attempts] }))
      )
    return { attempts, passed } satisfies GateOutcome
  })
