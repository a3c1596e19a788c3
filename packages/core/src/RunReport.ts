/**
 * The result of a run: the seed's output fields (`success`, `streamResults`,
 * `integrationResult`, `mergeResult`, `conflictsFound`, `summary`) plus every attempt,
 * the conflict report, the verification report and durations. Encoded as JSON, rendered
 * as Markdown.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Plan from "./Plan.js"
import * as Workspace from "./Workspace.js"

/** A review as recorded: the engine's `passes` beside the reviewer's score. */
export class Quality extends Schema.Class<Quality>("Quality")({
  score: Schema.Number,
  passes: Schema.Boolean,
  issues: Schema.Array(Schema.String),
  suggestions: Schema.Array(Schema.String),
  reviewer: Schema.String
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
  costSource: Schema.optional(CostSource)
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
  agent: Schema.optional(AgentRecord)
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

/** A task's usage: its attempts' and the resolutions of conflicts met bringing in its dependencies. */
export const usageOfTask = (task: TaskResult): UsageTotals =>
  sumUsage([usageOfAttempts(task.attempts), usageOfConflicts(task.conflicts ?? [])])

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
  attempts: Schema.Array(AttemptRecord),
  /** Why the task failed or was skipped. */
  error: Schema.optional(Schema.String),
  durationMs: Schema.Number,
  /** The task's attempts' agent usage added up (in the final report). */
  usage: Schema.optional(UsageTotals),
  /** Conflicts met bringing in the work of the tasks it depends on, and how each was settled. */
  conflicts: Schema.optional(Schema.Array(Schema.suspend((): Schema.Schema<ConflictRecord, ConflictRecordEncoded> => ConflictRecord)))
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

export class MergeResult extends Schema.Class<MergeResult>("MergeResult")({
  landed: Schema.Boolean,
  target: Schema.String,
  commit: Schema.NullOr(Schema.String),
  previous: Schema.NullOr(Schema.String),
  mergedStreams: Schema.Array(Schema.String),
  /** Why nothing landed, when nothing did. */
  reason: Schema.optional(Schema.String),
  /** How the run landed (`local` fast-forward, `push` to a remote, `pr` a pull request). */
  mode: Schema.optional(Schema.Literal("local", "push", "pr")),
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
  /** GitHub sync, when it was on. */
  github: Schema.optional(GitHubReport)
}) {}

/** The report as JSON-ready data. */
export const encode = Schema.encodeSync(RunReport)
export const decode = Schema.decodeUnknown(RunReport)

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ")
const ms = (n: number) => n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`

const usageText = (u: UsageTotals) =>
  [
    `${u.inputTokens} input tokens`,
    `${u.outputTokens} output tokens`,
    ...(u.cacheReadTokens + u.cacheWriteTokens > 0 ? [`${u.cacheReadTokens} cache-read / ${u.cacheWriteTokens} cache-write tokens`] : []),
    ...(u.turns > 0 ? [`${u.turns} turns`] : []),
    `$${u.costUsd.toFixed(4)}`,
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
    a.costUsd !== null ? `$${a.costUsd.toFixed(4)}${a.costSource === "table" ? " (priced)" : a.costSource === "tool" ? " (measured)" : ""}` : "cost unknown",
    ...(a.durationMs !== null ? [ms(a.durationMs)] : []),
    ...(a.providerWaits > 0 ? [`${a.providerWaits} provider waits`] : [])
  ].join(" · ")

/** Renders the report as Markdown. */
export const toMarkdown = (report: RunReport): string => {
  const out: Array<string> = []
  const line = (s = "") => out.push(s)
  line(`# braid run ${report.runId}: ${report.featureName} (${report.projectName})`)
  line()
  line(`**Status:** ${report.status} · **success:** ${report.success} · ${ms(report.durationMs)} · threshold ${report.qualityThreshold} · maxParallel ${report.maxParallel}`)
  line()
  const s = report.summary
  line(`Tasks: ${s.completedTasks}/${s.totalTasks} completed, ${s.needsReviewTasks} need review, ${s.failedTasks} failed, ${s.skippedTasks} skipped.`)
  if (report.usage.inputTokens + report.usage.outputTokens > 0) line(`Agent usage: ${usageText(report.usage)}.`)
  if (report.usage.costUsd > 0 || report.usage.unpricedAttempts > 0) line(`Cost: ${costSourceText(report.usage)}.`)
  if (report.budget !== undefined) {
    const b = report.budget
    line(`Budget: ${[...(b.usd !== null ? [`$${b.usd.toFixed(2)}`] : []), ...(b.tokens !== null ? [`${b.tokens} tokens`] : [])].join(" or ")} (onExceeded: ${b.onExceeded}); spent $${b.spentUsd.toFixed(4)} and ${b.spentTokens} tokens.`)
  }
  line()
  line("## Streams")
  for (const stream of report.streamResults) {
    line()
    line(`### ${stream.streamName} (${stream.streamType}, ${stream.role}, agent ${stream.agent})`)
    line()
    line("| task | status | quality | attempts | tokens in / out | cost | duration |")
    line("|---|---|---|---|---|---|---|")
    for (const t of stream.results) {
      const u = t.usage ?? usageOfAttempts(t.attempts)
      line(
        `| ${cell(t.taskId)} ${cell(t.title)} | ${t.status} | ${t.quality ? `${t.quality.score}` : "–"} | ${t.attempts.length} | ` +
          `${u.inputTokens} / ${u.outputTokens} | $${u.costUsd.toFixed(4)} | ${ms(t.durationMs)} |`
      )
    }
    const streamUsage = stream.usage ?? sumUsage(stream.results.map((t) => t.usage ?? usageOfAttempts(t.attempts)))
    if (streamUsage.inputTokens + streamUsage.outputTokens > 0) line(`\nStream total: ${usageText(streamUsage)}.\n`)
    for (const t of stream.results) {
      if (t.error) line(`- ${t.taskId}: ${t.error}`)
      for (const c of t.conflicts ?? []) {
        line(`- ${t.taskId}: conflict bringing in ${c.streams.slice(1).join(", ")}'s work in ${c.paths.join(", ")} — ${c.outcome} (${c.strategy}): ${cell(c.detail)}`)
        if (c.agent !== undefined) line(`  - resolver: ${agentText(c.agent)}`)
      }
      const agentDetail = t.attempts.some((a) => a.agent !== undefined)
      if (t.attempts.length > 1 || t.status !== "completed" || agentDetail) {
        for (const a of t.attempts) {
          const review = a.review ? `score ${a.review.score}${a.review.passes ? " (passes)" : ""}` : "no review"
          line(`- ${t.taskId} attempt ${a.attempt}: ${review}, commit ${a.commit?.slice(0, 10) ?? "none (no change)"}`)
          if (a.agent !== undefined) line(`  - agent: ${agentText(a.agent)}`)
          for (const denial of a.agent?.permissionDenials ?? []) line(`  - refused: ${cell(denial).slice(0, 300)}`)
          for (const issue of a.review?.issues ?? []) line(`  - ${cell(issue).slice(0, 300)}`)
        }
      }
    }
    if (stream.changedFiles.length > 0) line(`- changed files: ${stream.changedFiles.join(", ")}`)
  }
  line()
  line("## Conflicts")
  line()
  if (report.conflictReport.overlaps.length === 0) line("No two streams changed the same file.")
  for (const o of report.conflictReport.overlaps) line(`- overlap ${o.streams.join(" ↔ ")}: ${o.paths.join(", ")}`)
  if (report.conflictReport.conflicts.length > 0) {
    line()
    line("| streams | paths | strategy | outcome | commit |")
    line("|---|---|---|---|---|")
    for (const c of report.conflictReport.conflicts) {
      line(`| ${c.streams.join(" ↔ ")} | ${cell(c.paths.join(", "))} | ${c.strategy} | ${c.outcome} | ${c.commit?.slice(0, 10) ?? "–"} |`)
    }
    for (const c of report.conflictReport.conflicts) {
      if (c.detail) line(`- ${c.streams.join(" ↔ ")}: ${cell(c.detail)}`)
      if (c.agent !== undefined) line(`  - resolver: ${agentText(c.agent)}`)
    }
  } else if (report.conflictReport.overlaps.length > 0) {
    line()
    line("No textual conflicts.")
  }
  line()
  line("## Integration verification")
  line()
  const v = report.integrationResult
  if (!v.ran) line("Not run.")
  else {
    line(`${v.passed ? "Passed" : "Failed"} on ${v.commit?.slice(0, 10) ?? "?"} in ${ms(v.durationMs)}.`)
    line()
    for (const c of v.checks) {
      line(`- \`${c.name}\`: exit ${c.exitCode}${c.timedOut ? " (timed out)" : ""}, ${ms(c.durationMs)}`)
      if (c.exitCode !== 0 && c.outputTail.trim() !== "") {
        line()
        line("```")
        line(c.outputTail.trimEnd())
        line("```")
      }
    }
  }
  line()
  line("## Merge")
  line()
  const m = report.mergeResult
  if (m.landed) {
    line(`Landed ${m.commit?.slice(0, 10)} on ${m.target}${m.remote !== undefined ? ` of ${m.remote} (pushed)` : ""} (was ${m.previous?.slice(0, 10) || "absent"}); merged streams: ${m.mergedStreams.join(", ")}.`)
  } else if (m.pullRequest !== undefined) {
    line(`Pull request #${m.pullRequest.number} (${m.pullRequest.head} → ${m.target}): ${m.pullRequest.url}; verified commit ${m.commit?.slice(0, 10)}; merged streams: ${m.mergedStreams.join(", ")}.`)
  } else line(`Not landed${m.reason ? `: ${m.reason}` : ""}.${m.mergedStreams.length > 0 ? ` Integrated streams: ${m.mergedStreams.join(", ")}.` : ""}`)
  if (report.warnings.length > 0) {
    line()
    line("## Plan warnings")
    line()
    for (const w of report.warnings) line(`- ${w}`)
  }
  if (report.github !== undefined) {
    const g = report.github
    line()
    line("## GitHub")
    line()
    line(`Synced to ${g.repo}: ${g.comments.length} comment(s) kept up to date${g.closed.length > 0 ? `, closed ${g.closed.map((n) => `#${n}`).join(", ")}` : ""}${g.statusPosted !== null ? `, commit status braid/verify on ${g.statusPosted.slice(0, 10)}` : ""}.`)
    for (const w of g.warnings) line(`- warning: ${w}`)
  }
  if (report.nextSteps.length > 0) {
    line()
    line("## Next steps")
    line()
    for (const step of report.nextSteps) line(`- ${step}`)
  }
  return out.join("\n") + "\n"
}
