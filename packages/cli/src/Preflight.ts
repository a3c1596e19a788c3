/**
 * `braid plan` as a full preflight: everything `braid run` would refuse before it starts
 * (agent backends, their executables and scripts, prompt templates, the repository, the
 * `--report` folder), found without creating anything, plus warnings a careful user wants.
 *
 * @since 0.1.0
 */
import { Registry } from "@braid/agents"
import { CommandSpec, ExecutionPlan, FileRunStore, GitWorkspace, Landing, MemoryWorkspace, Plan, Process, RunStore, Sandbox } from "@braid/core"
import { CommandExecutor, FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Backends from "./Backends.js"
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

/**
 * The plan's streams in dependency order as `braid plan --json` and MCP's `check_plan` give them:
 * each with its agent, the streams it waits on, and its tasks with their checks and what each
 * waits for.
 */
export const streamsOf = (plan: Plan.Plan, execution: ExecutionPlan.ExecutionPlan, agent: string | undefined) => {
  const preds = ExecutionPlan.predecessors(plan)
  return execution.integrationOrder.map((name) => {
    const stream = Plan.streamNamed(plan, name)!
    return {
      name,
      type: stream.type,
      agent: backendOf(plan, stream, agent),
      waitsOn: [...(execution.streamDependsOn.get(name) ?? [])],
      tasks: stream.tasks.map((t) => ({ id: t.id, title: t.title, checks: [...ExecutionPlan.checkNamesOf(plan, t)], waitsFor: [...(preds.get(t.id) ?? [])] }))
    }
  })
}

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
  if (repository !== undefined) warnings.push(...environmentWarnings(plan, repository))
  return warnings
}

/** Package managers whose commands need the project's dependencies installed in the checkout. */
const NEEDS_DEPENDENCIES: ReadonlyArray<readonly [RegExp, string, string]> = [
  [/^(npm|npx|pnpm|yarn)$/, "package.json", "node_modules"],
  [/^(pytest|tox|python3?)$/, "requirements.txt", ".venv"],
  [/^(pytest|tox|python3?)$/, "pyproject.toml", ".venv"]
]

/**
 * What a fresh checkout will lack: a `share` key file or `copy` source that is not in the
 * repository, and a check naming a package manager (`npm test`) in a project whose
 * dependencies no environment installs (a checkout has no `node_modules` of its own).
 */
const environmentWarnings = (plan: Plan.Plan, repository: string): Array<Finding> => {
  const found: Array<Finding> = []
  const environments: Array<[string, Plan.Environment]> = [["environment", plan.environment]]
  plan.streams.forEach((s, i) => {
    if (plan.file.streams[i]?.environment !== undefined && s.environment !== undefined) environments.push([`streams[${i}].environment`, s.environment])
  })
  for (const [where, env] of environments) {
    env.share.forEach((shared, i) => {
      for (const key of shared.key) {
        if (!fs.existsSync(path.join(repository, key))) {
          found.push({ path: `${where}.share[${i}].key`, message: `"${key}" is not in the repository (${repository}): every checkout gets the same key, whatever it installs` })
        }
      }
    })
    env.copy.forEach((pattern, i) => {
      const plain = !/[*?[\]!]/.test(pattern)
      if (plain && !fs.existsSync(path.join(repository, pattern))) {
        found.push({ path: `${where}.copy[${i}]`, message: `"${pattern}" is not in your checkout (${repository}): nothing will be copied for it` })
      }
    })
  }
  const installs = (env: Plan.Environment | undefined, folder: string) =>
    env !== undefined && (env.setup.length > 0 || env.share.some((s) => s.path === folder))
  const checks = [...plan.checks.map((c) => ({ c, where: "checks" })), ...plan.verify.map((c) => ({ c, where: "verify" }))]
  for (const { c, where } of checks) {
    const tool = path.basename(c.argv[0]!)
    for (const [pattern, manifest, folder] of NEEDS_DEPENDENCIES) {
      if (!pattern.test(tool) || !fs.existsSync(path.join(repository, manifest))) continue
      const bare = plan.streams.some((s) => !installs(s.environment ?? plan.environment, folder))
      if (bare && !installs(plan.environment, folder)) {
        found.push({
          path: where,
          message: `\`${c.argv.join(" ")}\` runs in a fresh checkout, which has no ${folder} of its own: give the plan an environment that installs it ` +
            `(e.g. environment: { share: [{ path: ${folder}, key: [${manifest === "package.json" ? "package-lock.json" : manifest}], build: ${manifest === "package.json" ? "npm ci" : "…"} }] })`
        })
        break
      }
    }
  }
  return found
}

/** A run needs at least this much free space where it keeps its journal (`<repo>/.braid`) and where its checkouts go. */
export const MIN_FREE_BYTES = 8 * 1024 * 1024

/** How long a lock held by a live git process is waited for before the run is refused. */
const LOCK_WAIT_MS = 3000

/** The repository's state would stop a run midway or at its end: found before it starts (exit 2). */
export class RepositoryNotReady extends Schema.TaggedError<RepositoryNotReady>()("RepositoryNotReady", {
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return this.problems.join("\nbraid: ")
  }
}

/** The branch a run lands on: `--target`, else the base when it is a branch, else the branch checked out. */
export const targetOf = (top: string, options: { readonly base?: string | undefined; readonly target?: string | undefined }) =>
  Effect.gen(function*() {
    if (options.target !== undefined) return options.target
    if (options.base !== undefined) return options.base.replace(/^refs\/heads\//, "")
    const current = yield* Process.run(["git", "symbolic-ref", "--quiet", "--short", "HEAD"], { cwd: top }).pipe(
      Effect.map((r) => r.exitCode === 0 ? r.stdout.trim() : undefined),
      Effect.orElseSucceed(() => undefined)
    )
    return current ?? "HEAD"
  })

/** The processes holding `file` open (Linux `/proc`; none found elsewhere). */
const holdersOf = (file: string): Array<{ readonly pid: number; readonly command: string }> => {
  const found: Array<{ pid: number; command: string }> = []
  let pids: Array<string> = []
  try {
    pids = fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n))
  } catch {
    return found
  }
  for (const pid of pids) {
    let fds: Array<string> = []
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    const holds = fds.some((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === file
      } catch {
        return false
      }
    })
    if (holds) {
      const command = (() => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((w) => w !== "").join(" ").slice(0, 80)
        } catch {
          return "?"
        }
      })()
      found.push({ pid: Number(pid), command })
    }
  }
  return found
}

/**
 * A git lock file left in the repository: none, or the problem naming its holder (a live git,
 * waited for a moment first) or the fix (no process holds it: remove it).
 */
const lockProblem = (file: string): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    const deadline = Date.now() + LOCK_WAIT_MS
    for (;;) {
      if (!fs.existsSync(file)) return undefined
      // /proc names the file by its real path.
      const holders = holdersOf(fs.realpathSync.native(path.dirname(file)) + path.sep + path.basename(file))
      if (holders.length === 0) {
        const proc = fs.existsSync("/proc/self/fd")
        return proc
          ? `${file} exists and no git process holds it: a git command stopped without removing it, and every git command that changes the repository fails until it is gone. Remove it (rm ${file}), then run again`
          : `${file} exists: a git command is running, or one stopped without removing it. If no git process is running, remove it (rm ${file}), then run again`
      }
      if (Date.now() >= deadline) {
        const h = holders[0]!
        return `${file} is held open by process ${h.pid} (${h.command}), a git command at work: wait for it to finish, then run again`
      }
      yield* Effect.sleep("200 millis")
    }
  })

/** The deepest of `dirs` that exists. */
const deepest = (dirs: ReadonlyArray<string>) => dirs.find((d) => fs.existsSync(d))

/** Why braid cannot write in `dir`, by trying (a file made and removed): undefined when it can. */
const unwritable = (dir: string): Promise<string | undefined> => {
  const probe = path.join(dir, `.braid-probe-${process.pid}`)
  return fsp.writeFile(probe, "").then(
    () => fsp.rm(probe, { force: true }).then(() => undefined),
    (e) => {
      const code = FileRunStore.codeOf(e)
      return code === "EROFS"
        ? "is on a read-only file system"
        : code === "EACCES" || code === "EPERM"
        ? "is not writable (permission denied)"
        : code === "ENOSPC" || code === "EDQUOT"
        ? "has no space left"
        : `cannot be written (${e instanceof Error ? e.message : String(e)})`
    }
  )
}

/**
 * What in the repository's state would stop a run midway or at its end, found before it
 * starts: a read-only or full `<repo>/.braid`, a git lock file left behind (`index.lock` of the
 * main checkout, the target branch's ref lock), another live run on the same target. `runId`
 * is the run being continued (its own hold on the target is no problem). Creates nothing.
 */
export const stateProblems = (input: {
  readonly top: string
  readonly target: string
  readonly runId?: string | undefined
  /** The folder the run's checkouts go in (default: the workspace's default, outside the repository). */
  readonly worktrees?: string | undefined
}): Effect.Effect<Array<string>, never, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const braidDir = path.join(input.top, ".braid")
    const store = FileRunStore.make(braidDir)
    const dir = deepest([path.join(braidDir, "runs"), braidDir, input.top])!
    const why = yield* Effect.promise(() => unwritable(dir))
    if (why !== undefined) {
      problems.push(`${dir} ${why}: braid keeps its runs' journals in ${braidDir}; make it writable (or mount it read-write), then run again`)
    } else {
      const free = yield* Effect.promise(() => fsp.statfs(dir).then((s) => s.bavail * s.bsize, () => undefined))
      if (free !== undefined && free < MIN_FREE_BYTES) {
        problems.push(
          `no space left on the device of ${braidDir} (${Math.floor(free / 1024)} KB free; a run needs at least ${MIN_FREE_BYTES / 1024 / 1024} MB for its journal): free space, then run again`
        )
      }
    }
    // The checkouts live outside the repository by default: their folder must be writable too.
    const worktrees = input.worktrees ?? (yield* GitWorkspace.defaultWorktreesDir(input.top))
    const ancestors: Array<string> = []
    for (let d = worktrees; ancestors.at(-1) !== d; d = path.dirname(d)) ancestors.push(d)
    const existing = deepest(ancestors)
    if (existing !== undefined && !(existing === dir || (why === undefined && existing.startsWith(`${braidDir}${path.sep}`)))) {
      const problem = yield* Effect.promise(() => unwritable(existing))
      if (problem !== undefined) {
        problems.push(`${existing} ${problem}: braid makes the run's checkouts in ${worktrees}; make it writable, or choose another folder with --worktrees-dir (or worktreesDir in the plan), then run again`)
      } else {
        const free = yield* Effect.promise(() => fsp.statfs(existing).then((s) => s.bavail * s.bsize, () => undefined))
        if (free !== undefined && free < MIN_FREE_BYTES) {
          problems.push(
            `no space left on the device of ${worktrees} (${Math.floor(free / 1024)} KB free; a run needs at least ${MIN_FREE_BYTES / 1024 / 1024} MB for its checkouts): free space or choose another folder with --worktrees-dir, then run again`
          )
        }
      }
    }
    // Where git keeps the locks a run's git commands take (one git process for both).
    const names = ["index.lock", ...(input.target === "HEAD" ? [] : [`refs/heads/${input.target}.lock`])]
    const locks = yield* Process.run(["git", "rev-parse", ...names.flatMap((n) => ["--git-path", n])], { cwd: input.top }).pipe(
      Effect.map((r) => r.exitCode === 0 ? r.stdout.split("\n").filter((l) => l !== "").map((l) => path.resolve(input.top, l)) : []),
      Effect.orElseSucceed((): Array<string> => [])
    )
    for (const file of locks) {
      const problem = yield* lockProblem(file)
      if (problem !== undefined) problems.push(problem)
    }
    const active = yield* store.activeOn(input.target)
    if (active !== undefined && active.runId !== input.runId) {
      problems.push(new RunStore.TargetInUse({ target: input.target, runId: active.runId, pid: active.pid }).message)
    }
    return problems
  })

/** `stateProblems`, as the refusal of a command about to run. */
export const refuseState = (input: {
  readonly top: string
  readonly target: string
  readonly runId?: string | undefined
  readonly worktrees?: string | undefined
}) =>
  Effect.flatMap(stateProblems(input), (problems) => problems.length === 0 ? Effect.void : Effect.fail(new RepositoryNotReady({ problems })))

/** Everything `braid run` with these options would refuse before it starts, and the warnings. */
export const check = (plan: Plan.Plan, options: Options): Effect.Effect<Result, never, Requirements> =>
  Effect.gen(function*() {
    const problems: Array<Finding> = []
    const agents = yield* Registry.preflight(plan, { backends: Backends.all, agent: options.agent, agentSource: "--agent", reviewer: options.reviewer, workspaceKind: options.workspace }).pipe(
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
        const target = yield* targetOf(top.right, { base: options.base, target: options.target })
        for (const message of yield* stateProblems({ top: top.right, target, worktrees: plan.worktreesDir })) problems.push({ path: "repository", message })
        if (options.land && !mode.local) {
          const remote = options.remote ?? "origin"
          const known = yield* Process.run(GitWorkspace.safeGitArgv(["remote", "get-url", "--", remote]), { cwd: top.right, env: GitWorkspace.safeGitEnv }).pipe(
            Effect.map((r) => r.exitCode === 0),
            Effect.orElseSucceed(() => false)
          )
          if (!known) problems.push({ path: "--remote", message: `--land ${mode.name} pushes to the remote "${remote}", which the repository does not have (add it with git remote add, or pass --remote)` })
        }
      }
    }
    const warnings = warningsOf(plan, repository)
    if (outside !== undefined) warnings.push({ path: "repository", message: outside })
    const confinement = yield* Sandbox.decide(plan.sandbox.mode).pipe(Effect.either)
    if (confinement._tag === "Left") {
      problems.push({ path: "sandbox", message: `sandbox: required, but ${confinement.left.message} (or run with --sandbox auto)` })
    } else if (confinement.right._tag === "Unconfined" && plan.sandbox.mode !== "off") {
      warnings.push({ path: "sandbox", message: `processes will run unconfined: ${confinement.right.reason}; only the after-the-fact checks guard the repository` })
    }
    return { problems, warnings, repository, github } satisfies Result
  })

/** What preflight needs from the platform. */
export type Requirements = CommandExecutor.CommandExecutor | FileSystem.FileSystem
