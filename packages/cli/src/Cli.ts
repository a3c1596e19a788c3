/**
 * The `braid` command: `plan`, `run`.
 *
 * @since 0.1.0
 */
import { ExecutionPlan, Orchestrator, Plan, Progress, RunReport } from "@braid/core"
import { Args, Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Option } from "effect"
import * as Render from "./Render.js"
import * as Wiring from "./Wiring.js"

const planFile = Args.file({ name: "plan", exists: "either" }).pipe(
  Args.withDescription("The plan file (YAML or JSON) in the seed's shape.")
)

const maxParallel = Options.integer("max-parallel").pipe(
  Options.optional,
  Options.withDescription("At most this many agents work at once (overrides the plan's maxParallel).")
)
const qualityThreshold = Options.integer("quality-threshold").pipe(
  Options.optional,
  Options.withDescription("Minimum review score, 0–100, for a task to pass (overrides qualityThreshold).")
)
const conflictStrategy = Options.choice("conflict-strategy", Plan.ConflictStrategy.literals).pipe(
  Options.optional,
  Options.withDescription("How textual conflicts are resolved: agent, priority or manual (overrides conflictStrategy).")
)
const onGateFailure = Options.choice("on-gate-failure", Plan.GateFailurePolicy.literals).pipe(
  Options.optional,
  Options.withDescription("What follows a task failing its gate 3 times: continue, halt-stream or fail-run.")
)
const json = Options.boolean("json").pipe(Options.withDescription("Print the RunReport as JSON on stdout."))
const report = Options.file("report").pipe(
  Options.optional,
  Options.withDescription("Also write the report as Markdown to this file.")
)
const agents = Options.choice("agents", Wiring.backends).pipe(
  Options.optional,
  Options.withDescription("Agent backend for streams that name none (default: the plan's `agent`, else script).")
)
const workspace = Options.choice("workspace", ["git", "memory"]).pipe(
  Options.withDefault("git" as const),
  Options.withDescription("git: a worktree per stream in --repo (default). memory: in-memory files, for trying plans with mock agents.")
)
const repo = Options.directory("repo").pipe(
  Options.optional,
  Options.withDescription("The git repository to work in (default: the current directory).")
)
const base = Options.text("base").pipe(Options.optional, Options.withDescription("The ref streams start from (default: the current branch)."))
const target = Options.text("target").pipe(
  Options.optional,
  Options.withDescription("The branch a successful run lands on (default: the base branch).")
)
const noLand = Options.boolean("no-land").pipe(
  Options.withDescription("Verify but do not land: leave the integration branch for review.")
)
const keepWorktrees = Options.boolean("keep-worktrees").pipe(
  Options.withDescription("Keep the run's worktrees after a successful landing.")
)
const quiet = Options.boolean("quiet").pipe(Options.withAlias("q"), Options.withDescription("Print no progress lines."))

const loadPlan = (path: string, overrides: Plan.Overrides) =>
  Plan.load(path).pipe(Effect.flatMap((plan) => Plan.override(plan, overrides, "command-line options")))

const planCommand = Command.make("plan", { plan: planFile, maxParallel, json }, (args) =>
  Effect.gen(function*() {
    const plan = yield* loadPlan(args.plan, { maxParallel: Option.getOrUndefined(args.maxParallel) })
    const execution = ExecutionPlan.make(plan)
    if (args.json) {
      yield* Console.log(JSON.stringify(
        {
          projectName: plan.projectName,
          featureName: plan.featureName,
          qualityThreshold: plan.qualityThreshold,
          maxParallel: plan.maxParallel,
          batches: execution.batches,
          integrationOrder: execution.integrationOrder,
          criticalPathLength: execution.criticalPathLength
        },
        null,
        2
      ))
    } else {
      yield* Console.log(ExecutionPlan.render(plan, execution))
    }
  })).pipe(Command.withDescription("Validate a plan and print its execution plan."))

/** Exit code of a finished run: 0 success, 1 something failed or needs review. */
export const exitCodeOf = (report: RunReport.RunReport): number => report.success ? 0 : 1

const runCommand = Command.make(
  "run",
  {
    plan: planFile,
    maxParallel,
    qualityThreshold,
    conflictStrategy,
    onGateFailure,
    json,
    report,
    agents,
    workspace,
    repo,
    base,
    target,
    noLand,
    keepWorktrees,
    quiet
  },
  (args) =>
    Effect.gen(function*() {
      const plan = yield* loadPlan(args.plan, {
        maxParallel: Option.getOrUndefined(args.maxParallel),
        qualityThreshold: Option.getOrUndefined(args.qualityThreshold),
        conflictStrategy: Option.getOrUndefined(args.conflictStrategy),
        onGateFailure: Option.getOrUndefined(args.onGateFailure)
      })
      const progress = args.quiet
        ? Progress.layerSilent
        : Progress.layerCallback((event) => {
          const text = Render.line(event)
          if (text !== undefined) process.stderr.write(`${text}\n`)
        })
      const layer = Wiring.layer(plan, {
        workspace: args.workspace,
        agent: Option.getOrUndefined(args.agents),
        repo: Option.getOrUndefined(args.repo),
        base: Option.getOrUndefined(args.base),
        target: Option.getOrUndefined(args.target)
      })
      const result = yield* Orchestrator.run(plan, { land: !args.noLand, keepWorktrees: args.keepWorktrees }).pipe(
        Effect.provide(layer),
        Effect.provide(progress)
      )
      if (Option.isSome(args.report)) {
        const fs = yield* FileSystem.FileSystem
        const tmp = `${args.report.value}.tmp-${process.pid}`
        // Written whole then renamed, so a reader never sees half a report.
        yield* fs.writeFileString(tmp, RunReport.toMarkdown(result))
        yield* fs.rename(tmp, args.report.value)
      }
      if (args.json) yield* Console.log(JSON.stringify(RunReport.encode(result), null, 2))
      else yield* Console.error(summaryLine(result, Option.getOrUndefined(args.report)))
      yield* Effect.sync(() => {
        process.exitCode = exitCodeOf(result)
      })
    })
).pipe(Command.withDescription("Run a plan: dispatch the streams, gate every task, resolve conflicts, verify, land."))

const summaryLine = (report: RunReport.RunReport, reportFile: string | undefined) => {
  const s = report.summary
  const lines = [
    "",
    `${report.status.toUpperCase()}: ${s.completedTasks}/${s.totalTasks} tasks completed, ${s.needsReviewTasks} need review, ${s.failedTasks} failed, ${s.skippedTasks} skipped; ` +
    `${report.conflictReport.conflicts.length} conflict(s); verification ${report.integrationResult.ran ? (report.integrationResult.passed ? "passed" : "failed") : "not run"}; ` +
    (report.mergeResult.landed ? `landed ${report.mergeResult.commit?.slice(0, 10)} on ${report.mergeResult.target}` : `not landed (${report.mergeResult.reason ?? "?"})`),
    ...report.nextSteps.map((step) => `  next: ${step}`)
  ]
  if (reportFile !== undefined) lines.push(`report: ${reportFile}`)
  return lines.join("\n")
}

/** The root command. */
export const braid = Command.make("braid").pipe(
  Command.withDescription("Run a software change as parallel work streams of coding agents."),
  Command.withSubcommands([planCommand, runCommand])
)
