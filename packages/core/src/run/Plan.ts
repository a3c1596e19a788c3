/**
 * The plan file: the seed's shape (tasks, streams, qualityThreshold, maxParallel,
 * githubRepo, projectName, featureName) plus braid's optional additions.
 *
 * @since 0.1.0
 */
// By path, not @effect/platform's index, which would initialise every platform module at start-up (ARCHITECTURE.md).
import * as FileSystem from "@effect/platform/FileSystem"
import { Context, Effect, Either, Option, ParseResult, Schema } from "effect"
import { dirname, resolve as resolvePath } from "node:path"
import * as YAML from "yaml"
import * as CommandSpec from "./CommandSpec.js"
import * as ConflictStrategies from "../pipeline/ConflictStrategy.js"
import * as ReviewerKinds from "../ports/ReviewerKind.js"
import * as Sandbox from "../system/Sandbox.js"
import * as Fields from "../internal/fields.js"
import * as Graph from "../internal/graph.js"
import * as PlanText from "../internal/planText.js"
import * as Terminal from "../present/Terminal.js"

/** The stream types of the seed, each mapped to an agent role. */
export const StreamType = Schema.Literal("database", "api", "ui", "testing", "docs", "infrastructure")
export type StreamType = typeof StreamType.Type

/** How conflicts between streams are resolved: the name of one of `ConflictStrategy.all`. */
export const ConflictStrategy = Schema.Literal(...ConflictStrategies.names)
export type ConflictStrategy = typeof ConflictStrategy.Type

/** What follows when a task fails its quality gate three times. */
export const GateFailurePolicy = Schema.Literal("continue", "halt-stream", "fail-run")
export type GateFailurePolicy = typeof GateFailurePolicy.Type

/** Who reviews an attempt: the name of one of `ReviewerKind.all` (the plan's checks, an LLM judge, or both). */
export const ReviewerKind = Schema.Literal(...ReviewerKinds.names)
export type ReviewerKind = typeof ReviewerKind.Type

/** Stream type → the agent role that carries out its tasks (the seed's table; `Agent.roles` re-exports it). */
export const ROLES: Readonly<Record<StreamType, string>> = {
  database: "database-engineer",
  api: "api-developer",
  ui: "ui-developer",
  testing: "test-engineer",
  docs: "documentation-writer",
  infrastructure: "architect"
}

/** Priority labels, highest first; a number is also accepted (1 is the highest). */
export const PriorityLabel = Schema.Literal("critical", "high", "medium", "low")

const StringOrList = Schema.Union(Schema.String, Schema.Array(Schema.String))

/**
 * What braid itself reads of every agent backend's settings (under `agents.<backend>` in the
 * plan or `braid.config.yaml`): the provider whose limits its attempts count against. Each
 * backend declares the rest as its own Schema, which holds these fields too (`BackendFields`).
 */
export class AgentSettings extends Schema.Class<AgentSettings>("AgentSettings")({
  /** The provider whose limits the backend's attempts count against (for `llm`: the API it speaks). */
  provider: Schema.optional(Schema.String)
}) {}

/**
 * The LLM judge (under `judge` in the plan, a stream, a role or `braid.config.yaml`): which
 * model reviews attempts, and how close to the threshold a score must land to be asked twice more.
 */
export class JudgeSettings extends Schema.Class<JudgeSettings>("JudgeSettings")({
  /** The API the judge speaks: `anthropic` or `openai`. */
  provider: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  /** The API's base URL (a proxy, an enterprise endpoint, a local server). */
  baseUrl: Schema.optional(Schema.String),
  /** A score within this many points of the threshold is sampled twice more and the median of three is used (default 5). */
  margin: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  /** What the judge looks for, replacing the role's rubric. */
  rubric: Schema.optional(Schema.String),
  /** The most characters of the attempt's diff the judge is shown (default 40000). */
  maxDiffChars: Schema.optional(Schema.Int.pipe(Schema.positive()))
}) {}

/** Review settings of one role (under `roles.<role>`). */
export class RoleSettings extends Schema.Class<RoleSettings>("RoleSettings")({
  reviewer: Schema.optional(ReviewerKind),
  judge: Schema.optional(JudgeSettings)
}) {}

/** How braid treats one provider's limits (under `limits.<provider>`). */
export class ProviderLimit extends Schema.Class<ProviderLimit>("ProviderLimit")({
  /** At most this many attempts against the provider at once (default: maxParallel). */
  concurrency: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** Transient errors tolerated per attempt before the task fails (default 6). */
  retries: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  /** The first backoff after a transient error (default 2 s); doubles, with jitter. */
  backoffSeconds: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  /** The longest backoff (default 120 s). */
  maxBackoffSeconds: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
}) {}

/** A model's price in USD per million tokens (under `prices.<model>`). */
export class ModelPrice extends Schema.Class<ModelPrice>("ModelPrice")({
  input: Schema.Number.pipe(Schema.nonNegative()),
  output: Schema.Number.pipe(Schema.nonNegative()),
  cacheRead: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  cacheWrite: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
}) {}

/** Who resolves conflicts under the `agent` strategy (`resolver: { agent: claude-code }`). */
export class ResolverSettings extends Schema.Class<ResolverSettings>("ResolverSettings")({
  /** The agent backend that resolves, in the architect role (its settings are `agents.<backend>`). */
  agent: Schema.optional(Schema.String)
}) {}

/** What the run does when its budget is reached: let running attempts finish, or stop them. */
export const BudgetExceeded = Schema.Literal("finish", "stop")
export type BudgetExceeded = typeof BudgetExceeded.Type

const Amount = Schema.Number.pipe(Schema.positive())

/** A task's budget: what its attempts may spend, in USD or tokens (or both). */
export class TaskBudget extends Schema.Class<TaskBudget>("TaskBudget")({
  usd: Schema.optional(Amount),
  tokens: Schema.optional(Amount)
}) {}

/** The run's budget: what all its agents may spend, and what happens when it is reached. */
export class Budget extends Schema.Class<Budget>("Budget")({
  usd: Schema.optional(Amount),
  tokens: Schema.optional(Amount),
  /** `finish` (default): no new attempt starts, running ones finish; `stop`: running ones are stopped too. */
  onExceeded: Schema.optional(BudgetExceeded)
}) {}

/** GitHub settings (`github:` in the plan or `braid.config.yaml`). */
export class GitHubSettings extends Schema.Class<GitHubSettings>("GitHubSettings")({
  /** The REST API's base URL (GitHub Enterprise, a local server); else `GITHUB_API_URL`, else https://api.github.com. */
  apiUrl: Schema.optional(Schema.String)
}) {}

/** `agents:` as written: each backend's settings, decoded with that backend's Schema beside the file (`BackendFields`). */
const AgentSettingsMap = Schema.Record({ key: Schema.String, value: Schema.Record({ key: Schema.String, value: Schema.Unknown }) })
const ProviderLimits = Schema.Record({ key: Schema.String, value: ProviderLimit })
const Prices = Schema.Record({ key: Schema.String, value: ModelPrice })

/** An endpoint a confined process may reach: `host:port`. */
export const Endpoint = Schema.String.pipe(
  Schema.filter((s) => Sandbox.parseEndpoint(s) !== undefined || `expected host:port (e.g. registry.npmjs.org:443), got ${JSON.stringify(s)}`)
)

/** Confinement settings: how (`auto`, `required`, `off`) and which endpoints beyond an agent's model API its processes may reach. */
export class SandboxSettings extends Schema.Class<SandboxSettings>("SandboxSettings")({
  mode: Schema.optional(Sandbox.Mode),
  network: Schema.optional(Schema.Array(Endpoint))
}) {}

/** A stream's `sandbox:`: only what it may reach beyond the plan (the run has one mode). */
export class StreamSandbox extends Schema.Class<StreamSandbox>("StreamSandbox")({
  network: Schema.optional(Schema.Array(Endpoint))
}) {}

/** `sandbox:` as written: a mode alone, or settings. */
const SandboxSetting = Schema.Union(Sandbox.Mode, SandboxSettings)
const sandboxSettings = (s: typeof SandboxSetting.Type | undefined): SandboxSettings | undefined =>
  s === undefined ? undefined : typeof s === "string" ? new SandboxSettings({ mode: s }) : s

/** What a notifier hears about: a task needs a person's review, the run paused, a conflict is left for a person, the run finished, its pull request is open. */
export const NotifyEvent = Schema.Literal("review-needed", "paused", "conflict-left", "finished", "pull-request")
export type NotifyEvent = typeof NotifyEvent.Type

/**
 * One notifier (an element of `notify:` in the plan or `braid.config.yaml`): a `command` (an argv,
 * or a line split into words; never a shell) run with the event's JSON on stdin and in
 * `BRAID_EVENT`, or `desktop: true` for the platform's desktop notification; `on` the events
 * it hears (default: all).
 */
export class NotifierSettings extends Schema.Class<NotifierSettings>("NotifierSettings")({
  /** What the warnings and `braid plan` call it (default: the command line, or "desktop"). */
  name: Schema.optional(Schema.NonEmptyTrimmedString),
  command: Schema.optional(Schema.Union(Schema.String, Schema.NonEmptyArray(Schema.String))),
  /** A desktop notification where the platform has one (`notify-send`, `osascript`); never under CI or without a display. */
  desktop: Schema.optional(Schema.Boolean),
  /** The events it hears (default: all of them). */
  on: Schema.optional(Schema.Array(NotifyEvent)),
  /** How long the command may take before it is killed (default 10 s). */
  timeoutSeconds: Schema.optional(Schema.Number.pipe(Schema.positive()))
}) {}

/** How long a notifier may take by default before it is killed. */
export const NOTIFY_TIMEOUT_MS = 10_000

/** A notifier, ready: a command's argv, or the desktop's; and the events it hears. */
export type Notifier =
  | { readonly _tag: "Command"; readonly name: string; readonly argv: readonly [string, ...Array<string>]; readonly timeoutMs: number; readonly on: ReadonlyArray<NotifyEvent> }
  | { readonly _tag: "Desktop"; readonly name: string; readonly timeoutMs: number; readonly on: ReadonlyArray<NotifyEvent> }

/** A path inside a checkout, relative to its top, that stays inside it. */
const CheckoutPath = Schema.NonEmptyTrimmedString.pipe(
  Schema.filter((p) =>
    (!p.startsWith("/") && !p.split(/[\\/]/).includes("..") && p.split(/[\\/]/)[0] !== ".git") ||
    `expected a path inside the checkout (relative, no "..", not .git), got ${JSON.stringify(p)}`
  )
)

/**
 * A folder rebuilt expensively in every checkout (`node_modules`, `.venv`, `target`), kept in
 * braid's cache keyed by the contents of its `key` files: a checkout whose key files match a
 * cached build gets a copy of it (copy-on-write where the filesystem can) instead of building.
 */
export class SharedPath extends Schema.Class<SharedPath>("SharedPath")({
  path: CheckoutPath,
  key: Schema.NonEmptyArray(CheckoutPath),
  /** What builds it when the cache has no build for its key (before `setup`); without one, `setup` builds it. */
  build: Schema.optional(CommandSpec.CommandSpec)
}) {}

/** How each checkout is made ready (`environment:` in the plan, a stream, or `braid.config.yaml`). */
export class EnvironmentSettings extends Schema.Class<EnvironmentSettings>("EnvironmentSettings")({
  /** Commands run in a checkout when it is made or handed to another stream, before any agent or check. */
  setup: Schema.optional(Schema.Array(CommandSpec.CommandSpec)),
  /** Commands run when a checkout is given back or removed (best effort). */
  teardown: Schema.optional(Schema.Array(CommandSpec.CommandSpec)),
  /** Patterns (gitignore syntax) of untracked or ignored files copied from the main checkout (`.env`). */
  copy: Schema.optional(Schema.Array(Schema.NonEmptyTrimmedString)),
  share: Schema.optional(Schema.Array(SharedPath)),
  /** How many ports each checkout gets to itself (`BRAID_PORT`, `BRAID_PORTS=first-last`). */
  ports: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000))),
  /** A sparse checkout (cone mode) of the stream's scope and these folders; the integration's is always complete. */
  sparse: Schema.optional(Schema.Array(CheckoutPath))
}) {}

/** A shared path, ready. */
export interface Shared {
  readonly path: string
  readonly key: ReadonlyArray<string>
  readonly build: CommandSpec.Command | undefined
}

/** How each checkout of a stream (or the integration's) is made ready, resolved: every field given. */
export interface Environment {
  readonly setup: ReadonlyArray<CommandSpec.Command>
  readonly teardown: ReadonlyArray<CommandSpec.Command>
  readonly copy: ReadonlyArray<string>
  readonly share: ReadonlyArray<Shared>
  /** Ports per checkout; 0: none. */
  readonly ports: number
  /** Folders of a sparse checkout besides the stream's scope; undefined: the whole tree. */
  readonly sparse?: ReadonlyArray<string> | undefined
}

/** An environment that does nothing. */
export const noEnvironment: Environment = { setup: [], teardown: [], copy: [], share: [], ports: 0 }

/**
 * A stream's scope as paths: a scope is a list, or one text of paths separated by commas or
 * spaces (`"db/, src/db/"`); each without a leading `./` or trailing `/`, empty ones left out.
 * Globs are kept as written.
 */
export const scopePathsOf = (stream: Pick<PlannedStream, "scope">): ReadonlyArray<string> =>
  stream.scope.flatMap((s) => s.split(/[\s,]+/)).map((p) => p.replace(/^\.\//, "").replace(/\/+$/, "")).filter((p) => p !== "")

/**
 * The folders of a stream's sparse checkout (cone mode): its scope's folders ({@link scopePathsOf};
 * globs are left out) and the environment's `sparse` ones. Undefined: the stream's checkout is complete.
 */
export const sparseOf = (stream: PlannedStream): ReadonlyArray<string> | undefined => {
  const extra = stream.environment?.sparse
  if (extra === undefined) return undefined
  const scope = scopePathsOf(stream)
  return [...new Set([...scope, ...extra.map((p) => p.replace(/\/+$/, ""))].filter((p) => p !== "" && p !== "." && !/[*?[]/.test(p)))].sort()
}

/** Whether an environment does anything at all. */
export const hasEnvironment = (e: Environment): boolean =>
  e.setup.length + e.teardown.length + e.copy.length + e.share.length + e.ports > 0

/** One unit of work, carried out by its stream's agent. */
export class Task extends Schema.Class<Task>("Task")({
  id: Schema.NonEmptyTrimmedString,
  title: Schema.String,
  stream: Schema.optional(Schema.String),
  streamType: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  acceptanceCriteria: Schema.optional(StringOrList),
  githubIssueNumber: Schema.optional(Schema.Int),
  effort: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  dependsOn: Schema.optional(Schema.Array(Schema.String)),
  run: Schema.optional(CommandSpec.RunSpec),
  checks: Schema.optional(Schema.Array(CommandSpec.CommandSpec)),
  /** What this task's attempts may spend; over it, the task fails. */
  budget: Schema.optional(TaskBudget)
}) {}

/** A work stream: tasks run one after another in its own workspace. */
export class Stream extends Schema.Class<Stream>("Stream")({
  name: Schema.NonEmptyTrimmedString,
  type: Schema.String,
  scope: Schema.optional(StringOrList),
  priority: Schema.optional(Schema.Union(Schema.Int, PriorityLabel)),
  agent: Schema.optional(Schema.String),
  /** A template file replacing the role's prompt for this stream (relative to the plan). */
  prompt: Schema.optional(Schema.String),
  /** Who reviews this stream's attempts (over its role's and the plan's). */
  reviewer: Schema.optional(ReviewerKind),
  /** The judge of this stream's attempts (field by field over its role's and the plan's). */
  judge: Schema.optional(JudgeSettings),
  /** Endpoints this stream's processes may reach beyond the plan's (`network`; the mode is the run's). */
  sandbox: Schema.optional(StreamSandbox),
  /** This stream's checkout environment, field by field over the plan's. */
  environment: Schema.optional(EnvironmentSettings)
}) {}

/** The plan file as written. */
export class PlanFile extends Schema.Class<PlanFile>("PlanFile")({
  projectName: Schema.optional(Schema.String),
  featureName: Schema.optional(Schema.String),
  tasks: Schema.Array(Task),
  streams: Schema.Array(Stream),
  qualityThreshold: Schema.optional(Schema.Number),
  maxParallel: Schema.optional(Schema.Number),
  githubRepo: Schema.optional(Schema.NullOr(Schema.String)),
  /** The plan's tracking issue on `githubRepo`: it gets the run's summary comment. */
  githubIssueNumber: Schema.optional(Schema.Int),
  github: Schema.optional(GitHubSettings),
  agent: Schema.optional(Schema.String),
  /** Settings per agent backend. */
  agents: Schema.optional(AgentSettingsMap),
  /** A template file replacing every role's prompt (relative to the plan); a stream's own wins. */
  prompt: Schema.optional(Schema.String),
  limits: Schema.optional(ProviderLimits),
  prices: Schema.optional(Prices),
  checks: Schema.optional(Schema.Array(CommandSpec.CommandSpec)),
  verify: Schema.optional(Schema.Array(CommandSpec.CommandSpec)),
  conflictStrategy: Schema.optional(ConflictStrategy),
  /** For the `agent` conflict strategy without an agent backend: a command run in the integration workspace. */
  resolve: Schema.optional(CommandSpec.RunSpec),
  /** Who resolves conflicts under the `agent` strategy: an agent backend in the architect role. */
  resolver: Schema.optional(ResolverSettings),
  /** What the run's agents may spend in all; when reached no new attempt starts and the run pauses, resumable. */
  budget: Schema.optional(Budget),
  onGateFailure: Schema.optional(GateFailurePolicy),
  /** Who reviews attempts: `checks`, `judge`, `composite` (default: composite when a judge is configured, else checks). */
  reviewer: Schema.optional(ReviewerKind),
  /** The LLM judge. */
  judge: Schema.optional(JudgeSettings),
  /** Review settings per role (`api-developer`, …), between the plan's and a stream's. */
  roles: Schema.optional(Schema.Record({ key: Schema.String, value: RoleSettings })),
  /** Confinement of every process a stream starts: `auto` (default), `required`, `off`, or `{ mode, network: [host:port] }`. */
  sandbox: Schema.optional(SandboxSetting),
  /** How each checkout is made ready: setup and teardown commands, copied files, shared folders, ports. */
  environment: Schema.optional(EnvironmentSettings),
  /** Where a run's stream checkouts go (`<dir>/<runId>/<stream>`), relative to the plan's folder (default: the user's cache folder). */
  worktreesDir: Schema.optional(Schema.String),
  /** Who is told when the run needs a person or is done: commands and the desktop, each for the events it names (after `braid.config.yaml`'s). */
  notify: Schema.optional(Schema.Array(NotifierSettings))
}) {}

/** A stream with its tasks resolved, in the order they run. */
export interface PlannedStream {
  readonly name: string
  readonly type: StreamType
  /** 1 is the highest; labels map critical=1, high=2, medium=3, low=4; unset = 5. */
  readonly rank: number
  readonly scope: ReadonlyArray<string>
  readonly agent: string | undefined
  /** The stream's prompt template file (absolute), if it overrides the role's. */
  readonly prompt: string | undefined
  /** The stream's own reviewer choice and judge settings (see `reviewerOf`). */
  readonly reviewer?: ReviewerKind | undefined
  readonly judge?: JudgeSettings | undefined
  /** Endpoints the stream's processes may reach beyond the plan's `sandbox.network`. */
  readonly network?: ReadonlyArray<Sandbox.Endpoint> | undefined
  /** How the stream's checkout is made ready (the plan's, its own fields over them). */
  readonly environment?: Environment | undefined
  readonly tasks: ReadonlyArray<Task>
}

/** `braid.config.yaml` beside a plan: defaults for every plan in that folder. */
export class ConfigFile extends Schema.Class<ConfigFile>("ConfigFile")({
  agent: Schema.optional(Schema.String),
  resolver: Schema.optional(ResolverSettings),
  reviewer: Schema.optional(ReviewerKind),
  judge: Schema.optional(JudgeSettings),
  github: Schema.optional(GitHubSettings),
  agents: Schema.optional(AgentSettingsMap),
  limits: Schema.optional(ProviderLimits),
  prices: Schema.optional(Prices),
  sandbox: Schema.optional(SandboxSetting),
  environment: Schema.optional(EnvironmentSettings),
  /** Where runs' stream checkouts go, relative to the config file's folder (below the plan's `worktreesDir`). */
  worktreesDir: Schema.optional(Schema.String),
  /** Notifiers for every plan in the folder; a plan's own run too, after these. */
  notify: Schema.optional(Schema.Array(NotifierSettings))
}) {}

/** The config file names looked for beside a plan, in order. */
export const CONFIG_FILES = ["braid.config.yaml", "braid.config.yml", "braid.config.json"] as const

/** A validated plan: every reference resolves, defaults applied. */
export interface Plan {
  readonly file: PlanFile
  readonly projectName: string
  readonly featureName: string
  readonly qualityThreshold: number
  readonly maxParallel: number
  readonly githubRepo: string | undefined
  /** The plan's tracking issue on `githubRepo` (the run's summary comment goes there). */
  readonly githubIssueNumber: number | undefined
  /** GitHub settings: the plan's over `braid.config.yaml`'s. */
  readonly github: GitHubSettings
  readonly streams: ReadonlyArray<PlannedStream>
  readonly tasks: ReadonlyMap<string, Task>
  /** task id → stream name */
  readonly streamOf: ReadonlyMap<string, string>
  /** task id → ids it waits for (explicit `dependsOn` only; stream order is implicit) */
  readonly dependsOn: ReadonlyMap<string, ReadonlyArray<string>>
  readonly checks: ReadonlyArray<CommandSpec.Command>
  readonly verify: ReadonlyArray<CommandSpec.Command>
  readonly conflictStrategy: ConflictStrategy
  readonly resolve: CommandSpec.Command | undefined
  /** The backend `resolver.agent` names: the plan's, else `braid.config.yaml`'s. */
  readonly resolverAgent: string | undefined
  /** The run's budget, if it has one. */
  readonly budget: Budget | undefined
  readonly onGateFailure: GateFailurePolicy
  /** The directory the plan file is in; `run.script` paths are relative to it. */
  readonly baseDir: string
  /** The backend `braid.config.yaml` names (below the plan's and streams', above the caller's). */
  readonly configAgent: string | undefined
  /** The `braid.config.yaml` the plan was read with (empty when there was none). */
  readonly config: ConfigFile
  /**
   * Settings per backend: the plan's over the config file's, field by field, each decoded with its
   * backend's Schema (`BackendFields`), so a value holds that backend's fields (`agents.llm` is `llm`'s).
   */
  readonly agents: Readonly<Record<string, AgentSettings>>
  /** The plan's prompt template file (absolute), if it overrides the roles'. */
  readonly prompt: string | undefined
  /** Confinement: the plan's mode over `braid.config.yaml`'s (undefined: the caller's, else `auto`), and the endpoints both allow every stream. */
  readonly sandbox: { readonly mode: Sandbox.Mode | undefined; readonly network: ReadonlyArray<Sandbox.Endpoint> }
  /** How the integration's checkout is made ready before verify (the plan's over `braid.config.yaml`'s, field by field); streams have their own. */
  readonly environment: Environment
  /**
   * Where the run's stream checkouts go (absolute): the plan's `worktreesDir` (relative to its
   * folder) over `braid.config.yaml`'s (relative to the config's folder); undefined: the caller's
   * (`--worktrees-dir`), else the workspace's default outside the repository.
   */
  readonly worktreesDir?: string | undefined
  /** Who is told of the run's events: `braid.config.yaml`'s notifiers, then the plan's (both run). */
  readonly notify: ReadonlyArray<Notifier>
  readonly limits: Readonly<Record<string, ProviderLimit>>
  /** Prices per model (USD per million tokens), the plan's over the config file's over braid's table. */
  readonly prices: Readonly<Record<string, ModelPrice>>
  /** Unknown fields that were ignored (a misspelling close to a known field is an error instead). */
  readonly warnings: ReadonlyArray<PlanProblem>
  /** The values of the task fields the plan was decoded with (`BackendFields`): task id → field name → value. */
  readonly declared: ReadonlyMap<string, Readonly<Record<string, unknown>>>
}

/**
 * A field an agent backend adds to each task of the plan (the mock backend's `mock:`): its name,
 * the Schema its value must meet, and which of its texts may span lines. A plan is decoded with
 * the fields of the backends on offer (`BackendFields`), so a wrong value is a problem at its path
 * (`tasks[2].mock.scores[0]`) and a misspelled field in it is found like any other; the plan
 * itself knows no backend's fields.
 */
export interface TaskField<A = unknown> {
  readonly name: string
  readonly schema: Schema.Schema.AnyNoContext
  /** Whether the text at `path` inside the field's value (`["files", "a.txt"]`) may span lines; any other text in it is one line. */
  readonly multiLine: (path: ReadonlyArray<string | number>) => boolean
  /** The field's value on `task` (undefined when the task gives none, or `plan` was decoded without this field). */
  readonly of: (plan: Plan, task: Task) => A | undefined
}

/** Declares a task field: its name, its Schema, and (default: none) the texts in it that may span lines. */
export const taskField = <A, I>(
  name: string,
  schema: Schema.Schema<A, I>,
  options: { readonly multiLine?: (path: ReadonlyArray<string | number>) => boolean } = {}
): TaskField<A> => ({
  name,
  schema,
  multiLine: options.multiLine ?? (() => false),
  of: (plan, task) => plan.declared.get(task.id)?.[name] as A | undefined
})

/** What the backends a caller offers add to plans. */
export interface Declarations {
  /** The fields they add to tasks. */
  readonly taskFields: ReadonlyArray<TaskField>
  /**
   * Each backend's settings Schema by its name, for `agents.<name>` in the plan and
   * `braid.config.yaml`; each holds `AgentSettings`' fields beside its own.
   */
  readonly settings: Readonly<Record<string, Schema.Schema.AnyNoContext>>
}

const noDeclarations: Declarations = { taskFields: [], settings: {} }

/**
 * The task fields and settings plans are decoded with: those of the backends a caller offers.
 * None by default; the CLI provides its backends' around every command, so a plan decodes the
 * same way in each. A library caller offering backends provides theirs
 * (`Effect.provideService(Plan.BackendFields, Registry.planFields(backends))`); without them a
 * backend's settings are kept as written, for the registry to decode.
 */
export class BackendFields extends Context.Reference<BackendFields>()("@braid/core/Plan/BackendFields", {
  defaultValue: (): Declarations => noDeclarations
}) {}

export const DEFAULT_QUALITY_THRESHOLD = 80
export const DEFAULT_MAX_PARALLEL = 5

/**
 * The largest plan braid reads; over any of these a plan is refused, naming the limit. Far
 * above any plan people write, they bound what a damaged or hostile file can cost.
 */
export const LIMITS = {
  /** The plan file's size in bytes (10 MiB). */
  fileBytes: 10 * 1024 * 1024,
  tasks: 10_000,
  streams: 10_000,
  /** Values in the document (each text, number, list and field), counting what YAML aliases repeat. */
  values: 1_000_000,
  /** Nesting of lists and fields. */
  depth: 64,
  /** YAML alias expansions (the `yaml` package's `maxAliasCount`): enough for one anchor shared by every task. */
  aliases: 10_000,
  /** A task id, a stream name or a run id, in UTF-8 bytes: each names a branch and a folder, whose parts the file system caps at 255. */
  nameBytes: 128
} as const

/** Fields whose text may span lines (a line break or a tab in them is fine); every other text is one line. */
const MULTI_LINE_FIELDS: ReadonlySet<string> = new Set(["description", "acceptanceCriteria", "rubric", "command", "args", "checks", "verify", "run", "resolve"])

/** Whether the text at `path` may span lines: under a multi-line field. */
const multiLineAt = (path: PlanText.Path): boolean => {
  const names = path.filter((k): k is string => typeof k === "string")
  const last = names.at(-1)
  return last !== undefined && MULTI_LINE_FIELDS.has(last)
}

/** Control characters and text that is not Unicode, in every text and record key of a decoded plan, each with its path. */
const textProblems = (root: unknown): Array<PlanProblem> => {
  const problems: Array<PlanProblem> = []
  PlanText.strings(root, (text, pathOf, isKey) => {
    // Most text has no control character at all: the path is looked at only when there is one.
    const problem = PlanText.textProblem(text, true)
    if (problem === undefined) return
    const path = pathOf()
    const multiLine = !isKey && multiLineAt(path)
    const found = multiLine ? PlanText.textProblem(text, false) : problem
    if (found !== undefined) problems.push({ path: formatPath(path), message: isKey ? `the field name ${found}` : found })
  })
  return problems
}

/** The task fields a plan was decoded with, and what each task gives of them (by its index in `tasks`); the backends' settings, decoded. */
interface Declared {
  readonly fields: ReadonlyArray<TaskField>
  readonly values: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>
  readonly agents?: Readonly<Record<string, AgentSettings>> | undefined
}

const noneDeclared: Declared = { fields: [], values: [] }

/** `textProblems` for the declared fields' values: each field says which of its texts may span lines. */
const declaredTextProblems = (declared: Declared): Array<PlanProblem> => {
  const problems: Array<PlanProblem> = []
  declared.values.forEach((values, index) => {
    if (values === undefined) return
    for (const field of declared.fields) {
      if (values[field.name] === undefined) continue
      PlanText.strings(values[field.name], (text, pathOf, isKey) => {
        const problem = PlanText.textProblem(text, true)
        if (problem === undefined) return
        const path = pathOf()
        const found = !isKey && field.multiLine(path) ? PlanText.textProblem(text, false) : problem
        if (found !== undefined) {
          problems.push({ path: formatPath(["tasks", index, field.name, ...path]), message: isKey ? `the field name ${found}` : found })
        }
      })
    }
  })
  return problems
}

/** A name in a message: quoted, and cut short when long. */
const quoted = (name: string): string => JSON.stringify(name.length > 60 ? `${name.slice(0, 40)}…${name.slice(-10)}` : name)

const byteLength = (text: string): number => Buffer.byteLength(text, "utf8")

/** One problem found in a plan, with where it is. */
export interface PlanProblem {
  readonly path: string
  readonly message: string
}

/** How many of a plan's problems its error message prints; the rest are counted (all are in `problems`). */
export const SHOWN_PROBLEMS = 200

/** The plan could not be read or is invalid; every problem is listed. */
export class InvalidPlan extends Schema.TaggedError<InvalidPlan>()("InvalidPlan", {
  source: Schema.String,
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    // Problems quote the plan's own text: shown one line each, with no control character a terminal would act on.
    // Thousands of them (a list of 10,000 wrong values) are counted past the first SHOWN_PROBLEMS, not printed.
    const lines = this.problems.slice(0, SHOWN_PROBLEMS).map((p) =>
      `  - ${p.path === "" ? "(plan)" : Terminal.safeLine(p.path)}: ${Terminal.safeLine(p.message)}`
    )
    if (this.problems.length > SHOWN_PROBLEMS) {
      lines.push(`  … and ${(this.problems.length - SHOWN_PROBLEMS).toLocaleString("en")} more problems (the first ${SHOWN_PROBLEMS} are shown)`)
    }
    return `${Terminal.safeLine(this.source)}: invalid plan (${this.problems.length.toLocaleString("en")} problem${this.problems.length === 1 ? "" : "s"})\n${
      lines.join("\n")
    }`
  }
}

const rankOf = (priority: Stream["priority"]): number => {
  switch (priority) {
    case undefined:
      return 5
    case "critical":
      return 1
    case "high":
      return 2
    case "medium":
      return 3
    case "low":
      return 4
    default:
      return priority
  }
}

const isStreamType = Schema.is(StreamType)
const GITHUB_REPO = /^[A-Za-z0-9][A-Za-z0-9-]*\/[A-Za-z0-9._-]+$/

const formatPath = PlanText.formatPath

/** A plan with more tasks or streams than `LIMITS` allows: one problem each. */
const sizeProblems = (tasks: number, streams: number): Array<PlanProblem> => [
  ...(tasks > LIMITS.tasks
    ? [{ path: "tasks", message: `the plan has ${tasks.toLocaleString("en")} tasks; braid runs at most ${LIMITS.tasks.toLocaleString("en")} in one plan` }]
    : []),
  ...(streams > LIMITS.streams
    ? [{ path: "streams", message: `the plan has ${streams.toLocaleString("en")} streams; braid runs at most ${LIMITS.streams.toLocaleString("en")} in one plan` }]
    : [])
]

/** Checks the decoded plan file and resolves it into a `Plan`, reporting every problem at once. */
export const validate = (
  file: PlanFile,
  source = "plan",
  baseDir = process.cwd(),
  config: ConfigFile = new ConfigFile({})
): Effect.Effect<Plan, InvalidPlan> => check(file, noneDeclared, source, baseDir, config)

/** `validate`, with the values of the declared task fields the file was decoded with. */
const check = (
  file: PlanFile,
  declared: Declared,
  source: string,
  baseDir = process.cwd(),
  config: ConfigFile = new ConfigFile({})
): Effect.Effect<Plan, InvalidPlan> =>
  Effect.suspend(() => {
    const oversized = sizeProblems(file.tasks.length, file.streams.length)
    if (oversized.length > 0) return Effect.fail(new InvalidPlan({ source, problems: oversized }))
    // Text reaches commits, branch names, paths and the terminal: no control characters, valid Unicode.
    const problems: Array<PlanProblem> = [...textProblems(file), ...declaredTextProblems(declared)]
    const problem = (path: string, message: string) => problems.push({ path, message })

    const threshold = file.qualityThreshold ?? DEFAULT_QUALITY_THRESHOLD
    if (!(threshold >= 0 && threshold <= 100)) {
      problem("qualityThreshold", `must be between 0 and 100, got ${threshold}`)
    }
    const maxParallel = file.maxParallel ?? DEFAULT_MAX_PARALLEL
    if (!Number.isInteger(maxParallel) || maxParallel < 1) {
      problem("maxParallel", `must be a whole number of at least 1, got ${maxParallel}`)
    }
    const githubRepo = file.githubRepo ?? undefined
    if (githubRepo !== undefined && !GITHUB_REPO.test(githubRepo)) {
      problem("githubRepo", `must look like "owner/name", got "${githubRepo}"`)
    }
    if (file.githubIssueNumber !== undefined && file.githubIssueNumber < 1) {
      problem("githubIssueNumber", `must be a whole number of at least 1, got ${file.githubIssueNumber}`)
    }
    file.tasks.forEach((task, i) => {
      if (task.githubIssueNumber !== undefined && task.githubIssueNumber < 1) {
        problem(`tasks[${i}].githubIssueNumber`, `must be a whole number of at least 1, got ${task.githubIssueNumber}`)
      }
    })
    const github = new GitHubSettings({ ...config.github, ...file.github })
    if (github.apiUrl !== undefined && !/^https?:\/\/[^\s/]+/.test(github.apiUrl)) {
      problem(file.github?.apiUrl !== undefined ? "github.apiUrl" : "braid.config.yaml: github.apiUrl", `must be an http(s) URL, got "${github.apiUrl}"`)
    }

    if (file.budget !== undefined && file.budget.usd === undefined && file.budget.tokens === undefined) {
      problem("budget", "give usd or tokens (or both): budget: { usd: 5 } or budget: { tokens: 200000 }")
    }
    file.tasks.forEach((task, i) => {
      if (task.budget !== undefined && task.budget.usd === undefined && task.budget.tokens === undefined) {
        problem(`tasks[${i}].budget`, "give usd or tokens (or both): budget: { usd: 1 } or budget: { tokens: 50000 }")
      }
    })

    // streams
    const streamIndex = new Map<string, number>()
    file.streams.forEach((stream, i) => {
      if (streamIndex.has(stream.name)) {
        problem(`streams[${i}].name`, `duplicate stream name "${stream.name}" (also streams[${streamIndex.get(stream.name)}])`)
      } else {
        streamIndex.set(stream.name, i)
      }
      if (!isStreamType(stream.type)) {
        problem(
          `streams[${i}].type`,
          `unknown stream type "${stream.type}" (expected one of ${StreamType.literals.join(", ")})`
        )
      }
      // A control character in the name is already reported (textProblems) with its position.
      const branchProblem = PlanText.textProblem(stream.name, true) === undefined ? branchNameProblem(stream.name) : undefined
      if (branchProblem !== undefined) {
        problem(
          `streams[${i}].name`,
          `stream name ${quoted(stream.name)} cannot name the stream's git branch braid/<run>/<name> and checkout folder <worktrees>/<run>/<name> (${branchProblem})`
        )
      }
      if (typeof stream.priority === "number" && stream.priority < 1) {
        problem(`streams[${i}].priority`, `must be 1 (highest) or more, got ${stream.priority}`)
      }
    })
    if (file.streams.length === 0) problem("streams", "a plan needs at least one stream")
    const streamsOfType = new Map<string, Array<Stream>>()
    for (const stream of file.streams) {
      const same = streamsOfType.get(stream.type)
      if (same === undefined) streamsOfType.set(stream.type, [stream])
      else same.push(stream)
    }

    // tasks
    const taskIndex = new Map<string, number>()
    const streamOf = new Map<string, string>()
    file.tasks.forEach((task, i) => {
      if (taskIndex.has(task.id)) {
        problem(`tasks[${i}].id`, `duplicate task id ${quoted(task.id)} (also tasks[${taskIndex.get(task.id)}])`)
        return
      }
      taskIndex.set(task.id, i)
      if (byteLength(task.id) > LIMITS.nameBytes) {
        problem(
          `tasks[${i}].id`,
          `task id ${quoted(task.id)} is ${byteLength(task.id)} bytes long; an id may be at most ${LIMITS.nameBytes} bytes (UTF-8)`
        )
      }
      if (task.effort !== undefined && effortOf(task.effort) === undefined) {
        problem(`tasks[${i}].effort`, `expected ${expectations.effort}, got ${shown(task.effort)}`)
      }
      if (task.streamType !== undefined && !isStreamType(task.streamType)) {
        problem(
          `tasks[${i}].streamType`,
          `unknown stream type "${task.streamType}" (expected one of ${StreamType.literals.join(", ")})`
        )
      }
      if (task.stream !== undefined) {
        const s = streamIndex.get(task.stream)
        if (s === undefined) {
          problem(`tasks[${i}].stream`, `task "${task.id}" names stream "${task.stream}", which is not in streams`)
          return
        }
        const named = file.streams[s]!
        if (task.streamType !== undefined && task.streamType !== named.type) {
          const other = streamsOfType.get(task.streamType)?.[0]
          problem(
            `tasks[${i}].streamType`,
            other === undefined
              ? `task "${task.id}" is in stream "${named.name}" of type "${named.type}" but says streamType "${task.streamType}"`
              : `task "${task.id}" is in two streams: "${named.name}" by name and "${other.name}" by streamType "${task.streamType}"`
          )
          return
        }
        streamOf.set(task.id, named.name)
      } else if (task.streamType !== undefined) {
        const matching = streamsOfType.get(task.streamType) ?? []
        if (matching.length === 1) streamOf.set(task.id, matching[0]!.name)
        else if (matching.length === 0) {
          problem(`tasks[${i}].stream`, `task "${task.id}" is in no stream (no stream of type "${task.streamType}")`)
        } else {
          problem(
            `tasks[${i}].stream`,
            `task "${task.id}" is in ${matching.length} streams of type "${task.streamType}" (${
              matching.map((m) => `"${m.name}"`).join(", ")
            }): name one with "stream"`
          )
        }
      } else {
        problem(`tasks[${i}].stream`, `task "${task.id}" is in no stream (give "stream" or "streamType")`)
      }
    })

    // dependencies
    const dependsOn = new Map<string, ReadonlyArray<string>>()
    file.tasks.forEach((task, i) => {
      if (taskIndex.get(task.id) !== i) return
      const deps: Array<string> = []
      ;(task.dependsOn ?? []).forEach((dep, j) => {
        if (dep === task.id) problem(`tasks[${i}].dependsOn[${j}]`, `task "${task.id}" depends on itself`)
        else if (!taskIndex.has(dep)) {
          problem(`tasks[${i}].dependsOn[${j}]`, `task "${task.id}" depends on unknown task "${dep}"`)
        } else deps.push(dep)
      })
      dependsOn.set(task.id, deps)
    })

    // Cycles: explicit edges plus the implicit order inside each stream.
    const streamTasks = new Map<string, Array<Task>>()
    for (const s of file.streams) streamTasks.set(s.name, [])
    file.tasks.forEach((task, i) => {
      const s = streamOf.get(task.id)
      if (s !== undefined && taskIndex.get(task.id) === i) streamTasks.get(s)!.push(task)
    })
    const edges = new Map<string, Array<string>>()
    for (const [id, deps] of dependsOn) edges.set(id, [...deps])
    for (const tasks of streamTasks.values()) {
      for (let k = 1; k < tasks.length; k++) edges.get(tasks[k]!.id)?.push(tasks[k - 1]!.id)
    }
    for (const cycle of findCycles(edges)) {
      // A cycle through thousands of tasks is named by its ends, not printed whole.
      const named = cycle.length <= 20
        ? [...cycle, cycle[0]].join(" → ")
        : `${cycle.slice(0, 10).join(" → ")} → … (${(cycle.length - 15).toLocaleString("en")} more) … → ${[...cycle.slice(-5), cycle[0]].join(" → ")}`
      problem("tasks", `dependency cycle${cycle.length > 20 ? ` of ${cycle.length.toLocaleString("en")} tasks` : ""}: ${named}`)
    }

    // checks and verify commands
    const normalise = (specs: ReadonlyArray<CommandSpec.CommandSpec> | undefined, path: string) =>
      (specs ?? []).flatMap((spec, i) => {
        const result = CommandSpec.toCommand(spec)
        if (typeof result === "string") {
          problem(`${path}[${i}]`, result)
          return []
        }
        return [result]
      })
    const checks = normalise(file.checks, "checks")
    const verify = normalise(file.verify, "verify")
    /** An environment's fields over another's, field by field; its commands ready. */
    const environmentOf = (own: EnvironmentSettings | undefined, under: Environment, at: string): Environment =>
      own === undefined ? under : {
        setup: own.setup === undefined ? under.setup : normalise(own.setup, `${at}.setup`),
        teardown: own.teardown === undefined ? under.teardown : normalise(own.teardown, `${at}.teardown`),
        copy: own.copy ?? under.copy,
        share: own.share === undefined ? under.share : own.share.map((shared, i) => {
          let build: CommandSpec.Command | undefined
          if (shared.build !== undefined) {
            const made = CommandSpec.toCommand(shared.build)
            if (typeof made === "string") problem(`${at}.share[${i}].build`, made)
            else build = made
          }
          return { path: shared.path, key: shared.key, build }
        }),
        ports: own.ports ?? under.ports,
        sparse: own.sparse ?? under.sparse
      }
    const environment = environmentOf(file.environment, environmentOf(config.environment, noEnvironment, "braid.config.yaml environment"), "environment")
    const streamEnvironments = file.streams.map((s, i) => environmentOf(s.environment, environment, `streams[${i}].environment`))
    let resolve: CommandSpec.Command | undefined
    if (file.resolve !== undefined) {
      const r = CommandSpec.toRun(file.resolve, baseDir)
      if (typeof r === "string") problem("resolve", r)
      else resolve = r
    }
    file.tasks.forEach((task, i) => {
      normalise(task.checks, `tasks[${i}].checks`)
      if (task.run !== undefined) {
        const run = CommandSpec.toRun(task.run)
        if (typeof run === "string") problem(`tasks[${i}].run`, run)
      }
    })

    const knownRoles = [...new Set(Object.values(ROLES))]
    for (const role of Object.keys(file.roles ?? {})) {
      if (!knownRoles.includes(role)) problem(`roles.${role}`, `unknown role "${role}" (roles: ${knownRoles.join(", ")})`)
    }

    const notify = [
      ...notifiersOf(config.notify, "braid.config.yaml: notify", problem),
      ...notifiersOf(file.notify, "notify", problem)
    ]

    if (problems.length > 0) return Effect.fail(new InvalidPlan({ source, problems }))

    const streams: Array<PlannedStream> = file.streams.map((s, i) => ({
      name: s.name,
      type: s.type as StreamType,
      rank: rankOf(s.priority),
      scope: s.scope === undefined ? [] : typeof s.scope === "string" ? [s.scope] : s.scope,
      agent: s.agent,
      prompt: s.prompt === undefined ? undefined : resolvePath(baseDir, s.prompt),
      reviewer: s.reviewer,
      judge: s.judge,
      network: (s.sandbox?.network ?? []).map((e) => Sandbox.parseEndpoint(e)!),
      environment: streamEnvironments[i],
      tasks: streamTasks.get(s.name)!
    }))
    const agents = declared.agents ?? readAgents(file.agents, config.agents, noDeclarations.settings).values
    return Effect.succeed<Plan>({
      file,
      projectName: file.projectName ?? "project",
      featureName: file.featureName ?? "feature",
      qualityThreshold: threshold,
      maxParallel,
      githubRepo,
      githubIssueNumber: file.githubIssueNumber,
      github,
      streams,
      tasks: new Map(file.tasks.map((t) => [t.id, t])),
      streamOf,
      dependsOn,
      checks,
      verify,
      conflictStrategy: file.conflictStrategy ?? "agent",
      resolve,
      resolverAgent: file.resolver?.agent ?? config.resolver?.agent,
      budget: file.budget,
      onGateFailure: file.onGateFailure ?? "continue",
      baseDir,
      configAgent: config.agent,
      config,
      agents,
      prompt: file.prompt === undefined ? undefined : resolvePath(baseDir, file.prompt),
      limits: { ...config.limits, ...file.limits },
      prices: { ...config.prices, ...file.prices },
      sandbox: {
        mode: sandboxSettings(file.sandbox)?.mode ?? sandboxSettings(config.sandbox)?.mode,
        network: [...(sandboxSettings(config.sandbox)?.network ?? []), ...(sandboxSettings(file.sandbox)?.network ?? [])].map((e) => Sandbox.parseEndpoint(e)!)
      },
      environment,
      worktreesDir: file.worktreesDir !== undefined && file.worktreesDir !== ""
        ? resolvePath(baseDir, file.worktreesDir)
        : config.worktreesDir !== undefined && config.worktreesDir !== ""
        ? resolvePath(baseDir, config.worktreesDir)
        : undefined,
      notify,
      warnings: [],
      declared: new Map(declared.values.flatMap((values, i) => values === undefined ? [] : [[file.tasks[i]!.id, values]]))
    })
  })

/** Notifiers as written, ready; each problem reported at `at[i]`. */
const notifiersOf = (
  written: ReadonlyArray<NotifierSettings> | undefined,
  at: string,
  problem: (path: string, message: string) => void
): Array<Notifier> =>
  (written ?? []).flatMap((n, i): Array<Notifier> => {
    const path = `${at}[${i}]`
    const on = n.on ?? NotifyEvent.literals
    if (n.on !== undefined && n.on.length === 0) problem(`${path}.on`, "lists no event: name at least one, or leave on out for every event")
    const timeoutMs = n.timeoutSeconds !== undefined ? n.timeoutSeconds * 1000 : NOTIFY_TIMEOUT_MS
    if (n.command !== undefined && n.desktop !== undefined) {
      problem(path, "give command or desktop, not both (two notifiers are two entries)")
      return []
    }
    if (n.command !== undefined) {
      const made = CommandSpec.toCommand(n.command)
      if (typeof made === "string") {
        problem(`${path}.command`, made)
        return []
      }
      return [{ _tag: "Command", name: n.name ?? made.name, argv: made.argv, timeoutMs, on }]
    }
    if (n.desktop === undefined) {
      problem(path, "a notifier needs command: [program, args…] or desktop: true")
      return []
    }
    return n.desktop ? [{ _tag: "Desktop", name: n.name ?? "desktop", timeoutMs, on }] : []
  })

/** Elementary cycles, one per strongly connected component (Tarjan), members in dependency order. */
const findCycles = (edges: ReadonlyMap<string, ReadonlyArray<string>>): Array<Array<string>> => {
  const components = Graph.components([...edges.keys()].sort(), (v) => edges.get(v) ?? []).filter((c) => c.length > 1)
  // Walk each component to print one concrete cycle rather than an unordered set.
  return components.map((component) => {
    const members = new Set(component)
    const start = [...component].sort()[0]!
    const path = [start]
    const seen = new Set([start])
    let current = start
    for (;;) {
      const next = (edges.get(current) ?? []).find((w) => members.has(w))!
      if (seen.has(next)) return path.slice(path.indexOf(next)).reverse()
      path.push(next)
      seen.add(next)
      current = next
    }
  })
}

/** Decodes an already-parsed plan document (from JSON or YAML), reporting every problem; with the `BackendFields` provided. */
export const decode = (
  input: unknown,
  source = "plan",
  baseDir?: string,
  config?: ConfigFile
): Effect.Effect<Plan, InvalidPlan> => Effect.flatMap(BackendFields, (declarations) => decodeWith(input, declarations, source, baseDir, config))

const decodeWith = (
  input: unknown,
  declarations: Declarations,
  source: string,
  baseDir: string | undefined,
  config: ConfigFile | undefined
): Effect.Effect<Plan, InvalidPlan> =>
  Effect.suspend(() => {
    const fields = declarations.taskFields
    const taken = fields.find((f) => f.name in Task.fields)
    if (taken !== undefined) return Effect.dieMessage(`a backend declares the task field "${taken.name}", which is braid's own`)
    // Size and shape first, without recursion: nothing else reads a document too large, too deep or circular.
    const shape = PlanText.shapeProblem(input, LIMITS)
    if (shape !== undefined) return Effect.fail(new InvalidPlan({ source, problems: [shape] }))
    const lengthOf = (field: string) => {
      const value = typeof input === "object" && input !== null ? (input as Record<string, unknown>)[field] : undefined
      return Array.isArray(value) ? value.length : 0
    }
    const oversized = sizeProblems(lengthOf("tasks"), lengthOf("streams"))
    if (oversized.length > 0) return Effect.fail(new InvalidPlan({ source, problems: oversized }))

    const unknown = Fields.unknownFields(input, shapeWith(fields))
    // An unknown field's name is printed in a warning: it must be printable too.
    const unprintable: Array<PlanProblem> = unknown.flatMap((u) => {
      const problem = PlanText.textProblem(u.field, true)
      return problem === undefined ? [] : [{ path: u.path, message: `the field name ${problem}` }]
    })
    const isNotifier = (u: Fields.Unknown) => u.path.startsWith("notify[")
    const misspelled: Array<PlanProblem> = [
      ...unprintable,
      ...unknown.flatMap((u) =>
        u.suggestion === undefined || isNotifier(u) ? [] : [{ path: u.path, message: `unknown field ${quoted(u.field)} — did you mean "${u.suggestion}"?` }]
      ),
      ...unknownNotifierFields(typeof input === "object" && input !== null ? (input as Record<string, unknown>).notify : undefined, "")
    ]
    const refused = new Set([...unprintable.map((p) => p.path), ...unknown.filter(isNotifier).map((u) => u.path)])
    const warnings: Array<PlanProblem> = unknown.flatMap((u) =>
      u.suggestion !== undefined || refused.has(u.path) ? [] : [{ path: u.path, message: `unknown field ${quoted(u.field)} is ignored` }]
    )
    // Each backend's settings with its own Schema, the plan's and the config file's.
    const agents = readAgents(
      typeof input === "object" && input !== null ? (input as Record<string, unknown>).agents : undefined,
      config?.agents,
      declarations.settings
    )
    misspelled.push(...agents.misspelled)
    warnings.push(...agents.warnings)
    const file = decodeFile(input, fields)
    const typeProblems = [...(Either.isLeft(file) ? file.left : []), ...agents.typeProblems]
    if (Either.isRight(file) && typeProblems.length === 0 && misspelled.length === 0) {
      const decoded = withAgents(file.right, agents)
      return Effect.map(check(decoded.file, decoded, source, baseDir, config), (plan) => ({ ...plan, warnings }))
    }
    // Report every problem at once: wrong types (one plain line per field), misspellings, and
    // the semantic problems of the rest of the plan (checked with the bad fields left out).
    const rest = Either.map(
      Either.isRight(file) ? file : decodeFile(without(input, typeProblems.map((p) => p.rawPath)), fields),
      (decoded) => withAgents(decoded, agents)
    )
    const semantic = Either.isRight(rest)
      ? Effect.match(check(rest.right.file, rest.right, source, baseDir, config), {
        onFailure: (e) => e.problems,
        onSuccess: () => [] as ReadonlyArray<PlanProblem>
      })
      : Effect.succeed([] as ReadonlyArray<PlanProblem>)
    // Every field holding a wrong-typed part (`tasks[2]` for `tasks[2].title`): not reported again as incomplete.
    const holders = new Set<string>()
    for (const t of typeProblems) for (let k = 1; k < t.rawPath.length; k++) holders.add(formatPath(t.rawPath.slice(0, k)))
    return Effect.flatMap(semantic, (more) =>
      Effect.fail(
        new InvalidPlan({
          source,
          problems: [
            ...misspelled,
            ...typeProblems.map(({ message, path }) => ({ path, message })),
            ...more.filter((m) => m.path === "" || !holders.has(m.path))
          ]
        })
      ))
  })

/** Where each field is known: unknown fields close to these are misspellings. */
const commandFields = ["name", "command", "timeoutSeconds"]
const taskShape: Fields.Shape = {
  fields: Object.keys(Task.fields),
  nested: {
    run: { kind: "object", shape: { fields: [...commandFields, "script"] } },
    checks: { kind: "list", shape: { fields: commandFields } },
    budget: { kind: "object", shape: { fields: Object.keys(TaskBudget.fields) } }
  }
}
const environmentShape: Fields.Shape = {
  fields: Object.keys(EnvironmentSettings.fields),
  nested: {
    setup: { kind: "list", shape: { fields: commandFields } },
    teardown: { kind: "list", shape: { fields: commandFields } },
    share: { kind: "list", shape: { fields: Object.keys(SharedPath.fields), nested: { build: { kind: "object", shape: { fields: commandFields } } } } }
  }
}
/** A notifier's fields: an unknown one is an error, not a warning (a notifier that silently means less is never noticed). */
const notifierShape: Fields.Shape = { fields: Object.keys(NotifierSettings.fields) }

/** Unknown fields of the notifiers in `notify` (a plan's or a config file's), each a problem at `prefix` + its path. */
const unknownNotifierFields = (notify: unknown, prefix: string): Array<PlanProblem> =>
  Fields.unknownFields({ notify }, { fields: ["notify"], nested: { notify: { kind: "list", shape: notifierShape } } }).map((u) => ({
    path: `${prefix}${u.path}`,
    message: `unknown field ${quoted(u.field)}${u.suggestion !== undefined ? ` — did you mean "${u.suggestion}"?` : ""} (a notifier has ${notifierShape.fields.join(", ")})`
  }))

const planShape: Fields.Shape = {
  fields: Object.keys(PlanFile.fields),
  nested: {
    tasks: { kind: "list", shape: taskShape },
    streams: {
      kind: "list",
      shape: {
        fields: Object.keys(Stream.fields),
        nested: {
          judge: { kind: "object", shape: { fields: Object.keys(JudgeSettings.fields) } },
          sandbox: { kind: "object", shape: { fields: Object.keys(StreamSandbox.fields) } },
          environment: { kind: "object", shape: environmentShape }
        }
      }
    },
    judge: { kind: "object", shape: { fields: Object.keys(JudgeSettings.fields) } },
    roles: {
      kind: "record",
      shape: { fields: Object.keys(RoleSettings.fields), nested: { judge: { kind: "object", shape: { fields: Object.keys(JudgeSettings.fields) } } } }
    },
    checks: { kind: "list", shape: { fields: commandFields } },
    verify: { kind: "list", shape: { fields: commandFields } },
    resolve: { kind: "object", shape: { fields: [...commandFields, "script"] } },
    resolver: { kind: "object", shape: { fields: Object.keys(ResolverSettings.fields) } },
    budget: { kind: "object", shape: { fields: Object.keys(Budget.fields) } },
    limits: { kind: "record", shape: { fields: Object.keys(ProviderLimit.fields) } },
    prices: { kind: "record", shape: { fields: Object.keys(ModelPrice.fields) } },
    github: { kind: "object", shape: { fields: Object.keys(GitHubSettings.fields) } },
    sandbox: { kind: "object", shape: { fields: Object.keys(SandboxSettings.fields) } },
    environment: { kind: "object", shape: environmentShape },
    notify: { kind: "list", shape: notifierShape }
  }
}

const shapes = new WeakMap<ReadonlyArray<TaskField>, Fields.Shape>()

/** `planShape` with the declared task fields, each with the fields its Schema knows. */
const shapeWith = (fields: ReadonlyArray<TaskField>): Fields.Shape => {
  if (fields.length === 0) return planShape
  let shape = shapes.get(fields)
  if (shape === undefined) {
    const nested: Record<string, Fields.Nested> = { ...taskShape.nested }
    for (const field of fields) {
      const inner = Fields.nestedOf(field.schema.ast)
      if (inner !== undefined) nested[field.name] = inner
    }
    shape = {
      ...planShape,
      nested: { ...planShape.nested, tasks: { kind: "list", shape: { fields: [...taskShape.fields, ...fields.map((f) => f.name)], nested } } }
    }
    shapes.set(fields, shape)
  }
  return shape
}

/** What a field must be, in words, for the fields people most often get wrong. */
const expectations: Readonly<Record<string, string>> = {
  qualityThreshold: "a number from 0 to 100",
  maxParallel: "a whole number of at least 1",
  priority: "a whole number of at least 1, or critical, high, medium or low",
  effort: `a number or a size (${Object.keys({ XS: 0, S: 0, M: 0, L: 0, XL: 0 }).join(", ")})`,
  githubIssueNumber: "a whole number",
  dependsOn: "a list of task ids",
  scope: "a path or a list of paths",
  acceptanceCriteria: "a text or a list of texts",
  timeoutSeconds: "a positive number of seconds",
  conflictStrategy: `one of ${ConflictStrategies.names.join(", ")}`,
  onGateFailure: "one of continue, halt-stream, fail-run",
  usd: "a positive number of US dollars",
  tokens: "a positive number of tokens",
  onExceeded: "one of finish, stop",
  reviewer: `one of ${ReviewerKinds.names.join(", ")}`,
  margin: "a number of points, 0 or more",
  id: "a non-empty text",
  name: "a non-empty text",
  title: "a text",
  on: `a list of events (${NotifyEvent.literals.join(", ")})`,
  desktop: "true or false",
  notify: "a list of notifiers ({ command: [program, args…] } or { desktop: true })",
  tasks: "a list of tasks",
  streams: "a list of streams"
}

const shown = (value: unknown): string => {
  const text = JSON.stringify(value)
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>((v, k) => (typeof v === "object" && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined), input)

const declaredSchemas = new WeakMap<ReadonlyArray<TaskField>, Schema.Schema<Readonly<Record<string, unknown>>, unknown>>()

/** A task's declared fields, and nothing else of it. */
const declaredSchemaWith = (fields: ReadonlyArray<TaskField>) => {
  let schema = declaredSchemas.get(fields)
  if (schema === undefined) {
    schema = Schema.Struct(Object.fromEntries(fields.map((f) => [f.name, Schema.optional(f.schema)]))) as unknown as Schema.Schema<
      Readonly<Record<string, unknown>>,
      unknown
    >
    declaredSchemas.set(fields, schema)
  }
  return schema
}

type FileProblem = PlanProblem & { readonly rawPath: ReadonlyArray<PropertyKey> }

const decodeOptions = { errors: "all", onExcessProperty: "ignore" } as const

/**
 * Decodes the plan file, and beside it the declared task fields of the tasks that give any (the
 * file's own Schema stays as it is, and a task without them costs nothing more); on failure, one
 * plain problem per field of either.
 */
const decodeFile = (input: unknown, fields: ReadonlyArray<TaskField>): Either.Either<Declared & { readonly file: PlanFile }, Array<FileProblem>> => {
  const file = Either.mapLeft(Schema.decodeUnknownEither(PlanFile, decodeOptions)(input), (error) => problemsOf(input, error))
  if (fields.length === 0) return Either.map(file, (file) => ({ file, ...noneDeclared }))
  const tasks = typeof input === "object" && input !== null ? (input as Record<string, unknown>).tasks : undefined
  const values: Array<Readonly<Record<string, unknown>> | undefined> = []
  const problems: Array<FileProblem> = Either.isLeft(file) ? [...file.left] : []
  // Not a list of tasks, or a task that is not an object: the file's own problem.
  if (Array.isArray(tasks)) {
    tasks.forEach((task, i) => {
      if (typeof task !== "object" || task === null || !fields.some((f) => f.name in task)) return void values.push(undefined)
      const decoded = Schema.decodeUnknownEither(declaredSchemaWith(fields), decodeOptions)(task)
      values.push(Either.getOrUndefined(decoded))
      if (Either.isLeft(decoded)) problems.push(...problemsOf(input, decoded.left, ["tasks", i]))
    })
  }
  return Either.isRight(file) && problems.length === 0 ? Either.right({ file: file.right, fields, values }) : Either.left(problems)
}

/** A backend's settings fields (its Schema's), or none when it holds no object. */
const settingsFields = new WeakMap<Schema.Schema.AnyNoContext, ReadonlyArray<string>>()
const fieldsOfSettings = (schema: Schema.Schema.AnyNoContext): ReadonlyArray<string> => {
  let fields = settingsFields.get(schema)
  if (fields === undefined) {
    const nested = Fields.nestedOf(schema.ast)
    fields = nested?.kind === "object" ? nested.shape.fields : []
    settingsFields.set(schema, fields)
  }
  return fields
}

/** Every settings field some backend on offer reads (`AgentSettings`' among them). */
const allSettingsFields = new WeakMap<Declarations["settings"], ReadonlyArray<string>>()
const settingsFieldsOfAll = (settings: Declarations["settings"]): ReadonlyArray<string> => {
  let fields = allSettingsFields.get(settings)
  if (fields === undefined) {
    fields = [...new Set([...Object.keys(AgentSettings.fields), ...Object.values(settings).flatMap(fieldsOfSettings)])]
    allSettingsFields.set(settings, fields)
  }
  return fields
}

/** The backends' settings of a plan and its config file, decoded, and what was wrong or unknown in them. */
interface AgentsRead {
  /** The plan's own, each decoded with its backend's Schema (the file keeps these). */
  readonly plan: Record<string, AgentSettings>
  /** The plan's over the config file's, field by field. */
  readonly values: Record<string, AgentSettings>
  readonly misspelled: Array<PlanProblem>
  readonly warnings: Array<PlanProblem>
  readonly typeProblems: Array<FileProblem>
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const definedOf = (value: object): Record<string, unknown> => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))

/**
 * `agents:` of the plan and of `braid.config.yaml` (its problems named `braid.config.yaml: agents.<name>.<field>`),
 * each `agents.<name>` decoded with that backend's Schema: a misspelling is one of its own fields',
 * a field another backend reads is ignored with a warning. A name no backend on offer has keeps
 * `AgentSettings`' fields, checked against every backend's; decoded with none declared (a library
 * caller that offers none), its fields are kept as written for the registry to decode.
 */
const readAgents = (plan: unknown, config: unknown, settings: Declarations["settings"]): AgentsRead => {
  const read: AgentsRead = { plan: {}, values: {}, misspelled: [], warnings: [], typeProblems: [] }
  const known = settingsFieldsOfAll(settings)
  const anyDeclared = Object.keys(settings).length > 0
  const layers = new Map<string, Array<Record<string, unknown>>>()
  for (const [raw, prefix] of [[config, "braid.config.yaml: "], [plan, ""]] as const) {
    // Not a record of objects: the file's own Schema says so.
    if (!isRecord(raw)) continue
    for (const [name, value] of Object.entries(raw)) {
      if (!isRecord(value)) continue
      const schema = Object.hasOwn(settings, name) ? settings[name] : undefined
      const own = schema === undefined ? undefined : fieldsOfSettings(schema)
      for (const field of Object.keys(value)) {
        if ((own ?? known).includes(field)) continue
        const path = `${prefix}agents.${name}.${field}`
        const unprintable = PlanText.textProblem(field, true)
        if (unprintable !== undefined) {
          read.misspelled.push({ path, message: `the field name ${unprintable}` })
        } else if (own !== undefined && known.includes(field)) {
          read.warnings.push({ path, message: `unknown field ${quoted(field)} is ignored: the ${name} backend has no such setting` })
        } else {
          const suggestion = Fields.closest(field, own ?? known)
          if (suggestion !== undefined) read.misspelled.push({ path, message: `unknown field ${quoted(field)} — did you mean "${suggestion}"?` })
          else if (own !== undefined || anyDeclared) read.warnings.push({ path, message: `unknown field ${quoted(field)} is ignored` })
        }
      }
      const decoded = Schema.decodeUnknownEither(schema ?? AgentSettings, decodeOptions)(value)
      if (Either.isLeft(decoded)) {
        const problems = problemsOf({ agents: raw }, decoded.left, ["agents", name])
        // A config file's problem is not at a path of the plan (`rawPath` leaves the plan's values alone).
        read.typeProblems.push(...(prefix === "" ? problems : problems.map((p) => ({ ...p, path: `${prefix}${p.path}`, rawPath: [] }))))
        continue
      }
      const kept = schema === undefined && !anyDeclared ? { ...value, ...definedOf(decoded.right) } : decoded.right
      if (prefix === "") read.plan[name] = kept as AgentSettings
      const same = layers.get(name)
      if (same === undefined) layers.set(name, [kept])
      else same.push(kept)
    }
  }
  for (const [name, [first, ...over]] of layers) {
    const schema = Object.hasOwn(settings, name) ? settings[name] : undefined
    const merged = over.length === 0 ? first! : Object.assign({}, ...[first!, ...over].map(definedOf))
    read.values[name] = (over.length === 0 || schema === undefined
      ? merged
      : Either.getOrElse(Schema.decodeUnknownEither(schema, decodeOptions)(merged), () => merged)) as AgentSettings
  }
  return read
}

/** A decoded plan file with its backends' settings, decoded (its own in `file.agents`, merged with the config file's in `agents`). */
const withAgents = (
  decoded: Declared & { readonly file: PlanFile },
  agents: AgentsRead
): Declared & { readonly file: PlanFile } => ({
  ...decoded,
  file: decoded.file.agents === undefined ? decoded.file : new PlanFile({ ...decoded.file, agents: agents.plan as unknown as NonNullable<PlanFile["agents"]> }, true),
  agents: agents.values
})

/** One plain problem per field of a decoding error at `at` (the schema's alternatives are not the user's concern). */
const problemsOf = (input: unknown, error: ParseResult.ParseError, at: ReadonlyArray<PropertyKey> = []): Array<FileProblem> => {
  const seen = new Set<string>()
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => at.length === 0 ? issue : { ...issue, path: [...at, ...issue.path] })
  // An optional object with a wrong field also fails as "expected undefined" at the object's
  // own path: the deeper issue is the one that says what is wrong.
  const keyOf = (path: ReadonlyArray<PropertyKey>) => JSON.stringify(path.map((k) => typeof k === "number" ? k : String(k)))
  const holders = new Set<string>()
  for (const issue of issues) for (let k = 0; k < issue.path.length; k++) holders.add(keyOf(issue.path.slice(0, k)))
  const deeper = (path: ReadonlyArray<PropertyKey>) => holders.has(keyOf(path))
  return issues.filter((issue) => !deeper(issue.path)).flatMap((issue) => {
    const path = formatPath(issue.path)
    if (seen.has(path)) return []
    seen.add(path)
    const field = [...issue.path].reverse().find((k) => typeof k === "string") as string | undefined
    const value = valueAt(input, issue.path)
    const message = issue._tag === "Missing"
      ? "is required"
      : field !== undefined && expectations[field] !== undefined
      ? `expected ${expectations[field]}, got ${shown(value)}`
      : issue.message.replace(/^Expected /, "expected ").replace(/, actual /, ", got ")
    return [{ path, message, rawPath: issue.path }]
  })
}

/** A copy of `input` without the values at `paths` (to check the rest of a plan with wrong fields). */
const without = (input: unknown, paths: ReadonlyArray<ReadonlyArray<PropertyKey>>): unknown => {
  const copy = structuredClone(input) as Record<PropertyKey, unknown>
  for (const path of paths) {
    if (path.length === 0) continue
    const parent = valueAt(copy, path.slice(0, -1))
    if (typeof parent === "object" && parent !== null && !Array.isArray(parent)) delete (parent as Record<PropertyKey, unknown>)[path.at(-1)!]
  }
  return copy
}

/** YAML syntax errors, each at its line and column: the first 20 (after those the parser mostly reports their consequences). */
const yamlProblems = (errors: ReadonlyArray<YAML.YAMLError>): Array<PlanProblem> =>
  errors.slice(0, 20).map((e) => ({
    path: e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "",
    // The yaml package reports its own stack overflow on a deeply nested document as a syntax error.
    message: /Maximum call stack size exceeded/.test(e.message)
      ? `the document is nested too deeply to read (no plan field goes more than ${LIMITS.depth} levels deep)`
      : e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")
  }))

/** The plan file is larger than `LIMITS.fileBytes` (`bytes` when its size is known). */
const tooLarge = (bytes: number | undefined): PlanProblem => {
  const limit = `${LIMITS.fileBytes / 1024 / 1024} MiB, the most braid reads for a plan`
  return {
    path: "",
    message: bytes === undefined ? `the file is larger than ${limit}` : `the file is ${(bytes / 1024 / 1024).toFixed(1)} MiB, more than ${limit}`
  }
}

/**
 * A YAML (or JSON) document's values: syntax errors each at its line, aliases limited to
 * `LIMITS.aliases` expansions (an alias bomb, an alias without its anchor: the line of the alias).
 */
const readYaml = (text: string): Either.Either<unknown, Array<PlanProblem>> => {
  // JSON is read by the JSON parser, 40 times faster than the YAML one on a plan of 10,000 tasks;
  // anything it refuses or reads differently (a key given twice) goes to the YAML parser as before.
  const json = PlanText.readJson(text)
  if (Option.isSome(json)) return Either.right(json.value)
  const lineCounter = new YAML.LineCounter()
  // The parser reports what it finds as errors; should it throw all the same, that is the plan's problem too, not a defect.
  const parsed = Either.try({
    try: () => YAML.parseDocument(text, { prettyErrors: true, lineCounter }),
    catch: (error) => [{ path: "", message: `the YAML document cannot be read: ${String(error instanceof Error ? error.message : error).split("\n")[0]}` }]
  })
  if (Either.isLeft(parsed)) return parsed
  const doc = parsed.right
  if (doc.errors.length > 0) return Either.left(yamlProblems(doc.errors))
  return Either.try({
    try: (): unknown => doc.toJS({ maxAliasCount: LIMITS.aliases }),
    catch: (error) => [PlanText.aliasProblem(doc, lineCounter, error, LIMITS.aliases)]
  })
}

/** Parses plan text: YAML, or JSON (a subset of YAML, read by the JSON parser when it means the same to both). */
export const parse = (
  text: string,
  source = "plan",
  baseDir?: string,
  config?: ConfigFile
): Effect.Effect<Plan, InvalidPlan> =>
  Effect.suspend(() => {
    const bytes = text.length > LIMITS.fileBytes / 3 ? byteLength(text) : text.length
    if (bytes > LIMITS.fileBytes) return Effect.fail(new InvalidPlan({ source, problems: [tooLarge(bytes)] }))
    const read = readYaml(text)
    if (Either.isLeft(read)) return Effect.fail(new InvalidPlan({ source, problems: read.left }))
    const value = read.right
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return Effect.fail(
        new InvalidPlan({ source, problems: [{ path: "", message: "a plan must be an object with tasks and streams" }] })
      )
    }
    return decode(value, source, baseDir, config)
  })

/**
 * A plan or config file's text: at most `LIMITS.fileBytes` read (a device or a pipe that never
 * ends is refused too), and UTF-8 or refused at the first byte that is not.
 */
const readText = (path: string): Effect.Effect<Option.Option<string>, InvalidPlan, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const failed = (e: { readonly _tag: string; readonly reason?: string; readonly message: string }) =>
      new InvalidPlan({
        source: path,
        problems: [{ path: "", message: e._tag === "SystemError" && e.reason === "NotFound" ? "file not found" : e.message }]
      })
    const opened = yield* fs.open(path).pipe(Effect.map(Option.some), Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeed(Option.none())), Effect.mapError(failed))
    if (Option.isNone(opened)) return Option.none()
    const chunks: Array<Uint8Array> = []
    let size = 0
    for (;;) {
      const chunk = yield* opened.value.readAlloc(FileSystem.Size(1024 * 1024)).pipe(Effect.mapError(failed))
      if (Option.isNone(chunk)) break
      chunks.push(chunk.value)
      size += chunk.value.length
      if (size > LIMITS.fileBytes) {
        // A regular file's size is known; a device or a pipe has none.
        const total = yield* opened.value.stat.pipe(
          Effect.map((info) => (info.type === "File" ? Number(info.size) : undefined)),
          Effect.orElseSucceed(() => undefined)
        )
        return yield* new InvalidPlan({ source: path, problems: [tooLarge(total)] })
      }
    }
    const bytes = Buffer.concat(chunks, size)
    return yield* Either.try({
      try: () => Option.some(new TextDecoder("utf-8", { fatal: true }).decode(bytes)),
      catch: () => {
        const at = PlanText.invalidUtf8(bytes)
        return new InvalidPlan({
          source: path,
          problems: [{
            path: at === undefined ? "" : `line ${at.line}, column ${at.column}`,
            message: `is not UTF-8 text${at === undefined ? "" : ` (byte 0x${at.byte.toString(16).padStart(2, "0")})`}: save the plan as UTF-8`
          }]
        })
      }
    })
  }).pipe(Effect.scoped)

/** Reads and validates a plan file (YAML or JSON). */
export const load = (path: string): Effect.Effect<Plan, InvalidPlan, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const text = yield* readText(path)
    if (Option.isNone(text)) return yield* new InvalidPlan({ source: path, problems: [{ path: "", message: "file not found" }] })
    const baseDir = dirname(resolvePath(path))
    return yield* parse(text.value, path, baseDir, yield* readConfig(baseDir))
  })

/** Reads `braid.config.yaml` (or `.yml`, `.json`) in a plan's directory; empty when there is none. */
export const readConfig = (baseDir: string): Effect.Effect<ConfigFile, InvalidPlan, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    for (const name of CONFIG_FILES) {
      const file = resolvePath(baseDir, name)
      const text = yield* readText(file)
      if (Option.isNone(text)) continue
      const read = readYaml(text.value)
      if (Either.isLeft(read)) return yield* new InvalidPlan({ source: file, problems: read.left })
      const shape = PlanText.shapeProblem(read.right, LIMITS)
      if (shape !== undefined) return yield* new InvalidPlan({ source: file, problems: [shape] })
      const strict = unknownNotifierFields(isRecord(read.right) ? read.right.notify : undefined, "")
      if (strict.length > 0) return yield* new InvalidPlan({ source: file, problems: strict })
      const config = yield* Schema.decodeUnknown(ConfigFile, { errors: "all", onExcessProperty: "ignore" })(read.right ?? {}).pipe(
        Effect.mapError((error) =>
          new InvalidPlan({
            source: file,
            problems: ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
              path: formatPath(issue.path),
              message: issue.message
            }))
          })
        )
      )
      const problems = textProblems(config)
      if (problems.length > 0) return yield* new InvalidPlan({ source: file, problems })
      return config
    }
    return new ConfigFile({})
  })

/** T-shirt sizes as the seed writes efforts, and the weight each gives the schedule (doubling per size). */
export const EFFORT_SIZES: Readonly<Record<string, number>> = { XS: 1, S: 2, M: 4, L: 8, XL: 16 }

/** An effort as a weight: a positive number, a size, or a number written as text; undefined when it is none. */
export const effortOf = (effort: string | number): number | undefined => {
  if (typeof effort === "number") return effort > 0 ? effort : undefined
  const size = EFFORT_SIZES[effort.trim().toUpperCase()]
  if (size !== undefined) return size
  const n = Number(effort)
  return effort.trim() !== "" && Number.isFinite(n) && n > 0 ? n : undefined
}

/** The weight a task's effort gives the schedule (1 without one). */
export const effortWeight = (effort: string | number | undefined): number =>
  effort === undefined ? 1 : effortOf(effort) ?? 1

/**
 * Why `name` (a stream's or a run's) cannot name a branch `braid/<run>/<name>` and a folder
 * `<worktrees>/<run>/<name>`: git's check-ref-format rules for one part of a ref, one
 * folder (no "/" or "\\"), and a length every file system takes (`LIMITS.nameBytes`).
 */
export const branchNameProblem = (name: string): string | undefined => {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(name)) return "it contains a space or a control character"
  if (/[~^:?*[\\]/.test(name)) return "it contains one of ~ ^ : ? * [ \\"
  if (name.includes("/")) return "it contains \"/\""
  if (name.includes("..")) return "it contains \"..\""
  if (name.includes("@{")) return "it contains \"@{\""
  if (name === "@") return "it is \"@\""
  if (name.endsWith(".")) return "it ends with \".\""
  if (name.startsWith(".") || name.endsWith(".lock")) return "it starts with \".\" or ends with \".lock\""
  if (name.startsWith("-")) return "it starts with \"-\""
  const bytes = byteLength(name)
  if (bytes > LIMITS.nameBytes) return `it is ${bytes} bytes long, more than ${LIMITS.nameBytes}`
  return undefined
}

/** The commands that judge a task's attempts: its own checks, then the plan's (validated with the plan). */
export const checksOf = (plan: Plan, task: Task): ReadonlyArray<CommandSpec.Command> => [
  ...(task.checks ?? []).flatMap((spec) => {
    const command = CommandSpec.toCommand(spec)
    return typeof command === "string" ? [] : [command]
  }),
  ...plan.checks
]

/** The review settings of a stream: its reviewer choice and its judge, each the stream's over its role's over the plan's over `braid.config.yaml`'s. */
export const reviewSettingsOf = (
  plan: Plan,
  stream: PlannedStream
): { readonly reviewer: ReviewerKind | undefined; readonly judge: JudgeSettings | undefined } => {
  const role = plan.file.roles?.[ROLES[stream.type]]
  const layers = [plan.config.judge, plan.file.judge, role?.judge, stream.judge].filter((j): j is JudgeSettings => j !== undefined)
  return {
    reviewer: stream.reviewer ?? role?.reviewer ?? plan.file.reviewer ?? plan.config.reviewer,
    judge: layers.length === 0 ? undefined : new JudgeSettings(Object.assign({}, ...layers.map((j) => Object.fromEntries(Object.entries(j).filter(([, v]) => v !== undefined)))))
  }
}

const streamsByName = new WeakMap<ReadonlyArray<PlannedStream>, ReadonlyMap<string, PlannedStream>>()

/** The stream named `name` (looked up in a map made once per plan: plans may have thousands of streams). */
export const streamNamed = (plan: Plan, name: string): PlannedStream | undefined => {
  let byName = streamsByName.get(plan.streams)
  if (byName === undefined) {
    byName = new Map(plan.streams.map((s) => [s.name, s]))
    streamsByName.set(plan.streams, byName)
  }
  return byName.get(name)
}

/** The stream a task belongs to. */
export const streamOfTask = (plan: Plan, taskId: string): PlannedStream => streamNamed(plan, plan.streamOf.get(taskId)!)!

/** Settings a caller (the CLI's flags) may override; the result is validated again. */
export interface Overrides {
  readonly qualityThreshold?: number | undefined
  readonly maxParallel?: number | undefined
  readonly conflictStrategy?: ConflictStrategy | undefined
  readonly onGateFailure?: GateFailurePolicy | undefined
  /** Replaces the amounts it gives of the plan's run budget (`--budget`); the others and `onExceeded` stay the plan's. */
  readonly budget?: { readonly usd?: number | undefined; readonly tokens?: number | undefined } | undefined
  /** Replaces the plan's confinement mode (`--sandbox`); its endpoints stay. */
  readonly sandbox?: Sandbox.Mode | undefined
}

/** The plan with overrides applied. */
export const override = (plan: Plan, overrides: Overrides, source = "options"): Effect.Effect<Plan, InvalidPlan> => {
  const { budget, sandbox, ...rest } = overrides
  const defined: Record<string, unknown> = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined))
  if (sandbox !== undefined) {
    const network = sandboxSettings(plan.file.sandbox)?.network
    defined.sandbox = new SandboxSettings({ mode: sandbox, ...(network !== undefined ? { network } : {}) })
  }
  if (budget !== undefined) {
    const usd = budget.usd ?? plan.file.budget?.usd
    const tokens = budget.tokens ?? plan.file.budget?.tokens
    defined.budget = new Budget({
      ...(usd !== undefined ? { usd } : {}),
      ...(tokens !== undefined ? { tokens } : {}),
      ...(plan.file.budget?.onExceeded !== undefined ? { onExceeded: plan.file.budget.onExceeded } : {})
    })
  }
  return Object.keys(defined).length === 0
    ? Effect.succeed(plan)
    : Effect.map(
      validate(new PlanFile({ ...plan.file, ...defined }), source, plan.baseDir, plan.config),
      (overridden) => ({ ...overridden, warnings: plan.warnings, declared: plan.declared, agents: plan.agents })
    )
}
