/**
 * Replays a run's journal into the state a resumed run continues from. Records map to
 * steps by their meaning (task ids, attempt numbers, stream names), so replay is exact
 * whatever order the streams happened to interleave in.
 *
 * @since 0.1.0
 */
import type * as Journal from "./Journal.js"
import * as RunReport from "./RunReport.js"
import * as Workspace from "./Workspace.js"

/** An attempt whose commit is recorded but whose review is not. */
export interface PendingReview {
  readonly attempt: number
  readonly startedAt: string
  readonly change: Workspace.AttemptChange
  readonly summary: string
  readonly agent: RunReport.AgentRecord | undefined
}

/** A process an agent started, as journaled (ended by `braid resume` if it outlived braid). */
export interface AgentProcessRecord {
  readonly stream: string
  readonly taskId: string
  readonly attempt: number
  readonly pid: number
  readonly startTime: string
  readonly command: string
}

/** What the journal says a run had done. */
export interface State {
  readonly started: { readonly runId: string; readonly base: string; readonly target: string; readonly targetAt: string } | undefined
  /** Settled tasks, with every attempt. */
  readonly settled: ReadonlyMap<string, RunReport.TaskResult>
  /** The stream head each settled task left (what dependents bring in). */
  readonly settledAt: ReadonlyMap<string, string>
  /** Reviewed attempts of tasks that had not settled. */
  readonly recorded: ReadonlyMap<string, ReadonlyArray<RunReport.AttemptRecord>>
  /** Attempts committed but not reviewed. */
  readonly pending: ReadonlyMap<string, PendingReview>
  /** Attempts started but not finished: task id → attempt number. */
  readonly inFlight: ReadonlyMap<string, number>
  /** The latest session each unsettled task's agent noted. */
  readonly sessions: ReadonlyMap<string, string>
  /** Agent processes of attempts that had not finished when the journal ends. */
  readonly processes: ReadonlyArray<AgentProcessRecord>
  readonly merged: ReadonlyArray<{ readonly stream: string; readonly commit: string }>
  readonly conflicts: ReadonlyArray<RunReport.ConflictRecord>
  readonly verification: RunReport.VerificationReport | undefined
  readonly landed: Workspace.Landing | undefined
  /** The status the run finished with, if it did. */
  readonly finished: string | undefined
  readonly interrupted: boolean
  /** Tasks settled / all tasks the run started with. */
  readonly progress: { readonly settled: number; readonly total: number }
  readonly startedAt: string | undefined
  readonly lastAt: string | undefined
}

interface AttemptDraft {
  startedAt: string
  finished?: { commit: string | null; files: ReadonlyArray<string>; summary: string; agent: RunReport.AgentRecord | undefined }
  processes: Array<AgentProcessRecord>
  review?: RunReport.AttemptRecord
}

/** Rebuilds the run's state from its journal records. */
export const replay = (records: ReadonlyArray<Journal.Record>): State => {
  let started: State["started"]
  let total = 0
  const attempts = new Map<string, Map<number, AttemptDraft>>()
  const settled = new Map<string, RunReport.TaskResult>()
  const settledAt = new Map<string, string>()
  const merged: Array<{ stream: string; commit: string }> = []
  const conflicts: Array<RunReport.ConflictRecord> = []
  let verification: RunReport.VerificationReport | undefined
  let landed: Workspace.Landing | undefined
  let finished: string | undefined
  let interrupted = false
  const sessions = new Map<string, string>()
  const draftsOf = (taskId: string) => attempts.get(taskId) ?? attempts.set(taskId, new Map()).get(taskId)!
  const reviewed = (taskId: string) =>
    [...draftsOf(taskId).entries()].sort(([a], [b]) => a - b).flatMap(([, d]) => d.review ? [d.review] : [])

  for (const { event } of records) {
    switch (event._tag) {
      case "RunStarted":
        started = { runId: event.runId, base: event.base, target: event.target, targetAt: event.targetAt }
        total = event.tasks
        interrupted = false
        break
      case "AttemptStarted": {
        // A re-run of an attempt cut off earlier replaces it.
        draftsOf(event.taskId).set(event.attempt, { startedAt: event.at, processes: [] })
        break
      }
      case "AttemptFinished": {
        const d = draftsOf(event.taskId).get(event.attempt) ?? { startedAt: event.at, processes: [] }
        d.finished = { commit: event.commit, files: event.files, summary: event.summary, agent: event.agent }
        draftsOf(event.taskId).set(event.attempt, d)
        break
      }
      case "ReviewRecorded": {
        const d = draftsOf(event.taskId).get(event.attempt)
        if (d?.finished === undefined) break
        d.review = new RunReport.AttemptRecord({
          attempt: event.attempt,
          startedAt: d.startedAt,
          durationMs: event.durationMs,
          summary: d.finished.summary,
          commit: d.finished.commit,
          changedFiles: d.finished.files,
          review: new RunReport.Quality({
            score: event.score,
            passes: event.passes,
            issues: event.issues,
            suggestions: event.suggestions,
            reviewer: event.reviewer
          }),
          inputTokens: event.inputTokens,
          outputTokens: event.outputTokens,
          costUsd: event.costUsd,
          ...(d.finished.agent !== undefined ? { agent: d.finished.agent } : {})
        })
        break
      }
      case "AgentSession":
        sessions.set(event.taskId, event.sessionId)
        break
      case "AgentProcess":
        draftsOf(event.taskId).get(event.attempt)?.processes.push({
          stream: event.stream,
          taskId: event.taskId,
          attempt: event.attempt,
          pid: event.pid,
          startTime: event.startTime,
          command: event.command
        })
        break
      case "TaskSettled": {
        const list = reviewed(event.taskId)
        settled.set(
          event.taskId,
          new RunReport.TaskResult({
            taskId: event.taskId,
            // The journal keeps ids; the resumed run puts the plan's titles back.
            title: event.taskId,
            result: list.at(-1)?.summary ?? "",
            quality: list.at(-1)?.review ?? null,
            qualityIterations: Math.max(0, list.length - 1),
            status: event.status,
            attempts: list,
            ...(event.error !== null ? { error: event.error } : {}),
            durationMs: event.durationMs
          })
        )
        if (event.head !== null) settledAt.set(event.taskId, event.head)
        break
      }
      case "StreamMerged":
        merged.push({ stream: event.stream, commit: event.commit })
        break
      case "ConflictSettled":
        conflicts.push(
          new RunReport.ConflictRecord({
            streams: event.streams,
            paths: event.paths,
            strategy: event.strategy,
            outcome: event.outcome,
            commit: event.commit,
            detail: event.detail
          })
        )
        break
      case "VerificationFinished":
        verification = new RunReport.VerificationReport({
          ran: event.checks.length > 0,
          passed: event.passed,
          commit: event.commit,
          checks: event.checks,
          durationMs: event.checks.reduce((sum, c) => sum + c.durationMs, 0)
        })
        break
      case "Landed":
        landed = new Workspace.Landing({ target: event.target, commit: event.commit, previous: event.previous, fastForward: true })
        break
      case "RunFinished":
        finished = event.status
        break
      case "RunInterrupted":
        interrupted = true
        break
      default:
        break
    }
  }

  const recorded = new Map<string, ReadonlyArray<RunReport.AttemptRecord>>()
  const pending = new Map<string, PendingReview>()
  const inFlight = new Map<string, number>()
  const processes: Array<AgentProcessRecord> = []
  for (const [taskId, drafts] of attempts) {
    for (const d of drafts.values()) if (d.finished === undefined) processes.push(...d.processes)
    if (settled.has(taskId)) {
      sessions.delete(taskId)
      continue
    }
    recorded.set(taskId, reviewed(taskId))
    const last = [...drafts.keys()].sort((a, b) => a - b).at(-1)
    if (last === undefined) continue
    const d = drafts.get(last)!
    if (d.review !== undefined) continue
    if (d.finished !== undefined) {
      pending.set(taskId, {
        attempt: last,
        startedAt: d.startedAt,
        change: new Workspace.AttemptChange({ commit: d.finished.commit, files: d.finished.files }),
        summary: d.finished.summary,
        agent: d.finished.agent
      })
    } else inFlight.set(taskId, last)
  }
  return {
    started,
    settled,
    settledAt,
    recorded,
    pending,
    inFlight,
    sessions,
    processes,
    merged,
    conflicts,
    verification,
    landed,
    finished,
    interrupted,
    progress: { settled: settled.size, total },
    startedAt: records[0]?.event.at,
    lastAt: records.at(-1)?.event.at
  }
}
