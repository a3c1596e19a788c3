/**
 * The orchestrator wires the stages — dispatch, conflict detection and resolution,
 * integration verification, landing — into one run and its `RunReport`.
 *
 * @since 0.1.0
 */
import { DateTime, Effect, type Schedule } from "effect"
import * as Agent from "../ports/Agent.js"
import type * as Budget from "./Budget.js"
import * as Conflicts from "./Conflicts.js"
import type * as ConflictResolver from "../ports/ConflictResolver.js"
import * as Dispatch from "./Dispatch.js"
import * as ExecutionPlan from "./ExecutionPlan.js"
import * as Landing from "./Landing.js"
import * as Plan from "../run/Plan.js"
import * as Progress from "../ports/Progress.js"
import type * as Review from "../ports/Review.js"
import * as GitHubSync from "../present/GitHubSync.js"
import * as RunReport from "../present/RunReport.js"
import * as RunOutcome from "../run/RunOutcome.js"
import * as RunState from "../run/RunState.js"
import * as Steps from "../ports/Steps.js"
import * as Environment from "./Environment.js"
import * as Verification from "./Verification.js"
import * as Workspace from "../ports/Workspace.js"

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
  /** Rounds of tasks to run again, oldest first (`braid retry`); settled tasks keep their results. */
  readonly retries?: ReadonlyArray<Dispatch.Retry>
  /** Before verifying, merge the target into the integration if it moved since (`braid land`). */
  readonly catchUp?: boolean
  /** What the run's attempts spent before (`RunState.fold(…).spent`), counted against its budget. */
  readonly spent?: ReadonlyMap<string, Budget.Spend>
  /** How to land (default `Landing.local`): one of `Landing.modes`. */
  readonly landing?: Landing.Mode
  /** The remote `push` and `pr` push to (default `origin`). */
  readonly remote?: string
  /** Labels of the pull request `pr` opens (default `braid`). */
  readonly pullLabels?: ReadonlyArray<string>
  /** Which execution of the run this is, for a `TaskExecutor` (a cluster run's workflow execution). */
  readonly executionId?: string
}

/** Every error that stops a run before it can produce a report. */
export type RunError =
  | Agent.AgentUnavailable
  | Agent.UsageLimitReached
  | Budget.BudgetReached
  | Workspace.WorkspaceError
  | Conflicts.ConflictError
  | Verification.VerificationUnavailable
  | Environment.SetupFailed

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

/**
 * Runs a plan to its report. Every result that matters is a durable step (`Steps`; in memory
 * unless the caller provides a journal), so running the same run again over its journal
 * continues it: settled work replays, the rest runs. The workspace is a scoped resource: on
 * every way out (success, failure, interruption, defect) what the run does not keep is
 * removed — worktrees of streams with a failed or needs-review task, and the integration's
 * after a conflict left for a person or a failed verification, stay for a person to look at.
 */
export const run: (plan: Plan.Plan, options?: RunOptions) => Effect.Effect<RunReport.RunReport, RunError, RunServices> = Effect.fn(
  "Orchestrator.run"
)(function*(plan: Plan.Plan, options: RunOptions = {}) {
  // The root of the run's trace: every stage's span is under it.
  const steps = yield* Effect.serviceOption(Steps.Steps)
  return yield* runWith(plan, options).pipe(
    Effect.provideService(Steps.Steps, steps._tag === "Some" ? steps.value : Steps.memory().service)
  )
})

const runWith = (plan: Plan.Plan, options: RunOptions) =>
  Effect.gen(function*() {
    const registry = yield* Agent.AgentRegistry
    const workspaces = yield* Workspace.Workspace
    const progress = yield* Progress.Progress
    const steps = yield* Steps.Steps
    const land = options.land ?? true
    const mode = options.landing ?? Landing.local
    const startedAt = yield* iso
    const execution = ExecutionPlan.make(plan)
    const retries = options.retries ?? []
    const generation = retries.reduce((g, r) => Math.max(g, r.round), 0)

    // Refuse before anything starts: every task needs an agent, the repository must be usable.
    yield* registry.check(plan)
    // How each checkout is made ready: made once the workspace is (it copies from the user's checkout).
    let environments: Environment.Environments = Environment.none
    const setup: Workspace.RunSetup = {
      runId: options.runId ?? makeRunId(),
      streams: plan.streams.map((s) => ({ name: s.name, sparse: Plan.sparseOf(s) })),
      land: land && mode.local,
      // The run holds about as many stream checkouts as agents at work, whatever its number of streams.
      maxCheckouts: plan.maxParallel,
      keepWorktrees: options.keepWorktrees ?? false,
      // A checkout closed for good gets its environment's teardown (made ready below, once the workspace is).
      beforeClose: (checkout) => Effect.suspend(() => environments.teardown(checkout))
    }
    // Prepared once, in the run's scope (released on every way out: what the run does not keep
    // is removed). A run that started before is prepared from what it recorded.
    const recorded = yield* steps.recall(RunState.keys.run, RunState.Started)
    const workspace = yield* workspaces.prepare(
      recorded._tag === "Some"
        ? { ...setup, runId: recorded.value.runId, resume: { base: recorded.value.base, targetAt: recorded.value.targetAt } }
        : setup
    )
    environments = yield* Environment.make({ plan, source: workspace.source })
    const begun = yield* steps.step(
      RunState.keys.run,
      RunState.Started,
      Effect.gen(function*() {
        yield* progress.publish({
          _tag: "RunStarted",
          at: startedAt,
          runId: setup.runId,
          streams: plan.streams.map((s) => s.name),
          tasks: plan.tasks.size,
          base: workspace.base,
          target: workspace.target,
          targetAt: workspace.targetAt
        })
        return new RunState.Started({
          base: workspace.base,
          target: workspace.target,
          targetAt: workspace.targetAt,
          runId: setup.runId,
          streams: plan.streams.map((s) => s.name),
          tasks: plan.tasks.size,
          at: startedAt
        })
      })
    )
    const runId = begun.runId
    yield* Effect.annotateCurrentSpan({ "braid.run_id": runId, "braid.streams": plan.streams.length, "braid.tasks": plan.tasks.size })

    const dispatch = yield* Dispatch.run({
      runId,
      workspace,
      plan,
      execution,
      retries,
      keepWorktrees: options.keepWorktrees ?? false,
      ...(options.executionId !== undefined ? { executionId: options.executionId } : {}),
      ...(options.spent !== undefined ? { spent: options.spent } : {}),
      ...(options.reviewRetry ? { reviewRetry: options.reviewRetry } : {}),
      environments
    })
    // What integrates is what the journal holds: each stream's branch is put back at its
    // journaled head (a branch moved, forged or deleted since is named in the report).
    const integrity: Array<string> = [...dispatch.integrity]
    if (dispatch.halted === undefined) {
      for (const [stream, commit] of dispatch.heads) {
        const found = yield* workspace.branch(stream).pin(commit)
        if (found !== undefined) integrity.push(found)
      }
    }
    const changed = new Map<string, ReadonlyArray<string>>()
    for (const s of plan.streams) changed.set(s.name, yield* workspace.branch(s.name).changedFiles)

    // Conflicts: overlaps always; the integration only when the streams' work can be merged.
    const overlaps = yield* Conflicts.detectOverlaps(plan.streams.map((s) => ({ stream: s.name, files: changed.get(s.name)! })))
    const order = execution.integrationOrder.map((name) => plan.streams.find((s) => s.name === name)!)
      .filter((s) => (changed.get(s.name) ?? []).length > 0)
    const integration = dispatch.halted !== undefined
      ? undefined
      : yield* Conflicts.integrate({ runId, plan, workspace, order, changed, strategy: plan.conflictStrategy, generation })
    // Conflicts the integrations before a retry resolved: this one goes on from them (so meets
    // them no more), and what resolving them cost is the run's.
    const resolvedBefore: Array<RunState.ConflictRecord> = []
    for (let g = 0; g < generation; g++) {
      for (const stream of execution.integrationOrder) {
        const merged = yield* steps.recall(RunState.keys.merge(g, stream), RunState.Merged)
        if (merged._tag === "Some" && merged.value.conflict !== null) resolvedBefore.push(merged.value.conflict)
      }
    }

    let head = integration !== undefined && integration.stoppedAt === undefined
      ? yield* workspace.integration.head
      : undefined
    const tasks = dispatch.streams.flatMap((s) => s.results)
    // No task is reported completed whose journaled commit is not in what would land.
    let unheld: string | undefined
    if (head !== undefined && tasks.every((t) => t.status === "completed")) {
      const commits = new Map<string, string>()
      for (const t of tasks) {
        const commit = t.attempts.at(-1)?.commit
        if (commit != null) commits.set(commit, t.taskId)
      }
      const missing = yield* workspace.integration.missing([...commits.keys()])
      if (missing.length > 0) {
        unheld = `the integration does not hold the journaled work of ${
          missing.map((c) => `task ${commits.get(c)} (${c.slice(0, 10)})`).join(", ")
        }: nothing lands`
        integrity.push(unheld)
      }
    }
    const ready = head !== undefined && unheld === undefined && tasks.every((t) => t.status === "completed")
    let landing: RunOutcome.LandingOutcome = !ready ? { _tag: "NotReached" } : { _tag: "NotRequested" }
    // `braid land`: the target may have moved since; its new commits are merged in and verified too.
    let refused: string | undefined
    if (ready && land && options.catchUp === true) {
      const caught = yield* workspace.integration.catchUp.pipe(Effect.either)
      if (caught._tag === "Left") refused = caught.left.message
      else if (caught.right !== null) head = caught.right
    }
    // Verification of this very commit runs once; a new commit (a person's fix) is verified again.
    const verification = head === undefined || refused !== undefined
      ? undefined
      : (yield* steps.step(
        RunState.keys.verify(generation, head),
        RunState.Verified,
        // The integration's checkout is made ready for the verify commands first (the plan's environment).
        environments.integration(workspace.integration).pipe(
          Effect.flatMap((integration) => Verification.verify(plan.verify, integration)),
          Effect.map((report) => new RunState.Verified({ generation, report }))
        )
      )).report
    const prepared = yield* environments.records
    const outcomesOf = (landing: RunOutcome.LandingOutcome, finishedAt: string): RunOutcome.Outcomes => ({
      runId,
      plan,
      startedAt: begun.at,
      finishedAt,
      // From the run's first start (a resumed, retried or landed run began then), not this process's.
      durationMs: Math.max(0, Date.parse(finishedAt) - Date.parse(begun.at)),
      target: begun.target,
      dispatch,
      changed,
      overlaps,
      integration,
      resolvedBefore,
      verification,
      landing,
      integrationDir: integration === undefined ? undefined : Workspace.directoryOf(workspace.integration.files),
      integrity,
      environments: prepared
    })
    if (unheld !== undefined) {
      landing = { _tag: "Refused", message: unheld }
      yield* progress.publish({ _tag: "LandingRefused", at: yield* iso, commit: head ?? "", message: unheld })
    } else if (refused !== undefined) {
      landing = { _tag: "Refused", message: refused }
      yield* progress.publish({ _tag: "LandingRefused", at: yield* iso, commit: head ?? "", message: refused })
    } else if (verification !== undefined && verification.ran && !verification.passed) landing = { _tag: "NotReached" }
    else if (ready && land && head !== undefined) {
      // What a pull request says until the run's final report replaces it.
      const proposed = RunOutcome.report(outcomesOf({ _tag: "NotRequested" }, yield* iso))
      const request: Landing.Request = {
        runId,
        target: begun.target,
        remote: options.remote ?? "origin",
        title: GitHubSync.pullTitle(plan, runId),
        body: GitHubSync.pullBody(plan, RunReport.toMarkdown(new RunReport.RunReport({
          ...proposed,
          mergeResult: new RunReport.MergeResult({ ...proposed.mergeResult, reason: `proposed in this pull request (verified ${head.slice(0, 10)})` })
        }))),
        labels: options.pullLabels ?? ["braid"]
      }
      const landed = yield* steps.step(
        RunState.keys.land(head),
        RunState.Landed,
        Effect.map(Landing.land(mode, request, workspace.landing), (l) => new RunState.Landed({ landing: l }))
      ).pipe(Effect.either)
      if (landed._tag === "Right") landing = { _tag: "Landed", landing: landed.right.landing }
      else {
        landing = { _tag: "Refused", message: landed.left.message }
        yield* progress.publish({ _tag: "LandingRefused", at: yield* iso, commit: head, message: landed.left.message })
        yield* steps.record(RunState.keys.landRefused, RunState.LandingRefused, new RunState.LandingRefused({ commit: head, message: landed.left.message }))
      }
    }

    const outcomes = outcomesOf(landing, yield* iso)
    const status = RunOutcome.status(outcomes)
    yield* Effect.annotateCurrentSpan("braid.status", status)
    // A conflict left for a person, or a failed verification: the integration's worktree stays.
    if (integration?.stoppedAt?.outcome === "blocked" || (verification?.ran === true && !verification.passed)) yield* workspace.keepIntegration
    // Journaled before the worktrees go: a crash during release leaves a finished run whose
    // leftovers `braid clean` removes.
    yield* steps.record(RunState.keys.finished, RunState.Finished, new RunState.Finished({ status, at: outcomes.finishedAt }))
    yield* progress.publish({ _tag: "RunFinished", at: outcomes.finishedAt, status })
    return RunOutcome.report(outcomes)
  }).pipe(Effect.scoped)
