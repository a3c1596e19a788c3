/**
 * `braid draft`: from a feature to a plan. An agent in the architect role, on any backend,
 * reads the repository in a read-only checkout (a detached worktree of HEAD in a temporary
 * folder, confined where the sandbox is available) and answers with a plan in the seed's shape;
 * braid extracts it, checks it as `braid plan` decodes plans (`Plan.parse`: unknown fields,
 * types, unknown streams, cycles…), and sends every problem back with its path, at most
 * `FIX_ROUNDS` times. Non-blocking findings (the plan's and `braid plan`'s warnings, the
 * conflict forecast) go back too. Only braid writes the plan file; a draft that never passes is kept beside it with its
 * problems.
 *
 * The architect's prompt is a template (`DEFAULT_TEMPLATE`, or the user's `--prompt FILE`) with
 * `{{placeholders}}` (`placeholders`).
 *
 * @since 0.10.0
 */
import { Registry } from "@braid/agents"
import { Agent, type CommandSpec, GitWorkspace, Plan, Process, Sandbox, Workspace } from "@braid/core"
import type { CommandExecutor } from "@effect/platform"
import { FileSystem } from "@effect/platform"
import { Context, Effect, Either, Schedule, Schema, type Scope } from "effect"
import { spawn } from "node:child_process"
import * as nodeFs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as YAML from "yaml"
import * as Backends from "./Backends.js"
import * as Forecast from "./Forecast.js"
import type * as GitHubHttp from "./GitHubHttp.js"
import * as Init from "./Init.js"
import * as Preflight from "./Preflight.js"

/** Fix rounds after the first draft: a draft is checked at most `1 + FIX_ROUNDS` times. */
export const FIX_ROUNDS = 3

/** At most this many paths of the repository's tree go into the prompt. */
export const MAX_TREE_ENTRIES = 400

/** At most this much of one file (README, package.json, a CI workflow) goes into the prompt. */
export const MAX_FILE_CHARS = 6_000

/** At most this much of all the build, package and CI files together. */
export const MAX_FILES_CHARS = 24_000

/** One thing found in a draft, with where it is (a field path into the plan, or "" for the whole). */
export interface Finding {
  readonly path: string
  readonly message: string
  /** What would fix it, when the finder says (the conflict forecast does). */
  readonly fix?: string | undefined
}

/**
 * The conflict forecast as drafting uses it: findings about a valid plan that do not block it
 * but go back to the agent. `Forecast.forecast` (packages/cli/src/Forecast.ts) has this shape.
 */
export type ForecastOf = (
  plan: Plan.Plan,
  repository: string
) => Effect.Effect<ReadonlyArray<{ readonly message: string; readonly fix: string }>, never, CommandExecutor.CommandExecutor>

/** No forecast: no findings. */
export const noForecast: ForecastOf = () => Effect.succeed([])

/** The conflict forecast drafting runs on every valid draft: `braid plan`'s own. */
export const forecast: ForecastOf = Forecast.forecast

/** What checking one draft found. */
export interface Checked {
  /** The plan, when the draft decodes and validates. */
  readonly plan: Plan.Plan | undefined
  /** What makes `braid plan` refuse it: each sent back to the agent; the draft passes with none. */
  readonly problems: ReadonlyArray<Finding>
  /** Findings that do not block it (the plan's warnings, the conflict forecast), sent back too. */
  readonly notes: ReadonlyArray<Finding>
}

/** Bad input to `braid draft`: no feature, an unreadable file, an output that exists, a bad template. */
export class DraftInputInvalid extends Schema.TaggedError<DraftInputInvalid>()("DraftInputInvalid", {
  /** Where: the option or file. */
  where: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `${this.where}: ${this.problem}`
  }
}

/** The agent could not draft (failed, unavailable, no usable backend). */
export class DraftAgentFailed extends Schema.TaggedError<DraftAgentFailed>()("DraftAgentFailed", {
  agent: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `the ${this.agent} agent could not draft a plan: ${this.problem}`
  }
}

/** No agent can draft: none chosen but the script one, or the chosen one cannot run here (no model, no key, not installed). */
export class DraftAgentUnavailable extends Schema.TaggedError<DraftAgentUnavailable>()("DraftAgentUnavailable", {
  agent: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `the ${this.agent} agent cannot draft a plan: ${this.problem}`
  }
}

/** Filing the tasks on GitHub failed after the plan was written (without their issue numbers). */
export class DraftGitHubFailed extends Schema.TaggedError<DraftGitHubFailed>()("DraftGitHubFailed", {
  repo: Schema.String,
  written: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `filing the tasks on ${this.repo} failed: ${this.problem}; the plan is written to ${this.written} without their issue numbers (issues already made are found again by the next braid draft --github)`
  }
}

/** The last draft still had problems after every fix round: kept in `kept`, listed. */
export class DraftRejected extends Schema.TaggedError<DraftRejected>()("DraftRejected", {
  kept: Schema.String,
  rounds: Schema.Number,
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `the draft still has ${this.problems.length} problem${this.problems.length === 1 ? "" : "s"} after ${this.rounds} round${this.rounds === 1 ? "" : "s"}; kept in ${this.kept}:\n${
      this.problems.map((p) => `  - ${p.path === "" ? "(plan)" : p.path}: ${p.message}`).join("\n")
    }`
  }
}

// ---------------------------------------------------------------------------------------------
// The reply

/**
 * The plan in an agent's reply: the last fenced block marked yaml, yml or json, else the last
 * fenced block, else the whole reply when it reads as a plan (starts with a plan field).
 */
export const extract = (reply: string): string | undefined => {
  const blocks = [...reply.matchAll(/(^|\n)[ \t]*(`{3,}|~{3,})[ \t]*([A-Za-z0-9_-]*)[^\n]*\n([\s\S]*?)\n[ \t]*\2[ \t]*(?=\n|$)/g)]
  const tagged = blocks.filter((b) => /^(ya?ml|json)$/i.test(b[3] ?? ""))
  const chosen = tagged.at(-1) ?? blocks.at(-1)
  if (chosen !== undefined) return `${chosen[4]!.trimEnd()}\n`
  const trimmed = reply.trim()
  return /^(projectName|featureName|streams|tasks|qualityThreshold|maxParallel)\s*:/m.test(trimmed) && /^(streams|tasks)\s*:/m.test(trimmed)
    ? `${trimmed}\n`
    : undefined
}

/**
 * Checks a draft as `braid plan` decodes plans (the same strict decoding and validation:
 * `Plan.parse` with the backends' fields), then runs the forecast on a valid one.
 */
export const check = (
  text: string | undefined,
  options: {
    readonly source: string
    readonly baseDir: string
    readonly config: Plan.ConfigFile
    readonly repository: string
    readonly forecast?: ForecastOf | undefined
  }
): Effect.Effect<Checked, never, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    if (text === undefined || text.trim() === "") {
      return {
        plan: undefined,
        problems: [{ path: "", message: "the reply holds no plan: answer with the whole plan in one ```yaml fenced block" }],
        notes: []
      }
    }
    const parsed = yield* Effect.either(Plan.parse(text, options.source, options.baseDir, options.config))
    if (Either.isLeft(parsed)) return { plan: undefined, problems: parsed.left.problems, notes: [] }
    const plan = parsed.right
    const forecasts = yield* (options.forecast ?? forecast)(plan, options.repository)
    return {
      plan,
      problems: [],
      notes: [
        ...plan.warnings,
        // braid plan's warnings about the plan itself (tasks nothing can fail, what a fresh checkout lacks).
        ...Preflight.warningsOf(plan, options.repository),
        ...forecasts.map((f) => ({ path: "forecast", message: f.message, fix: f.fix }))
      ]
    }
  })

// ---------------------------------------------------------------------------------------------
// The repository, as the prompt shows it

/** What the architect is shown of the repository. */
export interface Repository {
  /** The tracked files (bounded), one a line. */
  readonly tree: string
  readonly readme: string
  /** Package, build and CI files, each under its own heading. */
  readonly files: string
  /** The `environment` section `braid init` would write for this project (its package managers). */
  readonly environment: string
}

const bounded = (text: string, max: number) =>
  text.length <= max ? text : `${text.slice(0, max)}\n… (cut at ${max} of ${text.length} characters)`

/** The folders of `files` with how many tracked files each holds below it: a tree too long to list. */
const folderSummary = (files: ReadonlyArray<string>): string => {
  const counts = new Map<string, number>()
  for (const f of files) {
    const parts = f.split("/")
    for (let depth = 1; depth < Math.min(parts.length, 3); depth++) {
      const dir = `${parts.slice(0, depth).join("/")}/`
      counts.set(dir, (counts.get(dir) ?? 0) + 1)
    }
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([dir, n]) => `${dir} (${n} files)`).join("\n")
}

/** Package, build and CI files worth showing, by path pattern, in this order. */
const BUILD_FILES: ReadonlyArray<RegExp> = [
  /^package\.json$/,
  /^(packages|apps|libs|services)\/[^/]+\/package\.json$/,
  /^Makefile$/,
  /^justfile$/i,
  /^Taskfile\.ya?ml$/,
  /^pyproject\.toml$/,
  /^requirements\.txt$/,
  /^tox\.ini$/,
  /^Cargo\.toml$/,
  /^go\.mod$/,
  /^pom\.xml$/,
  /^build\.gradle(\.kts)?$/,
  /^\.github\/workflows\/[^/]+\.ya?ml$/,
  /^\.gitlab-ci\.yml$/,
  /^\.circleci\/config\.yml$/,
  /^docker-compose\.ya?ml$/,
  /^Dockerfile$/
]

/** Reads what the prompt shows of the checkout at `dir`. */
export const describeRepository = (dir: string): Effect.Effect<Repository, never, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const listed = yield* Process.run(GitWorkspace.safeGitArgv(["ls-files", "-z"]), { cwd: dir, env: GitWorkspace.safeGitEnv, unconfined: true }).pipe(
      Effect.map((r) => r.stdout.split("\0").filter((f) => f !== "")),
      Effect.orElseSucceed(() => [] as Array<string>)
    )
    const tree = listed.length <= MAX_TREE_ENTRIES
      ? listed.join("\n")
      : `${listed.slice(0, MAX_TREE_ENTRIES).join("\n")}\n… and ${listed.length - MAX_TREE_ENTRIES} more files; the folders:\n${folderSummary(listed)}`
    const read = (file: string) => {
      try {
        return nodeFs.readFileSync(path.join(dir, file), "utf8")
      } catch {
        return undefined
      }
    }
    const readmeFile = listed.find((f) => /^readme(\.(md|markdown|rst|txt))?$/i.test(f))
    const readme = readmeFile === undefined ? "(none)" : bounded(read(readmeFile) ?? "", MAX_FILE_CHARS)
    const shown: Array<string> = []
    let total = 0
    for (const pattern of BUILD_FILES) {
      for (const file of listed.filter((f) => pattern.test(f))) {
        const text = read(file)
        if (text === undefined) continue
        const section = `#### ${file}\n\`\`\`\n${bounded(text, MAX_FILE_CHARS).trimEnd()}\n\`\`\``
        if (total + section.length > MAX_FILES_CHARS) {
          shown.push(`#### ${file}\n(not shown: the files above fill what the prompt holds; read it yourself)`)
          continue
        }
        total += section.length
        shown.push(section)
      }
    }
    return {
      tree: tree === "" ? "(no tracked files)" : tree,
      readme,
      files: shown.length === 0 ? "(none found)" : shown.join("\n\n"),
      environment: Init.environmentFor(dir).trimEnd()
    }
  })

// ---------------------------------------------------------------------------------------------
// The prompt

/** What the plan may hold, as the architect is told it: the seed's fields, then braid's. */
export const SCHEMA = `The plan is YAML in the seed's shape. Fields (anything else is refused; names are case-sensitive):

Top level:
- projectName (text), featureName (text, short, kebab-case)
- qualityThreshold (0-100, default 80): the review score a task needs
- maxParallel (integer >= 1, default 5): agents working at once
- githubRepo (owner/name, optional)
- streams: list of streams (required)
- tasks: list of tasks (required)
- checks (optional): gate commands run after every task's attempt, in the stream's checkout
- verify (optional): commands run on the merged result of every stream before it lands
- environment (optional): how each checkout is made ready (see below)

A stream:
- name (unique, short, [a-z0-9-])
- type: one of database, api, ui, testing, docs, infrastructure (picks the agent's role)
- scope: the folders or files the stream owns, as a list or a comma-separated text ("src/api/, test/api/")
- priority (optional): 1 is the highest, or critical/high/medium/low

A task:
- id (unique), title (one line)
- stream: the name of its stream; streamType: that stream's type
- description (text), acceptanceCriteria (list of texts)
- dependsOn (optional): ids of tasks (in any stream) that must finish first; no cycles
- effort (optional): XS, S, M, L or XL
- checks (optional): its own gate commands

A command (in checks, verify) is an argv list, never a shell string: [npm, test] or
{ name: unit tests, command: [npm, run, test], timeoutSeconds: 300 }.

environment: { copy: [.env], share: [{ path: node_modules, key: [package-lock.json], build: [npm, ci] }], setup: [[npm, run, build]] }`

/** The rules the architect is held to. */
export const RULES: ReadonlyArray<string> = [
  "Change nothing: this checkout is read-only and thrown away; only braid writes the plan file.",
  "Choose streams from the repository's real layout: each stream's scope names folders that exist (or that the feature creates beside them), and streams' scopes do not overlap.",
  "Take checks and verify from the repository's real commands (package.json scripts, Makefile targets, CI steps); never invent a command the repository lacks.",
  "Give every task a title, a description, acceptanceCriteria, an effort, and dependsOn where it needs another task's work first.",
  "Use the environment shown above when the project has dependencies to install.",
  "Answer with the whole plan in one ```yaml fenced block, and nothing after it."
]

/** The placeholders a draft template may use, each with what it is filled with. */
export const placeholders = {
  feature: "the feature to plan: the description, the --from file, or the issue's title, body and comments",
  projectName: "the repository's folder name",
  tree: `the repository's tracked files, one a line (at most ${MAX_TREE_ENTRIES}, then its folders)`,
  readme: "the repository's README (\"(none)\" without one)",
  files: "the package, build and CI files (package.json, Makefile, workflows…), each under its path",
  environment: "the environment section braid init would write for this project",
  schema: "the fields a plan may hold",
  rules: "the rules the architect is held to, as a list",
  round: "the round: 1 for the first draft, 2-4 for a fix",
  findings: "on a fix round, the previous draft and every problem and note braid found in it, with its path (empty on the first round)"
} as const satisfies Record<string, string>

/** A draft placeholder's name. */
export type Placeholder = keyof typeof placeholders

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g

/** The architect's prompt as braid words it. */
export const DEFAULT_TEMPLATE = `You are the architect of {{projectName}}. Plan the feature below as a braid plan: parallel work streams, each carried out by a coding agent in its own checkout, each task gated by checks, the merged result verified before it lands.

## The feature
{{feature}}

## The repository (the current directory, read-only)
Tracked files:
{{tree}}

### README
{{readme}}

### Package, build and CI files
{{files}}

## The plan's shape
{{schema}}

## The environment this project needs
{{environment}}

## Rules
{{rules}}
{{findings}}`

/** A template read and checked. */
export interface Template {
  readonly file: string
  readonly text: string
  readonly uses: ReadonlySet<Placeholder>
}

/** Checks a template's placeholders; the error names the file, the placeholder and its line. */
export const parseTemplate = (file: string, text: string): Either.Either<Template, DraftInputInvalid> => {
  const uses = new Set<Placeholder>()
  for (const match of text.matchAll(PLACEHOLDER)) {
    const name = match[1]!
    if (!Object.hasOwn(placeholders, name)) {
      const line = text.slice(0, match.index).split("\n").length
      return Either.left(new DraftInputInvalid({ where: file, problem: `unknown placeholder {{${name}}} on line ${line} (known: ${Object.keys(placeholders).join(", ")})` }))
    }
    uses.add(name as Placeholder)
  }
  return Either.right({ file, text, uses })
}

/** The template `--prompt` names (read and checked), else braid's. */
export const readTemplate = (file: string | undefined): Effect.Effect<Template, DraftInputInvalid, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (file === undefined) return Either.getOrThrow(parseTemplate("(braid's draft prompt)", DEFAULT_TEMPLATE))
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) => new DraftInputInvalid({ where: `--prompt ${file}`, problem: e._tag === "SystemError" && e.reason === "NotFound" ? "no such file" : `cannot be read (${e.message})` }))
    )
    return yield* parseTemplate(file, text)
  })

/** What one round's prompt is made of. */
export interface PromptInput {
  readonly feature: string
  readonly projectName: string
  readonly repository: Repository
  readonly round: number
  /** The previous round's draft and what was found in it (none on round 1). */
  readonly previous?: { readonly text: string | undefined; readonly checked: Checked } | undefined
}

const findingLine = (f: Finding) => `- ${f.path === "" ? "(plan)" : f.path}: ${f.message}${f.fix !== undefined ? ` (fix: ${f.fix})` : ""}`

/** The fix section: the previous draft and every problem and note, each with its path. */
export const findingsOf = (input: PromptInput): string => {
  const previous = input.previous
  if (previous === undefined) return ""
  const { notes, problems } = previous.checked
  return [
    "",
    `## Your previous draft (round ${input.round - 1}) and what braid found in it`,
    previous.text === undefined ? "(the reply held no plan)" : "```yaml\n" + previous.text.trimEnd() + "\n```",
    ...(problems.length > 0 ? [`Problems braid plan refuses (fix every one; each starts with its field path):\n${problems.map(findingLine).join("\n")}`] : []),
    ...(notes.length > 0 ? [`Notes (warnings and the conflict forecast; fix them where you can):\n${notes.map(findingLine).join("\n")}`] : []),
    `Answer with the whole corrected plan in one \`\`\`yaml fenced block (round ${input.round} of ${1 + FIX_ROUNDS}).`
  ].join("\n\n")
}

/** One round's prompt from a template: its placeholders filled, the rules and findings never left out. */
export const fill = (template: Template, input: PromptInput): string => {
  const fields: Record<Placeholder, string> = {
    feature: input.feature.trim(),
    projectName: input.projectName,
    tree: input.repository.tree,
    readme: input.repository.readme.trimEnd(),
    files: input.repository.files,
    environment: input.repository.environment,
    schema: SCHEMA,
    rules: RULES.map((r) => `- ${r}`).join("\n"),
    round: String(input.round),
    findings: findingsOf(input)
  }
  let text = template.text.replace(PLACEHOLDER, (_, name: string) => fields[name as Placeholder])
  if (!template.uses.has("rules")) text = `${text.trimEnd()}\n\n## Rules\n${fields.rules}\n`
  if (!template.uses.has("findings") && fields.findings !== "") text = `${text.trimEnd()}\n${fields.findings}\n`
  return text.endsWith("\n") ? text : `${text}\n`
}

// ---------------------------------------------------------------------------------------------
// The checkout and the agent

/** A read-only checkout of HEAD: where the agent works, and a home of its own beside it. */
export interface Checkout {
  readonly dir: string
  /** A folder for the agent's tool home (outside the checkout), removed with it. */
  readonly runDir: string
  readonly repository: string
}

/**
 * A detached worktree of HEAD in a temporary folder, removed (and pruned) when the scope closes.
 * It adds no branch and no config: the repository's refs and config are as they were.
 */
export const readOnlyCheckout = (repository: string): Effect.Effect<Checkout, DraftInputInvalid, Scope.Scope | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const git = (args: ReadonlyArray<string>) =>
      Process.run(GitWorkspace.safeGitArgv(args), { cwd: repository, env: GitWorkspace.safeGitEnv, unconfined: true }).pipe(
        Effect.orElseSucceed(() => ({ exitCode: 127, stdout: "", stderr: "git could not start", timedOut: false, durationMs: 0 }))
      )
    const head = yield* git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
    if (head.exitCode !== 0) return yield* new DraftInputInvalid({ where: repository, problem: "the repository has no commit yet: commit something for the architect to read" })
    const folder = yield* Effect.acquireRelease(
      Effect.sync(() => nodeFs.realpathSync(nodeFs.mkdtempSync(path.join(os.tmpdir(), "braid-draft-")))),
      (dir) => Effect.sync(() => nodeFs.rmSync(dir, { recursive: true, force: true }))
    )
    const dir = path.join(folder, "checkout")
    const runDir = path.join(folder, "home")
    nodeFs.mkdirSync(runDir)
    yield* Effect.acquireRelease(
      Effect.flatMap(git(["worktree", "add", "--detach", "--quiet", dir, "HEAD"]), (r) =>
        r.exitCode === 0 ? Effect.void : Effect.fail(new DraftInputInvalid({ where: repository, problem: `cannot make a read-only checkout of HEAD: ${r.stderr.trim()}` }))),
      () => Effect.asVoid(Effect.zipRight(git(["worktree", "remove", "--force", dir]), git(["worktree", "prune"])))
    )
    return { dir, runDir, repository }
  })

/** Backends whose tools run inside braid's process, where the sandbox (which wraps processes) does not reach. */
const IN_PROCESS: ReadonlySet<string> = new Set(["llm"])

/** The plan the architect's backend is built from: the config's settings, one infrastructure (architect) stream. */
export const shellPlan = (options: { readonly baseDir: string; readonly config: Plan.ConfigFile; readonly projectName: string }) =>
  Plan.parse(
    JSON.stringify({
      projectName: options.projectName,
      featureName: "draft",
      streams: [{ name: "draft", type: "infrastructure" }],
      tasks: [{ id: "draft", title: "Draft a plan", stream: "draft", streamType: "infrastructure" }]
    }),
    "braid draft",
    options.baseDir,
    options.config
  )

/** The backend that drafts: `--agent`, else braid.config.yaml's, as `braid run` resolves a stream's. */
export const backendOf = (plan: Plan.Plan, agent: string | undefined): string => Registry.backendOf(plan, plan.streams[0]!, { agent })

/** One round's reply from the agent. */
export interface Reply {
  readonly text: string
  readonly session: string | undefined
  /** Files the agent changed in its checkout (thrown away with it). */
  readonly changed: ReadonlyArray<string>
}

/**
 * The architect on `plan`'s backend: one attempt per round in the read-only checkout (confined
 * where the sandbox is available: nothing writable but the tool's own home), the session kept
 * across rounds where the tool continues sessions.
 */
export const architect = (
  plan: Plan.Plan,
  options: { readonly agent: string | undefined; readonly checkout: Checkout }
) =>
  Effect.gen(function*() {
    const name = backendOf(plan, options.agent)
    if (name === "script" || name === "mock") {
      return yield* new DraftAgentUnavailable({
        agent: name,
        problem: "it runs scripts, not a model: choose a coding agent with --agent (claude-code, codex, gemini, llm, command…) or agent: in the braid.config.yaml beside the plan"
      })
    }
    const problems = yield* Registry.preflight(plan, { backends: Backends.all, agent: options.agent, agentSource: "--agent", workspaceKind: "git" })
    if (problems.length > 0) {
      return yield* new DraftAgentUnavailable({ agent: name, problem: problems.map((p) => `${p.path}: ${p.message}`).join("; ") })
    }
    const registry = yield* Registry.make(plan, { backends: Backends.all, agent: options.agent, agentSource: "--agent" })
    const agent = Context.get(registry, Agent.AgentRegistry).forStream(plan.streams[0]!)
    const decision = yield* Sandbox.decide(plan.sandbox.mode).pipe(
      Effect.catchTag("SandboxUnavailable", (e) => Effect.fail(new DraftAgentUnavailable({ agent: name, problem: `sandbox: required (braid.config.yaml), but ${e.message}` })))
    )
    const { checkout } = options
    // Read-only: the checkout and the repository readable, the home hidden; the tool's allowance adds its own home and API.
    const policy: Sandbox.Policy | undefined = decision._tag === "Confined"
      ? { writable: [], hidden: [os.homedir(), path.join(checkout.repository, ".braid")], readable: [checkout.dir, checkout.repository], network: plan.sandbox.network }
      : undefined
    const files: Workspace.Worktree = {
      _tag: "Worktree",
      dir: checkout.dir,
      runDir: checkout.runDir,
      read: () => Effect.succeed(undefined),
      write: () => Effect.fail(new Workspace.WorkspaceFailed({ operation: "write", message: "the draft's checkout is read-only" })),
      remove: () => Effect.fail(new Workspace.WorkspaceFailed({ operation: "remove", message: "the draft's checkout is read-only" })),
      list: () => Effect.succeed([])
    }
    const task = plan.streams[0]!.tasks[0]!
    const ask = (prompt: string, round: number, session: string | undefined) =>
      Effect.gen(function*() {
        const request: Agent.AttemptRequest = {
          runId: "draft",
          projectName: plan.projectName,
          featureName: "draft",
          plan,
          task,
          stream: plan.streams[0]!,
          role: "architect",
          // A new attempt each round: a backend that continues the session sends this round's prompt in it.
          attempt: round,
          feedback: undefined,
          earlier: [],
          broughtIn: [],
          denied: [],
          checks: [] as ReadonlyArray<CommandSpec.Command>,
          session,
          instructions: prompt,
          note: () => Effect.void,
          files
        }
        const output = yield* agent.attempt(request).pipe(
          Sandbox.within(policy),
          // A busy provider is waited out, as a run's attempts and resolutions do; it is not the round failing.
          Effect.retry({
            while: (e) => e._tag === "ProviderBusy",
            schedule: Schedule.exponential("2 seconds").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(4)))
          }),
          Effect.mapError((e) => new DraftAgentFailed({ agent: name, problem: `round ${round}: ${e.message}` }))
        )
        const status = yield* Process.run(GitWorkspace.safeGitArgv(["status", "--porcelain", "-z", "--untracked-files=all"]), {
          cwd: checkout.dir,
          env: GitWorkspace.safeGitEnv,
          unconfined: true
        }).pipe(Effect.map((r) => r.stdout.split("\0").filter((l) => l !== "").map((l) => l.slice(3))), Effect.orElseSucceed(() => [] as Array<string>))
        if (status.length > 0) {
          // What it wrote is thrown away with the checkout; the next round starts from HEAD again.
          yield* Process.run(GitWorkspace.safeGitArgv(["checkout", "--quiet", "--force", "HEAD", "--", "."]), { cwd: checkout.dir, env: GitWorkspace.safeGitEnv, unconfined: true }).pipe(Effect.ignore)
          yield* Process.run(GitWorkspace.safeGitArgv(["clean", "-fdxq"]), { cwd: checkout.dir, env: GitWorkspace.safeGitEnv, unconfined: true }).pipe(Effect.ignore)
        }
        return { text: output.summary, session: output.sessionId, changed: status } satisfies Reply
      })
    // The llm backend's tools run inside braid's own process: confinement (which wraps processes) cannot reach them.
    const unconfined = decision._tag === "Unconfined" ? decision.reason : IN_PROCESS.has(name) ? "its tools run inside braid; what they write in the checkout is put back after each round" : undefined
    return { name, unconfined, ask }
  })

// ---------------------------------------------------------------------------------------------
// The loop

/** What a drafting loop ended with. */
export type Outcome =
  | { readonly _tag: "Passed"; readonly text: string; readonly plan: Plan.Plan; readonly notes: ReadonlyArray<Finding>; readonly rounds: number }
  | { readonly _tag: "Rejected"; readonly text: string | undefined; readonly problems: ReadonlyArray<Finding>; readonly rounds: number }

/**
 * Drafts until a draft passes or `1 + FIX_ROUNDS` rounds are used: each round's prompt has the
 * previous draft's problems and notes. `onRound` is told each round's findings.
 */
export const loop = <E, R>(options: {
  readonly prompt: (input: PromptInput) => string
  readonly input: Omit<PromptInput, "round" | "previous">
  readonly ask: (prompt: string, round: number, session: string | undefined) => Effect.Effect<Reply, E, R>
  readonly check: (text: string | undefined) => Effect.Effect<Checked, never, CommandExecutor.CommandExecutor>
  readonly onRound?: (round: number, checked: Checked, reply: Reply) => Effect.Effect<void>
}): Effect.Effect<Outcome, E, R | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    let previous: PromptInput["previous"] = undefined
    let session: string | undefined
    for (let round = 1;; round++) {
      const reply = yield* options.ask(options.prompt({ ...options.input, round, previous }), round, session)
      session = reply.session ?? session
      const text = extract(reply.text)
      const checked = yield* options.check(text)
      if (options.onRound !== undefined) yield* options.onRound(round, checked, reply)
      if (checked.problems.length === 0 && checked.plan !== undefined && text !== undefined) {
        return { _tag: "Passed", text, plan: checked.plan, notes: checked.notes, rounds: round } as const
      }
      if (round > FIX_ROUNDS) return { _tag: "Rejected", text, problems: checked.problems, rounds: round } as const
      previous = { text, checked }
    }
  })

/** Where a rejected draft is kept beside the plan file: `plan.yaml` → `plan.draft.yaml`. */
export const draftPathOf = (out: string): string => {
  const ext = path.extname(out)
  return ext === "" ? `${out}.draft.yaml` : `${out.slice(0, -ext.length)}.draft${ext}`
}

/** A rejected draft as kept: its problems as YAML comments at the top. */
export const keptText = (text: string | undefined, problems: ReadonlyArray<Finding>, rounds: number): string =>
  [
    `# braid draft: this draft still fails braid plan after ${rounds} rounds. Its problems:`,
    ...problems.map((p) => `#   - ${p.path === "" ? "(plan)" : p.path}: ${p.message.replace(/\n/g, " ")}`),
    "# Fix them and rename the file, or draft again.",
    "",
    text ?? "# (the agent's last reply held no plan)\n"
  ].join("\n")

// ---------------------------------------------------------------------------------------------
// GitHub

/** The hidden marker that finds a drafted task's issue again (a second `--github` creates none). */
export const taskMarker = (parent: number | undefined, taskId: string): string =>
  `<!-- braid:draft${parent !== undefined ? ` issue=${parent}` : ""} task=${taskId} -->`

/** The line of a task in its parent's task list (where sub-issues are unavailable). */
export const taskListLine = (issue: number, taskId: string, title: string): string => `- [ ] #${issue} ${title} <!-- braid:draft task=${taskId} -->`

/**
 * Puts `githubIssueNumber: n` on each task in the plan's text whose id `numbers` holds, keeping
 * the text as the agent wrote it otherwise; the result is checked again by the caller.
 */
export const withIssueNumbers = (text: string, numbers: ReadonlyMap<string, number>): string => {
  // Through the YAML document, so comments and layout of the rest stay.
  const doc = YAML.parseDocument(text)
  const tasks = doc.get("tasks")
  if (YAML.isSeq(tasks)) {
    for (const item of tasks.items) {
      if (!YAML.isMap(item)) continue
      const id = item.get("id")
      const n = typeof id === "string" ? numbers.get(id) : undefined
      if (n !== undefined) item.set("githubIssueNumber", n)
    }
  }
  return doc.toString({ lineWidth: 0 })
}

/** A task's issue body: its description, acceptance criteria as a checklist, and its marker. */
export const issueBodyOf = (task: Plan.Task, plan: Plan.Plan, marker: string): string => {
  const criteria = task.acceptanceCriteria === undefined ? [] : typeof task.acceptanceCriteria === "string" ? [task.acceptanceCriteria] : task.acceptanceCriteria
  return [
    task.description?.trim() ?? "",
    ...(criteria.length > 0 ? ["", "**Acceptance criteria**", ...criteria.map((c) => `- [ ] ${c}`)] : []),
    "",
    `Task \`${task.id}\` of stream \`${plan.streamOf.get(task.id) ?? "?"}\` in the plan for ${plan.featureName}${
      (plan.dependsOn.get(task.id) ?? []).length > 0 ? `; waits for ${(plan.dependsOn.get(task.id) ?? []).map((d) => `\`${d}\``).join(", ")}` : ""
    }. Drafted by \`braid draft\`.`,
    marker
  ].join("\n").trimStart()
}

/** What filing a plan's tasks on GitHub did. */
export interface Filed {
  /** Task id → its issue's number. */
  readonly numbers: ReadonlyMap<string, number>
  /** Issues created now (none on a second run). */
  readonly created: ReadonlyArray<number>
  /** How the tasks hang under the parent issue: sub-issues, a task list in its body, or no parent. */
  readonly linked: "sub-issues" | "task-list" | "none"
}

/**
 * One issue per task, found again by its marker (so a second run creates none), each a sub-issue
 * of `parent` — or, where the sub-issue endpoint answers 404, a line of a task list in the
 * parent's body.
 */
export const fileIssues = (issues: GitHubHttp.Issues, plan: Plan.Plan, parent: number | undefined) =>
  Effect.gen(function*() {
    const existing = yield* issues.listIssues()
    const numbers = new Map<string, number>()
    const created: Array<number> = []
    let subIssues = parent !== undefined
    const listed: Array<{ readonly number: number; readonly task: Plan.Task }> = []
    for (const task of plan.file.tasks) {
      const marker = parent !== undefined ? taskMarker(parent, task.id) : `<!-- braid:draft feature=${plan.featureName} task=${task.id} -->`
      const found = existing.find((i) => (i.body ?? "").includes(marker))
      const issue = found ?? (yield* issues.createIssue({ title: task.title, body: issueBodyOf(task, plan, marker) }))
      if (found === undefined) {
        created.push(issue.number)
        if (parent !== undefined && subIssues) subIssues = yield* issues.addSubIssue(parent, issue.id)
      }
      numbers.set(task.id, issue.number)
      listed.push({ number: issue.number, task })
    }
    if (parent !== undefined && !subIssues) {
      const body = (yield* issues.getIssue(parent)).body ?? ""
      const missing = listed.filter((l) => !body.includes(`<!-- braid:draft task=${l.task.id} -->`))
      if (missing.length > 0) {
        const lines = missing.map((l) => taskListLine(l.number, l.task.id, l.task.title))
        const heading = body.includes("### Tasks (braid draft)") ? [] : ["", "### Tasks (braid draft)"]
        yield* issues.updateBody(parent, [body.trimEnd(), ...heading, ...lines].join("\n").trimStart())
      }
    }
    return { numbers, created, linked: parent === undefined ? "none" : subIssues ? "sub-issues" : "task-list" } satisfies Filed
  })

/** The feature an issue describes: its title, body and comments. */
export const featureOfIssue = (issue: GitHubHttp.IssueText, comments: ReadonlyArray<{ readonly body: string | null }>): string =>
  [
    `${issue.title} (issue #${issue.number})`,
    "",
    (issue.body ?? "").trim(),
    ...comments.filter((c) => (c.body ?? "").trim() !== "" && !(c.body ?? "").includes("<!-- braid:")).map((c, i) => `\nComment ${i + 1}:\n${(c.body ?? "").trim()}`)
  ].join("\n").trim()

/** `owner/name` of a GitHub remote URL (https or ssh), or undefined. */
export const githubRepoOfUrl = (url: string): string | undefined => {
  const m = /github\.com[:/]([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9._-]+?)(\.git)?\/?$/.exec(url.trim())
  return m === null ? undefined : `${m[1]}/${m[2]}`
}

/** Sets top-level fields of a plan's text (githubRepo, githubIssueNumber), keeping the rest as the agent wrote it. */
export const withTopFields = (text: string, fields: Readonly<Record<string, string | number | undefined>>): string => {
  const doc = YAML.parseDocument(text)
  // braid's values win: the issues were filed on this repository, under this issue.
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) doc.set(k, v)
  return doc.toString({ lineWidth: 0 })
}

// ---------------------------------------------------------------------------------------------
// The command

/** What `braid draft` is given. */
export interface Options {
  readonly description: string | undefined
  readonly from: string | undefined
  readonly issue: number | undefined
  readonly out: string | undefined
  readonly force: boolean
  readonly agent: string | undefined
  readonly prompt: string | undefined
  readonly printPrompt: boolean
  readonly github: boolean
  readonly githubRepo: string | undefined
  readonly repo: string | undefined
  readonly run: boolean
  readonly yes: boolean
  /** The conflict forecast (default `forecast`, the plug above). */
  readonly forecast?: ForecastOf | undefined
}

const problemLine = (f: Finding) => `${f.path === "" ? "(plan)" : f.path}: ${f.message}`

/** `braid draft`: the feature, the repository, the agent's rounds, the plan file (or the kept draft). */
export const draft = (options: Options) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const given = [options.description !== undefined && options.description.trim() !== "", options.from !== undefined, options.issue !== undefined].filter(Boolean).length
    if (given === 0) {
      return yield* new DraftInputInvalid({ where: "braid draft", problem: "no feature to plan: describe it (braid draft \"Add a checkout flow\"), or pass --from FILE or --issue N" })
    }
    if (given > 1) return yield* new DraftInputInvalid({ where: "braid draft", problem: "give the feature one way: a description, --from FILE or --issue N" })
    const top = yield* GitWorkspace.repositoryTop(options.repo ?? process.cwd()).pipe(
      Effect.mapError((e) => new DraftInputInvalid({ where: options.repo !== undefined ? "--repo" : "braid draft", problem: `${e.message}: run braid draft in the repository the plan changes, or pass --repo` }))
    )
    const out = path.resolve(options.out ?? Init.PLAN_FILE)
    if (!options.printPrompt) {
      if (yield* fs.exists(out).pipe(Effect.orElseSucceed(() => false))) {
        if (!options.force) {
          return yield* new DraftInputInvalid({ where: options.out ?? Init.PLAN_FILE, problem: "already exists; braid draft writes nothing over a plan (pass --force to replace it, or --out another file)" })
        }
      }
      const folder = path.dirname(out)
      const isDir = yield* fs.stat(folder).pipe(Effect.map((i) => i.type === "Directory"), Effect.orElseSucceed(() => false))
      if (!isDir) return yield* new DraftInputInvalid({ where: "--out", problem: `the folder ${folder} does not exist` })
    }
    if (options.run && !options.yes && !(process.stdin.isTTY === true && process.stderr.isTTY === true)) {
      return yield* new DraftInputInvalid({ where: "--run", problem: "no terminal to confirm on (CI or no TTY): pass --yes as well to run the drafted plan without asking" })
    }
    const baseDir = path.dirname(out)
    const config = yield* Plan.readConfig(baseDir)
    const template = yield* readTemplate(options.prompt)

    // GitHub: the repository from --github-repo, else the origin remote's.
    const origin = yield* Process.run(GitWorkspace.safeGitArgv(["remote", "get-url", "origin"]), { cwd: top, env: GitWorkspace.safeGitEnv, unconfined: true }).pipe(
      Effect.map((r) => (r.exitCode === 0 ? githubRepoOfUrl(r.stdout) : undefined)),
      Effect.orElseSucceed(() => undefined)
    )
    const githubRepo = options.githubRepo ?? origin
    const projectName = path.basename(top)
    const shell = yield* shellPlan({ baseDir, config, projectName }).pipe(Effect.orDie)
    const GitHubHttpModule = yield* Effect.promise(() => import("./GitHubHttp.js"))
    const githubOn = Effect.gen(function*() {
      if (githubRepo === undefined) {
        return yield* new DraftInputInvalid({ where: options.issue !== undefined ? "--issue" : "--github", problem: "no GitHub repository: pass --github-repo owner/name (the origin remote is not on github.com)" })
      }
      const settings = yield* GitHubHttpModule.settings({ ...shell, githubRepo }, { noGithub: false })
      if (settings._tag === "Off") return yield* new DraftInputInvalid({ where: options.issue !== undefined ? "--issue" : "--github", problem: `GitHub is off: ${settings.reason}` })
      return yield* GitHubHttpModule.issues(settings)
    })

    const feature = options.issue !== undefined
      ? yield* Effect.gen(function*() {
        const issues = yield* githubOn
        const issue = yield* issues.getIssue(options.issue!)
        const comments = yield* issues.listComments(options.issue!)
        return featureOfIssue(issue, comments.map((c) => ({ body: c.body })))
      }).pipe(Effect.catchTag("GitHubFailed", (e) => Effect.fail(new DraftInputInvalid({ where: `--issue ${options.issue}`, problem: `cannot read it from ${githubRepo}: ${e.message}` }))))
      : options.from !== undefined
      ? yield* fs.readFileString(options.from).pipe(
        Effect.mapError((e) => new DraftInputInvalid({ where: `--from ${options.from}`, problem: e._tag === "SystemError" && e.reason === "NotFound" ? "no such file" : `cannot be read (${e.message})` })),
        Effect.filterOrFail((t) => t.trim() !== "", () => new DraftInputInvalid({ where: `--from ${options.from}`, problem: "the file is empty: it should describe the feature" }))
      )
      : options.description!
    if (options.github && githubRepo === undefined) yield* githubOn

    if (options.printPrompt) {
      const repository = yield* describeRepository(top)
      yield* Effect.sync(() => process.stdout.write(fill(template, { feature, projectName, repository, round: 1 })))
      return
    }

    const checkout = yield* readOnlyCheckout(top)
    const repository = yield* describeRepository(checkout.dir)
    const architectAgent = yield* architect(shell, { agent: options.agent, checkout })
    const say = (line: string) => Effect.sync(() => void process.stderr.write(`${line}\n`))
    yield* say(`braid draft: the ${architectAgent.name} agent reads ${top} in a read-only checkout${architectAgent.unconfined !== undefined ? ` (not confined: ${architectAgent.unconfined})` : " (confined: it can write nothing but its own home)"}`)
    const checkDraft = (text: string | undefined) => check(text, { source: options.out ?? Init.PLAN_FILE, baseDir, config, repository: top, forecast: options.forecast })
    const outcome = yield* loop({
      prompt: (input) => fill(template, input),
      input: { feature, projectName, repository },
      ask: architectAgent.ask,
      check: checkDraft,
      onRound: (round, checked, reply) =>
        Effect.gen(function*() {
          if (reply.changed.length > 0) yield* say(`braid draft: warning: round ${round}: the agent changed ${reply.changed.join(", ")} in its read-only checkout; thrown away`)
          yield* say(
            checked.problems.length === 0
              ? `braid draft: round ${round}: the draft passes${checked.notes.length > 0 ? ` (${checked.notes.length} note${checked.notes.length === 1 ? "" : "s"})` : ""}`
              : `braid draft: round ${round}: ${checked.problems.length} problem${checked.problems.length === 1 ? "" : "s"}${round <= FIX_ROUNDS ? ", sent back to the agent" : ""}:\n${
                checked.problems.map((p) => `  - ${problemLine(p)}`).join("\n")
              }`
          )
        })
    })
    if (outcome._tag === "Rejected") {
      const kept = draftPathOf(out)
      yield* fs.writeFileString(kept, keptText(outcome.text, outcome.problems, outcome.rounds)).pipe(Effect.orDie)
      return yield* new DraftRejected({ kept: path.relative(process.cwd(), kept) || kept, rounds: outcome.rounds, problems: outcome.problems.map((p) => ({ path: p.path, message: p.message })) })
    }

    let text = outcome.text
    if (options.github || options.issue !== undefined) {
      text = withTopFields(text, { githubRepo, githubIssueNumber: options.issue })
    }
    // What is written is checked once more (the GitHub fields added to it), and written whole.
    const write = (t: string) =>
      Effect.gen(function*() {
        const checked = yield* Plan.parse(t, options.out ?? Init.PLAN_FILE, baseDir, config)
        const tmp = `${out}.tmp-${process.pid}`
        yield* fs.writeFileString(tmp, t).pipe(Effect.zipRight(fs.rename(tmp, out)), Effect.orDie)
        return checked
      })
    let plan = yield* write(text)
    let filed: Filed | undefined
    if (options.github) {
      const issues = yield* githubOn
      // The plan is on disk already: a GitHub failure loses no draft.
      filed = yield* fileIssues(issues, plan, options.issue).pipe(
        Effect.catchTag("GitHubFailed", (e) => Effect.fail(new DraftGitHubFailed({ repo: githubRepo ?? "?", written: path.relative(process.cwd(), out) || out, problem: e.message })))
      )
      text = withIssueNumbers(text, filed.numbers)
      plan = yield* write(text)
    }

    const ExecutionPlan = yield* Effect.promise(() => import("@braid/core/ExecutionPlan"))
    yield* Effect.sync(() => process.stdout.write(`${ExecutionPlan.render(plan, ExecutionPlan.make(plan), { backendOf: (s) => Preflight.backendOf(plan, s, options.agent) })}\n`))
    for (const note of outcome.notes) yield* say(`braid: warning: ${problemLine(note)}${note.fix !== undefined ? ` (fix: ${note.fix})` : ""}`)
    if (filed !== undefined) {
      yield* say(
        `github: ${filed.created.length} issue${filed.created.length === 1 ? "" : "s"} created${filed.created.length > 0 ? ` (${filed.created.map((n) => `#${n}`).join(", ")})` : ""}, ${
          filed.numbers.size - filed.created.length
        } found again${filed.linked === "sub-issues" ? `, sub-issues of #${options.issue}` : filed.linked === "task-list" ? `, listed in #${options.issue}'s body (no sub-issues here)` : ""}`
      )
    }
    yield* Effect.sync(() => process.stdout.write(`wrote ${path.relative(process.cwd(), out) || out} (${outcome.rounds} round${outcome.rounds === 1 ? "" : "s"})\nnext: braid plan ${path.relative(process.cwd(), out) || out}   then: braid run ${path.relative(process.cwd(), out) || out}\n`))
    if (options.run) yield* runPlan(out, top, options.yes)
  }).pipe(Effect.scoped)

/** Runs the written plan with `braid run`, after the user says yes on the terminal (or `--yes`). */
const runPlan = (out: string, repository: string, yes: boolean) =>
  Effect.gen(function*() {
    if (!yes) {
      const answer = yield* Effect.async<string>((resume) => {
        process.stderr.write(`Run ${out} now with braid run? [y/N] `)
        const onData = (d: Buffer) => {
          process.stdin.off("data", onData)
          process.stdin.pause()
          resume(Effect.succeed(d.toString("utf8").trim()))
        }
        process.stdin.on("data", onData)
        process.stdin.resume()
      })
      if (!/^y(es)?$/i.test(answer)) {
        process.stderr.write(`not run; run it with: braid run ${out}\n`)
        return
      }
    }
    const code = yield* Effect.async<number>((resume) => {
      const child = spawn(process.execPath, [process.argv[1]!, "run", out, "--repo", repository], { stdio: "inherit" })
      child.on("close", (c) => resume(Effect.succeed(c ?? 1)))
      child.on("error", () => resume(Effect.succeed(1)))
    })
    yield* Effect.sync(() => void (process.exitCode = code))
  })
