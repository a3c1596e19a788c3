/**
 * What a run journals through `Steps` (one tagged Schema per kind of step result or fact),
 * and the one fold of those entries into the run's state: `status`, `runs` and the resume
 * and retry commands read it; a running orchestrator replays the same entries step by step.
 * The journal's values are this module's own classes (and `Attempt`'s), not the report's:
 * the report is made from them (`RunOutcome`), so either can change without the other.
 *
 * @since 0.2.0
 */
import { Either, Schema } from "effect"
import * as Attempt from "./Attempt.js"
import * as Budget from "../pipeline/Budget.js"
import * as Plan from "./Plan.js"
import * as Review from "../ports/Review.js"
import * as RunReport from "../present/RunReport.js"
import type * as Steps from "../ports/Steps.js"
import * as Workspace from "../ports/Workspace.js"

/** The attempt as journaled before its review (`…/attempt/<n>`), and what its agent's tool reported. */
export { AgentRecord, AttemptDone } from "./Attempt.js"

/**
 * How the engine makes the records it builds from values already typed (`new Settled(…,
 * unchecked)`): without Schema checking each field again when made. The journal encodes, and so
 * checks, every record it keeps; at thousands of tasks the checks on making were a sixth of the
 * engine's time.
 *
 * @since 0.4.0
 */
export const unchecked = { disableValidation: true } as const

/** Step `run`: what the workspace found when the run started. */
export class Started extends Schema.TaggedClass<Started>()("Started", {
  runId: Schema.String,
  base: Schema.String,
  target: Schema.String,
  targetAt: Schema.String,
  streams: Schema.Array(Schema.String),
  tasks: Schema.Number,
  at: Schema.String
}) {}

/** A review as journaled: the engine's `passes` beside the reviewer's score (what the next attempt is given). */
export class ReviewRecord extends Schema.Class<ReviewRecord>("ReviewRecord")({
  score: Schema.Number,
  passes: Schema.Boolean,
  issues: Schema.Array(Schema.String),
  suggestions: Schema.Array(Schema.String),
  reviewer: Schema.String,
  /** A judge's issues with their severity and file (absent in older journals). */
  findings: Schema.optionalWith(Schema.Array(Review.Finding), { default: () => [] }),
  /** Every answer of a judge (absent in older journals). */
  samples: Schema.optionalWith(Schema.Array(Review.JudgeSample), { default: () => [] })
}) {}

/** A reviewer's review as the journal keeps it: whether it passes is the engine's, decided here. */
export const reviewRecord = (review: Review.Review, threshold: number): ReviewRecord =>
  new ReviewRecord({
    score: review.score,
    passes: Review.passes(review, threshold),
    issues: review.issues,
    suggestions: review.suggestions,
    reviewer: review.reviewer,
    findings: review.findings,
    samples: review.samples
  })

/** One reviewed (or failed) attempt of a task, as a settled task's result journals it. */
export class AttemptRecord extends Schema.Class<AttemptRecord>("AttemptRecord")({
  attempt: Schema.Number,
  startedAt: Schema.String,
  /** The attempt's time and its review's. */
  durationMs: Schema.Number,
  summary: Schema.String,
  commit: Schema.NullOr(Schema.String),
  changedFiles: Schema.Array(Schema.String),
  /** Null: the attempt failed before it could be reviewed. */
  review: Schema.NullOr(ReviewRecord),
  inputTokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  outputTokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  costUsd: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  agent: Schema.optional(Attempt.AgentRecord),
  /** Read from journals that marked it; braid journals a round's attempts without it (their round is the step's). */
  round: Schema.optional(Schema.Number)
}) {}

/** How a task's round ended. */
export const TaskStatus = Schema.Literal("completed", "needs-review", "failed", "skipped")
export type TaskStatus = typeof TaskStatus.Type

/** Where a conflict was met, and how it was settled, as journaled. */
export class ConflictRecord extends Schema.Class<ConflictRecord>("ConflictRecord")({
  /** The stream being merged, then the integrated streams it conflicts with (dependency: the stream, then the dependency's). */
  streams: Schema.Array(Schema.String),
  paths: Schema.Array(Schema.String),
  strategy: Plan.ConflictStrategy,
  outcome: Schema.Literal("resolved", "blocked", "failed"),
  commit: Schema.NullOr(Schema.String),
  detail: Schema.String,
  /** Absent: integration. */
  kind: Schema.optional(Schema.Literal("integration", "dependency")),
  /** The resolver that settled it, under the `agent` strategy. */
  resolver: Schema.optional(Schema.String),
  /** What the resolving agent said. */
  said: Schema.optional(Schema.String),
  /** The resolving agent's session, tokens and cost. */
  agent: Schema.optional(Attempt.AgentRecord)
}) {}

/** A task's result in one round, as journaled (`Settled`, and a cluster runner's `TaskDone`). Made by `taskRecord`. */
export class TaskRecord extends Schema.Class<TaskRecord>("TaskRecord")({
  taskId: Schema.String,
  title: Schema.String,
  /** The latest attempt's summary. */
  result: Schema.String,
  /** The latest attempt's review. */
  quality: Schema.NullOr(ReviewRecord),
  /** Refinements after the first attempt. */
  qualityIterations: Schema.Number,
  status: TaskStatus,
  /** The round's attempts. */
  attempts: Schema.Array(AttemptRecord),
  /** Why the task failed or was skipped. */
  error: Schema.optional(Schema.String),
  /** The round's time. */
  durationMs: Schema.Number,
  /** Conflicts met bringing in the work of the tasks it depends on, and how each was settled. */
  conflicts: Schema.optional(Schema.Array(ConflictRecord))
}) {}

/** A verification of an integration commit, as journaled. */
export class VerificationRecord extends Schema.Class<VerificationRecord>("VerificationRecord")({
  ran: Schema.Boolean,
  passed: Schema.Boolean,
  commit: Schema.NullOr(Schema.String),
  checks: Schema.Array(Workspace.CommandResult),
  durationMs: Schema.Number
}) {}

/** How a run's command ended. */
export const Status = Schema.Literal("succeeded", "needs-review", "failed", "blocked", "interrupted")
export type Status = typeof Status.Type

/**
 * A task's result in a round: the one place one is made, from the round's recorded attempts
 * and how the round ended. `quality`, `result` and `qualityIterations` come from the attempts.
 */
export const taskRecord = (input: {
  readonly task: { readonly id: string; readonly title: string }
  readonly attempts: ReadonlyArray<AttemptRecord>
  readonly status: TaskStatus
  readonly durationMs: number
  readonly error?: string | undefined
  readonly conflicts?: ReadonlyArray<ConflictRecord> | undefined
}): TaskRecord =>
  new TaskRecord({
    taskId: input.task.id,
    title: input.task.title,
    result: input.attempts.at(-1)?.summary ?? "",
    quality: input.attempts.at(-1)?.review ?? null,
    qualityIterations: Math.max(0, input.attempts.length - 1),
    status: input.status,
    attempts: input.attempts,
    ...(input.error !== undefined ? { error: input.error } : {}),
    durationMs: input.durationMs,
    ...(input.conflicts !== undefined && input.conflicts.length > 0 ? { conflicts: input.conflicts } : {})
    // Built from typed values, so not validated again: with classes among its fields,
    // Schema compiles a fresh validator on every construction (~120 µs a task).
  }, true)

/** Step `…/attempt/<n>/review`: the attempt's review. */
export class Reviewed extends Schema.TaggedClass<Reviewed>()("Reviewed", {
  stream: Schema.String,
  taskId: Schema.String,
  round: Schema.Number,
  attempt: Schema.Number,
  quality: ReviewRecord,
  durationMs: Schema.Number
}) {}

/** Fact `…/attempt/<n>/session`: the session an agent opened, recorded before its process starts. */
export class SessionNoted extends Schema.TaggedClass<SessionNoted>()("SessionNoted", {
  stream: Schema.String,
  taskId: Schema.String,
  round: Schema.Number,
  attempt: Schema.Number,
  sessionId: Schema.String
}) {}

/** Fact `…/attempt/<n>/process/<pid>`: a process an agent started (ended by `resume` if braid died). */
export class ProcessNoted extends Schema.TaggedClass<ProcessNoted>()("ProcessNoted", {
  stream: Schema.String,
  taskId: Schema.String,
  round: Schema.Number,
  attempt: Schema.Number,
  pid: Schema.Number,
  startTime: Schema.String,
  command: Schema.String
}) {}

/** Fact `stream/<s>/task/<t>[/retry/<r>]/started`: the task got its agent slot (the timeline's waits end here). */
export class TaskStarted extends Schema.TaggedClass<TaskStarted>()("TaskStarted", {
  stream: Schema.String,
  taskId: Schema.String,
  round: Schema.Number,
  at: Schema.String
}) {}

/** Step `stream/<s>/task/<t>[/retry/<r>]`: the task's result for that round, and the stream head it left. */
export class Settled extends Schema.TaggedClass<Settled>()("Settled", {
  stream: Schema.String,
  round: Schema.Number,
  result: TaskRecord,
  head: Schema.NullOr(Schema.String)
}) {}

/** Step `integration/<g>/merge/<s>`: the stream is in the integration at `commit`. */
export class Merged extends Schema.TaggedClass<Merged>()("Merged", {
  generation: Schema.Number,
  stream: Schema.String,
  commit: Schema.String,
  conflict: Schema.NullOr(ConflictRecord)
}) {}

/** Fact `integration/<g>/merge/<s>/stopped`: a conflict stopped the integration (left for a person, or not resolved). */
export class Stopped extends Schema.TaggedClass<Stopped>()("Stopped", {
  generation: Schema.Number,
  stream: Schema.String,
  conflict: ConflictRecord
}) {}

/**
 * Step `integration/<g>/merge/<s>/resolve` (or `<task>/absorb/<dependency>/resolve`): a conflict
 * a resolver settled, with the resolved text of every conflicted file, so a continued run
 * writes it again instead of asking the resolver (its agent) a second time.
 */
export class Resolved extends Schema.TaggedClass<Resolved>()("Resolved", {
  paths: Schema.Array(Schema.String),
  /** Each conflicted file as resolved (null: the resolution removed it). */
  files: Schema.Array(Schema.Struct({ path: Schema.String, content: Schema.NullOr(Schema.String) })),
  resolver: Schema.String,
  summary: Schema.String,
  agent: Schema.NullOr(Attempt.AgentRecord)
}) {}

/** Step `integration/<g>/verify/<commit>`: verification of that integration commit. */
export class Verified extends Schema.TaggedClass<Verified>()("Verified", {
  generation: Schema.Number,
  report: VerificationRecord
}) {}

/** Step `stream/<stream>/environment/<checkout>`: a checkout was made ready (`environment:`). */
export class EnvironmentReady extends Schema.TaggedClass<EnvironmentReady>()("EnvironmentReady", {
  record: RunReport.EnvironmentRecord
}) {}

/** Step `land/<commit>`: the commit landed on the target. */
export class Landed extends Schema.TaggedClass<Landed>()("Landed", {
  landing: Workspace.Landing
}) {}

/** Fact `land/refused`: the latest landing was refused, and why. */
export class LandingRefused extends Schema.TaggedClass<LandingRefused>()("LandingRefused", {
  commit: Schema.String,
  message: Schema.String
}) {}

/** Fact `retry/<r>`: a person asked for these tasks to be run again, with a note. */
export class RetryRequested extends Schema.TaggedClass<RetryRequested>()("RetryRequested", {
  round: Schema.Number,
  tasks: Schema.Array(Schema.String),
  note: Schema.NullOr(Schema.String),
  at: Schema.String
}) {}

/** Fact `land/requested`: a person asked for the run to land (`braid land`), whatever it was started with. */
export class LandRequested extends Schema.TaggedClass<LandRequested>()("LandRequested", {
  at: Schema.String
}) {}

/** Fact `run/finished`: the status the run's latest command ended with. */
export class Finished extends Schema.TaggedClass<Finished>()("Finished", {
  status: Status,
  at: Schema.String
}) {}

/** Fact `run/interrupted`: the run was stopped (signal, usage limit) and can be continued. */
export class Interrupted extends Schema.TaggedClass<Interrupted>()("Interrupted", {
  reason: Schema.String,
  at: Schema.String
}) {}

/** Fact `budget`: the run's budget as last set (`braid resume --budget`), over the plan's and the run's options. */
export class BudgetSet extends Schema.TaggedClass<BudgetSet>()("BudgetSet", {
  usd: Schema.NullOr(Schema.Number),
  tokens: Schema.NullOr(Schema.Number),
  at: Schema.String
}) {}

/** Every kind of journal value. */
export const Value = Schema.Union(
  Started,
  Attempt.AttemptDone,
  Reviewed,
  SessionNoted,
  ProcessNoted,
  TaskStarted,
  Settled,
  Merged,
  Stopped,
  Resolved,
  Verified,
  Landed,
  LandingRefused,
  RetryRequested,
  LandRequested,
  Finished,
  Interrupted,
  BudgetSet,
  EnvironmentReady
)
export type Value = typeof Value.Type

/** Step and fact keys, in one place. */
export const keys = {
  run: "run",
  finished: "run/finished",
  interrupted: "run/interrupted",
  retry: (round: number) => `retry/${round}`,
  landRequested: "land/requested",
  landRefused: "land/refused",
  budget: "budget",
  task: (stream: string, taskId: string, round: number) =>
    `stream/${stream}/task/${taskId}${round > 0 ? `/retry/${round}` : ""}`,
  taskStarted: (task: string) => `${task}/started`,
  attempt: (task: string, attempt: number) => `${task}/attempt/${attempt}`,
  review: (task: string, attempt: number) => `${task}/attempt/${attempt}/review`,
  session: (task: string, attempt: number) => `${task}/attempt/${attempt}/session`,
  process: (task: string, attempt: number, pid: number) => `${task}/attempt/${attempt}/process/${pid}`,
  merge: (generation: number, stream: string) => `integration/${generation}/merge/${stream}`,
  stopped: (generation: number, stream: string) => `integration/${generation}/merge/${stream}/stopped`,
  resolution: (generation: number, stream: string) => `integration/${generation}/merge/${stream}/resolve`,
  /** A conflict met bringing a dependency's work into the task's stream, resolved. */
  absorbResolution: (task: string, dependency: string) => `${task}/absorb/${dependency}/resolve`,
  verify: (generation: number, commit: string) => `integration/${generation}/verify/${commit}`,
  /** A checkout's environment, once per checkout (`checkout`: the folder's identity); a null stream is the integration's. */
  environment: (stream: string | null, checkout: string) => stream === null ? `integration/environment/${checkout}` : `stream/${stream}/environment/${checkout}`,
  land: (commit: string) => `land/${commit}`
} as const

/** A process an agent started, as journaled. */
export interface AgentProcessRecord {
  readonly stream: string
  readonly taskId: string
  readonly attempt: number
  readonly pid: number
  readonly startTime: string
  readonly command: string
}

/** One task as the journal has it, in its latest round. */
export interface TaskState {
  readonly taskId: string
  readonly stream: string
  readonly round: number
  /** Reviewed attempts of the round. */
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** An attempt committed but not reviewed. */
  readonly awaitingReview: number | undefined
  /** An attempt started (a session or process noted) but not committed: cut off. */
  readonly cutOff: number | undefined
  /** The round's result, once settled. */
  readonly settled: TaskRecord | undefined
  /** The task's settled rounds before its latest (a task run again by `braid retry`), oldest first. */
  readonly earlier: ReadonlyArray<Settled>
}

/** A run's state, folded from its journal. */
export interface RunState {
  readonly started: Started | undefined
  readonly tasks: ReadonlyMap<string, TaskState>
  readonly retries: ReadonlyArray<RetryRequested>
  /** The integration generation: one more for every retry. */
  readonly generation: number
  /** Streams merged in the current generation, in order. */
  readonly merged: ReadonlyArray<Merged>
  /** Conflicts the integrations of earlier generations (before a retry) resolved, oldest first. */
  readonly resolvedBefore: ReadonlyArray<ConflictRecord>
  /** The conflict that stopped the current generation's integration, if it has not been merged since. */
  readonly stopped: Stopped | undefined
  /** The latest verification. */
  readonly verification: VerificationRecord | undefined
  readonly landed: Workspace.Landing | undefined
  readonly landRefused: LandingRefused | undefined
  readonly landRequested: boolean
  /** The status the latest command ended with, unless something happened after it. */
  readonly finished: Status | undefined
  readonly interrupted: string | undefined
  /** Agent processes of attempts that were not committed (what `resume` ends if they outlived braid). */
  readonly processes: ReadonlyArray<AgentProcessRecord>
  readonly progress: { readonly settled: number; readonly total: number }
  /** What every attempt of every round spent, per `Budget.attemptId` (what the run's budget counts). */
  readonly spent: ReadonlyMap<string, { readonly usd: number; readonly tokens: number }>
  /** The budget a person set on the run last (`braid resume --budget`), if any. */
  readonly budget: BudgetSet | undefined
  /** How each checkout was made ready, in order (`environment:`). */
  readonly environments: ReadonlyArray<RunReport.EnvironmentRecord>
  readonly startedAt: string | undefined
  readonly lastAt: string | undefined
  /** Every braid entry of the journal, decoded, in order, with when it was written (the timeline's input). */
  readonly history: ReadonlyArray<{ readonly at: string | undefined; readonly value: Value }>
}

const decodeValue = Schema.decodeUnknownEither(Value)

/** A journal entry as the fold needs it (`at`: when it was written, if known). */
export interface FoldEntry extends Steps.Entry {
  readonly at?: string | undefined
}

/** Folds journal entries into the run's state (entries that are not braid values are skipped). */
export const fold = (entries: ReadonlyArray<FoldEntry>): RunState => {
  let started: Started | undefined
  const history: Array<{ readonly at: string | undefined; readonly value: Value }> = []
  const retries: Array<RetryRequested> = []
  const attempts = new Map<string, Map<number, Attempt.AttemptDone>>()
  const reviews = new Map<string, Map<number, Reviewed>>()
  const notes = new Map<string, Map<number, Array<ProcessNoted>>>()
  const noted = new Map<string, number>()
  const settled = new Map<string, Settled>()
  const roundsOf = new Map<string, Array<Settled>>()
  const roundOf = new Map<string, { stream: string; round: number }>()
  const merges: Array<Merged> = []
  const stops: Array<Stopped> = []
  let verification: VerificationRecord | undefined
  let landed: Workspace.Landing | undefined
  let landRefused: LandingRefused | undefined
  let landRequested = false
  let finished: Status | undefined
  let interrupted: string | undefined
  let budget: BudgetSet | undefined
  const environments: Array<RunReport.EnvironmentRecord> = []
  const spent = new Map<string, { readonly usd: number; readonly tokens: number }>()
  const spend = (round: number, taskId: string, a: Attempt.AttemptDone) => spent.set(Budget.attemptId(round, taskId, a.attempt), Budget.spendOf(a))
  const id = (taskId: string, round: number) => `${round}/${taskId}`
  const touch = (taskId: string, stream: string, round: number) => {
    const known = roundOf.get(taskId)
    if (known === undefined || known.round < round) roundOf.set(taskId, { stream, round })
  }

  for (const entry of entries) {
    const decoded = decodeValue(entry.value)
    if (Either.isLeft(decoded)) continue
    const v = decoded.right
    history.push({ at: entry.at, value: v })
    // Anything journaled after the run finished means a later command continued it.
    if (v._tag !== "Finished") finished = undefined
    if (v._tag !== "Interrupted" && v._tag !== "Finished") interrupted = undefined
    switch (v._tag) {
      case "Started":
        started = v
        break
      case "AttemptDone": {
        const k = id(v.taskId, v.round)
        ;(attempts.get(k) ?? attempts.set(k, new Map()).get(k)!).set(v.attempt, v)
        touch(v.taskId, v.stream, v.round)
        spend(v.round, v.taskId, v)
        break
      }
      case "Reviewed": {
        const k = id(v.taskId, v.round)
        ;(reviews.get(k) ?? reviews.set(k, new Map()).get(k)!).set(v.attempt, v)
        break
      }
      case "SessionNoted":
      case "ProcessNoted": {
        const k = id(v.taskId, v.round)
        noted.set(k, Math.max(noted.get(k) ?? 0, v.attempt))
        touch(v.taskId, v.stream, v.round)
        if (v._tag === "ProcessNoted") {
          const byAttempt = notes.get(k) ?? notes.set(k, new Map()).get(k)!
          ;(byAttempt.get(v.attempt) ?? byAttempt.set(v.attempt, []).get(v.attempt)!).push(v)
        }
        break
      }
      case "Settled":
        settled.set(id(v.result.taskId, v.round), v)
        ;(roundsOf.get(v.result.taskId) ?? roundsOf.set(v.result.taskId, []).get(v.result.taskId)!).push(v)
        touch(v.result.taskId, v.stream, v.round)
        Budget.countSettled(v.round, v.result, (key, s) => void spent.set(key, s))
        break
      case "Merged":
        merges.push(v)
        break
      case "Stopped":
        stops.push(v)
        break
      case "Verified":
        verification = v.report
        break
      case "Landed":
        landed = v.landing
        landRefused = undefined
        break
      case "LandingRefused":
        landRefused = v
        break
      case "RetryRequested":
        retries.push(v)
        for (const t of v.tasks) {
          const known = roundOf.get(t)
          roundOf.set(t, { stream: known?.stream ?? "", round: Math.max(known?.round ?? 0, v.round) })
        }
        break
      case "LandRequested":
        landRequested = true
        break
      case "Finished":
        finished = v.status
        break
      case "Interrupted":
        interrupted = v.reason
        break
      case "BudgetSet":
        budget = v
        break
      case "EnvironmentReady":
        environments.push(v.record)
        break
    }
  }

  const generation = retries.reduce((g, r) => Math.max(g, r.round), 0)
  const tasks = new Map<string, TaskState>()
  const processes: Array<AgentProcessRecord> = []
  for (const [taskId, { round, stream }] of roundOf) {
    const k = id(taskId, round)
    const done = attempts.get(k) ?? new Map<number, Attempt.AttemptDone>()
    const reviewed = reviews.get(k) ?? new Map<number, Reviewed>()
    const records = [...reviewed.values()].sort((a, b) => a.attempt - b.attempt).flatMap((r) => {
      const a = done.get(r.attempt)
      return a === undefined ? [] : [attemptRecord(a, r)]
    })
    const lastDone = Math.max(0, ...done.keys())
    const lastNoted = noted.get(k) ?? 0
    const result = settled.get(k)
    for (const [attempt, list] of notes.get(k) ?? []) {
      if (!done.has(attempt)) {
        processes.push(
          ...list.map((p) => ({ stream: p.stream, taskId, attempt: p.attempt, pid: p.pid, startTime: p.startTime, command: p.command }))
        )
      }
    }
    tasks.set(taskId, {
      taskId,
      stream: result?.stream ?? (stream !== "" ? stream : [...done.values()][0]?.stream ?? ""),
      round,
      attempts: result?.result.attempts ?? records,
      awaitingReview: result === undefined && lastDone > 0 && !reviewed.has(lastDone) ? lastDone : undefined,
      cutOff: result === undefined && lastNoted > lastDone ? lastNoted : undefined,
      settled: result?.result,
      earlier: (roundsOf.get(taskId) ?? []).filter((s) => s.round < round).sort((a, b) => a.round - b.round)
    })
  }
  const current = merges.filter((m) => m.generation === generation)
  const stop = stops.filter((s) => s.generation === generation).at(-1)
  return {
    started,
    tasks,
    retries,
    generation,
    merged: current,
    resolvedBefore: merges.filter((m) => m.generation < generation && m.conflict !== null)
      .sort((a, b) => a.generation - b.generation).map((m) => m.conflict!),
    stopped: stop !== undefined && !current.some((m) => m.stream === stop.stream) ? stop : undefined,
    verification,
    landed,
    landRefused,
    landRequested,
    finished,
    interrupted,
    processes,
    progress: { settled: [...tasks.values()].filter((t) => t.settled !== undefined).length, total: started?.tasks ?? 0 },
    spent,
    budget,
    environments,
    startedAt: started?.at ?? entries[0]?.at,
    lastAt: entries.at(-1)?.at,
    history
  }
}

/** The record of a reviewed attempt, from its journaled commit and review. */
export const attemptRecord = (done: Attempt.AttemptDone, review: Reviewed): AttemptRecord =>
  new AttemptRecord({
    attempt: done.attempt,
    startedAt: done.startedAt,
    durationMs: done.durationMs + review.durationMs,
    summary: done.summary,
    commit: done.commit,
    changedFiles: done.files,
    review: review.quality,
    inputTokens: done.inputTokens,
    outputTokens: done.outputTokens,
    costUsd: done.costUsd,
    ...(done.agent !== null ? { agent: done.agent } : {})
  }, true)
