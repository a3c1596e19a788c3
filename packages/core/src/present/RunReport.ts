/**
 * The result of a run: the seed's output fields (`success`, `streamResults`,
 * `integrationResult`, `mergeResult`, `conflictsFound`, `summary`) plus every attempt,
 * the conflict report, the verification report and durations. Encoded as JSON, rendered
 * as Markdown.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Document from "./Document.js"
import * as LandingMode from "../pipeline/LandingMode.js"
import * as Plan from "../run/Plan.js"
import * as Review from "../ports/Review.js"
import * as Secrets from "../system/Secrets.js"
import * as Workspace from "../ports/Workspace.js"

/** A review as recorded: the engine's `passes` beside the reviewer's score. */
export class Quality extends Schema.Class<Quality>("Quality")({
  score: Schema.Number,
  passes: Schema.Boolean,
  issues: Schema.Array(Schema.String),
  suggestions: Schema.Array(Schema.String),
  reviewer: Schema.String,
  /** A judge's issues with their severity and file. */
  findings: Schema.optionalWith(Schema.Array(Review.Finding), { default: () => [] }),
  /** Every answer of the judge (three when the first landed near the threshold; the score is their median). */
  samples: Schema.optionalWith(Schema.Array(Review.JudgeSample), { default: () => [] })
}) {}

/** Where a cost comes from: reported by the agent's tool (`tool`), or priced from braid's table and `prices` (`table`). */
export const CostSource = Schema.Literal("tool", "table")
export type CostSource = typeof CostSource.Type

/** What an agent's tool reported about one attempt, where it reports it. */
export class AgentRecord extends Schema.Class<AgentRecord>("AgentRecord")({
  /** The backend that ran the attempt. */
  backend: Schema.String,
  sessionId: Schema.NullOr(Schema.String),
  turns: Schema.NullOr(Schema.Number),
  model: Schema.NullOr(Schema.String),
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  cacheReadTokens: Schema.Number,
  cacheWriteTokens: Schema.Number,
  /** USD; null when neither the tool nor the price table gives one. */
  costUsd: Schema.NullOr(Schema.Number),
  durationMs: Schema.NullOr(Schema.Number),
  /** Tool calls the tool refused: fed back to the next attempt. */
  permissionDenials: Schema.Array(Schema.String),
  /** Transient provider errors the attempt waited out (none of them used a gate run). */
  providerWaits: Schema.Number,
  /** Whether `costUsd` was measured by the tool or priced from the table (absent: no cost). Tokens are always the tool's. */
  costSource: Schema.optional(CostSource),
  /** Whether its processes ran confined by the operating system (`--sandbox`). */
  confined: Schema.optional(Schema.Boolean)
}) {}

/** One attempt of a task and its review. */
export class AttemptRecord extends Schema.Class<AttemptRecord>("AttemptRecord")({
  attempt: Schema.Number,
  startedAt: Schema.String,
  durationMs: Schema.Number,
  summary: Schema.String,
  commit: Schema.NullOr(Schema.String),
  changedFiles: Schema.Array(Schema.String),
  review: Schema.NullOr(Quality),
  inputTokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  outputTokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  costUsd: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /** Session, turns, tokens, cost, model and denials as the agent's tool reported them. */
  agent: Schema.optional(AgentRecord),
  /** The retry round the attempt was made in (`braid retry`); absent: the run's first round. */
  round: Schema.optional(Schema.Number)
}) {}

export const TaskStatus = Schema.Literal("completed", "needs-review", "failed", "skipped")
export type TaskStatus = typeof TaskStatus.Type

/** Agent usage added up over attempts (of a task, a stream, a run). */
export class UsageTotals extends Schema.Class<UsageTotals>("UsageTotals")({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  cacheReadTokens: Schema.Number,
  cacheWriteTokens: Schema.Number,
  /** USD: what tools reported, or what the price table makes of their tokens. */
  costUsd: Schema.Number,
  /** Model turns, where tools report them. */
  turns: Schema.Number,
  /** Agents' own wall time, where reported. */
  agentDurationMs: Schema.Number,
  /** Transient provider errors waited out. */
  providerWaits: Schema.Number,
  /** The part of `costUsd` the agents' tools reported themselves. */
  measuredCostUsd: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /** The part of `costUsd` braid priced from its table (and the plan's `prices`) for tools that report only tokens. */
  pricedCostUsd: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /** Attempts with tokens but no cost (a model with no price): `costUsd` leaves them out. */
  unpricedAttempts: Schema.optionalWith(Schema.Number, { default: () => 0 })
}) {}

/** Every token an attempt used: input, output, cache read and cache write (what token budgets count). */
export const tokensOf = (u: { readonly inputTokens: number; readonly outputTokens: number; readonly cacheReadTokens: number; readonly cacheWriteTokens: number }) =>
  u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens

const zeroUsage = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0,
  turns: 0,
  agentDurationMs: 0,
  providerWaits: 0,
  measuredCostUsd: 0,
  pricedCostUsd: 0,
  unpricedAttempts: 0
}

/** One agent run's usage (an attempt's, or a conflict resolution's) as totals. */
const usageOfRecord = (a: AgentRecord | undefined, fallback: { readonly inputTokens: number; readonly outputTokens: number; readonly costUsd: number }) => {
  const cost = a === undefined ? fallback.costUsd : a.costUsd ?? 0
  const priced = a?.costSource === "table"
  return {
    inputTokens: fallback.inputTokens,
    outputTokens: fallback.outputTokens,
    cacheReadTokens: a?.cacheReadTokens ?? 0,
    cacheWriteTokens: a?.cacheWriteTokens ?? 0,
    costUsd: cost,
    turns: a?.turns ?? 0,
    agentDurationMs: a?.durationMs ?? 0,
    providerWaits: a?.providerWaits ?? 0,
    measuredCostUsd: priced ? 0 : cost,
    pricedCostUsd: priced ? cost : 0,
    unpricedAttempts: a !== undefined && a.costUsd === null && a.inputTokens + a.outputTokens > 0 ? 1 : 0
  }
}

const add = (x: typeof zeroUsage, y: typeof zeroUsage): typeof zeroUsage => ({
  inputTokens: x.inputTokens + y.inputTokens,
  outputTokens: x.outputTokens + y.outputTokens,
  cacheReadTokens: x.cacheReadTokens + y.cacheReadTokens,
  cacheWriteTokens: x.cacheWriteTokens + y.cacheWriteTokens,
  costUsd: x.costUsd + y.costUsd,
  turns: x.turns + y.turns,
  agentDurationMs: x.agentDurationMs + y.agentDurationMs,
  providerWaits: x.providerWaits + y.providerWaits,
  measuredCostUsd: x.measuredCostUsd + y.measuredCostUsd,
  pricedCostUsd: x.pricedCostUsd + y.pricedCostUsd,
  unpricedAttempts: x.unpricedAttempts + y.unpricedAttempts
})

/** The usage of a list of attempts. */
export const usageOfAttempts = (attempts: ReadonlyArray<AttemptRecord>): UsageTotals =>
  new UsageTotals(attempts.reduce((sum, a) => add(sum, usageOfRecord(a.agent, a)), zeroUsage), true)

/** The usage of the conflict resolutions an agent made (resolvers without an agent record count nothing). */
export const usageOfConflicts = (conflicts: ReadonlyArray<ConflictRecord>): UsageTotals =>
  new UsageTotals(
    conflicts.reduce((sum, c) => c.agent === undefined ? sum : add(sum, usageOfRecord(c.agent, { ...c.agent, costUsd: c.agent.costUsd ?? 0 })), zeroUsage),
    true
  )

/** A task's usage: its attempts' (in every round) and the resolutions of conflicts met bringing in its dependencies. */
export const usageOfTask = (task: TaskResult): UsageTotals =>
  sumUsage([usageOfAttempts([...task.earlierAttempts ?? [], ...task.attempts]), usageOfConflicts(task.conflicts ?? [])])

/** Several totals added up. */
export const sumUsage = (totals: ReadonlyArray<UsageTotals>): UsageTotals =>
  new UsageTotals(totals.reduce((sum, u) => add(sum, u), zeroUsage), true)

/** A task's outcome; `quality` and `status` come from the latest review. */
export class TaskResult extends Schema.Class<TaskResult>("TaskResult")({
  taskId: Schema.String,
  title: Schema.String,
  /** The latest attempt's summary. */
  result: Schema.String,
  quality: Schema.NullOr(Quality),
  /** Refinements after the first attempt (0 when the first attempt passed). */
  qualityIterations: Schema.Number,
  status: TaskStatus,
  /** The attempts of the task's latest round. */
  attempts: Schema.Array(AttemptRecord),
  /** Why the task failed or was skipped. */
  error: Schema.optional(Schema.String),
  /** In the final report: the task's time in every round. */
  durationMs: Schema.Number,
  /** The task's attempts' agent usage added up (in the final report). */
  usage: Schema.optional(UsageTotals),
  /** Conflicts met bringing in the work of the tasks it depends on, and how each was settled. */
  conflicts: Schema.optional(Schema.Array(Schema.suspend((): Schema.Schema<ConflictRecord, ConflictRecordEncoded> => ConflictRecord))),
  /** The attempts of the rounds before the latest (a task run again by `braid retry`), oldest first, each with its `round` (in the final report). */
  earlierAttempts: Schema.optional(Schema.Array(AttemptRecord))
}) {}

export class StreamResult extends Schema.Class<StreamResult>("StreamResult")({
  streamName: Schema.String,
  streamType: Schema.String,
  role: Schema.String,
  agent: Schema.String,
  results: Schema.Array(TaskResult),
  /** Files the stream changed since the base, from the workspace. */
  changedFiles: Schema.Array(Schema.String),
  /** The stream's agent usage added up. */
  usage: Schema.optional(UsageTotals)
}) {}

export class Overlap extends Schema.Class<Overlap>("Overlap")({
  streams: Schema.Tuple(Schema.String, Schema.String),
  paths: Schema.Array(Schema.String)
}) {}

export const ConflictOutcome = Schema.Literal("resolved", "blocked", "failed")

/** Where a conflict was met: merging a stream into the integration, or bringing a dependency's work into a stream. */
export const ConflictKind = Schema.Literal("integration", "dependency")

export class ConflictRecord extends Schema.Class<ConflictRecord>("ConflictRecord")({
  /** The stream being merged, then the integrated streams it conflicts with (dependency: the stream, then the dependency's). */
  streams: Schema.Array(Schema.String),
  paths: Schema.Array(Schema.String),
  strategy: Plan.ConflictStrategy,
  outcome: ConflictOutcome,
  commit: Schema.NullOr(Schema.String),
  detail: Schema.String,
  /** Absent: integration. */
  kind: Schema.optional(ConflictKind),
  /** The resolver that settled it (an agent backend, `script-resolver`, …), under the `agent` strategy. */
  resolver: Schema.optional(Schema.String),
  /** What the resolving agent said (its closing message), resolved or not. */
  said: Schema.optional(Schema.String),
  /** The resolving agent's session, tokens and cost, when an agent resolved it. */
  agent: Schema.optional(AgentRecord)
}) {}

/** The encoded form of a conflict record. */
export type ConflictRecordEncoded = Schema.Schema.Encoded<typeof ConflictRecord>

export class ConflictReport extends Schema.Class<ConflictReport>("ConflictReport")({
  overlaps: Schema.Array(Overlap),
  conflicts: Schema.Array(ConflictRecord)
}) {}

export class VerificationReport extends Schema.Class<VerificationReport>("VerificationReport")({
  ran: Schema.Boolean,
  passed: Schema.Boolean,
  commit: Schema.NullOr(Schema.String),
  checks: Schema.Array(Workspace.CommandResult),
  durationMs: Schema.Number
}) {}

/** How a checkout was made ready (`environment:`): the files copied into it, its shared folders, its ports, its setup commands. */
export class EnvironmentRecord extends Schema.Class<EnvironmentRecord>("EnvironmentRecord")({
  /** The stream whose checkout it was; null: the integration's. */
  stream: Schema.NullOr(Schema.String),
  copied: Schema.Array(Schema.String),
  /** Each shared folder and where it came from: the cache, the user's checkout, built here, or already there. */
  shared: Schema.Array(Schema.Struct({ path: Schema.String, from: Schema.Literal("cache", "main", "built", "kept") })),
  /** Its ports, `first-last`. */
  ports: Schema.optional(Schema.String),
  /** The setup commands (and shared folders' builds) that ran, in order. */
  setup: Schema.Array(Workspace.CommandResult),
  durationMs: Schema.Number
}) {}

export class MergeResult extends Schema.Class<MergeResult>("MergeResult")({
  landed: Schema.Boolean,
  target: Schema.String,
  commit: Schema.NullOr(Schema.String),
  previous: Schema.NullOr(Schema.String),
  mergedStreams: Schema.Array(Schema.String),
  /** Why nothing landed, when nothing did. */
  reason: Schema.optional(Schema.String),
  /** How the run landed (`local` fast-forward, `push` to a remote, `pr` a pull request). */
  mode: Schema.optional(LandingMode.ModeName),
  /** The remote pushed to (`push`, `pr`). */
  remote: Schema.optional(Schema.String),
  /** The pull request `--land pr` opened or updated. */
  pullRequest: Schema.optional(Schema.Struct({ number: Schema.Number, url: Schema.String, head: Schema.String }))
}) {}

/** What GitHub sync did in a run (absent when sync was off). */
export class GitHubReport extends Schema.Class<GitHubReport>("GitHubReport")({
  repo: Schema.String,
  /** The comments braid keeps up to date (task issues, the tracking issue). */
  comments: Schema.Array(Schema.Struct({ issue: Schema.Number, subject: Schema.String, url: Schema.String })),
  /** Issues closed because their work landed. */
  closed: Schema.Array(Schema.Number),
  /** The commit the `braid/verify` status was posted on. */
  statusPosted: Schema.NullOr(Schema.String),
  /** GitHub failures: never fatal to the run. */
  warnings: Schema.Array(Schema.String)
}) {}

export class Summary extends Schema.Class<Summary>("Summary")({
  totalTasks: Schema.Number,
  completedTasks: Schema.Number,
  needsReviewTasks: Schema.Number,
  failedTasks: Schema.Number,
  skippedTasks: Schema.Number,
  streams: Schema.Array(Schema.Struct({ name: Schema.String, tasksCompleted: Schema.Number, totalTasks: Schema.Number }))
}) {}

/** The run's budget and what its attempts spent against it. */
export class BudgetReport extends Schema.Class<BudgetReport>("BudgetReport")({
  usd: Schema.NullOr(Schema.Number),
  tokens: Schema.NullOr(Schema.Number),
  onExceeded: Schema.Literal("finish", "stop"),
  spentUsd: Schema.Number,
  /** Input, output, cache-read and cache-write tokens. */
  spentTokens: Schema.Number
}) {}

export const RunStatus = Schema.Literal("succeeded", "needs-review", "failed", "blocked", "interrupted")
export type RunStatus = typeof RunStatus.Type

export class RunReport extends Schema.Class<RunReport>("RunReport")({
  runId: Schema.String,
  projectName: Schema.String,
  featureName: Schema.String,
  status: RunStatus,
  success: Schema.Boolean,
  startedAt: Schema.String,
  finishedAt: Schema.String,
  durationMs: Schema.Number,
  qualityThreshold: Schema.Number,
  maxParallel: Schema.Number,
  streamResults: Schema.Array(StreamResult),
  conflictsFound: Schema.Boolean,
  conflictReport: ConflictReport,
  integrationResult: VerificationReport,
  mergeResult: MergeResult,
  summary: Summary,
  /** The run's agent usage added up: every stream's, and the integration's conflict resolutions. */
  usage: UsageTotals,
  /** The run's budget, when it has one. */
  budget: Schema.optional(BudgetReport),
  /** What a person should do next, when anything. */
  nextSteps: Schema.Array(Schema.String),
  /** Warnings about the plan (unknown fields that were ignored). */
  warnings: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** What braid found in the repository that it had not recorded (a branch moved, forged or deleted) and put right, or that stopped the landing. */
  integrity: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** GitHub sync, when it was on. */
  github: Schema.optional(GitHubReport),
  /** How the run's checkouts were made ready (`environment:`), in order. */
  environments: Schema.optional(Schema.Array(EnvironmentRecord))
}) {}

/** The report as JSON-ready data. */
export const encode = Schema.encodeSync(RunReport)
export const decode = Schema.decodeUnknown(RunReport)

/** The report with every credential in its text replaced by a marker (`Secrets.scrub`): what is saved, printed and shown. */
export const scrub = (report: RunReport): RunReport => {
  const encoded = encode(report)
  const clean = Secrets.scrubValue(encoded)
  return clean === encoded ? report : Schema.decodeSync(RunReport)(clean)
}

const ms = (n: number) => n < 1000 ? `${Math.round(n)} ms` : n < 120_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.floor(n / 60_000)} min ${Math.round((n % 60_000) / 1000)} s`
const usd = (n: number) => `$${n.toFixed(4)}`
/** A budget's amount in dollars: cents, and the further decimals (up to 6) it needs — $5.00, $0.004, never $0.00 for $0.004. */
export const dollars = (amount: number): string =>
  Math.abs(amount - Number(amount.toFixed(2))) < 1e-9 ? `$${amount.toFixed(2)}` : `$${amount.toFixed(6).replace(/0+$/, "")}`
const clock = (iso: string) => iso.length >= 19 ? `${iso.slice(11, 19)}` : iso
const shortCommit = (c: string | null | undefined) => c == null ? "none" : c.slice(0, 10)
const firstLine = (s: string) => s.split("\n")[0]!.trim()
const rest = (s: string) => s.split("\n").slice(1).join("\n").replace(/^\s*\n/, "")

const statusMark: Record<TaskStatus, string> = { completed: "✅ completed", "needs-review": "⚠️ needs review", failed: "❌ failed", skipped: "⏭️ skipped" }
const runMark: Record<RunStatus, string> = {
  succeeded: "✅ succeeded",
  "needs-review": "⚠️ needs review",
  failed: "❌ failed",
  blocked: "⛔ blocked",
  interrupted: "⏸️ interrupted"
}

const usageText = (u: UsageTotals) =>
  [
    `${u.inputTokens} input tokens`,
    `${u.outputTokens} output tokens`,
    ...(u.cacheReadTokens + u.cacheWriteTokens > 0 ? [`${u.cacheReadTokens} cache-read / ${u.cacheWriteTokens} cache-write tokens`] : []),
    ...(u.turns > 0 ? [`${u.turns} turns`] : []),
    usd(u.costUsd),
    ...(u.providerWaits > 0 ? [`${u.providerWaits} provider waits`] : [])
  ].join(", ")

const costSourceText = (u: UsageTotals) =>
  [
    `$${u.measuredCostUsd.toFixed(4)} measured by the agents' tools`,
    `$${u.pricedCostUsd.toFixed(4)} priced from braid's table`,
    ...(u.unpricedAttempts > 0 ? [`${u.unpricedAttempts} agent run(s) with tokens but no price (not counted)`] : [])
  ].join(", ")

const agentText = (a: AgentRecord) =>
  [
    a.backend,
    ...(a.model !== null ? [a.model] : []),
    ...(a.sessionId !== null ? [`session ${a.sessionId}`] : []),
    ...(a.turns !== null ? [`${a.turns} turns`] : []),
    `${a.inputTokens} in / ${a.outputTokens} out${a.cacheReadTokens + a.cacheWriteTokens > 0 ? ` (+${a.cacheReadTokens} cache read, ${a.cacheWriteTokens} cache write)` : ""}`,
    a.costUsd !== null ? `${usd(a.costUsd)}${a.costSource === "table" ? " (priced)" : a.costSource === "tool" ? " (measured)" : ""}` : "cost unknown",
    ...(a.durationMs !== null ? [ms(a.durationMs)] : []),
    ...(a.providerWaits > 0 ? [`${a.providerWaits} provider waits`] : [])
  ].join(" · ")

const judgeText = (q: Quality) => {
  const scores = q.samples.map((s) => s.score)
  const model = q.samples.find((s) => s.model !== null)?.model
  return `${scores.length === 1 ? `score ${scores[0]}` : `scores ${scores.join(", ")} (median ${q.score})`}${model != null ? ` · ${model}` : ""}`
}

const taskUsage = (t: TaskResult) => t.usage ?? usageOfTask(t)

/** Every attempt of a task, oldest first: its earlier rounds' (a retried task), then its latest round's. */
const allAttempts = (t: TaskResult): ReadonlyArray<AttemptRecord> => [...t.earlierAttempts ?? [], ...t.attempts]

const roundName = (round: number | undefined) => (round ?? 0) === 0 ? "first run" : `retry ${round}`
const ofRound = (round: number | undefined) => (round ?? 0) === 0 ? "of the first run" : `of retry ${round}`

/** How the report names an attempt: its number, and its round when the task ran in several. */
const attemptName = (t: TaskResult, a: AttemptRecord) => (t.earlierAttempts ?? []).length > 0 ? `${a.attempt} ${ofRound(a.round)}` : `${a.attempt}`

/** The anchor of a task's section, for links from the summary table and the timeline. */
export const taskAnchor = (taskId: string): string => `task-${taskId.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`

/**
 * One part of the rendered report: a name and the blocks it renders. The Markdown report and
 * the HTML page are the list `sections` in order; a new field of the report gets a section (or
 * a block in one) here, and both renderings show it.
 */
export interface Section {
  readonly name: string
  readonly render: (report: RunReport) => ReadonlyArray<Document.Block>
}

/** `last`: the task's latest attempt; `lastOfRound`: the last of an earlier round, after which a person retried the task. */
const outcomeOf = (t: TaskResult, a: AttemptRecord, last: boolean, lastOfRound = false) =>
  a.review === null
    ? a.summary.startsWith("failed:") ? "agent failed" : "not reviewed"
    : a.review.passes
    ? "passes"
    : last
    ? t.status === "needs-review" ? "below threshold: needs review" : "below threshold"
    : lastOfRound
    ? "below threshold → braid retry"
    : "below threshold → retried"

/** The feedback a review gave: every issue (its first line; the rest, a check's output, collapsed) and suggestion. */
const feedbackBlocks = (review: Quality): Array<Document.Block> => {
  const items: Array<Document.ListItem> = review.issues.map((issue) => {
    const more = rest(issue)
    return {
      text: Document.withCode(firstLine(issue)),
      ...(more.trim() !== "" ? { children: [Document.details("output", [Document.codeBlock(more)])] } : {})
    }
  })
  for (const s of review.suggestions) items.push({ text: [Document.bold("suggestion:"), Document.text(" "), ...Document.withCode(s)] })
  return items.length === 0 ? [] : [Document.list(items)]
}

/** The sections of the report, in order. */
export const sections: ReadonlyArray<Section> = [
  {
    name: "title",
    render: (r) => {
      const s = r.summary
      const conflicts = r.conflictReport.conflicts
      const v = r.integrationResult
      return [
        Document.heading(1, `braid run ${r.runId}: ${r.featureName} (${r.projectName})`),
        Document.paragraph([
          Document.bold(runMark[r.status]),
          Document.text(
            ` — ${s.completedTasks}/${s.totalTasks} tasks completed, ${s.needsReviewTasks} need review, ${s.failedTasks} failed, ${s.skippedTasks} skipped · ${conflicts.length} conflict${
              conflicts.length === 1 ? "" : "s"
            }${conflicts.length > 0 ? ` (${conflicts.filter((c) => c.outcome === "resolved").length} resolved)` : ""} · verification ${
              !v.ran ? "not run" : v.passed ? "passed" : "failed"
            } · `
          ),
          ...(r.mergeResult.landed
            ? [Document.text("landed "), Document.code(shortCommit(r.mergeResult.commit)), Document.text(" on "), Document.code(r.mergeResult.target)]
            : [Document.text("not landed")]),
          Document.text(` · ${ms(r.durationMs)}`)
        ]),
        Document.table(["", ""], [
          ["started", r.startedAt],
          ["finished", r.finishedAt],
          ["duration", ms(r.durationMs)],
          ["quality threshold", String(r.qualityThreshold)],
          ["max parallel agents", String(r.maxParallel)],
          ["agent usage", usageText(r.usage)],
          ...(r.usage.costUsd > 0 || r.usage.unpricedAttempts > 0 ? [["cost", costSourceText(r.usage)]] : []),
          ...(r.budget !== undefined
            ? [[
              "budget",
              `${[...(r.budget.usd !== null ? [dollars(r.budget.usd)] : []), ...(r.budget.tokens !== null ? [`${r.budget.tokens} tokens`] : [])].join(" or ")} (onExceeded: ${r.budget.onExceeded}); spent ${
                usd(r.budget.spentUsd)
              } and ${r.budget.spentTokens} tokens`
            ]]
            : [])
        ])
      ]
    }
  },
  {
    name: "summary",
    render: (r) => [
      Document.heading(2, "Streams and tasks"),
      Document.table(
        ["stream", "role · agent", "task", "status", "score", "attempts", "tokens in / out", "cost", "duration"],
        r.streamResults.flatMap((stream) => [
          ...stream.results.map((t, i) => {
            const u = taskUsage(t)
            return [
              i === 0 ? [Document.bold(stream.streamName)] : "",
              i === 0 ? `${stream.role} · ${stream.agent}` : "",
              [Document.link(t.taskId, `#${taskAnchor(t.taskId)}`), Document.text(` ${t.title}`)],
              statusMark[t.status],
              t.quality !== null ? `${t.quality.score}` : "–",
              `${t.attempts.length}/3${(t.earlierAttempts ?? []).length > 0 ? ` (+${t.earlierAttempts!.length} before retry)` : ""}`,
              `${u.inputTokens} / ${u.outputTokens}`,
              usd(u.costUsd),
              ms(t.durationMs)
            ]
          }),
          // A stream's usage added up, where its agents report any.
          ...((u) =>
            u.inputTokens + u.outputTokens > 0 && stream.results.length > 1
              ? [["", "", [Document.bold("stream total")], "", "", u.turns > 0 ? `${u.turns} turns` : "", `${u.inputTokens} / ${u.outputTokens}`, usd(u.costUsd), ""]]
              : [])(stream.usage ?? sumUsage(stream.results.map(taskUsage)))
        ])
      )
    ]
  },
  {
    name: "tasks",
    render: (r) => [
      Document.heading(2, "Tasks"),
      ...r.streamResults.flatMap((stream) =>
        stream.results.flatMap((t): Array<Document.Block> => {
          // A retried task shows its earlier rounds' attempts too, each named with its round.
          const attempts = allAttempts(t)
          const earlier = attempts.length - t.attempts.length
          const name = (a: AttemptRecord) => attemptName(t, a)
          const blocks: Array<Document.Block> = [
            Document.heading(3, [Document.code(t.taskId), Document.text(` ${t.title}`)], taskAnchor(t.taskId)),
            Document.paragraph(
              `${statusMark[t.status]} · stream ${stream.streamName} (${stream.role}, agent ${stream.agent})${
                t.attempts.length > 0 ? ` · ${t.attempts.length} attempt${t.attempts.length === 1 ? "" : "s"}` : ""
              }${earlier > 0 ? ` (and ${earlier} before retry)` : ""}${t.quality !== null ? ` · score ${t.quality.score} (threshold ${r.qualityThreshold})` : ""} · ${
                ms(t.durationMs)
              }`
            )
          ]
          if (t.error !== undefined) blocks.push(Document.paragraph([Document.bold(t.status === "skipped" ? "Why:" : "Error:"), Document.text(" "), ...Document.withCode(t.error)]))
          if (attempts.length === 0) return blocks
          blocks.push(Document.table(
            [...(earlier > 0 ? ["round"] : []), "attempt", "started", "duration", "commit", "files", "score", "outcome"],
            attempts.map((a, i) => [
              ...(earlier > 0 ? [roundName(a.round)] : []),
              String(a.attempt),
              clock(a.startedAt),
              ms(a.durationMs),
              a.commit !== null ? [Document.code(shortCommit(a.commit))] : "no change",
              String(a.changedFiles.length),
              a.review !== null ? `${a.review.score}` : "–",
              outcomeOf(t, a, i === attempts.length - 1, attempts[i + 1]?.round !== a.round)
            ])
          ))
          for (const [i, a] of attempts.entries()) {
            // The review of a round's last attempt drove no attempt: a person retried the task.
            const next = attempts[i + 1]?.round === a.round ? attempts[i + 1] : undefined
            if (a.review !== null && !a.review.passes && next !== undefined) {
              blocks.push(Document.paragraph([
                Document.bold(`Feedback that drove attempt ${name(next)}`),
                Document.text(` (the review of attempt ${name(a)} by ${a.review.reviewer}: score ${a.review.score}, under the threshold of ${r.qualityThreshold}):`)
              ]))
              blocks.push(...feedbackBlocks(a.review))
            } else if (a.review !== null && a.review.passes && a.review.issues.length + a.review.suggestions.length > 0) {
              // A passing review's remarks (a judge's minor findings) are worth reading too.
              blocks.push(Document.paragraph([
                Document.bold(`The review of attempt ${name(a)}`),
                Document.text(` (by ${a.review.reviewer}: score ${a.review.score}, passes):`)
              ]))
              blocks.push(...feedbackBlocks(a.review))
            } else if (a.review !== null && !a.review.passes) {
              blocks.push(Document.paragraph([
                Document.bold(i === attempts.length - 1 ? `The last review` : `The last review ${ofRound(a.round)}`),
                Document.text(` (attempt ${name(a)} by ${a.review.reviewer}: score ${a.review.score}, under the threshold of ${r.qualityThreshold}):`)
              ]))
              blocks.push(...feedbackBlocks(a.review))
            }
            if ((a.review?.samples.length ?? 0) > 0) {
              blocks.push(Document.paragraph([Document.bold(`Attempt ${name(a)}`), Document.text(` judge: ${judgeText(a.review!)}`)]))
            }
            if (a.review === null && a.summary.startsWith("failed:")) {
              blocks.push(Document.paragraph([Document.bold(`Attempt ${name(a)}:`), Document.text(" "), ...Document.withCode(a.summary)]))
            }
          }
          for (const c of t.conflicts ?? []) {
            blocks.push(Document.paragraph([
              Document.bold(`Conflict bringing in ${c.streams.slice(1).join(", ")}'s work`),
              Document.text(" in "),
              ...c.paths.flatMap((p, i) => [...(i > 0 ? [Document.text(", ")] : []), Document.code(p)]),
              Document.text(` — ${c.outcome} (${c.strategy}): `),
              ...Document.withCode(c.detail),
              ...(c.agent !== undefined ? [Document.text(` · resolver: ${agentText(c.agent)}`)] : [])
            ]))
          }
          const agents = attempts.filter((a) => a.agent !== undefined && (a.agent.inputTokens + a.agent.outputTokens > 0 || a.agent.sessionId !== null || a.agent.permissionDenials.length > 0))
          if (agents.length > 0) {
            blocks.push(Document.list(agents.map((a) => ({
              text: `attempt ${name(a)}: ${agentText(a.agent!)}`,
              ...(a.agent!.permissionDenials.length > 0 ? { children: [Document.list(a.agent!.permissionDenials.map((d) => `refused: ${d}`))] } : {})
            }))))
          }
          return blocks
        })
      )
    ]
  },
  {
    name: "conflicts",
    render: (r) => {
      const c = r.conflictReport
      const blocks: Array<Document.Block> = [Document.heading(2, "Conflicts")]
      blocks.push(Document.paragraph([Document.bold("Detection."), Document.text(" First the files each stream changed are compared; then each stream is merged in order against the growing integration with git merge-tree, which finds the textual conflicts.")]))
      if (c.overlaps.length === 0) blocks.push(Document.paragraph("No two streams changed the same file."))
      else {
        blocks.push(Document.list(c.overlaps.map((o) => [
          Document.text(`${o.streams[0]} and ${o.streams[1]} both changed `),
          ...o.paths.flatMap((p, i) => [...(i > 0 ? [Document.text(", ")] : []), Document.code(p)])
        ])))
      }
      if (c.conflicts.length === 0) {
        if (c.overlaps.length > 0) blocks.push(Document.paragraph("The overlapping changes merged without a textual conflict."))
        return blocks
      }
      blocks.push(Document.paragraph([Document.bold("Resolution.")]))
      blocks.push(Document.table(
        ["merging", "conflicted with", "paths", "strategy", "outcome", "commit"],
        c.conflicts.map((x) => [
          x.streams[0] ?? "",
          x.streams.slice(1).join(", "),
          x.paths.flatMap((p, i) => [...(i > 0 ? [Document.text(", ")] : []), Document.code(p)]),
          x.strategy,
          x.outcome === "resolved" ? "✅ resolved" : x.outcome === "blocked" ? "⛔ left for a person" : "❌ not resolved",
          x.commit !== null ? [Document.code(shortCommit(x.commit))] : "–"
        ])
      ))
      blocks.push(Document.list(c.conflicts.map((x) => [
        Document.bold(`${x.streams.join(" ↔ ")}:`),
        Document.text(x.outcome === "resolved" ? " what the resolver did — " : " "),
        ...Document.withCode(x.detail),
        ...(x.agent !== undefined ? [Document.text(` (resolver: ${agentText(x.agent)})`)] : [])
      ])))
      return blocks
    }
  },
  {
    name: "verification",
    render: (r) => {
      const v = r.integrationResult
      const blocks: Array<Document.Block> = [Document.heading(2, "Verification")]
      if (!v.ran) {
        blocks.push(Document.paragraph(v.checks.length === 0 && v.commit !== null ? "The plan has no verify commands." : "Not run: the integration was not reached."))
        return blocks
      }
      blocks.push(Document.paragraph([
        Document.text(`${v.passed ? "✅ Passed" : "❌ Failed"} on the integration commit `),
        Document.code(shortCommit(v.commit)),
        Document.text(` in ${ms(v.durationMs)}.`)
      ]))
      blocks.push(Document.table(
        ["command", "exit", "duration"],
        v.checks.map((c) => [[Document.code(c.name)], `${c.exitCode}${c.timedOut ? " (timed out)" : ""}`, ms(c.durationMs)])
      ))
      for (const c of v.checks) {
        if (c.outputTail.trim() === "") continue
        blocks.push(Document.details([Document.code(c.name), Document.text(` output, last lines (exit ${c.exitCode})`)], [Document.codeBlock(c.outputTail)]))
      }
      return blocks
    }
  },
  {
    name: "merge",
    render: (r) => {
      const m = r.mergeResult
      return [
        Document.heading(2, "Merge"),
        Document.paragraph(
          m.landed
            ? [
              Document.text("Landed "),
              Document.code(shortCommit(m.commit)),
              Document.text(" on "),
              Document.code(m.target),
              Document.text(m.remote !== undefined ? ` of ${m.remote} (pushed)` : " by fast-forward"),
              Document.text(" (it was "),
              m.previous ? Document.code(shortCommit(m.previous)) : Document.text("absent"),
              Document.text(`). Streams merged in order: ${m.mergedStreams.join(", ") || "none"}.`)
            ]
            : m.pullRequest !== undefined
            ? [
              Document.text(`Pull request #${m.pullRequest.number} (${m.pullRequest.head} → ${m.target}): `),
              Document.link(m.pullRequest.url, m.pullRequest.url),
              Document.text("; verified commit "),
              Document.code(shortCommit(m.commit)),
              Document.text(`; merged streams: ${m.mergedStreams.join(", ")}.`)
            ]
            : [
              Document.text(`Not landed on `),
              Document.code(m.target),
              Document.text(`${m.reason !== undefined ? `: ${m.reason}` : ""}.${m.mergedStreams.length > 0 ? ` Integrated streams: ${m.mergedStreams.join(", ")}.` : ""}`)
            ]
        )
      ]
    }
  },
  {
    name: "environments",
    render: (r) =>
      r.environments === undefined || r.environments.length === 0 ? [] : [
        Document.heading(2, "Environments"),
        Document.table(
          ["checkout", "took", "what was done"],
          r.environments.map((e) => [e.stream === null ? "integration" : `stream ${e.stream}`, ms(e.durationMs), environmentSummary(e)])
        ),
        ...r.environments.flatMap((e) =>
          e.setup.filter((c) => c.outputTail.trim() !== "").map((c) =>
            Document.details(
              `${e.stream ?? "integration"} · ${c.name} (exit ${c.exitCode}, ${ms(c.durationMs)})`,
              [Document.codeBlock(c.outputTail)]
            )
          )
        )
      ]
  },
  {
    name: "durations",
    render: (r) => [
      Document.heading(2, "Durations"),
      Document.table(
        ["part", "duration", "of which agents and reviews"],
        [
          ["the whole run", ms(r.durationMs), ""],
          ...r.streamResults.map((s) => [
            `stream ${s.streamName} (${s.results.length} task${s.results.length === 1 ? "" : "s"})`,
            ms(s.results.reduce((n, t) => n + t.durationMs, 0)),
            ms(s.results.reduce((n, t) => n + allAttempts(t).reduce((m, a) => m + a.durationMs, 0), 0))
          ]),
          ["verification", r.integrationResult.ran ? ms(r.integrationResult.durationMs) : "–", ""]
        ]
      )
    ]
  },
  {
    name: "warnings",
    render: (r) => r.warnings.length === 0 ? [] : [Document.heading(2, "Plan warnings"), Document.list(r.warnings)]
  },
  {
    name: "integrity",
    render: (r) => r.integrity.length === 0 ? [] : [Document.heading(2, "Integrity warnings"), Document.list(r.integrity)]
  },
  {
    name: "github",
    render: (r) => {
      const g = r.github
      if (g === undefined) return []
      return [
        Document.heading(2, "GitHub"),
        Document.paragraph(
          `Synced to ${g.repo}: ${g.comments.length} comment(s) kept up to date${g.closed.length > 0 ? `, closed ${g.closed.map((n) => `#${n}`).join(", ")}` : ""}${
            g.statusPosted !== null ? `, commit status braid/verify on ${g.statusPosted.slice(0, 10)}` : ""
          }.`
        ),
        ...(g.comments.length > 0 ? [Document.list(g.comments.map((c) => [Document.text(`#${c.issue} ${c.subject}: `), Document.link(c.url, c.url)]))] : []),
        ...(g.warnings.length > 0 ? [Document.list(g.warnings.map((w) => `warning: ${w}`))] : [])
      ]
    }
  },
  {
    name: "next steps",
    render: (r) => [
      Document.heading(2, "Next steps"),
      r.nextSteps.length > 0
        ? Document.list(r.nextSteps)
        : Document.paragraph(r.mergeResult.landed ? `Nothing to do: the result is on ${r.mergeResult.target}.` : "Nothing braid can do next.")
    ]
  }
]

/** What making a checkout ready did, in a few words (the report's table, the board's line). */
export const environmentSummary = (r: EnvironmentRecord): string =>
  [
    r.copied.length > 0 ? `${r.copied.length} file${r.copied.length === 1 ? "" : "s"} copied` : undefined,
    ...r.shared.map((s) => `${s.path} from ${s.from === "main" ? "your checkout" : s.from === "built" ? "a fresh build" : s.from === "kept" ? "before" : "the cache"}`),
    r.ports !== undefined ? `ports ${r.ports}` : undefined,
    r.setup.length > 0 ? `ran ${r.setup.map((c) => c.name).join(", ")}` : undefined
  ].filter((x) => x !== undefined).join(" · ") || "nothing to do"

/** The report as document blocks: `sections` (or the ones given) in order. */
export const toDocument = (report: RunReport, list: ReadonlyArray<Section> = sections): Array<Document.Block> =>
  list.flatMap((s) => s.render(report))

/** Renders the report as GitHub-flavoured Markdown. */
export const toMarkdown = (report: RunReport, list: ReadonlyArray<Section> = sections): string => Document.toMarkdown(toDocument(report, list))
