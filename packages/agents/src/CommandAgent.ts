/**
 * The `command` backend: any program as the agent. `agents.command.command` is the executable
 * and `agents.command.args` the argv template after it, with named placeholders filled per
 * attempt — `{promptFile}` (the prompt, written to a temporary file), `{taskId}`, `{role}`,
 * `{attempt}`, `{worktree}`, `{stream}`, `{runId}`. The program runs in the stream's worktree
 * with stdin closed, a timeout and a minimal environment (plus `env`'s names and `BRAID_*`
 * variables describing the attempt).
 *
 * The program may print one JSON line `{"usage": {"inputTokens", "outputTokens",
 * "cacheReadTokens"?, "cacheWriteTokens"?, "costUsd"?}, "summary", "sessionId", "model"}` (any
 * field may be left out; other lines are ignored). Without a summary the last line it printed
 * is the summary. A non-zero exit fails the attempt with the end of its output.
 *
 * Settings (`agents.command`): `command` (required), `args` (the template), `timeoutSeconds`
 * (default 1800), `env` (variables passed through), `model` (for pricing tokens without a cost),
 * `provider` (whose limits the attempts count against; none by default).
 *
 * @since 0.1.0
 */
import { Agent, Process } from "@braid/core"
import { CommandExecutor, FileSystem } from "@effect/platform"
import { Effect, Either, Schema } from "effect"
import * as path from "node:path"
import type * as Backend from "./Backend.js"
import * as tool from "./internal/tool.js"
import * as Pricing from "./Pricing.js"
import * as Prompt from "./Prompt.js"
import * as BackendSettings from "./Settings.js"

/** What the backend reads under `agents.command` (`Settings.Command`). */
export const Settings = BackendSettings.Command
export type Settings = BackendSettings.Command

/** The backend's name, as streams and plans select it. */
export const name = "command"

/** Default time one attempt may take. */
export const DEFAULT_TIMEOUT_SECONDS = 30 * 60

/** The placeholders an argv template may use, with what each is replaced by. */
export const placeholders = {
  promptFile: "a temporary file holding the attempt's prompt",
  taskId: "the task's id",
  role: "the stream's role (api-developer, …)",
  attempt: "the attempt number (1, 2 or 3)",
  worktree: "the stream's worktree (also the current directory)",
  stream: "the stream's name",
  runId: "the run's id"
} as const satisfies Record<string, string>

/** A placeholder's name. */
export type Placeholder = keyof typeof placeholders

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g

const isPlaceholder = (name: string): name is Placeholder => Object.hasOwn(placeholders, name)

/** The unknown placeholders in an argv template. */
export const unknownPlaceholders = (template: ReadonlyArray<string>): Array<{ readonly index: number; readonly name: string }> =>
  template.flatMap((word, index) => [...word.matchAll(PLACEHOLDER)].filter((m) => !isPlaceholder(m[1]!)).map((m) => ({ index, name: m[1]! })))

/** The argv template with the attempt's values in place (text that is no placeholder stays as it is). */
export const fillArgs = (template: ReadonlyArray<string>, values: Readonly<Record<Placeholder, string>>): Array<string> =>
  template.map((word) => word.replace(PLACEHOLDER, (whole, name: string) => isPlaceholder(name) ? values[name] : whole))

/** The JSON line a program may print about its attempt. */
export class Report extends Schema.Class<Report>("CommandAgent/Report")({
  usage: Schema.optionalWith(
    Schema.Struct({
      inputTokens: Schema.Number,
      outputTokens: Schema.Number,
      cacheReadTokens: Schema.optionalWith(Schema.Number, { exact: true }),
      cacheWriteTokens: Schema.optionalWith(Schema.Number, { exact: true }),
      costUsd: Schema.optionalWith(Schema.Number, { exact: true })
    }),
    { exact: true }
  ),
  summary: Schema.optionalWith(Schema.String, { exact: true }),
  sessionId: Schema.optionalWith(Schema.String, { exact: true }),
  model: Schema.optionalWith(Schema.String, { exact: true })
}) {}

const decodeReport = Schema.decodeUnknownEither(Report)

/** The last line of `stdout` that is a report (it names usage, a summary or a session); undefined when none is. */
export const reportOf = (stdout: string): Report | undefined =>
  tool.jsonLines(stdout).flatMap((line) => {
    const decoded = decodeReport(line)
    return Either.isRight(decoded) &&
        (decoded.right.usage !== undefined || decoded.right.summary !== undefined || decoded.right.sessionId !== undefined)
      ? [decoded.right]
      : []
  }).at(-1)

const lastLine = (text: string): string | undefined =>
  text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("{")).at(-1)

/** The argv: the executable's words, then `args`. */
const templateOf = (settings: Settings): { readonly command: ReadonlyArray<string>; readonly args: ReadonlyArray<string> } => {
  const command = settings.command === undefined ? [] : tool.commandOf(settings, name)
  return { command, args: [...command.slice(1), ...(settings.args ?? [])] }
}

/** Builds the command agent; its dependencies are resolved here, so attempts need nothing. */
export const make = (context: Backend.BuildContext<Settings>) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    const fs = yield* FileSystem.FileSystem
    const prompts = yield* Prompt.make(context.plan)
    const { plan, settings } = context
    const { args, command } = templateOf(settings)
    // A relative command is the plan's (`./agent.sh`): found from the plan's directory, since it runs in the worktree.
    const executable = command[0] === undefined ? undefined : tool.which(command[0], process.env, plan.baseDir) ?? command[0]
    const timeoutMs = tool.timeoutMsOf(settings, DEFAULT_TIMEOUT_SECONDS)

    const attempt = Effect.fn("CommandAgent.attempt")(function*(request: Agent.AttemptRequest) {
      const failed = (message: string, reason: Agent.FailureReason = "failed") =>
        new Agent.AgentFailed({ agent: name, taskId: request.task.id, message, reason })
      if (executable === undefined) {
        return yield* failed("agents.command.command is not set: the command agent runs the program it names", "unavailable")
      }
      const unknown = unknownPlaceholders(args)
      if (unknown.length > 0) {
        return yield* failed(`agents.command.args: unknown placeholder {${unknown[0]!.name}}`, "unavailable")
      }
      if (request.files._tag !== "Worktree") {
        return yield* failed("the command agent works in a directory (a git worktree); this workspace has none (in-memory?)", "unavailable")
      }
      const worktree = request.files.dir
      const prompt = prompts.forAttempt(request)
      if (prompt._tag === "Left") return yield* failed(prompt.left.message, "unavailable")

      const result = yield* Effect.scoped(Effect.gen(function*() {
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "braid-command-" })
        const promptFile = path.join(dir, "prompt.md")
        yield* fs.writeFileString(promptFile, prompt.right)
        const values: Record<Placeholder, string> = {
          promptFile,
          taskId: request.task.id,
          role: request.role,
          attempt: String(request.attempt),
          worktree,
          stream: request.stream.name,
          runId: request.runId
        }
        const env = tool.minimalEnv(process.env, [], settings, {
          BRAID_PROMPT_FILE: promptFile,
          BRAID_TASK_ID: request.task.id,
          BRAID_ROLE: request.role,
          BRAID_ATTEMPT: String(request.attempt),
          BRAID_WORKTREE: worktree,
          BRAID_STREAM: request.stream.name,
          BRAID_RUN_ID: request.runId,
          BRAID_SESSION: request.session
        })
        return yield* tool.runAttempt(name, request, { argv: [executable, ...fillArgs(args, values)], env, timeoutMs })
      })).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.catchTags({
          BadArgument: (e) => Effect.fail(failed(`could not write the prompt file: ${e.message}`)),
          SystemError: (e) => Effect.fail(failed(`could not write the prompt file: ${e.message}`))
        })
      )

      const program = path.basename(executable)
      const output = Process.tail(`${result.stdout}${result.stderr === "" ? "" : `\n${result.stderr}`}`, 30, 3000)
      if (result.timedOut) return yield* failed(`${program} timed out after ${Math.round(timeoutMs / 1000)} s`, "timeout")
      if (result.exitCode !== 0) {
        return yield* failed(`${program} exited ${result.exitCode}${output === "" ? "" : `:\n${output}`}`)
      }
      const report = reportOf(result.stdout)
      const model = report?.model ?? settings.model
      const usage = report?.usage
      const costUsd = usage === undefined ? undefined : usage.costUsd ?? Pricing.costOf(plan.prices, model, usage)
      return new Agent.AttemptOutput({
        summary: report?.summary ?? lastLine(result.stdout) ?? `ran ${program}`,
        ...(usage !== undefined ? { usage: new Agent.Usage({ ...usage, ...(costUsd !== undefined ? { costUsd, costSource: usage.costUsd !== undefined ? "tool" as const : "table" as const } : {}) }) } : {}),
        ...(report?.sessionId !== undefined ? { sessionId: report.sessionId } : {}),
        ...(model !== undefined ? { model } : {}),
        durationMs: result.durationMs
      })
    })

    return { name, provider: settings.provider, attempt } satisfies Agent.Service
  })

/** The command backend: any program, given the prompt in a file; judged by the plan's checks. */
export const backend: Backend.Backend<Settings> = {
  name,
  description: "any program as the agent: agents.command.command + args with {promptFile}, {taskId}, … placeholders",
  settings: Settings,
  preflight: (context) =>
    Effect.sync(() => {
      const problems: Array<Backend.Problem> = []
      problems.push(...tool.worktreeProblems(context, "the command agent runs programs"))
      const { args, command } = templateOf(context.settings)
      if (command[0] === undefined) {
        problems.push({
          path: "agents.command.command",
          message: `streams ${context.streams.map((s) => `"${s.stream.name}"`).join(", ")} use the command agent, which needs ` +
            "agents.command.command: the program to run (with agents.command.args, e.g. [\"--prompt\", \"{promptFile}\"])"
        })
        return problems
      }
      if (tool.which(command[0], process.env, context.plan.baseDir) === undefined) {
        problems.push({
          path: "agents.command.command",
          message: `\`${command[0]}\` not found: ${
            command[0].includes("/") ? `no executable file at ${path.resolve(context.plan.baseDir, command[0])}` : "not on PATH"
          }`
        })
      }
      const fromCommand = command.length - 1
      for (const { index, name: placeholder } of unknownPlaceholders(args)) {
        problems.push({
          path: index < fromCommand ? "agents.command.command" : `agents.command.args[${index - fromCommand}]`,
          message: `unknown placeholder {${placeholder}} (known: ${Object.keys(placeholders).map((p) => `{${p}}`).join(", ")})`
        })
      }
      return problems
    }),
  make: (context) => Effect.map(make(context), (agent) => ({ agent }))
}
