/**
 * `braid plan` as a full preflight: everything `braid run` would refuse before it starts
 * (agent backends, their executables and scripts, prompt templates, the repository, the
 * `--report` folder), found without creating anything, plus warnings a careful user wants.
 *
 * @since 0.1.0
 */
import { Registry } from "@braid/agents"
import { CommandSpec, GitWorkspace, Landing, MemoryWorkspace, type Plan, Process } from "@braid/core"
import { CommandExecutor, FileSystem } from "@effect/platform"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as GitHubHttp from "./GitHubHttp.js"

/** One problem or warning, with where it is (a path into the plan, or the option). */
export interface Finding {
  readonly path: string
  readonly message: string
}

/** The options of `braid run` that decide whether it can start. */
export interface Options {
  readonly agent: string | undefined
  readonly reviewer?: Plan.ReviewerKind | undefined
  readonly workspace: "git" | "memory"
  readonly repo: string | undefined
  readonly base: string | undefined
  readonly target: string | undefined
  readonly land: boolean
  readonly report: string | undefined
  /** How it lands (default local). */
  readonly landMode?: Landing.ModeName | undefined
  readonly remote?: string | undefined
  readonly noGithub?: boolean | undefined
}

/** What preflight found. */
export interface Result {
  /** What `braid run` would refuse (exit 2). */
  readonly problems: ReadonlyArray<Finding>
  /** What a careful user wants to know; the run would still start. */
  readonly warnings: ReadonlyArray<Finding>
  /** The repository the run would work in, when there is one. */
  readonly repository: string | undefined
  /** Whether progress will be synced to GitHub, and why not. */
  readonly github: GitHubHttp.Settings
}

/** A threshold below this lets weak work pass: worth a warning. */
export const LOW_THRESHOLD = 50

/** The agent backend a stream's tasks are carried out by, as `run --agent` would choose it. */
export const backendOf = (plan: Plan.Plan, stream: Plan.PlannedStream, agent: string | undefined): string =>
  Registry.backendOf(plan, stream, { agent })

/** `--report`'s folder must exist before a run starts: the report is written at its end. */
export const reportProblem = (report: string | undefined): Finding | undefined => {
  if (report === undefined) return undefined
  const dir = path.dirname(path.resolve(report))
  const isDir = (() => {
    try {
      return fs.statSync(dir).isDirectory()
    } catch {
      return false
    }
  })()
  return isDir ? undefined : { path: "--report", message: `the folder ${dir} does not exist, so the report could not be written there` }
}

/** The tasks' and plan's commands, with where each is written, for the path warning. */
const commandsOf = (plan: Plan.Plan): Array<{ readonly where: string; readonly argv: ReadonlyArray<string> }> => {
  const found: Array<{ where: string; argv: ReadonlyArray<string> }> = []
  plan.checks.forEach((c, i) => found.push({ where: `checks[${i}]`, argv: c.argv }))
  plan.verify.forEach((c, i) => found.push({ where: `verify[${i}]`, argv: c.argv }))
  plan.file.tasks.forEach((task, i) => {
    ;(task.checks ?? []).forEach((spec, j) => {
      const c = CommandSpec.toCommand(spec)
      if (typeof c !== "string") found.push({ where: `tasks[${i}].checks[${j}]`, argv: c.argv })
    })
    // A `run: {script}` is read from beside the plan on purpose; a command runs in the worktree.
    if (task.run !== undefined && !CommandSpec.isScript(task.run)) {
      const c = CommandSpec.toRun(task.run)
      if (typeof c !== "string") found.push({ where: `tasks[${i}].run`, argv: c.argv })
    }
  })
  return found
}

/** Words of a command that look like relative paths (`./x.sh`, `scripts/check.mjs`). */
const relativePaths = (argv: ReadonlyArray<string>): Array<string> =>
  argv.filter((w) => !w.startsWith("-") && !path.isAbsolute(w) && !w.includes("://") && (w.includes("/") || w.startsWith(".")) && w !== "." && w !== "..")

/** Warnings: nothing that could fail a task, a low threshold, commands reaching files beside the plan. */
export const warningsOf = (plan: Plan.Plan, repository: string | undefined): Array<Finding> => {
  const warnings: Array<Finding> = []
  plan.file.tasks.forEach((task, i) => {
    if ((task.checks ?? []).length === 0 && plan.checks.length === 0) {
      warnings.push({
        path: `tasks[${i}]`,
        message: `task "${task.id}" has no checks and the plan has none: nothing can fail it but an attempt that changes nothing`
      })
    }
  })
  if (plan.qualityThreshold < LOW_THRESHOLD) {
    warnings.push({
      path: "qualityThreshold",
      message: `${plan.qualityThreshold} is under ${LOW_THRESHOLD}: a review that finds half the work wrong still passes`
    })
  }
  if (repository !== undefined && path.resolve(plan.baseDir) !== path.resolve(repository)) {
    for (const { argv, where } of commandsOf(plan)) {
      for (const word of relativePaths(argv)) {
        if (fs.existsSync(path.resolve(plan.baseDir, word)) && !fs.existsSync(path.resolve(repository, word))) {
          warnings.push({
            path: where,
            message: `"${word}" exists beside the plan (${path.resolve(plan.baseDir, word)}) but not in the repository: ` +
              `commands run in the stream's worktree, where it is ${path.join(repository, word)}`
          })
        }
      }
    }
  }
  return warnings
}

/** Everything `braid run` with these options would refuse before it starts, and the warnings. */
export const check = (plan: Plan.Plan, options: Options): Effect.Effect<Result, never, Requirements> =>
  Effect.gen(function*() {
    const problems: Array<Finding> = []
    const agents = yield* Registry.preflight(plan, { agent: options.agent, agentSource: "--agent", reviewer: options.reviewer, workspaceKind: options.workspace }).pipe(
      // Backends' preflights read the plan and the machine, never the workspace.
      Effect.provide(MemoryWorkspace.layer({}))
    )
    problems.push(...agents)
    const report = reportProblem(options.report)
    if (report !== undefined) problems.push(report)
    const mode = Landing.modeNamed(options.landMode ?? "local")
    const github = yield* GitHubHttp.settings(plan, { noGithub: options.noGithub === true })
    if (options.land && mode.needsGitHub && github._tag === "Off") {
      problems.push({ path: "--land", message: `--land ${mode.name} opens a pull request on githubRepo, but GitHub sync is off: ${github.reason}` })
    }
    let repository: string | undefined
    let outside: string | undefined
    if (options.workspace === "git") {
      const dir = options.repo ?? process.cwd()
      const top = yield* GitWorkspace.repositoryTop(dir).pipe(Effect.either)
      if (top._tag === "Left" && options.repo !== undefined) {
        problems.push({ path: "--repo", message: top.left.message })
      } else if (top._tag === "Left") {
        // Drafting a plan outside its repository is fine; running it there is not.
        outside = `${dir} is not inside a git repository, so the repository was not checked: ` +
          `run braid in the repository the plan changes, or pass --repo (braid run here would refuse)`
      } else {
        repository = top.right
        const refused = yield* GitWorkspace.check(
          {
            repo: top.right,
            ...(options.base !== undefined ? { base: options.base } : {}),
            ...(options.target !== undefined ? { target: options.target } : {})
          },
          { runId: "preflight", streams: plan.streams.map((s) => ({ name: s.name })), land: options.land && mode.local }
        ).pipe(Effect.flip, Effect.option)
        if (refused._tag === "Some") {
          problems.push({ path: refused.value._tag === "WorkspaceRefused" ? `repository (${refused.value.reason})` : "repository", message: refused.value.message })
        }
        if (options.land && !mode.local) {
          const remote = options.remote ?? "origin"
          const known = yield* Process.run(["git", "remote", "get-url", "--", remote], { cwd: top.right, env: { GIT_TERMINAL_PROMPT: "0" } }).pipe(
            Effect.map((r) => r.exitCode === 0),
            Effect.orElseSucceed(() => false)
          )
          if (!known) problems.push({ path: "--remote", message: `--land ${mode.name} pushes to the remote "${remote}", which the repository does not have (add it with git remote add, or pass --remote)` })
        }
      }
    }
    const warnings = warningsOf(plan, repository)
    if (outside !== undefined) warnings.push({ path: "repository", message: outside })
    return { problems, warnings, repository, github } satisfies Result
  })

/** What preflight needs from the platform. */
export type Requirements = CommandExecutor.CommandExecutor | FileSystem.FileSystem
