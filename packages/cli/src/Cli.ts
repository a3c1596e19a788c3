/**
 * The `braid` command: `plan`, `prompt`, `run`, `resume`, `retry`, `land`, `runs`, `status`, `doctor`, `report`, `clean`, `init`, `draft`, `mcp`.
 *
 * @since 0.1.0
 */
import type { Prompt, Reviewers } from "@braid/agents"
// The cluster is loaded only by the commands that use it; its error types are named here.
import type * as BraidCluster from "@braid/cluster"
// @braid/core's and @effect/platform's modules by their paths, not the packages' indexes: in the
// bundle an index initialises every module it names, and the command's start needs only these.
import * as Budget from "@braid/core/Budget"
import * as ExecutionPlan from "@braid/core/ExecutionPlan"
import * as GitWorkspace from "@braid/core/GitWorkspace"
import * as Plan from "@braid/core/Plan"
import * as Review from "@braid/core/Review"
import * as RunReport from "@braid/core/RunReport"
import * as Sandbox from "@braid/core/Sandbox"
import * as Terminal from "@braid/core/Terminal"
import * as Timeline from "@braid/core/Timeline"
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, Console, Effect, Layer, Option, ParseResult, Schema } from "effect"
import * as nodePath from "node:path"
import type * as Forecast from "./Forecast.js"
import type * as GitHubHttp from "./GitHubHttp.js"
import * as Help from "./Help.js"
import * as Init from "./Init.js"
import type * as Preflight from "./Preflight.js"
import * as Runs from "./Runs.js"
import type * as Session from "./Session.js"
import type * as Wiring from "./Wiring.js"

/**
 * What only some commands use (the agents, running and continuing a run, preflight, GitHub) is
 * imported by those commands when they run, so `braid runs` and `braid status` start without it:
 * in the bundle, a module imported so is initialised at that import, not at start-up (Bundle.ts).
 */
const lazy = {
  agents: Effect.promise(() => import("@braid/agents")),
  doctor: Effect.promise(() => import("./Doctor.js")),
  draft: Effect.promise(() => import("./Draft.js")),
  forecast: Effect.promise(() => import("./Forecast.js")),
  gitHubHttp: Effect.promise(() => import("./GitHubHttp.js")),
  landing: Effect.promise(() => import("@braid/core/Landing")),
  notify: Effect.promise(() => import("@braid/core/Notify")),
  mcp: Effect.promise(() => import("./Mcp.js")),
  orchestrator: Effect.promise(() => import("@braid/core/Orchestrator")),
  preflight: Effect.promise(() => import("./Preflight.js")),
  progress: Effect.promise(() => import("@braid/core/Progress")),
  session: Effect.promise(() => import("./Session.js")),
  tracing: Effect.promise(() => import("./Tracing.js")),
  wiring: Effect.promise(() => import("./Wiring.js"))
}

const planFile = Args.file({ name: "plan", exists: "either" }).pipe(
  Args.withDescription("The plan file (YAML or JSON) in the seed's shape.")
)
const runIdArg = Args.text({ name: "runId" }).pipe(Args.withDescription("The run's id, as `braid runs` lists it."))

const maxParallel = Options.integer("max-parallel").pipe(
  Options.optional,
  Options.withDescription(Help.describe("max-parallel"))
)
const qualityThreshold = Options.integer("quality-threshold").pipe(
  Options.optional,
  Options.withDescription(Help.describe("quality-threshold"))
)
const conflictStrategy = Options.choice("conflict-strategy", Plan.ConflictStrategy.literals).pipe(
  Options.optional,
  Options.withDescription(Help.describe("conflict-strategy"))
)
const onGateFailure = Options.choice("on-gate-failure", Plan.GateFailurePolicy.literals).pipe(
  Options.optional,
  Options.withDescription(Help.describe("on-gate-failure"))
)
const budget = Options.text("budget").pipe(
  Options.optional,
  Options.withDescription(Help.describe("budget")),
  Options.mapEffect((text) => {
    if (Option.isNone(text)) return Effect.succeed(Option.none<{ readonly usd?: number; readonly tokens?: number }>())
    const amount = Budget.parseAmount(text.value)
    return typeof amount === "string"
      ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--budget: ${amount}`)))
      : Effect.succeed(Option.some<{ readonly usd?: number; readonly tokens?: number }>(amount))
  })
)
const json = Options.boolean("json").pipe(Options.withDescription(Help.describe("json")))
const report = Options.file("report").pipe(
  Options.optional,
  Options.withDescription(Help.describe("report"))
)
const agent = Options.text("agent").pipe(
  Options.optional,
  Options.withDescription(Help.describe("agent")),
  Options.mapEffect((name) =>
    Option.isNone(name) || Help.isBackend(name.value)
      ? Effect.succeed(name)
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`unknown agent "${name.value}" (known: ${Help.BACKENDS.join(", ")})`)))
  )
)
const reviewer = Options.choice("reviewer", Plan.ReviewerKind.literals).pipe(
  Options.optional,
  Options.withDescription(Help.describe("reviewer"))
)
const sandbox = Options.choice("sandbox", Sandbox.Mode.literals).pipe(
  Options.optional,
  Options.withDescription(Help.describe("sandbox"))
)
const workspace = Options.choice("workspace", ["git", "memory"]).pipe(
  Options.withDefault("git" as const),
  Options.withDescription(Help.describe("workspace"))
)
const repo = Options.directory("repo").pipe(
  Options.optional,
  Options.withDescription(Help.describe("repo"))
)
const base = Options.text("base").pipe(Options.optional, Options.withDescription(Help.describe("base")))
const target = Options.text("target").pipe(
  Options.optional,
  Options.withDescription(Help.describe("target"))
)
const noLand = Options.boolean("no-land").pipe(
  Options.withDescription(Help.describe("no-land"))
)
const landMode = Options.choice("land", Help.LAND_MODES).pipe(
  Options.optional,
  Options.withDescription(Help.describe("land"))
)
const remote = Options.text("remote").pipe(Options.optional, Options.withDescription(Help.describe("remote")))
const noGithub = Options.boolean("no-github").pipe(Options.withDescription(Help.describe("no-github")))
const keepWorktrees = Options.boolean("keep-worktrees").pipe(
  Options.withDescription(Help.describe("keep-worktrees"))
)
const worktreesDir = Options.text("worktrees-dir").pipe(
  Options.optional,
  Options.withDescription(Help.describe("worktrees-dir"))
)
const runIdOption = Options.text("run-id").pipe(
  Options.optional,
  Options.withDescription(Help.describe("run-id")),
  Options.mapEffect((id) => {
    const problem = Option.isNone(id) ? undefined : Plan.branchNameProblem(id.value)
    return problem === undefined ? Effect.succeed(id) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--run-id: ${problem}`)))
  })
)
const events = Options.boolean("events").pipe(Options.withDescription(Help.describe("events")))
const quiet = Options.boolean("quiet").pipe(Options.withAlias("q"), Options.withDescription(Help.describe("quiet")))
const verbose = Options.boolean("verbose").pipe(Options.withAlias("v"), Options.withDescription(Help.describe("verbose")))
const database = Options.text("database").pipe(Options.optional, Options.withDescription(Help.describe("database")))

/** The cluster's side of the command line, loaded only by commands that use it. */
const clusterSession = Effect.promise(() => import("./ClusterSession.js"))
const otlp = Options.text("otlp").pipe(Options.optional, Options.withDescription(Help.describe("otlp")))

/**
 * A command that runs a run, its trace exported to the OTLP/HTTP collector `--otlp` names (else
 * `OTEL_EXPORTER_OTLP_ENDPOINT`); without one, the command as it is: the exporter is not loaded.
 * The exporter's layer closes when the command ends, sending the spans not yet sent.
 */
const traced = (url: Option.Option<string>) => <A, E, R>(command: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const endpoint = Option.isSome(url) && url.value.trim() !== ""
      ? url
      : yield* Config.string("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
        Config.option,
        Effect.map(Option.filter((u) => u.trim() !== "")),
        Effect.orElseSucceed(() => Option.none<string>())
      )
    if (Option.isNone(endpoint)) return yield* command
    const Tracing = yield* lazy.tracing
    return yield* Effect.provide(command, Tracing.layer(endpoint.value))
  })

const planFromDisk = Options.boolean("plan-from-disk").pipe(
  Options.withDescription(Help.describe("plan-from-disk"))
)

/** The plan settings `run` and `submit` take from their options. */
const overridesOf = (args: {
  readonly maxParallel: Option.Option<number>
  readonly qualityThreshold: Option.Option<number>
  readonly conflictStrategy: Option.Option<Plan.ConflictStrategy>
  readonly onGateFailure: Option.Option<Plan.GateFailurePolicy>
  readonly budget: Option.Option<{ readonly usd?: number; readonly tokens?: number }>
  readonly sandbox?: Option.Option<Sandbox.Mode>
}) => ({
  maxParallel: Option.getOrUndefined(args.maxParallel),
  qualityThreshold: Option.getOrUndefined(args.qualityThreshold),
  conflictStrategy: Option.getOrUndefined(args.conflictStrategy),
  onGateFailure: Option.getOrUndefined(args.onGateFailure),
  budget: Option.getOrUndefined(args.budget),
  sandbox: args.sandbox === undefined ? undefined : Option.getOrUndefined(args.sandbox)
})

const loadPlan = (path: string, overrides: Plan.Overrides) =>
  Plan.load(path).pipe(
    Effect.flatMap((plan) => Plan.override(plan, overrides, "command-line options")),
    // Unknown fields that are not misspellings are ignored, but never silently.
    Effect.tap((plan) =>
      Effect.forEach(plan.warnings, (w) => Console.error(Terminal.safeLine(`braid: warning: ${path}: ${w.path}: ${w.message}`)), { discard: true })
    )
  )

/** Prints preflight's problems and warnings on stderr, one line each. */
const printFindings = (planPath: string, result: Preflight.Result) =>
  Effect.gen(function*() {
    // Findings quote the plan's names: printed one line each, with no control character a terminal would act on.
    for (const w of result.warnings) yield* Console.error(Terminal.safeLine(`braid: warning: ${planPath}: ${w.path}: ${w.message}`))
    if (result.problems.length > 0) {
      yield* Console.error(
        `braid: ${Terminal.safeLine(planPath)}: braid run would refuse to start (${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}):\n${
          result.problems.map((p) => Terminal.safeLine(`  - ${p.path}: ${p.message}`)).join("\n")
        }`
      )
    }
  })

/**
 * The conflict forecast on stderr, after the warnings, in a part of its own: each collision on
 * one line, its fix on the next. Nothing when no two streams collide.
 */
const printForecast = (planPath: string, collisions: ReadonlyArray<Forecast.Collision>) =>
  collisions.length === 0 ? Effect.void : Console.error(
    [
      Terminal.safeLine(`braid: ${planPath}: conflict forecast: ${collisions.length} collision${collisions.length === 1 ? "" : "s"} between streams that run side by side:`),
      ...collisions.flatMap((c) => [Terminal.safeLine(`  - ${c.kind}: ${c.message}`), Terminal.safeLine(`    fix: ${c.fix}`)])
    ].join("\n")
  )

const planCommand = Command.make(
  "plan",
  { plan: planFile, maxParallel, qualityThreshold, sandbox, json, agent, reviewer, workspace, repo, base, target, noLand, landMode, remote, noGithub, report },
  (args) =>
    Effect.gen(function*() {
      const Preflight = yield* lazy.preflight
      const Forecast = yield* lazy.forecast
      const GitHubHttp = yield* lazy.gitHubHttp
      const Notify = yield* lazy.notify
      const { Reviewers } = yield* lazy.agents
      const plan = yield* loadPlan(args.plan, {
        maxParallel: Option.getOrUndefined(args.maxParallel),
        qualityThreshold: Option.getOrUndefined(args.qualityThreshold),
        sandbox: Option.getOrUndefined(args.sandbox)
      })
      const execution = ExecutionPlan.make(plan)
      const agentName = Option.getOrUndefined(args.agent)
      const result = yield* Preflight.check(plan, {
        agent: agentName,
        reviewer: Option.getOrUndefined(args.reviewer),
        workspace: args.workspace,
        repo: Option.getOrUndefined(args.repo),
        base: Option.getOrUndefined(args.base),
        target: Option.getOrUndefined(args.target),
        land: !args.noLand,
        report: Option.getOrUndefined(args.report),
        landMode: Option.getOrUndefined(args.landMode),
        remote: Option.getOrUndefined(args.remote),
        noGithub: args.noGithub
      })
      // The repository preflight found, else the folder the run would look in.
      const collisions = yield* Forecast.forecast(plan, result.repository ?? Option.getOrElse(args.repo, () => process.cwd()))
      const landing = args.noLand ? "none (--no-land)" : `${Option.getOrElse(args.landMode, () => "local" as const)}${
        Option.getOrElse(args.landMode, () => "local") === "local" ? "" : ` to ${Option.getOrElse(args.remote, () => "origin")}`
      }`
      const backendOf = (stream: Plan.PlannedStream) => Preflight.backendOf(plan, stream, agentName)
      const confinement = yield* Sandbox.decide(plan.sandbox.mode).pipe(
        Effect.catchTag("SandboxUnavailable", (e) => Effect.succeed<Sandbox.Decision>({ _tag: "Unconfined", reason: e.reason }))
      )
      const reach = (stream: Plan.PlannedStream) => [...plan.sandbox.network, ...(stream.network ?? [])].map((e) => `${e.host}:${e.port}`)
      // The desktop's notifier says whether it shows anything here (never under CI, or without a display).
      const desktop = Notify.desktopArgv("braid", "", process.platform, process.env)
      const notifiers = plan.notify.map((n) => ({
        name: n.name,
        kind: n._tag === "Command" ? "command" as const : "desktop" as const,
        command: n._tag === "Command" ? [...n.argv] : null,
        on: n.on,
        timeoutSeconds: n.timeoutMs / 1000,
        off: n._tag === "Desktop" && desktop._tag === "None" ? desktop.reason : null
      }))
      if (args.json) {
        yield* Console.log(JSON.stringify(
          {
            projectName: plan.projectName,
            featureName: plan.featureName,
            qualityThreshold: plan.qualityThreshold,
            maxParallel: plan.maxParallel,
            // In dependency order; dispatch has no barriers between them.
            streams: Preflight.streamsOf(plan, execution, agentName).map(({ tasks, waitsOn, ...summary }) => {
              const stream = Plan.streamNamed(plan, summary.name)!
              return {
                ...summary,
                priority: stream.rank,
                reviewer: Reviewers.reviewOf(plan, stream, { reviewer: Option.getOrUndefined(args.reviewer) }).kind,
                confined: confinement._tag === "Confined",
                reachable: reach(stream),
                environment: environmentOf(stream),
                waitsOn,
                tasks
              }
            }),
            verify: plan.verify.map((v) => v.name),
            integrationOrder: execution.integrationOrder,
            // The chain's weight (effort points when tasks give an effort) and how many tasks it holds.
            criticalPathLength: execution.criticalPathLength,
            criticalPathTasks: execution.criticalPathTasks,
            repository: result.repository ?? null,
            landing,
            notify: notifiers,
            sandbox: { mode: plan.sandbox.mode ?? "auto", confined: confinement._tag === "Confined", reason: confinement._tag === "Confined" ? null : confinement.reason },
            github: result.github._tag === "On"
              ? { sync: true, repo: result.github.repo, apiUrl: result.github.apiUrl, reason: null }
              : { sync: false, repo: plan.githubRepo ?? null, apiUrl: null, reason: result.github.reason },
            ready: result.problems.length === 0,
            problems: result.problems,
            warnings: [...plan.warnings, ...result.warnings],
            forecast: collisions
          },
          null,
          2
        ))
      } else {
        yield* Console.log(ExecutionPlan.render(plan, execution, { backendOf }))
        yield* Console.log(`landing: ${landing}`)
        if (confinement._tag === "Confined") {
          yield* Console.log("confinement: bubblewrap — every process a stream starts writes only its checkout and reads the rest (no home, no .braid):")
          for (const stream of plan.streams) {
            const backend = backendOf(stream)
            const extra = reach(stream)
            const agent = TOOL_BACKENDS.has(backend) ? `its ${backend} agent also writes its own home and reaches its model API` : `its ${backend} agent reaches no model API of its own`
            yield* Console.log(`  ${stream.name}: ${agent}; ${extra.length > 0 ? `every process reaches ${extra.join(", ")}` : "checks and scripts reach nothing"}`)
          }
        } else {
          yield* Console.log(`confinement: none — ${confinement.reason}${plan.sandbox.mode === "off" ? "" : "; processes run unconfined, only the after-the-fact checks guard the repository"}`)
        }
        const described = plan.streams.map((s) => [s.name, describeEnvironment(s.environment ?? plan.environment, s)] as const)
        if (described.some(([, d]) => d !== undefined) || describeEnvironment(plan.environment) !== undefined) {
          yield* Console.log("environments: each checkout is made ready before any agent or check runs there:")
          for (const [name, d] of described) yield* Console.log(`  ${name}: ${d ?? "as checked out"}`)
          yield* Console.log(`  integration (before verify): ${describeEnvironment(plan.environment) ?? "as checked out"}`)
        }
        yield* Console.log(GitHubHttp.describe(result.github))
        for (const n of notifiers) {
          const on = n.on.length === Plan.NotifyEvent.literals.length ? "every event" : n.on.join(", ")
          yield* Console.log(
            `notify: ${Terminal.safeLine(n.name)} on ${on}${n.kind === "command" ? ` (within ${n.timeoutSeconds} s)` : ""}${n.off !== null ? ` — off here: ${n.off}` : ""}`
          )
        }
      }
      yield* printFindings(args.plan, result)
      yield* printForecast(args.plan, collisions)
      if (result.problems.length > 0) yield* Effect.sync(() => void (process.exitCode = 2))
    })
).pipe(Command.withDescription(
  "Check a plan as braid run would before starting (agents, scripts, repository, --report folder) and print its streams, agents, checks and order. Exit 2 when run would refuse."
))

/** A stream's environment as `braid plan --json` shows it. */
const environmentOf = (stream: Plan.PlannedStream) => {
  const e = stream.environment
  return e === undefined || (!Plan.hasEnvironment(e) && e.sparse === undefined) ? null : {
    setup: e.setup.map((c) => c.argv.join(" ")),
    teardown: e.teardown.map((c) => c.argv.join(" ")),
    copy: e.copy,
    share: e.share.map((s) => ({ path: s.path, key: s.key, build: s.build?.argv.join(" ") ?? null })),
    ports: e.ports,
    sparse: e.sparse ?? null
  }
}

/** An environment in one line, or undefined when it does nothing. */
const describeEnvironment = (e: Plan.Environment, stream?: Plan.PlannedStream): string | undefined => {
  const sparse = stream === undefined ? undefined : Plan.sparseOf(stream)
  if (!Plan.hasEnvironment(e) && sparse === undefined) return undefined
  return [
    sparse !== undefined ? `sparse: ${sparse.join(", ")} (and the files at the top)` : undefined,
    e.copy.length > 0 ? `copies ${e.copy.join(", ")}` : undefined,
    ...e.share.map((s) => `shares ${s.path} (key ${s.key.join(", ")}${s.build !== undefined ? `; built by ${s.build.argv.join(" ")}` : ""})`),
    e.ports > 0 ? `${e.ports} ports (BRAID_PORT, BRAID_PORTS)` : undefined,
    e.setup.length > 0 ? `setup: ${e.setup.map((c) => c.argv.join(" ")).join("; ")}` : undefined,
    e.teardown.length > 0 ? `teardown: ${e.teardown.map((c) => c.argv.join(" ")).join("; ")}` : undefined
  ].filter((x) => x !== undefined).join(" · ")
}

/** The backends that run a coding tool talking to a model API (confined, it gets its home and that API; see each backend's allowance). */
const TOOL_BACKENDS: ReadonlySet<string> = new Set(["claude-code", "codex", "gemini", "aider"])

/** An output path (`--report`) whose folder does not exist: found before the run starts. */
export class OutputPathMissing extends Schema.TaggedError<OutputPathMissing>()("OutputPathMissing", {
  option: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `${this.option}: ${this.problem}`
  }
}

/** `--land push|pr` cannot work with these options (no git remote, GitHub sync off). */
export class LandModeUnavailable extends Schema.TaggedError<LandModeUnavailable>()("LandModeUnavailable", {
  mode: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `--land ${this.mode}: ${this.reason}`
  }
}

/** The plan has no task with the id asked for. */
export class UnknownTask extends Schema.TaggedError<UnknownTask>()("UnknownTask", {
  taskId: Schema.String,
  plan: Schema.String,
  /** The plan's ids closest to the one asked for (or its first ids when none is close). */
  close: Schema.Array(Schema.String),
  closeFound: Schema.Boolean
}) {
  override get message(): string {
    return `${this.plan}: no task "${this.taskId}"; ${this.closeFound ? "did you mean" : "its tasks include"}: ${this.close.join(", ")}`
  }
}

/** A `--feedback` file that is not a review `{score, issues, suggestions}`. */
export class InvalidFeedback extends Schema.TaggedError<InvalidFeedback>()("InvalidFeedback", {
  file: Schema.String,
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    const [only] = this.problems
    if (this.problems.length === 1 && only!.path === "") return `${this.file}: ${only!.message}`
    return `${this.file}: not a review {score, issues, suggestions}:\n${
      this.problems.map((p) => `  - ${p.path === "" ? "" : `${p.path}: `}${p.message}`).join("\n")
    }`
  }
}

/** Edit distance, for suggesting the task id meant. */
const distance = (a: string, b: string): number => {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    }
    row = next
  }
  return row[b.length]!
}

/** The ids closest to `id`: a few edits away, or containing it. */
export const closeIds = (id: string, known: ReadonlyArray<string>): Array<string> =>
  known
    .map((k) => ({ k, d: distance(id.toLowerCase(), k.toLowerCase()) }))
    .filter(({ d, k }) => d <= Math.max(2, Math.floor(id.length / 3)) || k.toLowerCase().includes(id.toLowerCase()))
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, 5)
    .map(({ k }) => k)

const decodeReview = Schema.decodeUnknownEither(Review.Review, { errors: "all", onExcessProperty: "ignore" })

/** Reads a review from a JSON file, naming the file and every field that is wrong. */
const readFeedback = (file: string) =>
  Effect.gen(function*() {
    const invalid = (path: string, message: string) => new InvalidFeedback({ file, problems: [{ path, message }] })
    const text = yield* (yield* FileSystem.FileSystem).readFileString(file).pipe(
      Effect.mapError((e) => invalid("", e._tag === "SystemError" && e.reason === "NotFound" ? "no such feedback file" : `cannot read the feedback file (${e.message})`))
    )
    const json = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => invalid("", `the feedback file is not JSON (${(e as Error).message})`) })
    const review = decodeReview(json)
    if (review._tag === "Right") return review.right
    return yield* new InvalidFeedback({
      file,
      problems: ParseResult.ArrayFormatter.formatErrorSync(review.left).map((issue) => ({
        path: issue.path.map((p, i) => typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`).join(""),
        message: issue.message
      }))
    })
  })

const attemptNumber = Options.integer("attempt").pipe(
  Options.optional,
  Options.withDescription(Help.describe("attempt")),
  Options.mapEffect((n) =>
    Effect.flatMap(lazy.agents, ({ Prompt }) =>
      Option.isNone(n) || (n.value >= 1 && n.value <= Prompt.MAX_ATTEMPTS)
        ? Effect.succeed(n)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--attempt must be 1, 2 or 3, got ${n.value}`))))
  )
)
const feedbackFile = Options.file("feedback").pipe(
  Options.optional,
  Options.withDescription("A review as JSON, {score, issues, suggestions}, that the retry is answering.")
)
const note = Options.text("note").pipe(
  Options.optional,
  Options.withDescription(Help.describe("note"))
)

const promptCommand = Command.make(
  "prompt",
  { plan: planFile, taskId: Args.text({ name: "taskId" }).pipe(Args.withDescription("The task whose prompt to show.")), attempt: attemptNumber, feedback: feedbackFile, note },
  (args) =>
    Effect.gen(function*() {
      const { Prompt } = yield* lazy.agents
      const plan = yield* Plan.load(args.plan)
      const feedback = Option.isSome(args.feedback) ? yield* readFeedback(args.feedback.value) : undefined
      const attempt = Option.getOrElse(args.attempt, () => feedback !== undefined ? 2 : 1)
      if (attempt === 1 && feedback !== undefined) {
        return yield* new InvalidFeedback({
          file: args.feedback.pipe(Option.getOrElse(() => "--feedback")),
          problems: [{ path: "", message: "--feedback is the review a retry answers: use it with --attempt 2 or 3, not 1" }]
        })
      }
      const request = Prompt.preview(plan, args.taskId, { attempt, feedback, userNote: Option.getOrUndefined(args.note) })
      if (request === undefined) {
        const known = [...plan.tasks.keys()]
        const close = closeIds(args.taskId, known)
        return yield* new UnknownTask({
          taskId: args.taskId,
          plan: args.plan,
          close: close.length > 0 ? close : known.slice(0, 10),
          closeFound: close.length > 0
        })
      }
      // The same prompts the backends build: templates read once, then filled for the attempt.
      const prompts = yield* Prompt.make(plan)
      const text = prompts.forAttempt(request)
      if (text._tag === "Left") return yield* text.left
      yield* Effect.sync(() => process.stdout.write(text.right))
    })
).pipe(Command.withDescription(
  "Print exactly what a task's agent would be told on an attempt (earlier tasks shown as not yet run)."
))

/** Exit code of a finished run: 0 success, 1 something failed or needs review. */
export const exitCodeOf = (report: RunReport.RunReport): number => report.success ? 0 : 1

/** Prints a finished run the way `--json` and `--report` ask, and sets the exit code. */
const finish = (
  result: RunReport.RunReport,
  output: { readonly json: boolean; readonly report: Option.Option<string>; readonly quiet?: boolean; readonly events?: boolean }
) =>
  Effect.gen(function*() {
    let written = Option.getOrUndefined(output.report)
    if (written !== undefined) {
      const file = written
      const fs = yield* FileSystem.FileSystem
      const tmp = `${file}.tmp-${process.pid}`
      // Written whole then renamed, so a reader never sees half a report. A failure here
      // says so and keeps the run's exit code: a landed run stays landed (exit 0).
      yield* fs.writeFileString(tmp, RunReport.toMarkdown(result)).pipe(
        Effect.zipRight(fs.rename(tmp, file)),
        Effect.catchAll((e) =>
          Effect.zipRight(
            fs.remove(tmp).pipe(Effect.ignore),
            Effect.sync(() => {
              written = undefined
              process.stderr.write(`braid: warning: could not write the report to ${file}: ${e.message}\n`)
            })
          )
        )
      )
    }
    const Session = yield* lazy.session
    if (output.json) yield* Console.log(JSON.stringify(RunReport.encode(result), null, 2))
    // The board's last frame has the summary already: only what to do next is added.
    else yield* Console.error(summaryLine(result, written, output.quiet !== true && Session.boardOn() && !(output.events === true && process.stdout.isTTY === true)))
    yield* Effect.sync(() => {
      process.exitCode = exitCodeOf(result)
    })
  })

/** How a run's progress is shown; `--events` and `--json` both want stdout, so they are refused together. */
const displayOf = (args: { readonly quiet: boolean; readonly verbose: boolean; readonly events: boolean; readonly json: boolean }) =>
  args.events && args.json
    ? Effect.fail(new OutputPathMissing({ option: "--events", problem: "--events and --json both write to stdout: choose one" }))
    : args.quiet && args.verbose
    ? Effect.fail(new OutputPathMissing({ option: "--verbose", problem: "--quiet and --verbose contradict each other: choose one" }))
    : Effect.succeed({ quiet: args.quiet, verbose: args.verbose, events: args.events } satisfies Session.Display)

const runCommand = Command.make(
  "run",
  {
    plan: planFile,
    maxParallel,
    qualityThreshold,
    conflictStrategy,
    onGateFailure,
    json,
    events,
    report,
    agent,
    reviewer,
    workspace,
    repo,
    base,
    target,
    noLand,
    landMode,
    remote,
    noGithub,
    keepWorktrees,
    worktreesDir,
    budget,
    sandbox,
    quiet,
    verbose,
    otlp,
    runId: runIdOption
  },
  (args) =>
    Effect.gen(function*() {
      const Preflight = yield* lazy.preflight
      const Session = yield* lazy.session
      const GitHubHttp = yield* lazy.gitHubHttp
      const Wiring = yield* lazy.wiring
      const Landing = yield* lazy.landing
      const Orchestrator = yield* lazy.orchestrator
      const Progress = yield* lazy.progress
      const overrides = overridesOf(args)
      const plan = yield* loadPlan(args.plan, overrides)
      // Output paths are checked before anything starts, not after the run.
      const unwritable = Preflight.reportProblem(Option.getOrUndefined(args.report))
      if (unwritable !== undefined) return yield* new OutputPathMissing({ option: unwritable.path, problem: unwritable.message })
      const options: Session.StoredOptions = {
        workspace: args.workspace,
        land: !args.noLand,
        keepWorktrees: args.keepWorktrees,
        ...defined({
          agent: Option.getOrUndefined(args.agent),
          reviewer: Option.getOrUndefined(args.reviewer),
          repo: Option.getOrUndefined(args.repo),
          base: Option.getOrUndefined(args.base),
          target: Option.getOrUndefined(args.target),
          landMode: Option.getOrUndefined(args.landMode),
          remote: Option.getOrUndefined(args.remote),
          noGithub: args.noGithub ? true : undefined,
          // Relative to where the command runs, as a path on the command line reads.
          worktreesDir: Option.getOrUndefined(Option.map(args.worktreesDir, (dir) => nodePath.resolve(dir))),
          ...overrides
        })
      }
      if (!args.noLand && Option.isSome(args.landMode) && args.landMode.value !== "local") {
        if (args.workspace === "memory") {
          return yield* new LandModeUnavailable({ mode: args.landMode.value, reason: "it pushes to a git remote, and the memory workspace has none" })
        }
        const github = yield* GitHubHttp.settings(plan, { noGithub: args.noGithub })
        if (Landing.modeNamed(args.landMode.value).needsGitHub && github._tag === "Off") {
          return yield* new LandModeUnavailable({ mode: args.landMode.value, reason: `it opens a pull request on githubRepo, but GitHub sync is off: ${github.reason}` })
        }
      }
      const display = yield* displayOf(args)
      const result = args.workspace === "git"
        ? yield* Session.start({
          plan,
          planPath: args.plan,
          planText: yield* (yield* FileSystem.FileSystem).readFileString(args.plan),
          options,
          display,
          runId: Option.getOrUndefined(args.runId)
        })
        : yield* Orchestrator.run(plan, { land: options.land, keepWorktrees: options.keepWorktrees }).pipe(
          Effect.provide(Wiring.layer(plan, {
            workspace: "memory",
            agent: options.agent,
            reviewer: options.reviewer,
            repo: undefined,
            base: undefined,
            target: undefined
          })),
          (run) => {
            const render = Session.renderer(display, { plan, agent: options.agent })
            return run.pipe(Effect.provide(Layer.succeed(Progress.Progress, render.service)), Effect.ensuring(Effect.sync(render.close)))
          }
        )
      yield* finish(result, args)
    }).pipe(traced(args.otlp))
).pipe(Command.withDescription("Run a plan: dispatch the streams, gate every task, resolve conflicts, verify, land."))

const defined = <T extends Record<string, unknown>>(record: T): { [K in keyof T]?: Exclude<T[K], undefined> } =>
  Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as never

const resumeCommand = Command.make(
  "resume",
  { runId: Args.optional(runIdArg), repo, database, budget, planFromDisk, json, events, report, quiet, verbose, otlp },
  (args) =>
    Effect.gen(function*() {
      const db = yield* Runs.clusterOf(args)
      if (db !== undefined) {
        const cluster = yield* clusterSession
        return yield* finish(yield* cluster.resume({ database: db, runId: Option.getOrUndefined(args.runId), display: yield* displayOf(args) }), args)
      }
      const Session = yield* lazy.session
      const result = yield* Session.resume({
        repo: Option.getOrUndefined(args.repo),
        runId: Option.getOrUndefined(args.runId),
        budget: Option.getOrUndefined(args.budget),
        planFromDisk: args.planFromDisk,
        display: yield* displayOf(args)
      })
      yield* finish(result, args)
    }).pipe(traced(args.otlp))
).pipe(Command.withDescription(
  "Continue a run from its journal (default: the latest run): after a crash or Ctrl-C, after you resolved a conflict or committed a fix in the integration worktree."
))

const retryTasks = Options.text("task").pipe(
  Options.repeated,
  Options.withDescription(Help.describe("task"))
)
const retryFeedback = Options.text("feedback").pipe(
  Options.optional,
  Options.withDescription("A note added to the retried tasks' feedback.")
)
const retryFeedbackFile = Options.file("feedback-file", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription(Help.describe("feedback-file"))
)

/** `--feedback` and `--feedback-file` name the same note twice. */
export class FeedbackTwice extends Schema.TaggedError<FeedbackTwice>()("FeedbackTwice", {}) {
  override get message(): string {
    return "give the note with --feedback or --feedback-file, not both"
  }
}

const retryCommand = Command.make(
  "retry",
  { runId: Args.optional(runIdArg), task: retryTasks, feedback: retryFeedback, feedbackFile: retryFeedbackFile, repo, database, planFromDisk, json, events, report, quiet, verbose, otlp },
  (args) =>
    Effect.gen(function*() {
      if (Option.isSome(args.feedback) && Option.isSome(args.feedbackFile)) return yield* new FeedbackTwice()
      const Session = yield* lazy.session
      const note = Option.isSome(args.feedbackFile)
        ? yield* (yield* FileSystem.FileSystem).readFileString(args.feedbackFile.value)
        : Option.getOrUndefined(args.feedback)
      const db = yield* Runs.clusterOf(args)
      if (db !== undefined) {
        const cluster = yield* clusterSession
        const tasks = args.task
        return yield* finish(
          yield* cluster.retry({ database: db, runId: Option.getOrUndefined(args.runId), tasks, note: note?.trim() === "" ? undefined : note?.trim(), display: yield* displayOf(args) }),
          args
        )
      }
      const result = yield* Session.retry({
        repo: Option.getOrUndefined(args.repo),
        runId: Option.getOrUndefined(args.runId),
        tasks: args.task,
        note: note?.trim() === "" ? undefined : note?.trim(),
        planFromDisk: args.planFromDisk,
        display: yield* displayOf(args)
      })
      yield* finish(result, args)
    }).pipe(traced(args.otlp))
).pipe(Command.withDescription(
  "Run a run's failed and needs-review tasks again (default: all; the latest run), with your note in their feedback; settled tasks keep their commits; then integrate, verify and land."
))

const landCommand = Command.make(
  "land",
  { runId: Args.optional(runIdArg), repo, database, planFromDisk, json, events, report, quiet, verbose, otlp },
  (args) =>
    Effect.gen(function*() {
      const db = yield* Runs.clusterOf(args)
      if (db !== undefined) {
        const cluster = yield* clusterSession
        return yield* finish(yield* cluster.land({ database: db, runId: Option.getOrUndefined(args.runId), display: yield* displayOf(args) }), args)
      }
      const Session = yield* lazy.session
      const result = yield* Session.land({
        repo: Option.getOrUndefined(args.repo),
        runId: Option.getOrUndefined(args.runId),
        planFromDisk: args.planFromDisk,
        display: yield* displayOf(args)
      })
      yield* finish(result, args)
    }).pipe(traced(args.otlp))
).pipe(Command.withDescription(
  "Land a verified run later (default: the latest run): a --no-land run, or one whose landing was refused; a target that moved is merged in and verified first."
))

const runsCommand = Command.make("runs", { repo, database, json }, Runs.list).pipe(
  Command.withDescription("List the runs recorded in a repository.")
)

const statusCommand = Command.make("status", { runId: Args.optional(runIdArg), repo, database, json }, Runs.status).pipe(
  Command.withDescription("Show a run's streams and tasks, why each task failed, needs review (what its last review found) or was skipped, and the command that continues it (default: the latest run).")
)

const doctorCommand = Command.make(
  "doctor",
  {
    runId: Args.optional(Args.text({ name: "runId" }).pipe(Args.withDescription("The run's id, as braid runs lists it (default: every run)."))),
    repo,
    repair: Options.boolean("repair").pipe(Options.withDescription(Help.describe("repair")))
  },
  (args) => Effect.flatMap(lazy.doctor, (Doctor) => Doctor.doctor(args))
).pipe(Command.withDescription(
  "Check runs' records for damage (a journal line that is not a record, a missing file, a failed write's leftovers) and say what a repair does; --repair does it."
))

/** The run has not finished, so it has no report yet (or it finished, but its report could not be written). */
export class NoReportYet extends Schema.TaggedError<NoReportYet>()("NoReportYet", { runId: Schema.String, finished: Schema.optional(Schema.Boolean) }) {
  override get message(): string {
    return this.finished === true
      ? `run ${this.runId} finished, but its report was not kept (writing it failed when the run ended); braid status ${this.runId} shows the run`
      : `run ${this.runId} has not finished, so it has no report yet (see: braid status ${this.runId})`
  }
}

const mdFile = Options.file("md").pipe(Options.optional, Options.withDescription(Help.describe("md")))
const jsonFile = Options.file("json").pipe(
  Options.optional,
  Options.withDescription("Write the report as JSON (the RunReport Schema's encoding) to this file; - for stdout.")
)
const htmlFile = Options.file("html").pipe(Options.optional, Options.withDescription(Help.describe("html")))
const mdAlias = Options.file("report").pipe(Options.optional, Options.withDescription("The same as --md."))

/** Writes a file whole (a temporary file renamed), or to stdout for `-`. */
const writeOutput = (file: string, text: string) =>
  Effect.gen(function*() {
    if (file === "-") return yield* Effect.sync(() => void process.stdout.write(text))
    const fs = yield* FileSystem.FileSystem
    const tmp = `${file}.tmp-${process.pid}`
    yield* fs.writeFileString(tmp, text).pipe(
      Effect.zipRight(fs.rename(tmp, file)),
      Effect.catchAll((e) =>
        Effect.zipRight(fs.remove(tmp).pipe(Effect.ignore), Effect.fail(new OutputPathMissing({ option: file, problem: `cannot write it (${e.message})` })))
      )
    )
  })

const reportCommand = Command.make("report", { runId: runIdArg, repo, database, md: mdFile, json: jsonFile, html: htmlFile, report: mdAlias }, (args) =>
  Runs.withRuns(args, (store) => Effect.gen(function*() {
    const stored = yield* store.load(args.runId)
    const text = yield* store.loadReport(args.runId)
    if (text === undefined) return yield* new NoReportYet({ runId: args.runId, finished: stored.records.some((r) => r.key === "run/finished") })
    const decoded = yield* RunReport.decode(JSON.parse(text))
    const md = Option.orElse(args.md, () => args.report)
    const Preflight = yield* lazy.preflight
    // Every output's folder is checked before anything is written.
    for (const [option, file] of [["--md", md], ["--json", args.json], ["--html", args.html]] as const) {
      if (Option.isNone(file) || file.value === "-") continue
      const problem = Preflight.reportProblem(file.value)
      if (problem !== undefined) return yield* new OutputPathMissing({ option, problem: `${file.value}: ${problem.message}` })
    }
    const none = Option.isNone(md) && Option.isNone(args.json) && Option.isNone(args.html)
    if (none || Option.isSome(md)) yield* writeOutput(Option.getOrElse(md, () => "-"), RunReport.toMarkdown(decoded))
    if (Option.isSome(args.json)) yield* writeOutput(args.json.value, `${JSON.stringify(RunReport.encode(decoded), null, 2)}\n`)
    if (Option.isSome(args.html)) {
      const plan = yield* Plan.parse(stored.planText, stored.manifest.planSource, stored.manifest.planBaseDir)
      const model = Timeline.fromJournal(stored.records, { streams: plan.streams.map((st) => st.name), dependsOn: plan.dependsOn })
      yield* writeOutput(args.html.value, Timeline.toHtml(model, decoded))
    }
    yield* Effect.sync(() => {
      process.exitCode = exitCodeOf(decoded)
    })
  }))).pipe(Command.withDescription("Render a finished run's report: Markdown (stdout or --md), JSON (--json), an HTML timeline (--html)."))

/** The run is still active. */
export class RunActive extends Schema.TaggedError<RunActive>()("RunActive", { runId: Schema.String }) {
  override get message(): string {
    return `run ${this.runId} is still running; stop it first (Ctrl-C in its terminal)`
  }
}

const cacheOption = Options.boolean("cache").pipe(Options.withDescription(Help.describe("cache")))

/** `braid clean` names neither a run nor `--cache`. */
export class NothingToClean extends Schema.TaggedError<NothingToClean>()("NothingToClean", {}) {
  override get message(): string {
    return "name the run to remove (braid clean <runId>; braid runs lists them), or empty the shared folders' cache with braid clean --cache"
  }
}

const cleanCommand = Command.make("clean", { runId: Args.optional(runIdArg), repo, cache: cacheOption }, (args) =>
  Effect.gen(function*() {
    if (args.cache) {
      const Environment = yield* Effect.promise(() => import("@braid/core/Environment"))
      const root = Environment.cacheRoot()
      const freed = yield* Environment.clearCache(root)
      yield* Console.log(`emptied the shared folders' cache ${root}: ${(freed / 1024 / 1024).toFixed(1)} MB freed`)
    }
    if (Option.isNone(args.runId)) {
      if (!args.cache) return yield* new NothingToClean()
      return
    }
    const runId = args.runId.value
    yield* cleanRun({ runId, repo: args.repo })
  })).pipe(Command.withDescription("Remove a run's worktrees, branches and record (never the landed target); --cache empties the shared folders' cache."))

const cleanRun = (args: { readonly runId: string; readonly repo: Option.Option<string> }) =>
  Effect.gen(function*() {
    const { store, top } = yield* Runs.storeFor(Option.getOrElse(args.repo, () => process.cwd()))
    // A damaged record is cleaned too: only a run that is not there is refused.
    yield* store.load(args.runId).pipe(Effect.catchIf((e) => e._tag !== "RunNotFound", () => Effect.void))
    if (yield* store.isLocked(args.runId)) return yield* new RunActive({ runId: args.runId })
    const cleaned = yield* GitWorkspace.cleanRun({ repo: top, runId: args.runId })
    yield* store.remove(args.runId)
    yield* Console.log(
      `removed run ${args.runId}: ${cleaned.worktrees.length} worktree(s), ${cleaned.branches.length} branch(es)${
        cleaned.branches.length > 0 ? ` (${cleaned.branches.join(", ")})` : ""
      }`
    )
  })

const summaryLine = (report: RunReport.RunReport, reportFile: string | undefined, boardShown = false) => {
  const s = report.summary
  const u = report.usage
  const lines = [
    ...(boardShown ? [] : [
      "",
      `${report.status.toUpperCase()}: ${s.completedTasks}/${s.totalTasks} tasks completed, ${s.needsReviewTasks} need review, ${s.failedTasks} failed, ${s.skippedTasks} skipped; ` +
      `${report.conflictReport.conflicts.length} conflict(s); verification ${report.integrationResult.ran ? (report.integrationResult.passed ? "passed" : "failed") : "not run"}; ` +
      (report.mergeResult.landed ? `landed ${report.mergeResult.commit?.slice(0, 10)} on ${report.mergeResult.target}${report.mergeResult.remote !== undefined ? ` of ${report.mergeResult.remote}` : ""}` : `not landed (${report.mergeResult.reason ?? "?"})`) +
      `; ${u.inputTokens + u.outputTokens} tokens, $${u.costUsd.toFixed(4)}`
    ]),
    ...(report.mergeResult.pullRequest !== undefined ? [`pull request: ${report.mergeResult.pullRequest.url}`] : []),
    ...(report.github?.warnings ?? []).map((w) => `  github warning: ${w}`),
    ...report.nextSteps.map((step) => `  next: ${step}`)
  ]
  if (reportFile !== undefined) lines.push(`report: ${reportFile}`)
  return lines.join("\n")
}

const runnerCommand = Command.make(
  "runner",
  {
    database,
    group: Options.text("group").pipe(Options.withDefault("default"), Options.withDescription(Help.describe("group"))),
    slots: Options.integer("slots").pipe(Options.withDefault(2), Options.withDescription(Help.describe("slots"))),
    workdir: Options.text("workdir").pipe(Options.optional, Options.withDescription(Help.describe("workdir"))),
    address: Options.text("address").pipe(Options.optional, Options.withDescription(Help.describe("address"))),
    name: Options.text("name").pipe(Options.optional, Options.withDescription(Help.describe("name")))
  },
  (args) =>
    Effect.gen(function*() {
      const { Database } = yield* Effect.promise(() => import("@braid/cluster"))
      const db = yield* Database.resolve(Option.getOrUndefined(args.database))
      if (args.slots < 1) return yield* new OutputPathMissing({ option: "--slots", problem: `expected at least 1, got ${args.slots}` })
      const address = Option.getOrUndefined(args.address)
      const parsed = address === undefined ? undefined : /^(.+?)(?::(\d+))?$/.exec(address)
      if (address !== undefined && (parsed === null || parsed === undefined)) {
        return yield* new OutputPathMissing({ option: "--address", problem: `expected host:port, got ${address}` })
      }
      const cluster = yield* clusterSession
      return yield* cluster.runner({
        database: db,
        group: args.group,
        slots: args.slots,
        workdir: Option.getOrUndefined(args.workdir),
        address: parsed === undefined || parsed === null ? undefined : { host: parsed[1]!, port: parsed[2] === undefined ? undefined : Number(parsed[2]) },
        name: Option.getOrUndefined(args.name)
      })
    })
).pipe(Command.withDescription("Join a cluster as a runner and work on its runs until stopped (Ctrl-C hands the work over)."))

const submitCommand = Command.make(
  "submit",
  {
    plan: planFile,
    database,
    remote: Options.text("remote").pipe(Options.withDescription("The git remote the runners clone and push to, and the run lands on (a URL or a path every runner can reach).")),
    target: Options.text("target").pipe(Options.optional, Options.withDescription("The remote's branch the streams start from and the run lands on (default: the remote's default branch).")),
    landMode,
    noLand,
    group: Options.text("group").pipe(Options.withDefault("default"), Options.withDescription(Help.describe("group"))),
    id: Options.text("id").pipe(Options.optional, Options.withDescription(Help.describe("id"))),
    wait: Options.boolean("wait").pipe(Options.withDescription(Help.describe("wait"))),
    agent,
    reviewer,
    maxParallel,
    qualityThreshold,
    conflictStrategy,
    onGateFailure,
    budget,
    report,
    json,
    events,
    quiet,
    verbose
  },
  (args) =>
    Effect.gen(function*() {
      const { Database } = yield* Effect.promise(() => import("@braid/cluster"))
      const db = yield* Database.resolve(Option.getOrUndefined(args.database))
      const overrides = overridesOf(args)
      const plan = yield* loadPlan(args.plan, overrides)
      const Preflight = yield* lazy.preflight
      const unwritable = Preflight.reportProblem(Option.getOrUndefined(args.report))
      if (unwritable !== undefined) return yield* new OutputPathMissing({ option: unwritable.path, problem: unwritable.message })
      const id = Option.getOrUndefined(args.id)
      const idProblem = id === undefined ? undefined : Plan.branchNameProblem(id)
      if (idProblem !== undefined) return yield* new OutputPathMissing({ option: "--id", problem: idProblem })
      const display = yield* displayOf(args)
      const cluster = yield* clusterSession
      const result = yield* cluster.submit({
        database: db,
        plan,
        planPath: args.plan,
        planText: yield* (yield* FileSystem.FileSystem).readFileString(args.plan),
        remote: args.remote,
        target: Option.getOrUndefined(args.target),
        group: args.group,
        runId: id,
        options: {
          workspace: "git",
          land: !args.noLand,
          keepWorktrees: false,
          ...defined({
            agent: Option.getOrUndefined(args.agent),
            reviewer: Option.getOrUndefined(args.reviewer),
            landMode: Option.getOrUndefined(args.landMode),
            ...overrides
          })
        },
        wait: args.wait,
        display
      })
      if (result !== undefined) yield* finish(result, args)
    })
).pipe(Command.withDescription("Send a plan to a cluster's runners: print the run's id, or follow it with --wait."))

const draftCommand = Command.make(
  "draft",
  {
    description: Args.text({ name: "description" }).pipe(Args.withDescription("The feature to plan, in words (or --from FILE, or --issue N)."), Args.optional),
    from: Options.text("from").pipe(Options.optional, Options.withDescription(Help.describe("from"))),
    issue: Options.integer("issue").pipe(Options.optional, Options.withDescription(Help.describe("issue"))),
    out: Options.text("out").pipe(Options.optional, Options.withDescription(Help.describe("out"))),
    force: Options.boolean("force").pipe(Options.withDescription(Help.describe("force"))),
    agent,
    prompt: Options.text("prompt").pipe(Options.optional, Options.withDescription(Help.describe("prompt"))),
    printPrompt: Options.boolean("print-prompt").pipe(Options.withDescription(Help.describe("print-prompt"))),
    github: Options.boolean("github").pipe(Options.withDescription(Help.describe("github"))),
    githubRepo: Options.text("github-repo").pipe(Options.optional, Options.withDescription(Help.describe("github-repo"))),
    repo,
    run: Options.boolean("run").pipe(Options.withDescription(Help.describe("run"))),
    yes: Options.boolean("yes").pipe(Options.withDescription(Help.describe("yes")))
  },
  (args) =>
    Effect.flatMap(lazy.draft, (Draft) =>
      Draft.draft({
        description: Option.getOrUndefined(args.description),
        from: Option.getOrUndefined(args.from),
        issue: Option.getOrUndefined(args.issue),
        out: Option.getOrUndefined(args.out),
        force: args.force,
        agent: Option.getOrUndefined(args.agent),
        prompt: Option.getOrUndefined(args.prompt),
        printPrompt: args.printPrompt,
        github: args.github,
        githubRepo: Option.getOrUndefined(args.githubRepo),
        repo: Option.getOrUndefined(args.repo),
        run: args.run,
        yes: args.yes
      }))
).pipe(Command.withDescription(
  "Draft a plan from a feature (a description, --from FILE or --issue N): an architect agent reads the repository read-only, braid checks its plan as braid plan does and sends the problems back (at most 3 times), then writes it."
))

const mcpCommand = Command.make("mcp", { repo }, (args) =>
  Effect.flatMap(lazy.mcp, (Mcp) => Mcp.serve({ repo: Option.getOrUndefined(args.repo) }))).pipe(
    Command.withDescription(
      "Serve braid over the Model Context Protocol on stdio: tools to check a plan, start, watch, retry, resume and land runs, and read their reports; the runs as resources."
    )
  )

/** Errors only the cluster's commands raise. */
export type ClusterError =
  | BraidCluster.Database.DatabaseUrlInvalid
  | BraidCluster.Database.DatabaseUnreachable
  | BraidCluster.PlanBundle.PlanFolderUnfit
  | BraidCluster.Workdir.WorkdirInUse

/** The root command. */
export const braid = Command.make("braid").pipe(
  Command.withDescription("Run a software change as parallel work streams of coding agents."),
  Command.withSubcommands([
    planCommand,
    promptCommand,
    runCommand,
    resumeCommand,
    retryCommand,
    landCommand,
    runsCommand,
    statusCommand,
    doctorCommand,
    reportCommand,
    cleanCommand,
    mcpCommand,
    Init.command,
    draftCommand,
    runnerCommand,
    submitCommand
  ])
)

/** Parses `argv` (as `process.argv`) and runs the command it names. */
export const run = (argv: ReadonlyArray<string>) => Command.run(braid, { name: "braid", version: Help.VERSION })(argv)
