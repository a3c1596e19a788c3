/**
 * The typed outcomes of a run's stages, and the one pure function that turns them into the
 * run's status and its `RunReport`. The outcomes hold what the journal holds (`RunState`'s
 * records); the report is a projection of them — made here and nowhere else — whether they
 * come from a run that just ended or from the fold of its journal (`fromState`).
 *
 * @since 0.2.0
 */
import * as Agent from "../ports/Agent.js"
import type * as Attempt from "./Attempt.js"
import type * as Conflicts from "../pipeline/Conflicts.js"
import * as Dispatch from "../pipeline/Dispatch.js"
import * as Landing from "../pipeline/Landing.js"
import type * as Plan from "./Plan.js"
import * as RunReport from "../present/RunReport.js"
import type * as RunState from "./RunState.js"
import type * as Workspace from "../ports/Workspace.js"

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
  readonly resolvedBefore?: ReadonlyArray<RunState.ConflictRecord> | undefined
  /** Undefined when the integration did not complete. */
  readonly verification: RunState.VerificationRecord | undefined
  readonly landing: LandingOutcome
  /** The integration's folder, when it has one (for next steps). */
  readonly integrationDir: string | undefined
  /** What braid found in the repository that it had not recorded (a moved or deleted branch), and what it did. */
  readonly integrity?: ReadonlyArray<string> | undefined
  /** How the run's checkouts were made ready (`environment:`). */
  readonly environments?: ReadonlyArray<RunReport.EnvironmentRecord> | undefined
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

/** What an agent's tool reported, as the report shows it. */
export const agentRecord = (a: Attempt.AgentRecord): RunReport.AgentRecord => new RunReport.AgentRecord({ ...a }, true)

/** A journaled review, as the report shows it. */
export const quality = (r: RunState.ReviewRecord): RunReport.Quality => new RunReport.Quality({ ...r }, true)

/** A journaled attempt, as the report shows it: with its round when it was made in a retry round. */
export const attemptRecord = (a: RunState.AttemptRecord, round: number): RunReport.AttemptRecord => {
  const { agent, review, ...rest } = a
  return new RunReport.AttemptRecord({
    ...rest,
    review: review === null ? null : quality(review),
    ...(agent !== undefined ? { agent: agentRecord(agent) } : {}),
    ...(round > 0 ? { round } : {})
  }, true)
}

/** A journaled conflict, as the report shows it. */
export const conflictRecord = (c: RunState.ConflictRecord): RunReport.ConflictRecord => {
  const { agent, ...rest } = c
  return new RunReport.ConflictRecord({ ...rest, ...(agent !== undefined ? { agent: agentRecord(agent) } : {}) }, true)
}

/** A journaled verification, as the report shows it. */
export const verificationReport = (v: RunState.VerificationRecord): RunReport.VerificationReport =>
  new RunReport.VerificationReport({ ...v }, true)

/**
 * A task as the report shows it, from its latest round's journaled result and (a task run again
 * by `braid retry`) its rounds before: every attempt once, each with its round, the rounds'
 * conflicts and time added up, and what it all spent.
 */
export const taskResult = (
  latest: RunState.TaskRecord,
  rounds: Dispatch.TaskRounds | undefined,
  title: string = latest.title
): RunReport.TaskResult => {
  const round = rounds?.round ?? 0
  const earlier = rounds?.earlier ?? []
  const { attempts, conflicts: own, quality: last, ...rest } = latest
  const earlierAttempts = earlier.flatMap((s) => s.result.attempts.map((a) => attemptRecord(a, s.round)))
  const conflicts = [...earlier.flatMap((s) => s.result.conflicts ?? []), ...(own ?? [])].map(conflictRecord)
  const partial = {
    ...rest,
    title,
    quality: last === null ? null : quality(last),
    attempts: attempts.map((a) => attemptRecord(a, round)),
    durationMs: earlier.reduce((n, s) => n + s.result.durationMs, latest.durationMs),
    ...(conflicts.length > 0 ? { conflicts } : {}),
    ...(earlierAttempts.length > 0 ? { earlierAttempts } : {})
  }
  return new RunReport.TaskResult({ ...partial, usage: RunReport.usageOfTask(partial) }, true)
}

/** The run's report, from its stages' outcomes. */
export const report = (o: Outcomes): RunReport.RunReport => {
  const streamResults = o.dispatch.streams.map((d) => {
    const results = d.results.map((t) => taskResult(t, d.rounds.get(t.taskId), o.plan.tasks.get(t.taskId)?.title))
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
  const conflicts = [...o.resolvedBefore ?? [], ...o.integration?.conflicts ?? []].map(conflictRecord)
  const verification = o.verification === undefined ? notRun : verificationReport(o.verification)
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
    integrity: [...(o.integrity ?? [])],
    ...(o.environments !== undefined && o.environments.length > 0 ? { environments: [...o.environments] } : {})
  })
}

/** What the report needs besides the journal: what the repository and the run's services know. */
export interface Context {
  readonly plan: Plan.Plan
  /** The agent backend of each stream (the report names it). */
  readonly agents: ReadonlyMap<string, string>
  /** Every file each stream's own attempts changed. */
  readonly changed: ReadonlyMap<string, ReadonlyArray<string>>
  readonly overlaps: ReadonlyArray<RunReport.Overlap>
  readonly integrationDir?: string | undefined
  readonly integrity?: ReadonlyArray<string> | undefined
}

/**
 * The outcomes a run's journal holds, from its fold: every settled task in its latest round
 * with its rounds before, the current integration, the verification and the landing; the run
 * ends when its latest command finished. With `report`, the report is a projection of the fold.
 */
export const fromState = (state: RunState.RunState, context: Context): Outcomes => {
  const { plan } = context
  const started = state.started
  const finished = [...state.history].reverse().find((h) => h.value._tag === "Finished")?.value
  const finishedAt = (finished?._tag === "Finished" ? finished.at : undefined) ?? state.lastAt ?? started?.at ?? ""
  const startedAt = started?.at ?? state.startedAt ?? finishedAt
  const streams = plan.streams.map((stream): Dispatch.StreamOutcome => {
    const tasks = stream.tasks.flatMap((t) => {
      const task = state.tasks.get(t.id)
      return task?.settled === undefined ? [] : [task]
    })
    return {
      stream,
      agent: context.agents.get(stream.name) ?? "unknown",
      results: tasks.map((t) => t.settled!),
      rounds: new Map(tasks.filter((t) => t.round > 0).map((t) => [t.taskId, { round: t.round, earlier: t.earlier }]))
    }
  })
  const results = streams.flatMap((s) => s.results)
  const halted = results.map((r) => Dispatch.haltOf(plan, r).stream).find((h) => h !== undefined)
  const stopped = state.stopped
  const integration: Conflicts.IntegrationOutcome | undefined = halted !== undefined ? undefined : {
    merged: state.merged.map((m) => m.stream),
    conflicts: [...state.merged.flatMap((m) => m.conflict === null ? [] : [m.conflict]), ...(stopped !== undefined ? [stopped.conflict] : [])],
    stoppedAt: stopped === undefined ? undefined : { stream: stopped.stream, outcome: stopped.conflict.outcome === "blocked" ? "blocked" : "failed" }
  }
  const verification = integration?.stoppedAt === undefined ? state.verification : undefined
  const landing: LandingOutcome = state.landed !== undefined
    ? { _tag: "Landed", landing: state.landed }
    : state.landRefused !== undefined
    ? { _tag: "Refused", message: state.landRefused.message }
    : integration !== undefined && integration.stoppedAt === undefined && results.every((r) => r.status === "completed") &&
        (verification === undefined || !verification.ran || verification.passed)
    ? { _tag: "NotRequested" }
    : { _tag: "NotReached" }
  return {
    runId: started?.runId ?? "",
    plan,
    startedAt,
    finishedAt,
    durationMs: Math.max(0, Date.parse(finishedAt) - Date.parse(startedAt)),
    target: started?.target ?? "",
    dispatch: { streams, heads: new Map(), integrity: [], halted },
    changed: context.changed,
    overlaps: context.overlaps,
    integration,
    resolvedBefore: state.resolvedBefore,
    verification,
    landing,
    integrationDir: context.integrationDir,
    integrity: context.integrity,
    environments: state.environments
  }
}
