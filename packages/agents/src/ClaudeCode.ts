/**
 * The `claude-code` backend: runs Claude Code once per attempt —
 * `claude -p --output-format stream-json --verbose --permission-mode acceptEdits
 * [--session-id <uuid> | --resume <id>] [--model M] [--max-turns N] [--allowedTools …]` — an
 * argv with the prompt on stdin (closed after), in the stream's worktree, with a timeout and a
 * minimal environment.
 *
 * Sessions: a fresh attempt opens a new session whose id is journaled before claude starts; an
 * attempt given a session (a retry of the task, or the same attempt after a busy provider)
 * continues it with `--resume`, so the agent keeps what it learnt, and falls back to a fresh
 * session when claude no longer has it.
 *
 * Each stream gets its own claude home (`CLAUDE_CONFIG_DIR`, beside the run's worktrees), so
 * streams never share transcripts or memory; the user's login stays where it is
 * (`CLAUDE_SECURESTORAGE_CONFIG_DIR` points claude at the user's own credentials, so a token
 * refresh is written back there) and the user's `.claude.json` seeds the stream's.
 *
 * Every stream-json line is decoded with a Schema; success is exit 0 and `is_error: false`.
 * A busy or unreachable provider is `ProviderBusy` (braid backs off; claude's own retries are
 * kept few), an exhausted subscription or account limit is `UsageLimitReached`, a missing or
 * refused login fails as `unavailable`.
 *
 * Settings (`agents.claude-code`): `command` (default `claude`), `model`, `maxTurns`,
 * `permissionMode` (default `acceptEdits`; `bypassPermissions` is refused), `allowedTools`
 * (default: `Bash(<check>)` for each command that judges the attempt), `args`, `timeoutSeconds`
 * (default 1800), `env`, `baseUrl` (`ANTHROPIC_BASE_URL`), `provider`.
 *
 * @since 0.1.0
 */
import { Agent, type CommandSpec, type Plan, Process, Secrets } from "@braid/core"
import { type CommandExecutor, FileSystem } from "@effect/platform"
import { Effect, Either, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as os from "node:os"
import * as path from "node:path"
import type * as Backend from "./Backend.js"
import * as tool from "./internal/tool.js"
import * as Pricing from "./Pricing.js"
import * as Prompt from "./Prompt.js"
import * as BackendSettings from "./Settings.js"

/** What the backend reads under `agents.claude-code` (`Settings.ClaudeCode`). */
export const Settings = BackendSettings.ClaudeCode
export type Settings = BackendSettings.ClaudeCode

/** The backend's name, as streams and plans select it. */
export const name = "claude-code"

/** The provider whose limits claude's attempts count against. */
export const provider = "anthropic"

/** Default time one attempt may take. */
export const DEFAULT_TIMEOUT_SECONDS = 30 * 60

/** claude's own retries of a failed request: few, because braid's shared limiter owns the backoff. */
export const MAX_RETRIES = 2

/** The longest claude waits for one API request (claude's default, 10 minutes). */
export const MAX_REQUEST_TIMEOUT_MS = 10 * 60 * 1000

/** The permission mode unless the settings choose another. */
export const DEFAULT_PERMISSION_MODE = "acceptEdits"

/** Permission modes claude 2.1 accepts; `bypassPermissions` is among them but braid refuses it. */
export const PERMISSION_MODES: ReadonlyArray<string> = ["acceptEdits", "auto", "default", "dontAsk", "manual", "plan"]

/** Options that switch claude's permission checks off: never passed. */
export const REFUSED_ARGS: ReadonlyArray<string> = ["--dangerously-skip-permissions", "--allow-dangerously-skip-permissions"]

/** Variables that carry an Anthropic key or login. */
export const CREDENTIAL_ENV: ReadonlyArray<string> = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"]

/** Variables that route claude to a cloud provider, whose own credentials then apply. */
export const CLOUD_ENV: ReadonlyArray<string> = ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY"]

/**
 * What claude reads, passed through when set: keys and logins, the endpoint, model choices,
 * and the Bedrock, Vertex and Foundry settings. Anything else goes through only when `env` names it.
 */
export const ENV: ReadonlyArray<string> = [
  ...CREDENTIAL_ENV,
  "ANTHROPIC_BASE_URL",
  "ANTHROPIC_CUSTOM_HEADERS",
  "ANTHROPIC_MODEL",
  "ANTHROPIC_SMALL_FAST_MODEL",
  "ANTHROPIC_DEFAULT_OPUS_MODEL",
  "ANTHROPIC_DEFAULT_SONNET_MODEL",
  "ANTHROPIC_DEFAULT_HAIKU_MODEL",
  "CLAUDE_CODE_SUBAGENT_MODEL",
  ...CLOUD_ENV,
  "ANTHROPIC_BEDROCK_BASE_URL",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_PROFILE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_BEARER_TOKEN_BEDROCK",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "ANTHROPIC_VERTEX_PROJECT_ID",
  "ANTHROPIC_VERTEX_BASE_URL",
  "CLOUD_ML_REGION",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "ANTHROPIC_FOUNDRY_API_KEY",
  "ANTHROPIC_FOUNDRY_RESOURCE",
  "ANTHROPIC_FOUNDRY_BASE_URL"
]

// ---------------------------------------------------------------------------------------------
// stream-json lines. Structs ignore fields they do not name, in any order; nulls read as absent.

const optionalNumber = Schema.optionalWith(Schema.Number, { nullable: true })
const optionalString = Schema.optionalWith(Schema.String, { nullable: true })

/** Token counts as claude reports them. */
export const TokenUsage = Schema.Struct({
  input_tokens: optionalNumber,
  output_tokens: optionalNumber,
  cache_creation_input_tokens: optionalNumber,
  cache_read_input_tokens: optionalNumber
})

/** The first line: the session claude opened and the model it will use. */
export const Init = Schema.Struct({
  type: Schema.Literal("system"),
  subtype: Schema.Literal("init"),
  session_id: optionalString,
  model: optionalString
})

/** claude is about to retry a failed request itself. */
export const ApiRetry = Schema.Struct({
  type: Schema.Literal("system"),
  subtype: Schema.Literal("api_retry"),
  attempt: optionalNumber,
  max_retries: optionalNumber,
  retry_delay_ms: optionalNumber,
  error_status: optionalNumber,
  error: optionalString
})

/** The account's unified rate limit: `rejected` means the limit is reached until `resetsAt` (epoch seconds). */
export const RateLimitInfo = Schema.Struct({
  status: optionalString,
  resetsAt: optionalNumber,
  rateLimitType: optionalString
})

/** A change of the account's rate-limit state (nested under `rate_limit_info`; older lines had it flat). */
export const RateLimitEvent = Schema.Struct({
  type: Schema.Literal("rate_limit_event"),
  rate_limit_info: Schema.optionalWith(RateLimitInfo, { nullable: true }),
  status: optionalString,
  resetsAt: optionalNumber,
  rateLimitType: optionalString
})

/** A model message (text and tool calls), or claude's own synthetic API-error message. */
export const Assistant = Schema.Struct({
  type: Schema.Literal("assistant"),
  message: Schema.optionalWith(
    Schema.Struct({ model: optionalString, content: Schema.optionalWith(Schema.Array(Schema.Unknown), { nullable: true }) }),
    { nullable: true }
  ),
  api_error_status: optionalNumber
})

/** A tool call claude refused. */
export const Denial = Schema.Struct({
  tool_name: Schema.String,
  tool_input: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { nullable: true })
})

/** The last line: how the session ended, with its totals. */
export const Result = Schema.Struct({
  type: Schema.Literal("result"),
  subtype: Schema.String,
  is_error: Schema.Boolean,
  result: optionalString,
  errors: Schema.optionalWith(Schema.Array(Schema.String), { nullable: true }),
  session_id: optionalString,
  num_turns: optionalNumber,
  total_cost_usd: optionalNumber,
  usage: Schema.optionalWith(TokenUsage, { nullable: true }),
  modelUsage: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { nullable: true }),
  permission_denials: Schema.optionalWith(Schema.Array(Denial), { nullable: true }),
  terminal_reason: optionalString,
  api_error_status: optionalNumber,
  api_error: optionalString,
  duration_ms: optionalNumber
})
export type Result = typeof Result.Type

/** Any line braid reads; other lines (tool results, hooks, notices) are skipped. */
export const Line = Schema.Union(Init, ApiRetry, RateLimitEvent, Assistant, Result)
export type Line = typeof Line.Type

const decodeLine = Schema.decodeUnknownEither(Line)

/** What one claude run said, folded from its stream-json lines. */
export interface Transcript {
  readonly sessionId: string | undefined
  readonly model: string | undefined
  /** The account's latest rate-limit state. */
  readonly rateLimit: typeof RateLimitInfo.Type | undefined
  /** claude's own retries of failed requests. */
  readonly retries: ReadonlyArray<typeof ApiRetry.Type>
  /** The text of the last model message (the closing message when there is no result line). */
  readonly lastText: string | undefined
  readonly result: Result | undefined
}

/** Reads claude's stdout: every line it understands, in order. */
export const transcriptOf = (stdout: string): Transcript => {
  let sessionId: string | undefined
  let model: string | undefined
  let rateLimit: typeof RateLimitInfo.Type | undefined
  let lastText: string | undefined
  let result: Result | undefined
  const retries: Array<typeof ApiRetry.Type> = []
  for (const raw of tool.jsonLines(stdout)) {
    const decoded = decodeLine(raw)
    if (Either.isLeft(decoded)) continue
    const line = decoded.right
    switch (line.type) {
      case "system":
        if (line.subtype === "init") {
          sessionId = line.session_id ?? sessionId
          model = line.model ?? model
        } else {
          retries.push(line)
        }
        break
      case "rate_limit_event":
        rateLimit = line.rate_limit_info ?? { status: line.status, resetsAt: line.resetsAt, rateLimitType: line.rateLimitType }
        break
      case "assistant": {
        const text = (line.message?.content ?? [])
          .flatMap((b) => (typeof b === "object" && b !== null && (b as { type?: unknown }).type === "text" ? [String((b as { text?: unknown }).text ?? "")] : []))
          .join("\n")
        if (text !== "") lastText = text
        break
      }
      case "result":
        result = line
        sessionId = line.session_id ?? sessionId
        break
    }
  }
  return { sessionId, model, rateLimit, retries, lastText, result }
}

// ---------------------------------------------------------------------------------------------
// Outcomes

/** claude no longer has the session an attempt asked to resume (a fresh session is opened instead). */
export class SessionNotFound extends Schema.TaggedError<SessionNotFound>()("SessionNotFound", {
  sessionId: Schema.String,
  message: Schema.String
}) {}

/** What classifying a run needs besides the run itself. */
export interface RunContext {
  readonly taskId: string
  readonly timeoutMs: number
  /** The session the run resumed, when it did. */
  readonly resumed: string | undefined
  /** The session braid opened, when it opened one. */
  readonly opened: string | undefined
  readonly maxTurns: number | undefined
  readonly prices: Readonly<Record<string, Plan.ModelPrice>>
  /** What the resumed session had cost before this attempt (claude's `total_cost_usd` counts the whole session). */
  readonly sessionCostUsd: number
  /** Values that must never appear in a message (keys and tokens of the child's environment). */
  readonly secrets: ReadonlyArray<string>
}

/** One readable line for a refused tool call: the tool and the path or command it tried. */
export const describeDenial = (denial: typeof Denial.Type): string => {
  const input = denial.tool_input ?? {}
  const target = [input.file_path, input.notebook_path, input.path, input.command, input.url, input.pattern]
    .find((v): v is string => typeof v === "string" && v !== "")
  const shown = target ?? (Object.keys(input).length > 0 ? JSON.stringify(input) : "")
  const line = shown === "" ? denial.tool_name : `${denial.tool_name} ${shown}`
  return line.length > 300 ? `${line.slice(0, 297)}...` : line
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`)

const isoOfEpochSeconds = (value: number | undefined): string | undefined =>
  value === undefined || !Number.isFinite(value) || value <= 0 ? undefined : new Date(value * 1000).toISOString()

/** "You will regain access on 2026-12-01 at 00:00 UTC" (the API's account limit message) as ISO. */
const regainAccessAt = (text: string): string | undefined => {
  const match = /regain access on (\d{4}-\d{2}-\d{2})(?: at (\d{1,2}:\d{2}))?/i.exec(text)
  if (match === null) return undefined
  const date = new Date(`${match[1]}T${(match[2] ?? "00:00").padStart(5, "0")}:00Z`)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

const AUTH_TEXT = /not logged in|please run \/login|invalid api key|invalid x-api-key|authentication_error|oauth token (?:has )?(?:expired|revoked)|credentials? (?:are )?(?:missing|invalid)/i
const USAGE_TEXT = /usage limit|hit your (?:[\w-]+ )?limit|regain access on|credit balance (?:is )?too low|spend limit reached/i
const BUSY_TEXT = /overloaded|unable to connect|connection (?:refused|reset|error)|econnrefused|econnreset|etimedout|socket hang up|request timed out|fetch failed|temporarily unavailable/i

const isBusyStatus = (status: number | undefined) =>
  status !== undefined && (status === 408 || status === 409 || status === 429 || status >= 500)

/** What a finished claude run amounts to: the attempt's output, or why it failed. */
export const outcomeOf = (
  run: Process.Result,
  transcript: Transcript,
  context: RunContext
): Either.Either<Agent.AttemptOutput, Agent.AttemptError | SessionNotFound> => {
  const { result } = transcript
  // A failed run that got as far as a result still cost something: the report keeps it.
  const spent = result === undefined ? undefined : outputOf(result, transcript, context, run.durationMs)
  const failed = (message: string, reason: Agent.FailureReason = "failed") =>
    Either.left(
      new Agent.AgentFailed({
        agent: name,
        taskId: context.taskId,
        reason,
        message: Secrets.scrub(message, context.secrets),
        ...(spent !== undefined ? { spent } : {})
      })
    )

  if (run.timedOut) {
    return failed(`claude did not finish within ${seconds(context.timeoutMs)} (agents.${name}.timeoutSeconds); it was stopped`, "timeout")
  }
  const said = result?.result ?? (result?.errors ?? []).join("; ")
  const output = `${run.stdout}\n${run.stderr}`
  if (context.resumed !== undefined && run.exitCode !== 0 && /no conversation found with session id/i.test(output)) {
    return Either.left(new SessionNotFound({ sessionId: context.resumed, message: Process.tail(run.stderr, 3, 300) }))
  }
  if (run.exitCode === 0 && result !== undefined && !result.is_error) {
    return Either.right(outputOf(result, transcript, context, run.durationMs))
  }

  // What claude said went wrong: its result text, else the end of its output.
  const tail = said.trim() !== "" ? said.trim() : Process.tail(run.stderr.trim() !== "" ? run.stderr : run.stdout, 5, 600)
  const text = Secrets.scrub(`${tail} ${transcript.lastText ?? ""}`, context.secrets)
  const status = result?.api_error_status
  const message = Secrets.scrub(tail, context.secrets)

  if (status === 401 || status === 403 || AUTH_TEXT.test(text)) {
    return failed(
      `claude cannot use its Anthropic login (${message}): set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN from \`claude setup-token\`), or run \`claude /login\``,
      "unavailable"
    )
  }
  const rejected = transcript.rateLimit?.status === "rejected"
  if (result?.api_error === "usage_limit_reached" || USAGE_TEXT.test(text) || (rejected && status === 429 && !BUSY_TEXT.test(text))) {
    return Either.left(
      new Agent.UsageLimitReached({
        agent: name,
        provider,
        message,
        resetsAt: (rejected ? isoOfEpochSeconds(transcript.rateLimit?.resetsAt) : undefined) ?? regainAccessAt(text)
      })
    )
  }
  const unreachable = result?.terminal_reason === "api_error" && (status === undefined || isBusyStatus(status))
  if (isBusyStatus(status) || unreachable || BUSY_TEXT.test(text) || (result === undefined && transcript.retries.length > 0)) {
    const resetsAt = transcript.rateLimit?.resetsAt
    return Either.left(
      new Agent.ProviderBusy({
        agent: name,
        provider,
        message: `${message}${status !== undefined ? ` (HTTP ${status})` : ""}`,
        ...(rejected && resetsAt !== undefined ? { retryAfterMs: Math.max(0, resetsAt * 1000 - Date.now()) } : {})
      })
    )
  }
  if (result?.subtype === "error_max_turns") {
    return failed(`claude stopped at its turn limit${context.maxTurns !== undefined ? ` (agents.${name}.maxTurns: ${context.maxTurns})` : ""}: ${message}`)
  }
  if (status !== undefined) return failed(`the Anthropic API refused claude's request (HTTP ${status}): ${message}`)
  if (result === undefined) {
    return failed(`claude exited ${run.exitCode} without a result${message === "" ? "" : `:\n${message}`}`)
  }
  return failed(`claude ended with ${result.subtype}${run.exitCode !== 0 ? ` (exit ${run.exitCode})` : ""}: ${message}`)
}

/** The attempt's output from a successful result. */
const outputOf = (result: Result, transcript: Transcript, context: RunContext, durationMs: number): Agent.AttemptOutput => {
  const models = Object.keys(result.modelUsage ?? {})
  const model = models[0] ?? transcript.model
  const tokens = {
    inputTokens: result.usage?.input_tokens ?? 0,
    outputTokens: result.usage?.output_tokens ?? 0,
    cacheReadTokens: result.usage?.cache_read_input_tokens ?? 0,
    cacheWriteTokens: result.usage?.cache_creation_input_tokens ?? 0
  }
  // claude reports a resumed session's cost from its start, its tokens per process: this attempt's
  // cost is what the session cost beyond what its earlier attempts recorded.
  const costUsd = result.total_cost_usd !== undefined
    ? Math.max(0, result.total_cost_usd - (context.resumed !== undefined ? context.sessionCostUsd : 0))
    : Pricing.costOf(context.prices, model, tokens)
  const sessionId = result.session_id ?? transcript.sessionId ?? context.opened ?? context.resumed
  return new Agent.AttemptOutput({
    summary: Secrets.scrub(result.result ?? transcript.lastText ?? "", context.secrets),
    usage: new Agent.Usage({ ...tokens, ...(costUsd !== undefined ? { costUsd, costSource: result.total_cost_usd !== undefined ? "tool" as const : "table" as const } : {}) }),
    ...(sessionId !== undefined ? { sessionId } : {}),
    ...(result.num_turns !== undefined ? { turns: result.num_turns } : {}),
    ...(model !== undefined ? { model } : {}),
    permissionDenials: (result.permission_denials ?? []).map(describeDenial),
    durationMs: result.duration_ms ?? durationMs
  })
}

// ---------------------------------------------------------------------------------------------
// Invocation

/** A word as a shell would need it typed: bare when it is plain, else single-quoted. */
export const shellWord = (word: string): string => /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`

/** The tools claude may use without asking: the settings' list, else one `Bash(…)` per check command. */
export const allowedToolsOf = (settings: Settings, checks: ReadonlyArray<CommandSpec.Command>): ReadonlyArray<string> =>
  settings.allowedTools ?? [...new Set(checks.map((c) => `Bash(${c.argv.map(shellWord).join(" ")})`))]

/** The commands that set up a stream's checkout (`environment.setup`, shared folders' `build`). */
export const setupCommandsOf = (stream: { readonly environment?: Plan.Environment | undefined }): ReadonlyArray<CommandSpec.Command> =>
  stream.environment === undefined ? [] : [...stream.environment.share.flatMap((s) => s.build ?? []), ...stream.environment.setup]

/** How claude is asked to carry the session: a new one with this id, or an earlier one continued. */
export type SessionChoice = { readonly _tag: "Open"; readonly id: string } | { readonly _tag: "Resume"; readonly id: string }

/** The argv of one attempt (the prompt goes on stdin). */
export const argvOf = (
  command: ReadonlyArray<string>,
  settings: Settings,
  session: SessionChoice,
  checks: ReadonlyArray<CommandSpec.Command>
): ReadonlyArray<string> => {
  const allowed = allowedToolsOf(settings, checks)
  return [
    ...command,
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--permission-mode",
    settings.permissionMode ?? DEFAULT_PERMISSION_MODE,
    ...(session._tag === "Open" ? ["--session-id", session.id] : ["--resume", session.id]),
    ...(settings.model !== undefined ? ["--model", settings.model] : []),
    ...(settings.maxTurns !== undefined ? ["--max-turns", String(settings.maxTurns)] : []),
    ...(settings.args ?? []),
    // Last: the option takes every word after it.
    ...(allowed.length > 0 ? ["--allowedTools", ...allowed] : [])
  ]
}

/** Where the user's claude keeps its settings and login: `CLAUDE_CONFIG_DIR`, else `~/.claude`. */
export const userConfigDirOf = (source: Readonly<Record<string, string | undefined>>): string =>
  source.CLAUDE_CONFIG_DIR ?? path.join(source.HOME ?? os.homedir(), ".claude")

/** The user's global claude config file: `.claude.json` in `CLAUDE_CONFIG_DIR`, else in the home folder. */
export const userGlobalConfigOf = (source: Readonly<Record<string, string | undefined>>): string =>
  source.CLAUDE_CONFIG_DIR !== undefined
    ? path.join(source.CLAUDE_CONFIG_DIR, ".claude.json")
    : path.join(source.HOME ?? os.homedir(), ".claude.json")

/**
 * A stream's own claude home, in the run's folder (`runDir`, else beside an old-layout worktree:
 * `.braid/runs/<run>/claude/<stream>`, which git does not see): its transcripts and memory are the
 * stream's alone.
 */
export const configDirOf = (worktree: string, stream: string, runDir?: string): string => {
  if (runDir !== undefined) return path.join(runDir, "claude", stream)
  const parent = path.dirname(worktree)
  return path.basename(parent) === "worktrees"
    ? path.join(path.dirname(parent), "claude", stream)
    : path.join(parent, ".braid-claude", stream)
}

/**
 * The environment of one attempt: what claude needs from braid's, the settings' passthrough,
 * then braid's own values — the stream's claude home, the user's credentials store, no
 * telemetry or other traffic, few retries of claude's own, and a bounded request timeout.
 */
export const environmentOf = (
  source: Readonly<Record<string, string | undefined>>,
  settings: Settings,
  options: { readonly configDir: string | undefined; readonly timeoutMs: number }
): Record<string, string> => {
  const passed = new Set(settings.env ?? [])
  // Only what the user passes through on purpose overrides braid's bounds.
  const own = (name: string, value: string) => (passed.has(name) && source[name] !== undefined ? source[name] : value)
  return tool.minimalEnv(source, ENV, settings, {
    ANTHROPIC_BASE_URL: settings.baseUrl ?? source.ANTHROPIC_BASE_URL,
    CLAUDE_CONFIG_DIR: options.configDir ?? source.CLAUDE_CONFIG_DIR,
    // The login stays the user's: claude reads (and refreshes) it where the user's claude does.
    // Empty means `~/.claude` and the default keychain entry.
    CLAUDE_SECURESTORAGE_CONFIG_DIR: source.CLAUDE_SECURESTORAGE_CONFIG_DIR ?? source.CLAUDE_CONFIG_DIR ?? "",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_AUTOUPDATER: "1",
    CLAUDE_CODE_MAX_RETRIES: own("CLAUDE_CODE_MAX_RETRIES", String(MAX_RETRIES)),
    API_TIMEOUT_MS: own("API_TIMEOUT_MS", String(Math.min(options.timeoutMs, MAX_REQUEST_TIMEOUT_MS)))
  })
}

/** Values of the child's environment that are secrets (kept out of every message). */
const secretsOf = (env: Readonly<Record<string, string>>): ReadonlyArray<string> =>
  Object.entries(env).flatMap(([k, v]) => (/KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i.test(k) && v !== "" ? [v] : []))

/** Builds the claude agent for a plan's settings; `source` is the environment it draws from. */
export const make = (
  context: Backend.BuildContext<Settings>,
  source: Readonly<Record<string, string | undefined>> = process.env
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const executor = yield* Effect.context<CommandExecutor.CommandExecutor>()
    const { settings, plan } = context
    const command = tool.commandOf(settings, "claude")
    const executable = [tool.which(command[0]!, source, plan.baseDir) ?? command[0]!, ...command.slice(1)]
    const timeoutMs = tool.timeoutMsOf(settings, DEFAULT_TIMEOUT_SECONDS)
    const prompts = yield* Prompt.make(plan)

    // The stream's claude home, seeded once from the user's settings (not their history).
    const prepareHome = (dir: string) =>
      Effect.gen(function*() {
        yield* fs.makeDirectory(dir, { recursive: true, mode: 0o700 })
        const own = path.join(dir, ".claude.json")
        if (yield* fs.exists(own)) return
        const user = yield* fs.readFileString(userGlobalConfigOf(source)).pipe(Effect.option)
        if (user._tag === "None") return
        const parsed = yield* Effect.try(() => JSON.parse(user.value) as unknown).pipe(Effect.option)
        if (parsed._tag === "None" || typeof parsed.value !== "object" || parsed.value === null) return
        const { projects: _projects, ...settingsOnly } = parsed.value as Record<string, unknown>
        yield* fs.writeFileString(own, JSON.stringify(settingsOnly, null, 2), { mode: 0o600 })
      })

    const attempt = Effect.fn("ClaudeCode.attempt")(function*(request: Agent.AttemptRequest) {
      if (request.files._tag !== "Worktree") {
        return yield* new Agent.AgentFailed({
          agent: name,
          taskId: request.task.id,
          reason: "unavailable",
          message: `claude works in a directory (a git worktree); this workspace has none (in-memory?)`
        })
      }
      const worktree = request.files.dir
      const configDir = configDirOf(worktree, request.stream.name, request.files.runDir)
      yield* prepareHome(configDir).pipe(
        Effect.mapError((e) =>
          new Agent.AgentFailed({ agent: name, taskId: request.task.id, reason: "unavailable", message: `cannot prepare claude's home ${configDir}: ${e.message}` })
        )
      )
      const env = environmentOf(source, settings, { configDir, timeoutMs })
      const context: Omit<RunContext, "resumed" | "opened"> = {
        taskId: request.task.id,
        timeoutMs,
        maxTurns: settings.maxTurns,
        prices: plan.prices,
        sessionCostUsd: request.sessionCostUsd ?? 0,
        secrets: secretsOf(env)
      }
      const prompt = prompts.forAttempt(request)
      if (Either.isLeft(prompt)) {
        return yield* new Agent.AgentFailed({ agent: name, taskId: request.task.id, reason: "unavailable", message: prompt.left.message })
      }

      const runOnce = (session: SessionChoice) =>
        Effect.gen(function*() {
          // Journaled before claude starts: a crash from here on can still continue this session.
          yield* request.note({ _tag: "Session", sessionId: session.id })
          const result = yield* tool.runAttempt(name, request, {
            // Its checks, and its checkout's setup commands: a task that adds a dependency can install it.
            argv: argvOf(executable, settings, session, [...request.checks, ...setupCommandsOf(request.stream)]),
            env,
            timeoutMs,
            stdin: prompt.right,
            // Confined: its stream's home, the user's login read-only, the Anthropic API (or the base URL's).
            sandbox: tool.allowance({ home: configDir, login: [userConfigDirOf(source)], urls: [env.ANTHROPIC_BASE_URL ?? "https://api.anthropic.com"] })
          })
          return outcomeOf(result, transcriptOf(result.stdout), {
            ...context,
            resumed: session._tag === "Resume" ? session.id : undefined,
            opened: session._tag === "Open" ? session.id : undefined
          })
        })

      const open = (): SessionChoice => ({ _tag: "Open", id: randomUUID() })
      let outcome = yield* runOnce(request.session !== undefined ? { _tag: "Resume", id: request.session } : open())
      if (Either.isLeft(outcome) && outcome.left._tag === "SessionNotFound") {
        // claude no longer has it (its home was removed, or it never got to write it): start afresh.
        outcome = yield* runOnce(open())
      }
      if (Either.isRight(outcome)) return outcome.right
      const error = outcome.left
      if (error._tag === "SessionNotFound") {
        return yield* new Agent.AgentFailed({ agent: name, taskId: request.task.id, message: `claude could not open a session: ${error.message}` })
      }
      return yield* Effect.fail(error)
    })

    const agent: Agent.Service = {
      name,
      provider,
      attempt: (request) => Effect.provide(attempt(request), executor)
    }
    return agent
  })

/** Everything that stops claude from running a plan, found before anything starts. */
export const preflight = (
  context: Backend.PreflightContext<Settings>,
  source: Readonly<Record<string, string | undefined>> = process.env
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { settings } = context
    const at = (field: string) => `agents.${name}.${field}`
    const problems: Array<Backend.Problem> = []
    problems.push(...tool.worktreeProblems(context, "claude edits files"))
    const mode = settings.permissionMode
    if (mode === "bypassPermissions") {
      problems.push({
        path: at("permissionMode"),
        message: "bypassPermissions is refused: it lets claude write and run anything anywhere; use acceptEdits (the default) " +
          `and allow the commands it needs with agents.${name}.allowedTools`
      })
    } else if (mode !== undefined && !PERMISSION_MODES.includes(mode)) {
      problems.push({ path: at("permissionMode"), message: `unknown permission mode "${mode}" (claude accepts: ${PERMISSION_MODES.join(", ")})` })
    }
    problems.push(...(yield* Prompt.check(context.plan)))
    const args = settings.args ?? []
    for (const refused of REFUSED_ARGS) {
      if (args.includes(refused)) problems.push({ path: at("args"), message: `${refused} is refused: braid keeps claude's permission checks on` })
    }
    if (args.some((a, i) => a === "bypassPermissions" && args[i - 1] === "--permission-mode")) {
      problems.push({ path: at("args"), message: "--permission-mode bypassPermissions is refused: braid keeps claude's permission checks on" })
    }

    const command = tool.commandOf(settings, "claude")
    const found = tool.which(command[0]!, source, context.plan.baseDir)
    if (found === undefined) {
      problems.push({
        path: settings.command !== undefined ? at("command") : context.path,
        message: `claude not found: \`${command[0]}\` is not ${command[0]!.includes("/") ? "an executable file" : "on PATH"} ` +
          `(install it with \`npm install -g @anthropic-ai/claude-code\`, or set ${at("command")})`
      })
      return problems
    }
    const argv = [found, ...command.slice(1)]
    const env = environmentOf(source, settings, { configDir: undefined, timeoutMs: tool.timeoutMsOf(settings, DEFAULT_TIMEOUT_SECONDS) })
    const broken = yield* tool.checkRuns(argv, env)
    if (broken !== undefined) {
      problems.push({ path: settings.command !== undefined ? at("command") : context.path, message: broken })
      return problems
    }

    // A key or login: in the environment, in the user's claude files, or as claude itself sees it
    // (a keychain, an apiKeyHelper).
    if ([...CREDENTIAL_ENV, ...CLOUD_ENV].some((n) => (env[n] ?? "") !== "")) return problems
    if (yield* fs.exists(path.join(userConfigDirOf(source), ".credentials.json")).pipe(Effect.orElseSucceed(() => false))) return problems
    const global = yield* fs.readFileString(userGlobalConfigOf(source)).pipe(Effect.orElseSucceed(() => ""))
    if (/"primaryApiKey"\s*:\s*"[^"]/.test(global)) return problems
    const status = yield* Process.run([...argv, "auth", "status"], { env, timeoutMs: 30_000 }).pipe(Effect.option)
    if (status._tag === "Some" && status.value.exitCode === 0 && /"loggedIn"\s*:\s*true/.test(status.value.stdout)) return problems
    problems.push({
      path: context.path,
      message: "claude has no Anthropic key or login: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN, or CLAUDE_CODE_OAUTH_TOKEN " +
        `from \`claude setup-token\`), or run \`claude /login\` (looked in the environment and ${userConfigDirOf(source)})`
    })
    return problems
  })

/** The claude-code backend: Claude Code in each stream's worktree, reviewed by the plan's checks. */
export const backend: Backend.Backend<Settings> = {
  name,
  description: "Claude Code (`claude -p`) in each stream's worktree; sessions continue across a task's attempts",
  settings: Settings,
  preflight: (context) => preflight(context),
  make: (context) => Effect.map(make(context), (agent) => ({ agent }))
}
