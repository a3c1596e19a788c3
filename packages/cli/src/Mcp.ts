/**
 * `braid mcp`: braid as a Model Context Protocol server on stdio, for an agent (Claude Code,
 * Codex, Gemini CLI) to hand braid a feature. Every tool is a value of `tools` — its name, its
 * input and output as Effect Schemas (sent as JSON Schema, `JSONSchema.make`), and the Effect
 * that answers it — and each answers with text and the same data as structured content.
 *
 * Read-only tools call what the CLI's commands call (`Preflight.check`, `Runs.statusOf`,
 * `Runs.listOf`, the run store's journal and report); a run is started, resumed, retried or landed
 * by the `braid` executable itself, detached in its own process group with its output in the run's
 * folder (`braid.log`), so it outlives the client and is the same run `braid runs` and `braid
 * status` show. A tool's failure is the CLI's message for it (`isError: true`), never a trace.
 *
 * The SDK's low-level `Server` is used, not `McpServer`: `McpServer.registerTool` takes zod
 * schemas, while braid's boundaries are Effect Schemas; the low-level server takes JSON Schema as
 * it is, and input is decoded with the tool's Schema (every problem at once).
 *
 * @since 0.1.0
 */
import * as Budget from "@braid/core/Budget"
import * as ExecutionPlan from "@braid/core/ExecutionPlan"
import * as Orchestrator from "@braid/core/Orchestrator"
import * as Plan from "@braid/core/Plan"
import * as RunReport from "@braid/core/RunReport"
import * as RunState from "@braid/core/RunState"
import type * as RunStore from "@braid/core/RunStore"
import * as Sandbox from "@braid/core/Sandbox"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import { Cause, Effect, Exit, JSONSchema, ParseResult, Runtime, Schema } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as Forecast from "./Forecast.js"
import * as Help from "./Help.js"
import * as Preflight from "./Preflight.js"
import * as Runs from "./Runs.js"

// ---------------------------------------------------------------------------------------------
// Errors

/** A tool's input that its Schema refuses, every problem named. */
export class ToolInputInvalid extends Schema.TaggedError<ToolInputInvalid>()("ToolInputInvalid", {
  tool: Schema.String,
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.tool}: invalid arguments: ${this.problems.join("; ")}`
  }
}

/** A tool that changes something for good was called without `confirm: true`. */
export class NotConfirmed extends Schema.TaggedError<NotConfirmed>()("NotConfirmed", { tool: Schema.String, what: Schema.String }) {
  override get message(): string {
    return `${this.tool} ${this.what}; nothing was done: call it again with confirm: true to go ahead`
  }
}

/** A plan `braid run` would refuse to start. */
export class PlanNotReady extends Schema.TaggedError<PlanNotReady>()("PlanNotReady", {
  plan: Schema.String,
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.plan}: braid run would refuse to start (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${
      this.problems.map((p) => `  - ${p}`).join("\n")
    }`
  }
}

/** The background `braid` process ended before its run was under way. */
export class CommandNotStarted extends Schema.TaggedError<CommandNotStarted>()("CommandNotStarted", {
  command: Schema.String,
  output: Schema.String
}) {
  override get message(): string {
    return `braid ${this.command} did not start: ${this.output}`
  }
}

/** A run that has not finished has no report. */
export class NoReportYet extends Schema.TaggedError<NoReportYet>()("NoReportYet", { runId: Schema.String, finished: Schema.Boolean }) {
  override get message(): string {
    return this.finished
      ? `run ${this.runId} finished, but its report was not kept (writing it failed when the run ended); run_status shows the run`
      : `run ${this.runId} has not finished, so it has no report yet (see run_status)`
  }
}

/** A run a tool cannot act on while a braid process works on it. */
export class RunBusy extends Schema.TaggedError<RunBusy>()("RunBusy", { runId: Schema.String }) {
  override get message(): string {
    return `run ${this.runId} is still running; wait for it to finish (run_status) before this`
  }
}

/** A task id the run's plan does not have. */
export class UnknownTask extends Schema.TaggedError<UnknownTask>()("UnknownTask", { runId: Schema.String, taskId: Schema.String, known: Schema.Array(Schema.String) }) {
  override get message(): string {
    return `run ${this.runId} has no task "${this.taskId}"; its tasks: ${this.known.join(", ")}`
  }
}

/** A resource address braid does not serve. */
export class UnknownResource extends Schema.TaggedError<UnknownResource>()("UnknownResource", { uri: Schema.String }) {
  override get message(): string {
    return `no resource ${this.uri}: braid serves braid://runs/<runId> and braid://runs/<runId>/report`
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas of the tools' inputs and outputs

const described = <A, I>(schema: Schema.Schema<A, I>, description: string): Schema.Schema<A, I> => schema.annotations({ description })
const repoField = Schema.optional(described(Schema.String, "The git repository (default: the one braid mcp serves, its --repo or current directory)."))
const runIdField = described(Schema.String, "The run's id, as list_runs gives it.")
const planField = described(Schema.String, "The plan file (YAML or JSON), absolute or relative to the repository.")
// Not `Schema.Int`: its identifier would make a `$ref` into `$defs`, whose sibling bounds JSON Schema ignores and some clients refuse.
const Int = Schema.Number.pipe(Schema.int())

/** What check_plan and start_run take from `braid run`'s options. */
const RunSettings = {
  agent: Schema.optional(described(Schema.Literal(...Help.BACKENDS), "The agent backend for streams that name none.")),
  maxParallel: Schema.optional(described(Int.pipe(Schema.positive()), "At most this many agents at once (overrides maxParallel).")),
  qualityThreshold: Schema.optional(described(Int.pipe(Schema.between(0, 100)), "The review score a task needs (overrides qualityThreshold).")),
  land: Schema.optional(described(Schema.Boolean, "Land the verified result on the target branch (default true; false = braid run --no-land)."))
}

const CheckPlanInput = Schema.Struct({ plan: planField, repo: repoField, ...RunSettings })

const StartRunInput = Schema.Struct({
  plan: planField,
  repo: repoField,
  ...RunSettings,
  reviewer: Schema.optional(Schema.Literal(...Plan.ReviewerKind.literals)),
  base: Schema.optional(described(Schema.String, "The branch or commit every stream starts from.")),
  target: Schema.optional(described(Schema.String, "The branch the run lands on.")),
  landMode: Schema.optional(Schema.Literal(...Help.LAND_MODES)),
  remote: Schema.optional(Schema.String),
  conflictStrategy: Schema.optional(Schema.Literal(...Plan.ConflictStrategy.literals)),
  onGateFailure: Schema.optional(Schema.Literal(...Plan.GateFailurePolicy.literals)),
  budget: Schema.optional(described(Schema.String, "What the agents may spend in all: 5usd, 200000tokens.")),
  sandbox: Schema.optional(Schema.Literal(...Sandbox.Mode.literals)),
  keepWorktrees: Schema.optional(Schema.Boolean)
})

const RunInput = Schema.Struct({ runId: runIdField, repo: repoField })
const LatestRunInput = Schema.Struct({ runId: Schema.optional(described(Schema.String, "The run's id (default: the latest run).")), repo: repoField })

const Finding = Schema.Struct({ path: Schema.String, message: Schema.String })

const CheckPlanOutput = Schema.Struct({
  plan: Schema.String,
  ready: Schema.Boolean,
  projectName: Schema.String,
  featureName: Schema.String,
  streams: Schema.Array(Schema.Struct({
    name: Schema.String,
    type: Schema.String,
    agent: Schema.String,
    waitsOn: Schema.Array(Schema.String),
    tasks: Schema.Array(Schema.Struct({ id: Schema.String, title: Schema.String, checks: Schema.Array(Schema.String), waitsFor: Schema.Array(Schema.String) }))
  })),
  waves: described(Schema.Array(Schema.Array(Schema.String)), "Streams by dependency level (dispatch has no barriers: a task starts once what it waits for is done)."),
  integrationOrder: Schema.Array(Schema.String),
  repository: Schema.NullOr(Schema.String),
  problems: described(Schema.Array(Finding), "What braid run would refuse."),
  warnings: Schema.Array(Finding),
  forecast: described(
    Schema.Array(Schema.Struct({
      kind: Schema.Literal("scope", "file", "cochange"),
      streams: Schema.Array(Schema.String),
      tasks: Schema.Array(Schema.String),
      paths: Schema.Array(Schema.String),
      message: Schema.String,
      fix: Schema.String
    })),
    "The conflict forecast: where streams that run side by side will change the same files, each with a fix (as braid plan prints it)."
  )
})

const Started = Schema.Struct({
  runId: Schema.String,
  pid: described(Schema.Number, "The background braid process (its own process group)."),
  log: described(Schema.String, "Its output."),
  repository: Schema.String,
  command: Schema.String
})

const TaskStatus = Schema.Struct({
  taskId: Schema.String,
  title: Schema.String,
  state: Schema.String,
  status: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  round: Schema.Number,
  attempts: Schema.Number,
  score: Schema.NullOr(Schema.Number),
  waitsFor: Schema.Array(Schema.String)
})

const RunStatusOutput = Schema.Struct({
  runId: Schema.String,
  status: described(Schema.String, "running, succeeded, failed, needs-review, interrupted, …"),
  startedAt: Schema.String,
  streams: Schema.Array(Schema.Struct({ stream: Schema.String, type: Schema.String, tasks: Schema.Array(TaskStatus) })),
  merged: Schema.Array(Schema.String),
  landed: Schema.NullOr(Schema.String),
  next: Schema.NullOr(described(Schema.String, "The command that continues it, if any.")),
  settledTasks: Schema.Number,
  totalTasks: Schema.Number,
  cost: Schema.Struct({ usd: Schema.Number, tokens: Schema.Number })
})

const RunEventsInput = Schema.Struct({
  runId: runIdField,
  cursor: Schema.optional(described(Int.pipe(Schema.nonNegative()), "The `next` of the previous call (default 0: from the start).")),
  limit: Schema.optional(described(Int.pipe(Schema.between(1, 1000)), "At most this many events (default 200).")),
  repo: repoField
})

const RunEventsOutput = Schema.Struct({
  runId: Schema.String,
  events: Schema.Array(Schema.Struct({ seq: Schema.Number, at: Schema.String, key: Schema.String, type: Schema.String, value: Schema.Unknown })),
  next: described(Schema.Number, "The cursor for the next call."),
  running: Schema.Boolean,
  finished: Schema.NullOr(Schema.String)
})

const RunReportOutput = Schema.Struct({
  runId: Schema.String,
  status: Schema.String,
  success: Schema.Boolean,
  landed: Schema.Boolean,
  markdown: Schema.String
})

const ListRunsOutput = Schema.Struct({
  runs: Schema.Array(Schema.Struct({
    runId: Schema.String,
    status: Schema.String,
    startedAt: Schema.optional(Schema.String),
    durationMs: Schema.optional(Schema.Number),
    settledTasks: Schema.optional(Schema.Number),
    totalTasks: Schema.optional(Schema.Number),
    error: Schema.optional(Schema.String)
  }))
})

// ---------------------------------------------------------------------------------------------
// The tools

/** What every tool may use: NodeContext's services and the plan fields the backends add. */
type Requirements = Effect.Effect.Context<ReturnType<typeof Preflight.check>> | Plan.BackendFields

/** A tool's answer: text for a person, the same data structured. */
interface Answer<O> {
  readonly text: string
  readonly structured: O
}

/** One tool: its name, what it is for, its input and output Schemas, and what answers it. */
export interface Tool<I, O> {
  readonly name: string
  readonly description: string
  readonly input: Schema.Schema<I, any>
  readonly output: Schema.Schema<O, any>
  readonly run: (input: I, context: Context) => Effect.Effect<Answer<O>, { readonly message: string }, Requirements>
}

/** What the server was started with. */
export interface Context {
  /** The repository a tool works in when it names none. */
  readonly repo: string | undefined
  /** How to start `braid` itself: node and the CLI's entry. */
  readonly braid: ReadonlyArray<string>
}

const tool = <I, O>(t: Tool<I, O>): Tool<any, any> => t as never

/** The repository's runs, and how a continuation names them. */
const runsOf = (repo: string | undefined, context: Context) =>
  Effect.map(Runs.storeFor(repo ?? context.repo ?? process.cwd()), ({ store, top }) => ({ store, top, where: { top, flag: `--repo ${top}` } }))

const planPathOf = (plan: string, top: string | undefined, context: Context) =>
  nodePath.resolve(top ?? context.repo ?? process.cwd(), plan)

const loadPlan = (path: string, overrides: Plan.Overrides) =>
  Effect.flatMap(Plan.load(path), (plan) => Plan.override(plan, overrides, "the tool's arguments"))

const checkPlan = tool({
  name: "check_plan",
  description:
    "Check a braid plan as `braid plan` does (the plan, agents, scripts, the repository) without changing anything: its streams and tasks, the waves they run in, what each task waits for, and every problem that would stop braid run.",
  input: CheckPlanInput,
  output: CheckPlanOutput,
  run: (input, context) =>
    Effect.gen(function*() {
      const top = input.repo ?? context.repo
      const path = planPathOf(input.plan, top, context)
      const plan = yield* loadPlan(path, { maxParallel: input.maxParallel, qualityThreshold: input.qualityThreshold })
      const execution = ExecutionPlan.make(plan)
      const result = yield* Preflight.check(plan, {
        agent: input.agent,
        workspace: "git",
        repo: top,
        base: undefined,
        target: undefined,
        land: input.land ?? true,
        report: undefined
      })
      const backendOf = (stream: Plan.PlannedStream) => Preflight.backendOf(plan, stream, input.agent)
      const collisions = yield* Forecast.forecast(plan, result.repository ?? top ?? process.cwd())
      const structured = {
        plan: path,
        ready: result.problems.length === 0,
        projectName: plan.projectName,
        featureName: plan.featureName,
        streams: Preflight.streamsOf(plan, execution, input.agent),
        waves: execution.batches.map((b) => [...b.streams]),
        integrationOrder: [...execution.integrationOrder],
        repository: result.repository ?? null,
        problems: [...result.problems],
        warnings: [...plan.warnings, ...result.warnings],
        forecast: collisions.map((c) => ({ ...c, streams: [...c.streams], tasks: [...c.tasks], paths: [...c.paths] })),
        // Whatever else preflight comes to find is passed on as it is.
        ...Object.fromEntries(Object.entries(result).filter(([key]) => !["problems", "warnings", "repository", "github"].includes(key)))
      }
      const text = [
        ExecutionPlan.render(plan, execution, { backendOf }),
        structured.ready ? "ready: braid run would start" : `NOT READY: braid run would refuse to start (${result.problems.length} problem(s)):`,
        ...result.problems.map((p) => `  - ${p.path}: ${p.message}`),
        ...structured.warnings.map((w) => `warning: ${w.path}: ${w.message}`),
        ...collisions.flatMap((c) => [`conflict forecast: ${c.kind}: ${c.message}`, `  fix: ${c.fix}`])
      ].join("\n")
      return { text, structured }
    })
})

const startRun = tool({
  name: "start_run",
  description:
    "Start a braid run of a plan in the background (as `braid run`: agents work the streams in their own worktrees, every task gated, then merged, verified and landed) and return its run id at once. The run goes on if this client goes away; follow it with run_status or run_events, then run_report.",
  input: StartRunInput,
  output: Started,
  run: (input, context) =>
    Effect.gen(function*() {
      const { store, top } = yield* runsOf(input.repo, context)
      const path = planPathOf(input.plan, input.repo ?? context.repo, context)
      const budget = input.budget === undefined ? undefined : Budget.parseAmount(input.budget)
      if (typeof budget === "string") return yield* new ToolInputInvalid({ tool: "start_run", problems: [`budget: ${budget}`] })
      const plan = yield* loadPlan(path, {
        maxParallel: input.maxParallel,
        qualityThreshold: input.qualityThreshold,
        conflictStrategy: input.conflictStrategy,
        onGateFailure: input.onGateFailure,
        budget,
        sandbox: input.sandbox
      })
      // What `braid run` would refuse is said now, not found in a log later.
      const result = yield* Preflight.check(plan, {
        agent: input.agent,
        reviewer: input.reviewer,
        workspace: "git",
        repo: top,
        base: input.base,
        target: input.target,
        land: input.land ?? true,
        report: undefined,
        landMode: input.landMode,
        remote: input.remote
      })
      if (result.problems.length > 0) return yield* new PlanNotReady({ plan: path, problems: result.problems.map((p) => `${p.path}: ${p.message}`) })
      const runId = Orchestrator.makeRunId()
      const flag = (name: string, value: string | number | undefined) => value === undefined ? [] : [`--${name}`, String(value)]
      const args = [
        "run",
        path,
        "--run-id",
        runId,
        "--repo",
        top,
        ...flag("agent", input.agent),
        ...flag("reviewer", input.reviewer),
        ...flag("base", input.base),
        ...flag("target", input.target),
        ...flag("land", input.landMode),
        ...flag("remote", input.remote),
        ...flag("max-parallel", input.maxParallel),
        ...flag("quality-threshold", input.qualityThreshold),
        ...flag("conflict-strategy", input.conflictStrategy),
        ...flag("on-gate-failure", input.onGateFailure),
        ...flag("budget", input.budget),
        ...flag("sandbox", input.sandbox),
        ...(input.land === false ? ["--no-land"] : []),
        ...(input.keepWorktrees === true ? ["--keep-worktrees"] : [])
      ]
      return yield* background({ context, store, top, runId, args, isNew: true })
    })
})

const runStatus = tool({
  name: "run_status",
  description:
    "A run's state (default: the latest run): status, each stream's tasks with their state, score, attempts and what they wait for, integration, verification, landing, cost so far, and the command that continues it.",
  input: LatestRunInput,
  output: RunStatusOutput,
  run: (input, context) =>
    Effect.gen(function*() {
      const { store, where } = yield* runsOf(input.repo, context)
      const { json } = yield* Runs.statusOf(store, where, input.runId)
      const text = [
        `run ${json.runId}: ${json.status}, started ${json.startedAt}, ${json.settledTasks}/${json.totalTasks} tasks settled, $${json.cost.usd.toFixed(4)} and ${json.cost.tokens} tokens spent`,
        ...json.streams.flatMap((s) => [
          `  ${s.stream} (${s.type})`,
          ...s.tasks.map((t) =>
            `    ${t.taskId}: ${t.state}${t.attempts > 0 ? `, ${t.attempts} attempt(s)` : ""}${t.score !== null ? `, score ${t.score}` : ""}${
              t.waitsFor.length > 0 ? `, waits for ${t.waitsFor.join(", ")}` : ""
            }`
          )
        ]),
        ...(json.merged.length > 0 ? [`  integrated: ${json.merged.join(", ")}`] : []),
        ...(json.landed !== null ? [`  landed ${json.landed.slice(0, 10)}`] : []),
        ...(json.landingRefused !== null ? [`  landing refused: ${json.landingRefused}`] : []),
        ...(json.next !== null ? [`continue with: ${json.next}`] : [])
      ].join("\n")
      return { text, structured: json }
    })
})

const runEvents = tool({
  name: "run_events",
  description:
    "What a run journaled since a cursor (each step's record: tasks started and settled with their attempts and reviews, merges, verification, landing), and the cursor to pass next time; running says whether more will come.",
  input: RunEventsInput,
  output: RunEventsOutput,
  run: (input, context) =>
    Effect.gen(function*() {
      const { store } = yield* runsOf(input.repo, context)
      const stored = yield* store.load(input.runId)
      const cursor = input.cursor ?? 0
      const records = stored.records.filter((r) => r.seq > cursor).slice(0, input.limit ?? 200)
      const state = RunState.fold(stored.records)
      const running = yield* store.isLocked(input.runId)
      const events = records.map((r) => ({
        seq: r.seq,
        at: r.at,
        key: r.key,
        type: typeof r.value === "object" && r.value !== null && "_tag" in r.value ? String((r.value as { _tag: unknown })._tag) : "value",
        value: r.value
      }))
      const next = records.at(-1)?.seq ?? cursor
      const text = [
        ...events.map((e) => `${e.seq} ${e.at} ${e.key} ${e.type}`),
        `next cursor: ${next}; ${running ? "the run is at work" : state.finished !== undefined ? `the run finished: ${state.finished}` : "no braid process works on the run"}`
      ].join("\n")
      return { text, structured: { runId: input.runId, events, next, running, finished: state.finished ?? null } }
    })
})

/** A finished run's report, rendered. */
const reportOf = (store: RunStore.Service, runId: string) =>
  Effect.gen(function*() {
    const stored = yield* store.load(runId)
    const text = yield* store.loadReport(runId)
    if (text === undefined) return yield* new NoReportYet({ runId, finished: stored.records.some((r) => r.key === "run/finished") })
    const report = yield* RunReport.decode(JSON.parse(text))
    return { report, markdown: RunReport.toMarkdown(report) }
  })

const runReport = tool({
  name: "run_report",
  description: "A finished run's report as Markdown (as `braid report`): every task's attempts, scores and feedback, conflicts, verification, landing, cost.",
  input: RunInput,
  output: RunReportOutput,
  run: (input, context) =>
    Effect.gen(function*() {
      const { store } = yield* runsOf(input.repo, context)
      const { markdown, report } = yield* reportOf(store, input.runId)
      return {
        text: markdown,
        // The Markdown, not the report's JSON as well: claude hands a tool's structured content to the model, and the JSON would double what it reads.
        structured: { runId: input.runId, status: report.status, success: report.success, landed: report.mergeResult.landed, markdown }
      }
    })
})

const listRuns = tool({
  name: "list_runs",
  description: "Every run recorded in the repository, oldest first (as `braid runs`).",
  input: Schema.Struct({ repo: repoField }),
  output: ListRunsOutput,
  run: (input, context) =>
    Effect.gen(function*() {
      const { store } = yield* runsOf(input.repo, context)
      const runs = yield* Runs.listOf(store)
      const text = runs.length === 0
        ? `no runs in ${store.location}`
        : runs.map((r) => `${r.runId}\t${r.status}${r.settledTasks !== undefined ? `\t${r.settledTasks}/${r.totalTasks} tasks settled` : ""}${r.error !== undefined ? `\t${r.error}` : ""}`)
          .join("\n")
      return { text, structured: { runs } }
    })
})

/** A run that exists and that no braid process works on, as stored. */
const idle = (store: RunStore.Service, runId: string) =>
  Effect.gen(function*() {
    const stored = yield* store.load(runId)
    if (yield* store.isLocked(runId)) return yield* new RunBusy({ runId })
    return stored
  })

const retryTask = tool({
  name: "retry_task",
  description:
    "Run a finished run's failed or needs-review task again with your feedback (as `braid retry --task <id> --feedback <text>`; without taskId, every such task), in the background; settled tasks keep their commits, then the run integrates, verifies and lands. Returns at once; follow it with run_status.",
  input: Schema.Struct({
    runId: runIdField,
    taskId: Schema.optional(described(Schema.String, "The task to run again (default: every failed or needs-review task).")),
    feedback: Schema.optional(described(Schema.String, "What to do differently: added to the task's feedback.")),
    repo: repoField
  }),
  output: Started,
  run: (input, context) =>
    Effect.gen(function*() {
      const { store, top } = yield* runsOf(input.repo, context)
      const stored = yield* idle(store, input.runId)
      if (input.taskId !== undefined) {
        const plan = yield* Plan.parse(stored.planText, stored.manifest.planSource, stored.manifest.planBaseDir)
        if (!plan.tasks.has(input.taskId)) return yield* new UnknownTask({ runId: input.runId, taskId: input.taskId, known: [...plan.tasks.keys()] })
      }
      const note = input.feedback?.trim()
      const args = [
        "retry",
        input.runId,
        "--repo",
        top,
        ...(input.taskId !== undefined ? ["--task", input.taskId] : []),
        ...(note !== undefined && note !== "" ? ["--feedback", note] : [])
      ]
      return yield* background({ context, store, top, runId: input.runId, args, isNew: false })
    })
})

const resumeRun = tool({
  name: "resume_run",
  description:
    "Continue a run from its journal (as `braid resume`; default: the latest run) in the background: after a crash, an interruption, a usage limit or its budget (give a raised budget). Returns at once.",
  input: Schema.Struct({
    runId: Schema.optional(described(Schema.String, "The run's id (default: the latest run).")),
    budget: Schema.optional(described(Schema.String, "A raised budget for a run its budget paused: 10usd, 500000tokens.")),
    repo: repoField
  }),
  output: Started,
  run: (input, context) =>
    Effect.gen(function*() {
      const { store, top } = yield* runsOf(input.repo, context)
      const runId = yield* Runs.pickRun(store, input.runId)
      yield* idle(store, runId)
      if (input.budget !== undefined && typeof Budget.parseAmount(input.budget) === "string") {
        return yield* new ToolInputInvalid({ tool: "resume_run", problems: [`budget: ${Budget.parseAmount(input.budget) as string}`] })
      }
      const args = ["resume", runId, "--repo", top, ...(input.budget !== undefined ? ["--budget", input.budget] : [])]
      return yield* background({ context, store, top, runId, args, isNew: false })
    })
})

const landRun = tool({
  name: "land_run",
  description:
    "Land a verified run on its target branch (as `braid land`): a run made with land: false, or one whose landing was refused. It changes the target branch, so it needs confirm: true. Runs in the background; follow it with run_status.",
  input: Schema.Struct({
    runId: runIdField,
    confirm: Schema.optional(described(Schema.Boolean, "Must be true: landing changes the target branch.")),
    repo: repoField
  }),
  output: Started,
  run: (input, context) =>
    Effect.gen(function*() {
      if (input.confirm !== true) return yield* new NotConfirmed({ tool: "land_run", what: `changes the target branch of run ${input.runId}` })
      const { store, top } = yield* runsOf(input.repo, context)
      yield* idle(store, input.runId)
      return yield* background({ context, store, top, runId: input.runId, args: ["land", input.runId, "--repo", top], isNew: false })
    })
})

/** Every tool `braid mcp` serves. */
export const tools: ReadonlyArray<Tool<any, any>> = [checkPlan, startRun, runStatus, runEvents, runReport, listRuns, retryTask, resumeRun, landRun]

// ---------------------------------------------------------------------------------------------
// Runs in the background

/** How long a background braid may take to get its run under way (its lock held) before the tool answers anyway. */
const START_WAIT_MS = 60_000

/**
 * Starts `braid <args>` detached — its own process group, stdin closed, stdout and stderr
 * appended to `braid.log` in the run's folder — and waits until it holds the run's lock (the
 * run is under way) or ends. Ended without its run under way, its own error message is the
 * tool's. node's `spawn` is used, not @effect/platform's `Command`: the process must outlive
 * this one, with a file as its output, and nothing here waits for it.
 */
const background = (input: {
  readonly context: Context
  readonly store: RunStore.Service
  readonly top: string
  readonly runId: string
  readonly args: ReadonlyArray<string>
  readonly isNew: boolean
}) =>
  Effect.gen(function*() {
    const folder = nodePath.join(input.store.location, input.runId)
    const log = nodePath.join(folder, "braid.log")
    const [node, ...entry] = input.context.braid
    const child = yield* Effect.try({
      try: () => {
        fs.mkdirSync(folder, { recursive: true })
        const fd = fs.openSync(log, "a+")
        try {
          const started = spawn(node!, [...entry, ...input.args], { cwd: input.top, detached: true, stdio: ["ignore", fd, fd], env: { ...process.env, NO_COLOR: "1" } })
          started.unref()
          return { process: started, fd }
        } catch (e) {
          fs.closeSync(fd)
          throw e
        }
      },
      catch: (e) => new CommandNotStarted({ command: input.args[0]!, output: (e as Error).message })
    })
    let exit: number | undefined
    child.process.on("exit", (code, signal) => void (exit = code ?? (signal !== null ? 128 : 1)))
    child.process.on("error", () => void (exit = exit ?? 1))
    /** What the process wrote, read through this process's own descriptor: a run refused before it started removes its folder, log and all. */
    const output = () => {
      const size = fs.fstatSync(child.fd).size
      const buffer = Buffer.alloc(Math.min(size, 64 * 1024))
      fs.readSync(child.fd, buffer, 0, buffer.length, Math.max(0, size - buffer.length))
      return buffer.toString("utf8")
    }
    const journaled = input.isNew
      ? Effect.succeed(0)
      : Effect.map(input.store.load(input.runId), (s) => s.records.length).pipe(Effect.orElseSucceed(() => 0))
    const before = yield* journaled
    const command = `braid ${input.args.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(" ")}`
    const started = { runId: input.runId, pid: child.process.pid ?? 0, log, repository: input.top, command }
    const deadline = Date.now() + START_WAIT_MS
    yield* Effect.gen(function*() {
      while (Date.now() < deadline) {
        const recorded = !input.isNew || (yield* input.store.list()).includes(input.runId)
        if (recorded && (yield* input.store.isLocked(input.runId))) return
        if (exit !== undefined) {
          // Ended already: a run that did its work (recorded, or its journal grew) is what was asked; anything else says why.
          if (exit === 0 || (input.isNew ? recorded && exit !== 2 : (yield* journaled) > before)) return
          const text = output()
          // A new run refused before it was recorded leaves no folder behind (only its log was in it).
          if (input.isNew && !recorded) fs.rmSync(folder, { recursive: true, force: true })
          const said = text.split("\n").filter((l) => l.startsWith("braid: ") && !l.startsWith("braid: warning")).map((l) => l.slice("braid: ".length))
          return yield* new CommandNotStarted({
            command: input.args[0]!,
            output: (said.length > 0 ? said.join("\n") : text.trim().split("\n").slice(-10).join("\n")) || `exit ${exit}`
          })
        }
        yield* Effect.sleep("100 millis")
      }
    }).pipe(Effect.ensuring(Effect.sync(() => fs.closeSync(child.fd))))
    return {
      text: `${input.args[0] === "run" ? "started" : `${input.args[0]} started for`} run ${input.runId} in the background (pid ${started.pid}); its output goes to ${log}. Follow it with run_status or run_events.`,
      structured: started
    }
  })

// ---------------------------------------------------------------------------------------------
// Resources

const RUN_URI = /^braid:\/\/runs\/([^/]+)(\/report)?$/

/** The runs as resources: each run's status, and the report of a finished one. */
const resources = (context: Context) =>
  Effect.gen(function*() {
    const { store } = yield* runsOf(undefined, context)
    const runs = yield* Runs.listOf(store)
    return runs.flatMap((r) => [
      { uri: `braid://runs/${r.runId}`, name: `run ${r.runId}`, description: `braid run ${r.runId}: ${r.status}`, mimeType: "application/json" },
      ...(r.status === "running" || r.status === "unreadable" ? [] : [{ uri: `braid://runs/${r.runId}/report`, name: `report of run ${r.runId}`, mimeType: "text/markdown" }])
    ])
  })

const readResource = (uri: string, context: Context) =>
  Effect.gen(function*() {
    const match = RUN_URI.exec(uri)
    if (match === null) return yield* new UnknownResource({ uri })
    const runId = decodeURIComponent(match[1]!)
    const { store, where } = yield* runsOf(undefined, context)
    if (match[2] !== undefined) {
      const { markdown } = yield* reportOf(store, runId)
      return { uri, mimeType: "text/markdown", text: markdown }
    }
    const { json } = yield* Runs.statusOf(store, where, runId)
    return { uri, mimeType: "application/json", text: JSON.stringify(json, null, 2) }
  })

// ---------------------------------------------------------------------------------------------
// The server

/** A JSON Schema for the protocol: without `$schema`/`$id`, and (for outputs) open to fields a later braid adds. */
const jsonSchemaOf = (schema: Schema.Schema<any, any>, open: boolean): Record<string, unknown> => {
  const clean = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(clean)
    if (typeof value !== "object" || value === null) return value
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k, v]) => k !== "$schema" && k !== "$id" && !(open && k === "additionalProperties" && v === false))
        .map(([k, v]) => [k, clean(v)])
    )
  }
  return clean(JSONSchema.make(schema)) as Record<string, unknown>
}

/** A failure as the CLI would say it: its message, never a trace. */
const messageOf = (cause: Cause.Cause<{ readonly message?: string; readonly _tag?: string }>): string => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return failure.value.message ?? failure.value._tag ?? "failed"
  if (Cause.isInterruptedOnly(cause)) return "interrupted"
  const defect = Cause.squash(cause)
  return `internal error: ${defect instanceof Error ? defect.message : String(defect)}`
}

/** The arguments a tool was called with, decoded by its Schema (every problem at once). */
const decodeInput = (t: Tool<any, any>, args: unknown) =>
  Schema.decodeUnknown(t.input, { errors: "all", onExcessProperty: "error" })(args ?? {}).pipe(
    Effect.mapError((e) =>
      new ToolInputInvalid({
        tool: t.name,
        problems: ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => `${i.path.length > 0 ? `${i.path.join(".")}: ` : ""}${i.message}`)
      })
    )
  )

/**
 * Serves the tools and resources on stdin/stdout until stdin closes. stdout is the protocol's:
 * anything else the process would print there goes to stderr.
 */
export const serve = (options: { readonly repo: string | undefined }) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<Requirements>()
    const context: Context = { repo: options.repo === undefined ? undefined : nodePath.resolve(options.repo), braid: [process.execPath, process.argv[1]!] }
    const run = <A>(effect: Effect.Effect<A, { readonly message?: string; readonly _tag?: string }, Requirements>) =>
      Runtime.runPromiseExit(runtime)(effect)
    const server = new Server(
      { name: "braid", version: Help.VERSION },
      {
        capabilities: { tools: {}, resources: {} },
        instructions:
          "braid runs a software change as parallel work streams of coding agents, each in its own git worktree, every task gated on a quality score, then merged, verified and landed. Write a plan (streams, tasks, dependsOn, checks, verify), check_plan it, start_run, follow run_status until it is no longer running, read run_report, and retry_task with feedback where a task failed."
      }
    )
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: tools.map((t) => ({ name: t.name, description: t.description, inputSchema: jsonSchemaOf(t.input, false) as never, outputSchema: jsonSchemaOf(t.output, true) as never }))
    }))
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      const t = tools.find((t) => t.name === request.params.name)
      if (t === undefined) {
        return { isError: true, content: [{ type: "text" as const, text: `no tool ${request.params.name}; braid's tools: ${tools.map((t) => t.name).join(", ")}` }] }
      }
      const exit = await run(Effect.flatMap(decodeInput(t, request.params.arguments), (input) => t.run(input, context)).pipe(Effect.withSpan(`Mcp.${t.name}`)))
      return Exit.isSuccess(exit)
        ? { content: [{ type: "text" as const, text: exit.value.text }], structuredContent: exit.value.structured as Record<string, unknown> }
        : { isError: true, content: [{ type: "text" as const, text: messageOf(exit.cause) }] }
    })
    server.setRequestHandler(ListResourcesRequestSchema, async () => {
      const exit = await run(resources(context))
      return { resources: Exit.isSuccess(exit) ? exit.value : [] }
    })
    server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
      resourceTemplates: [
        { uriTemplate: "braid://runs/{runId}", name: "a run's status", mimeType: "application/json" },
        { uriTemplate: "braid://runs/{runId}/report", name: "a finished run's report", mimeType: "text/markdown" }
      ]
    }))
    server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
      const exit = await run(readResource(request.params.uri, context))
      if (Exit.isSuccess(exit)) return { contents: [exit.value] }
      throw new Error(messageOf(exit.cause))
    })
    // The protocol owns stdout: a stray console.log would corrupt it.
    const log = console.log
    console.log = console.error
    yield* Effect.async<void>((resume) => {
      const transport = new StdioServerTransport()
      server.onclose = () => resume(Effect.void)
      process.stdin.once("end", () => void server.close())
      void server.connect(transport)
    }).pipe(Effect.ensuring(Effect.sync(() => void (console.log = log))))
  })
