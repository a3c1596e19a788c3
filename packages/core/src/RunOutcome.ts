/**
 * The typed outcomes of a run's stages, and the one pure function that turns them into the
 * run's status and its `RunReport`.
 *
 * @since 0.2.0
 */
import * as Agent from "./Agent.js"
import type * as Conflicts from "./Conflicts.js"
import type * as Dispatch from "./Dispatch.js"
import * as Landing from "./Landing.js"
import type * as Plan from "./Plan.js"
import * as RunReport from "./RunReport.js"
import type * as Workspace from "./Workspace.js"

/** What became of landing. */
export type LandingOutcome =
  | { readonly _tag: "Landed"; readonly landing: Workspace.Landing }
  /** The target could not be advanced (it moved and could not be merged, or the working tree is dirty). */
  | { readonly _tag: "Refused"; readonly message: string }
  /** The run was made with `land: false`. */
  | { readonly _tag: "NotRequested" }
  /** An earlier stage stopped the run before landing. */
  | { readonly _tag: "NotReached" }

/** Every stage's outcome, and what the report needs besides. */
export interface Outcomes {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationMs: number
  /** The branch a landing advances. */
  readonly target: string
  readonly dispatch: Dispatch.DispatchOutcome
  /** Every file each stream's own attempts changed. */
  readonly changed: ReadonlyMap<string, ReadonlyArray<string>>
  readonly overlaps: ReadonlyArray<RunReport.Overlap>
  /** Undefined when dispatch halted the run before integration. */
  readonly integration: Conflicts.IntegrationOutcome | undefined
  /** Conflicts the run's integrations before a retry resolved (earlier generations' merges), oldest first. */
  readonly resolvedBefore?: ReadonlyArray<RunReport.ConflictRecord> | undefined
  /** Undefined when the integration did not complete. */
  readonly verification: RunReport.VerificationReport | undefined
  readonly landing: LandingOutcome
  /** The integration's folder, when it has one (for next steps). */
  readonly integrationDir: string | undefined
  /** What braid found in the repository that it had not recorded (a moved or deleted branch), and what it did. */
  readonly integrity?: ReadonlyArray<string> | undefined
}

const notRun = new RunReport.VerificationReport({ ran: false, passed: false, commit: null, checks: [], durationMs: 0 })

/** The run's status: the one place it is decided. */
export const status = (o: Outcomes): RunReport.RunStatus => {
  const tasks = o.dispatch.streams.flatMap((s) => s.results)
  if (o.integration?.stoppedAt?.outcome === "blocked") return "blocked"
  if (
    tasks.some((t) => t.status === "failed") || o.integration?.stoppedAt !== undefined ||
    (o.verification?.ran === true && !o.verification.passed) || o.landing._tag === "Refused"
  ) return "failed"
  if (tasks.some((t) => t.status !== "completed")) return "needs-review"
  return "succeeded"
}

/** Why nothing landed, if nothing did. */
export const reason = (o: Outcomes): string | undefined => {
  const tasks = o.dispatch.streams.flatMap((s) => s.results)
  const notCompleted = tasks.filter((t) => t.status !== "completed").length
  if (o.dispatch.halted !== undefined) return `not integrated: ${notCompleted} task(s) did not complete`
  const stopped = o.integration?.stoppedAt
  if (stopped !== undefined) return `integration stopped at stream ${stopped.stream} (conflict ${stopped.outcome})`
  if (o.verification?.ran === true && !o.verification.passed) return "integration verification failed"
  if (notCompleted > 0) return `${notCompleted} task(s) need review`
  if (o.landing._tag === "NotRequested") return "landing not requested (--no-land)"
  if (o.landing._tag === "Refused") return `landing refused: ${o.landing.message}`
  return undefined
}

/** The run's report, from its stages' outcomes. */
export const report = (o: Outcomes): RunReport.RunReport => {
  const streamResults = o.dispatch.streams.map((d) => {
    const results = d.results.map((t) => new RunReport.TaskResult({ ...t, usage: RunReport.usageOfTask(t) }, true))
    return new RunReport.StreamResult({
      streamName: d.stream.name,
      streamType: d.stream.type,
      role: Agent.roleOf(d.stream),
      agent: d.agent,
      results,
      changedFiles: o.changed.get(d.stream.name) ?? [],
      usage: RunReport.sumUsage(results.map((t) => t.usage!))
    }, true)
  })
  const tasks = streamResults.flatMap((s) => s.results)
  const count = (s: RunReport.TaskStatus) => tasks.filter((t) => t.status === s).length
  // Every conflict the run met once, with what resolving it cost: earlier integrations' too.
  const conflicts = [...o.resolvedBefore ?? [], ...o.integration?.conflicts ?? []]
  const verification = o.verification ?? notRun
  const landed = o.landing._tag === "Landed" ? o.landing.landing : undefined
  // A pull request is not a landing: the target moves when a person merges it.
  const landing = landed?.pullRequest === undefined ? landed : undefined
  const why = landed?.pullRequest !== undefined ? `awaiting pull request #${landed.pullRequest.number}: ${landed.pullRequest.url}` : reason(o)
  const run = status(o)
  const usage = RunReport.sumUsage([...streamResults.map((s) => s.usage!), RunReport.usageOfConflicts(conflicts)])

  const nextSteps: Array<string> = []
  for (const t of tasks) {
    if (t.status === "needs-review") {
      nextSteps.push(`Review task ${t.taskId}: it scored ${t.quality?.score ?? "–"} (< ${o.plan.qualityThreshold}) after ${t.attempts.length} attempts.`)
    }
    if (t.status === "failed") nextSteps.push(`Task ${t.taskId} failed: ${t.error ?? "unknown error"}.`)
  }
  for (const c of conflicts) if (c.outcome !== "resolved") nextSteps.push(`Conflict ${c.streams.join(" ↔ ")} (${c.outcome}): ${c.detail}`)
  if (verification.ran && !verification.passed && o.integrationDir) {
    nextSteps.push(`Verification failed: inspect the integration in ${o.integrationDir}.`)
  }
  if (landed?.pullRequest !== undefined) nextSteps.push(`Review and merge pull request #${landed.pullRequest.number}: ${landed.pullRequest.url}`)
  else if (landing === undefined && o.integration !== undefined && o.integration.stoppedAt === undefined && o.integrationDir) {
    // Its worktree goes when the run ends (unless kept); its branch stays until something lands.
    nextSteps.push(`The integrated result is on branch ${Landing.pullBranch(o.runId)}.`)
  }

  return new RunReport.RunReport({
    runId: o.runId,
    projectName: o.plan.projectName,
    featureName: o.plan.featureName,
    status: run,
    success: run === "succeeded",
    startedAt: o.startedAt,
    finishedAt: o.finishedAt,
    durationMs: o.durationMs,
    qualityThreshold: o.plan.qualityThreshold,
    maxParallel: o.plan.maxParallel,
    streamResults,
    conflictsFound: o.overlaps.length > 0 || conflicts.length > 0,
    conflictReport: new RunReport.ConflictReport({ overlaps: o.overlaps, conflicts }),
    integrationResult: verification,
    mergeResult: new RunReport.MergeResult({
      landed: landing !== undefined,
      target: landing?.target ?? o.target,
      commit: landing?.commit ?? null,
      previous: landing?.previous ?? null,
      mergedStreams: o.integration?.merged ?? [],
      ...(why !== undefined ? { reason: why } : {}),
      ...(landed?.pullRequest !== undefined ? { commit: landed.commit, previous: null } : {}),
      ...(landed?.mode !== undefined ? { mode: landed.mode } : {}),
      ...(landed?.remote !== undefined ? { remote: landed.remote } : {}),
      ...(landed?.pullRequest !== undefined ? { pullRequest: landed.pullRequest } : {})
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
    ...(o.plan.budget !== undefined
      ? {
        budget: new RunReport.BudgetReport({
          usd: o.plan.budget.usd ?? null,
          tokens: o.plan.budget.tokens ?? null,
          onExceeded: o.plan.budget.onExceeded ?? "finish",
          spentUsd: usage.costUsd,
          spentTokens: RunReport.tokensOf(usage)
        })
      }
      : {}),
    nextSteps,
    warnings: o.plan.warnings.map((w) => `${w.path}: ${w.message}`),
    integrity: [...(o.integrity ?? [])]
  })
}
