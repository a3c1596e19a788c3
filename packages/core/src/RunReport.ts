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

/** One attempt of a task and its review. */
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
  providerWaits: Schema.Number
}) {}

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
  durationMs: Schema.Number
}) {}

export class StreamResult extends Schema.Class<StreamResult>("StreamResult")({
  streamName: Schema.String,
  streamType: Schema.String,
  role: Schema.String,
  agent: Schema.String,
  results: Schema.Array(TaskResult),
  /** Files the stream changed since the base, from the workspace. */
  changedFiles: Schema.Array(Schema.String)
}) {}

export class Overlap extends Schema.Class<Overlap>("Overlap")({
  streams: Schema.Tuple(Schema.String, Schema.String),
  paths: Schema.Array(Schema.String)
}) {}

export const ConflictOutcome = Schema.Literal("resolved", "blocked", "failed")

export class ConflictRecord extends Schema.Class<ConflictRecord>("ConflictRecord")({
  /** The stream being merged, then the integrated streams it conflicts with. */
  streams: Schema.Array(Schema.String),
  paths: Schema.Array(Schema.String),
  strategy: Plan.ConflictStrategy,
  outcome: ConflictOutcome,
  commit: Schema.NullOr(Schema.String),
  detail: Schema.String
}) {}

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
  reason: Schema.optional(Schema.String)
}) {}

export class Summary extends Schema.Class<Summary>("Summary")({
  totalTasks: Schema.Number,
  completedTasks: Schema.Number,
  needsReviewTasks: Schema.Number,
  failedTasks: Schema.Number,
  skippedTasks: Schema.Number,
  streams: Schema.Array(Schema.Struct({ name: Schema.String, tasksCompleted: Schema.Number, totalTasks: Schema.Number }))
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
  usage: Schema.Struct({ inputTokens: Schema.Number, outputTokens: Schema.Number, costUsd: Schema.Number }),
  /** What a person should do next, when anything. */
  nextSteps: Schema.Array(Schema.String)
}) {}

/** The report as JSON-ready data. */
export const encode = Schema.encodeSync(RunReport)
export const decode = Schema.decodeUnknown(RunReport)

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ")
const ms = (n: number) => n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`

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
  if (report.usage.inputTokens + report.usage.outputTokens > 0) {
    line(`Agent usage: ${report.usage.inputTokens} input tokens, ${report.usage.outputTokens} output tokens, $${report.usage.costUsd.toFixed(4)}.`)
  }
  line()
  line("## Streams")
  for (const stream of report.streamResults) {
    line()
    line(`### ${stream.streamName} (${stream.streamType}, ${stream.role}, agent ${stream.agent})`)
    line()
    line("| task | status | quality | attempts | duration |")
    line("|---|---|---|---|---|")
    for (const t of stream.results) {
      line(`| ${cell(t.taskId)} ${cell(t.title)} | ${t.status} | ${t.quality ? `${t.quality.score}` : "–"} | ${t.attempts.length} | ${ms(t.durationMs)} |`)
    }
    for (const t of stream.results) {
      if (t.error) line(`- ${t.taskId}: ${t.error}`)
      if (t.attempts.length > 1 || t.status !== "completed") {
        for (const a of t.attempts) {
          const review = a.review ? `score ${a.review.score}${a.review.passes ? " (passes)" : ""}` : "no review"
          line(`- ${t.taskId} attempt ${a.attempt}: ${review}, commit ${a.commit?.slice(0, 10) ?? "none (no change)"}`)
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
    for (const c of report.conflictReport.conflicts) if (c.detail) line(`- ${c.streams.join(" ↔ ")}: ${cell(c.detail)}`)
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
  if (m.landed) line(`Landed ${m.commit?.slice(0, 10)} on ${m.target} (was ${m.previous?.slice(0, 10)}); merged streams: ${m.mergedStreams.join(", ")}.`)
  else line(`Not landed${m.reason ? `: ${m.reason}` : ""}.${m.mergedStreams.length > 0 ? ` Integrated streams: ${m.mergedStreams.join(", ")}.` : ""}`)
  if (report.nextSteps.length > 0) {
    line()
    line("## Next steps")
    line()
    for (const step of report.nextSteps) line(`- ${step}`)
  }
  return out.join("\n") + "\n"
}
