/**
 * The quality gate: attempt → review, repeated with `Effect.repeat` for at most three runs
 * in all, each retry fed the latest review. A reviewer error is retried with backoff and
 * does not use up one of the three runs. Each attempt and each review is a durable step
 * (`<task>/attempt/<n>`, `<task>/attempt/<n>/review`): a continued run replays them and goes
 * on from the first one the journal does not hold.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Duration, Effect, Schedule, Schema } from "effect"
import * as Agent from "../ports/Agent.js"
import * as Attempt from "../run/Attempt.js"
import * as Budget from "./Budget.js"
import * as Plan from "../run/Plan.js"
import * as Progress from "../ports/Progress.js"
import type * as ProviderLimits from "./ProviderLimits.js"
import * as Review from "../ports/Review.js"
import * as RunState from "../run/RunState.js"
import * as Sandbox from "../system/Sandbox.js"
import type * as Steps from "../ports/Steps.js"
import * as Workspace from "../ports/Workspace.js"

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

/** A reviewer retry schedule that waits at least as long as the reviewer's provider asked (`Retry-After`). */
export const honourRetryAfter = (
  schedule: Schedule.Schedule<unknown, Review.ReviewFailed>
): Schedule.Schedule<unknown, Review.ReviewFailed> =>
  Schedule.intersect(
    schedule,
    Schedule.identity<Review.ReviewFailed>().pipe(Schedule.addDelay((e) => Duration.millis(e.retryAfterMs ?? 0)))
  )

export interface GateInput {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly stream: Plan.PlannedStream
  readonly task: Plan.Task
  readonly agent: Agent.Service
  readonly earlier: ReadonlyArray<Agent.EarlierResult>
  readonly broughtIn: ReadonlyArray<Agent.BroughtIn>
  /** A note from the person running braid, added to every attempt's feedback. */
  readonly userNote?: string | undefined
  readonly reviewRetry: Schedule.Schedule<unknown, Review.ReviewFailed>
  /** The task's step key for this round (`stream/<s>/task/<t>[/retry/<r>]`). */
  readonly key: string
  /** The retry round (0: the run's first). */
  readonly round: number
  /**
   * The stream's worktree was just opened: before its first attempt runs, the branch head is
   * checked for that attempt's commit (made by a process that stopped before journaling it).
   */
  readonly recover: boolean
}

export interface GateServices {
  readonly steps: Steps.Service
  /** The stream's checkout, held while the task works. */
  readonly checkout: Workspace.Checkout
  readonly reviewer: Review.Service
  readonly progress: Progress.Service
  readonly limits: ProviderLimits.Service
  /** The run's spend against its budget. */
  readonly budget?: Budget.Tracker | undefined
}

export type GateError =
  | Budget.BudgetReached
  | Budget.TaskOverBudget
  | Agent.AgentFailed
  | Agent.UsageLimitReached
  | ReviewUnavailable
  | Workspace.WorkspaceError
  | Workspace.ChangesOutsideWorktree

const now = DateTime.now.pipe(Effect.map(DateTime.formatIso))

/** What the agent's tool reported, as the journal keeps it. */
export const agentRecord = (backend: string, output: Agent.AttemptOutput, providerWaits: number, confined = false): Attempt.AgentRecord =>
  new Attempt.AgentRecord({
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
    providerWaits,
    ...(output.usage?.costUsd !== undefined ? { costSource: output.usage.costSource ?? "tool" } : {}),
    ...(confined ? { confined } : {})
  }, true)

/** The outcome of the gate: every attempt, and whether the latest review passed. */
export interface GateOutcome {
  readonly attempts: ReadonlyArray<RunState.AttemptRecord>
  readonly passed: boolean
}

/** Runs a task through the gate. Fails with the attempts made so far when an attempt cannot finish. */
export const run = Effect.fn("QualityGate.run")(
  function*(input: GateInput, services: GateServices) {
    const { plan, round, stream, task } = input
    yield* Effect.annotateCurrentSpan({ "braid.stream": stream.name, "braid.task": task.id, "braid.round": round, "braid.backend": input.agent.name })
    const { checkout, limits, progress, reviewer, steps } = services
    const budget = services.budget ?? Budget.make(undefined)
    const threshold = plan.qualityThreshold
    const attempts: Array<RunState.AttemptRecord> = []
    /** Keeps an attempt's record and counts what it spent against the run's budget. */
    const keep = (record: RunState.AttemptRecord) =>
      Effect.suspend(() => {
        attempts.push(record)
        return budget.spent(Budget.attemptId(round, task.id, record.attempt), Budget.spendOf(record))
      })
    /** A task whose attempts spent more than its own budget fails. */
    const withinTaskBudget = Effect.suspend(() => {
      const detail = Budget.reached(task.budget, Budget.sum(attempts.map(Budget.spendOf)), (spent, limit) => spent > limit)
      return detail === undefined ? Effect.void : Effect.fail(new Budget.TaskOverBudget({ taskId: task.id, detail }))
    })
    const files = checkout.files
    // Confined (`Sandbox.Confinement`): the agent, its checks and its scripts write only the
    // checkout, read the repository and the plan's folder, and reach the run's and the stream's
    // endpoints (an agent its model API too); what they were refused becomes the attempt's denials.
    const policy = yield* Sandbox.policyOf(files, { network: stream.network ?? [] })
    const confine = Sandbox.within(policy)
    let recover = input.recover
    const checks = Plan.checksOf(plan, task)
    const id = (n: number) => ({ stream: stream.name, taskId: task.id, round, attempt: n })

    /** Step `<task>/attempt/<n>`: the agent's attempt and its commit, journaled before the review. */
    // The attempt under way, so that one that fails (the agent failed, or it wrote outside its
    // worktree) is still recorded with what the agent spent.
    let current: { readonly startedAt: string; readonly started: number; spent?: Attempt.AgentRecord } | undefined

    const attemptAndCommit = (n: number) =>
      Effect.gen(function*() {
        const startedAt = yield* now
        const started = yield* Clock.currentTimeMillis
        current = { startedAt, started }
        const step = RunState.keys.attempt(input.key, n)
        const at = { stream: stream.name, taskId: task.id, attempt: n }
        // Cut off by a crash after its commit was made: the commit is the attempt.
        const found = recover ? yield* checkout.findAttempt({ taskId: task.id, attempt: n, step }) : undefined
        recover = false
        // No new attempt once the run's budget is reached (a recovered one is already made).
        if (found === undefined) yield* budget.check
        if (found !== undefined) {
          return new RunState.AttemptDone({
            ...id(n),
            startedAt,
            durationMs: 0,
            commit: found.commit,
            files: found.files,
            summary: "(recovered from git after a crash)",
            inputTokens: 0,
            outputTokens: 0,
            costUsd: 0,
            agent: null
          }, RunState.unchecked)
        }
        yield* progress.publish({ _tag: "AttemptStarted", at: startedAt, ...at })
        // A session this attempt noted before it was cut off is continued; else the previous attempt's.
        const noted = yield* steps.recall(RunState.keys.session(input.key, n), RunState.SessionNoted)
        let session = noted._tag === "Some"
          ? noted.value.sessionId
          : [...attempts].reverse().find((a) => a.agent?.sessionId != null)?.agent?.sessionId ?? undefined
        const note = (note: Agent.AttemptNote) =>
          Effect.flatMap(now, (time) => {
            if (note._tag === "Output") return progress.publish({ _tag: "AgentOutput", at: time, ...at, line: note.line })
            if (note._tag === "Session") {
              session = note.sessionId
              return Effect.zipRight(
                steps.record(RunState.keys.session(input.key, n), RunState.SessionNoted, new RunState.SessionNoted({ ...id(n), sessionId: note.sessionId })),
                progress.publish({ _tag: "AgentSession", at: time, ...at, sessionId: note.sessionId })
              )
            }
            return Effect.zipRight(
              steps.record(
                RunState.keys.process(input.key, n, note.pid),
                RunState.ProcessNoted,
                new RunState.ProcessNoted({ ...id(n), pid: note.pid, startTime: note.startTime, command: note.command })
              ),
              progress.publish({ _tag: "AgentProcess", at: time, ...at, pid: note.pid, startTime: note.startTime, command: note.command })
            )
          })
        let waits = 0
        // The latest review as journaled (none after an attempt that failed before its review).
        const feedback = attempts.at(-1)?.review ?? undefined
        const output = yield* limits.run(
          input.agent.provider,
          task.id,
          () =>
            withDenials(input.agent.attempt({
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
              sessionCostUsd: attempts.reduce((sum, a) => (a.agent?.sessionId === session && session !== undefined ? sum + a.costUsd : sum), 0),
              note,
              files
            })),
          (wait) => {
            waits++
            return Effect.flatMap(now, (time) => progress.publish({ _tag: "ProviderWaited", at: time, ...at, ...wait }))
          }
        ).pipe(
          // Whatever the agent did, nothing it wrote outside its worktree may go unnoticed.
          Effect.tapErrorTag("AgentFailed", () => confined(n)),
          Effect.tapErrorTag("UsageLimitReached", (limit) =>
            Effect.flatMap(now, (time) =>
              progress.publish({
                _tag: "ProviderLimitReached",
                at: time,
                ...at,
                provider: limit.provider,
                message: limit.message,
                resetsAt: limit.resetsAt ?? null
              }))),
          Effect.tap((output) =>
            Effect.sync(() => {
              if (current !== undefined) current.spent = agentRecord(input.agent.name, output, waits, policy !== undefined)
            })
          ),
          Effect.tap(() => confined(n))
        )
        // What changed comes from the workspace, never from the agent's report.
        const change = yield* checkout.commitAttempt({ taskId: task.id, title: task.title, attempt: n, step, agent: input.agent.name, role: Agent.roleOf(stream) })
        const agent = agentRecord(input.agent.name, output, waits, policy !== undefined)
        yield* progress.publish({
          _tag: "AttemptFinished",
          at: yield* now,
          ...at,
          commit: change.commit,
          files: change.files,
          summary: output.summary,
          agent
        })
        return new RunState.AttemptDone({
          ...id(n),
          startedAt,
          durationMs: (yield* Clock.currentTimeMillis) - started,
          commit: change.commit,
          files: change.files,
          summary: output.summary,
          inputTokens: output.usage?.inputTokens ?? 0,
          outputTokens: output.usage?.outputTokens ?? 0,
          costUsd: output.usage?.costUsd ?? 0,
          agent
        }, RunState.unchecked)
      })

    /** What an attempt spent, on its span. */
    const spentOn = (inputTokens: number, outputTokens: number, costUsd: number) =>
      Effect.annotateCurrentSpan({ "braid.tokens.input": inputTokens, "braid.tokens.output": outputTokens, "braid.cost_usd": costUsd })

    /** The attempt confined, with the refusals its processes met added to what its tool reported. */
    const withDenials = <E, R>(attempt: Effect.Effect<Agent.AttemptOutput, E, R>) =>
      Effect.map(Sandbox.collectDenials(confine(attempt)), ([output, denials]) =>
        denials.length === 0
          ? output
          : new Agent.AttemptOutput({ ...output, permissionDenials: [...new Set([...output.permissionDenials, ...denials])] }))

    const confined = (n: number) =>
      Effect.flatMap(checkout.strays, (found) =>
        found.length === 0
          ? Effect.void
          : Effect.fail(new Workspace.ChangesOutsideWorktree({ stream: stream.name, taskId: task.id, attempt: n, found })))

    /** Step `<task>/attempt/<n>/review`. */
    const reviewOf = (n: number, done: RunState.AttemptDone) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        yield* progress.publish({ _tag: "ReviewStarted", at: yield* now, stream: stream.name, taskId: task.id, attempt: n })
        const review = yield* reviewer.review({
          runId: input.runId,
          task,
          stream,
          attempt: n,
          threshold,
          recorded: done,
          change: new Workspace.AttemptChange({ commit: done.commit, files: done.files }, RunState.unchecked),
          files,
          exec: checkout.exec,
          planChecks: plan.checks
        }).pipe(
          confine,
          Effect.tapError((e) =>
            Effect.flatMap(now, (at) =>
              progress.publish({ _tag: "ReviewRetried", at, stream: stream.name, taskId: task.id, attempt: n, message: e.message })
            )
          ),
          Effect.retry(honourRetryAfter(input.reviewRetry)),
          Effect.mapError((e) => new ReviewUnavailable({ taskId: task.id, attempt: n, message: e.message }))
        )
        const quality = RunState.reviewRecord(review, threshold)
        const durationMs = (yield* Clock.currentTimeMillis) - started
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
          durationMs: done.durationMs + durationMs,
          inputTokens: done.inputTokens,
          outputTokens: done.outputTokens,
          costUsd: done.costUsd
        })
        return new RunState.Reviewed({ ...id(n), quality, durationMs }, RunState.unchecked)
      }).pipe(Effect.withSpan("QualityGate.review", { attributes: { "braid.stream": stream.name, "braid.task": task.id, "braid.attempt": n } }))

    const once = Effect.scoped(Effect.gen(function*() {
      // The worktree is this attempt's until its review is done: confinement checks after
      // other streams' attempts leave it alone meanwhile.
      yield* checkout.attempting
      const n = attempts.length + 1
      yield* Effect.annotateCurrentSpan({ "braid.stream": stream.name, "braid.task": task.id, "braid.round": round, "braid.attempt": n, "braid.backend": input.agent.name })
      current = undefined
      const attempted = yield* steps.step(RunState.keys.attempt(input.key, n), RunState.AttemptDone, attemptAndCommit(n)).pipe(
        Effect.tapError((error) =>
          Effect.flatMap(Clock.currentTimeMillis, (time) => {
            // An attempt that failed for its agent's deed (also outside its worktree, or a link leading out) is kept with what it spent.
            const attemptFailed = error._tag === "AgentFailed" || error._tag === "ChangesOutsideWorktree" || error._tag === "OutwardSymlink"
            if (current === undefined || !attemptFailed) return Effect.void
            const spent = current.spent ??
              (error._tag === "AgentFailed" && error.spent !== undefined ? agentRecord(input.agent.name, error.spent, 0) : undefined)
            return Effect.zipRight(
              spentOn(spent?.inputTokens ?? 0, spent?.outputTokens ?? 0, spent?.costUsd ?? 0),
              keep(new RunState.AttemptRecord({
                attempt: n,
                startedAt: current.startedAt,
                durationMs: time - current.started,
                summary: `failed: ${error.message}`,
                commit: null,
                changedFiles: [],
                review: null,
                inputTokens: spent?.inputTokens ?? 0,
                outputTokens: spent?.outputTokens ?? 0,
                costUsd: spent?.costUsd ?? 0,
                ...(spent !== undefined ? { agent: spent } : {})
              }, true))
            )
          })
        ),
        Effect.catchIf(
          (error): error is Workspace.ChangesOutsideWorktree =>
            error._tag === "ChangesOutsideWorktree" && error.found.every((f) => (f.alongside ?? []).length > 0),
          // Nothing of it lands: what it left in its worktree goes before the next gate run.
          () => Effect.as(checkout.discard, undefined)
        )
      )
      // A change outside the worktree that other agents at work could have made as well fails
      // this attempt, not the task: it goes on to its next gate run.
      if (attempted === undefined) return false
      const done = attempted
      yield* spentOn(done.inputTokens, done.outputTokens, done.costUsd)
      // What the attempt spent counts at once: with `onExceeded: stop` the run stops here.
      yield* budget.spent(Budget.attemptId(round, task.id, n), Budget.spendOf(done))
      if (budget.budget?.onExceeded === "stop") yield* budget.check
      const reviewed = yield* steps.step(RunState.keys.review(input.key, n), RunState.Reviewed, reviewOf(n, done))
      yield* keep(RunState.attemptRecord(done, reviewed))
      yield* withinTaskBudget
      yield* Effect.annotateCurrentSpan({ "braid.score": reviewed.quality.score, "braid.passes": reviewed.quality.passes })
      return reviewed.quality.passes
    })).pipe(Effect.withSpan("QualityGate.attempt"))

    const passed = yield* Effect.repeat(once, { times: MAX_RUNS - 1, until: (passes) => passes }).pipe(
      Effect.mapError((error) => ({ error, attempts: [...attempts] }))
    )
    return { attempts, passed } satisfies GateOutcome
  }
)
