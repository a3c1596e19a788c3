/**
 * The `gemini` backend: Google's Gemini CLI (`@google/gemini-cli`) carries out each attempt
 * headlessly in the stream's worktree —
 * `gemini -p <prompt> -o stream-json --approval-mode auto_edit --skip-trust [-m M]` as an argv,
 * stdin closed, a timeout, a minimal environment. Edits go through without prompts
 * (`auto_edit`); shell commands only as `allowedTools` allows.
 *
 * Each stream gets its own Gemini config home (`GEMINI_CLI_HOME`, beside the run's worktrees
 * at `<repo>/.braid/runs/<runId>/gemini/<stream>`): the user's own `~/.gemini/settings.json`
 * and login are copied in, with what a headless run needs laid over them (API-key auth when a
 * key is set, one model request attempt — braid owns the backoff —, no usage statistics).
 * Transcripts stay with the run, and a retry continues the task's session (`--resume <id>`;
 * a new session is given its id up front with `--session-id`, journaled before it starts).
 *
 * The CLI's stream-json lines (`init`, `message`, `tool_use`, `tool_result`, `result`) give
 * the closing message, the session and the tokens; the cost comes from the price table. Exit
 * codes and the API error the CLI reports become typed errors: 429 and 5xx (folded into the
 * exit code as status mod 256) → `ProviderBusy`, a daily quota → `UsageLimitReached`,
 * authentication → `AgentFailed` "unavailable".
 *
 * @since 0.1.0
 */
import { Agent, type Plan, Process, Secrets, Workspace } from "@braid/core"
import { CommandExecutor, FileSystem } from "@effect/platform"
import { Effect, Either, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as os from "node:os"
import * as path from "node:path"
import type * as Backend from "./Backend.js"
import * as Tool from "./internal/tool.js"
import * as Pricing from "./Pricing.js"
import * as Prompt from "./Prompt.js"
import * as BackendSettings from "./Settings.js"

/** What the backend reads under `agents.gemini` (`Settings.Gemini`). */
export const Settings = BackendSettings.Gemini
export type Settings = BackendSettings.Gemini

/** The backend's name, as streams and plans select it. */
export const name = "gemini"

/** The provider whose limits the backend's attempts count against. */
export const provider = "google"

/** One attempt's default time limit: 30 minutes. */
export const DEFAULT_TIMEOUT_SECONDS = 30 * 60

/** The variables the CLI reads for its keys, endpoint, model and Google Cloud login. */
export const NEEDED_ENV = [
  "GEMINI_API_KEY",
  "GOOGLE_API_KEY",
  "GOOGLE_GEMINI_BASE_URL",
  "GOOGLE_VERTEX_BASE_URL",
  "GOOGLE_GENAI_USE_VERTEXAI",
  "GOOGLE_GENAI_USE_GCA",
  "GOOGLE_CLOUD_PROJECT",
  "GOOGLE_CLOUD_LOCATION",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "GEMINI_MODEL"
] as const

/** Files of the user's `~/.gemini` a stream's config home gets a copy of: login, API key file, global memory. */
export const COPIED_FILES = ["oauth_creds.json", "gemini-credentials.json", "google_accounts.json", ".env", "GEMINI.md"] as const

/** Longer prompts go on stdin (one argv string may hold at most 128 KiB on Linux). */
const PROMPT_ARG_LIMIT = 100_000

/** How a gemini backend is set up (tests replace the environment). */
export interface Options {
  /** The environment braid runs in (default `process.env`): keys, PATH, HOME. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

// ---------------------------------------------------------------------------------------------
// stream-json events (extra fields are ignored; any order)

const Tokens = Schema.Struct({
  total_tokens: Schema.optional(Schema.Number),
  input_tokens: Schema.optional(Schema.Number),
  output_tokens: Schema.optional(Schema.Number),
  cached: Schema.optional(Schema.Number),
  /** Input tokens not served from the cache. */
  input: Schema.optional(Schema.Number)
})

/** The token counts of a `result` line, in all and per model. */
export const Stats = Schema.Struct({
  ...Tokens.fields,
  duration_ms: Schema.optional(Schema.Number),
  tool_calls: Schema.optional(Schema.Number),
  models: Schema.optional(Schema.Record({ key: Schema.String, value: Tokens }))
})
export type Stats = typeof Stats.Type

const ErrorInfo = Schema.Struct({
  type: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  code: Schema.optional(Schema.Union(Schema.Number, Schema.String))
})

/** One line of `-o stream-json` output. */
export const Event = Schema.Union(
  Schema.Struct({ type: Schema.Literal("init"), session_id: Schema.optional(Schema.String), model: Schema.optional(Schema.String) }),
  Schema.Struct({
    type: Schema.Literal("message"),
    role: Schema.String,
    content: Schema.optional(Schema.String),
    delta: Schema.optional(Schema.Boolean)
  }),
  Schema.Struct({
    type: Schema.Literal("tool_use"),
    tool_name: Schema.String,
    tool_id: Schema.optional(Schema.String),
    parameters: Schema.optional(Schema.Unknown)
  }),
  Schema.Struct({
    type: Schema.Literal("tool_result"),
    tool_id: Schema.optional(Schema.String),
    status: Schema.String,
    error: Schema.optional(ErrorInfo)
  }),
  Schema.Struct({
    type: Schema.Literal("result"),
    status: Schema.String,
    error: Schema.optional(ErrorInfo),
    stats: Schema.optional(Stats)
  })
)
export type Event = typeof Event.Type

/** The error object the CLI prints on stderr with `-o json` (`{session_id, error {type, message, code}}`). */
const StderrError = Schema.Struct({ error: ErrorInfo })

/** A Google API error body, as the CLI quotes it inside `[API Error: …]`. */
const GoogleError = Schema.Struct({
  error: Schema.Struct({
    code: Schema.optional(Schema.Number),
    message: Schema.optional(Schema.String),
    status: Schema.optional(Schema.String)
  })
})

const decodeEvent = Schema.decodeUnknownEither(Event)
const decodeStderrError = Schema.decodeUnknownEither(StderrError)
const decodeGoogleError = Schema.decodeUnknownEither(Schema.parseJson(GoogleError))
const decodeSettings = Schema.decodeUnknownEither(
  Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
)

/** Every stream-json event of an output, in order (other lines are skipped). */
export const eventsOf = (stdout: string): ReadonlyArray<Event> =>
  Tool.jsonLines(stdout).flatMap((line) => Either.match(decodeEvent(line), { onLeft: () => [], onRight: (e) => [e] }))

/** What an attempt's events say, gathered. */
export interface Transcript {
  readonly sessionId: string | undefined
  readonly model: string | undefined
  /** The closing assistant message: what it said after its last tool call. */
  readonly summary: string
  readonly result: Extract<Event, { type: "result" }> | undefined
  /** Tool calls the CLI refused (outside the workspace, not allowed, not available). */
  readonly denials: ReadonlyArray<string>
}

/** Error types of `tool_result` lines that mean the call was refused, not that it failed. */
const DENIAL_TYPES = new Set(["policy_violation", "tool_not_registered", "permission_denied"])

const describeCall = (use: Extract<Event, { type: "tool_use" }> | undefined, fallback: string): string => {
  if (use === undefined) return fallback
  const p = (typeof use.parameters === "object" && use.parameters !== null ? use.parameters : {}) as Record<string, unknown>
  const target = [p.command, p.file_path, p.dir_path, p.path].find((v) => typeof v === "string")
  return target === undefined ? use.tool_name : `${use.tool_name} ${String(target)}`
}

/** Gathers the session, model, closing message, result and refused calls from the events. */
export const transcriptOf = (events: ReadonlyArray<Event>): Transcript => {
  let sessionId: string | undefined
  let model: string | undefined
  let result: Transcript["result"]
  // Assistant text blocks, all of them and those since the last tool call.
  const blocks: Array<string> = []
  let sinceTool: Array<string> = []
  let current = ""
  const close = () => {
    if (current.trim() !== "") {
      blocks.push(current.trim())
      sinceTool.push(current.trim())
    }
    current = ""
  }
  const uses = new Map<string, Extract<Event, { type: "tool_use" }>>()
  const denials: Array<string> = []
  for (const event of events) {
    switch (event.type) {
      case "init":
        sessionId = event.session_id ?? sessionId
        model = event.model ?? model
        break
      case "message":
        if (event.role !== "assistant") break
        // Deltas continue the message being streamed; a whole message starts a new one.
        if (event.delta !== true) close()
        current += event.content ?? ""
        break
      case "tool_use":
        close()
        sinceTool = []
        if (event.tool_id !== undefined) uses.set(event.tool_id, event)
        break
      case "tool_result": {
        close()
        const message = event.error?.message ?? ""
        if (
          event.status === "error" &&
          (DENIAL_TYPES.has(event.error?.type ?? "") || /not in workspace|outside the allowed workspace|denied by policy/i.test(message))
        ) {
          const call = describeCall(event.tool_id === undefined ? undefined : uses.get(event.tool_id), event.tool_id ?? "a tool call")
          denials.push(message === "" ? call : `${call}: ${message}`)
        }
        break
      }
      case "result":
        result = event
        break
    }
  }
  close()
  const summary = sinceTool.length > 0 ? sinceTool.join("\n\n") : (blocks.at(-1) ?? "")
  return { sessionId, model, summary, result, denials }
}

// ---------------------------------------------------------------------------------------------
// usage

/** The chat model of a run: the one that used the most tokens (the router's own calls use few). */
const mainModelOf = (stats: Stats | undefined): string | undefined =>
  Object.entries(stats?.models ?? {}).sort(([, a], [, b]) => (b.total_tokens ?? 0) - (a.total_tokens ?? 0))[0]?.[0]

const tokensOf = (t: typeof Tokens.Type): Pricing.Tokens => {
  const cached = t.cached ?? 0
  return {
    inputTokens: t.input ?? Math.max(0, (t.input_tokens ?? 0) - cached),
    outputTokens: t.output_tokens ?? 0,
    cacheReadTokens: cached
  }
}

/**
 * The usage of a run: tokens as the CLI counts them (uncached input, output, cached input),
 * and the cost of each model's share at its price. No cost when a model that used tokens has
 * no price.
 */
export const usageOf = (stats: Stats | undefined, prices: Readonly<Record<string, Plan.ModelPrice>>): Agent.Usage | undefined => {
  if (stats === undefined) return undefined
  const tokens = tokensOf(stats)
  const models = Object.entries(stats.models ?? {}).filter(([, t]) => (t.total_tokens ?? 0) > 0)
  const costs = models.map(([model, t]) => Pricing.costOf(prices, model, tokensOf(t)))
  const costUsd = models.length > 0 && costs.every((c) => c !== undefined)
    ? costs.reduce((a: number, c) => a + c!, 0)
    : undefined
  return new Agent.Usage({
    inputTokens: tokens.inputTokens,
    outputTokens: tokens.outputTokens,
    cacheReadTokens: tokens.cacheReadTokens ?? 0,
    cacheWriteTokens: 0,
    ...(costUsd !== undefined ? { costUsd, costSource: "table" as const } : {})
  })
}

// ---------------------------------------------------------------------------------------------
// failures

/** What the CLI's own exit codes mean (its `FatalError` codes). */
export const EXIT_CODES: Readonly<Record<number, string>> = {
  41: "could not authenticate",
  42: "rejected its input",
  44: "could not set up its sandbox",
  52: "found its configuration invalid",
  53: "reached its session turn limit (agents.gemini.maxTurns)",
  54: "stopped on a fatal tool error",
  55: "does not trust the workspace",
  130: "was cancelled"
}

/** stderr without the CLI's start-up chatter and stack frames. */
const stderrText = (stderr: string): string =>
  stderr.split("\n").filter((line) =>
    !/^\s+at |^Warning: 256-color|^Ripgrep is not available|^\[STARTUP\]|^Loaded cached credentials/.test(line)
  ).join("\n")

/** The HTTP status a code-folded exit stands for (the CLI exits with the status mod 256). */
export const statusOfExit = (exitCode: number): number | undefined =>
  exitCode >= 144 && exitCode <= 255
    ? exitCode + 256 // 400…511
    : exitCode >= 2 && exitCode <= 87 && EXIT_CODES[exitCode] === undefined
    ? exitCode + 512 // 512…599 (529 → 17)
    : undefined

/** A delay the message asks for: "Please retry in 7.5s", "Suggested retry after 12s", "retry after 60s". */
export const retryAfterOf = (message: string): number | undefined => {
  const match = /retry (?:in|after) ([0-9.]+)\s*(ms|s)\b/i.exec(message)
  if (match === null) return undefined
  const value = Number(match[1])
  return Number.isFinite(value) ? Math.round(match[2] === "ms" ? value : value * 1000) : undefined
}

/** Messages of a quota that waiting minutes will not lift (per-day quotas, credits, a zero limit). */
const USAGE_LIMIT = /daily quota|per ?day|exhausted your daily|limit:\s*0(?![\d.])|QUOTA_EXHAUSTED|INSUFFICIENT_G1_CREDITS|usage limit/i

/** Messages of a key the provider refused (Google answers a bad key with 400). */
const AUTH_FAILURE = /API key not valid|API_KEY_INVALID|API key expired|UNAUTHENTICATED/i

/** Messages of a provider that could not be reached or dropped the connection. */
const UNREACHABLE = /fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|socket hang up|UND_ERR|premature close|network error/i

/** What a finished run of the CLI comes to: its output, or a typed error. */
export const outcomeOf = (
  run: Process.Result,
  context: {
    readonly taskId: string
    readonly prices: Readonly<Record<string, Plan.ModelPrice>>
    readonly model: string | undefined
    readonly secrets: ReadonlyArray<string | undefined>
  }
): Either.Either<Agent.AttemptOutput, Agent.AttemptError> => {
  const clean = (text: string) => Secrets.scrub(text, context.secrets)
  const failed = (message: string, reason: Agent.FailureReason = "failed") =>
    Either.left(new Agent.AgentFailed({ agent: name, taskId: context.taskId, reason, message: clean(message) }))
  const transcript = transcriptOf(eventsOf(run.stdout))
  const stderr = stderrText(run.stderr)
  const detail = Process.tail(stderr, 8, 1500)

  if (run.timedOut) return failed(`gemini did not finish within the attempt's time limit (${run.stderr.trim()})`, "timeout")
  if (run.exitCode === 130) return failed("gemini was interrupted (exit 130)", "interrupted")
  const result = transcript.result
  if (run.exitCode === 0 && result?.status === "success") {
    const model = context.model ?? mainModelOf(result.stats) ?? (transcript.model === "auto" ? undefined : transcript.model)
    const usage = usageOf(result.stats, context.prices)
    return Either.right(
      new Agent.AttemptOutput({
        summary: transcript.summary === "" ? "gemini finished without a closing message" : transcript.summary,
        ...(usage !== undefined ? { usage } : {}),
        ...(transcript.sessionId !== undefined ? { sessionId: transcript.sessionId } : {}),
        ...(model !== undefined ? { model } : {}),
        permissionDenials: transcript.denials,
        durationMs: run.durationMs
      })
    )
  }

  // The error the CLI reported: the result line (stream-json), else the JSON on stderr (json).
  const stderrError = Tool.jsonLines(run.stderr).flatMap((line) =>
    Either.match(decodeStderrError(line), { onLeft: () => [], onRight: (e) => [e.error] })
  )[0]
  const reported = result?.error?.message ?? stderrError?.message
  const message = reported ?? (detail === "" ? "no output" : detail)
  const quoted = /\{[\s\S]*\}/.exec(message)
  const google = quoted === null ? undefined : Either.getOrUndefined(decodeGoogleError(quoted[0]))
  const isApiError = reported?.startsWith("[API Error") ?? false
  // The status: the quoted API error's own, else the one folded into the exit code (trusted
  // for low exit codes only when the CLI said it was an API error).
  const status = google?.error.code ??
    (isApiError || run.exitCode >= 144 ? statusOfExit(run.exitCode) : undefined)
  const said = clean(google?.error.message ?? message).replace(/^\[API Error: ([\s\S]*)\]/, "$1").trim()
  const firstLine = said.split("\n")[0] ?? ""
  const exit = `gemini exited ${run.exitCode}`

  if (run.exitCode === 41 || status === 401 || status === 403 || (status === 400 && AUTH_FAILURE.test(message))) {
    return failed(
      `${exit}: ${status !== undefined ? `the provider refused its credentials (HTTP ${status}: ${firstLine})` : `gemini could not authenticate (${firstLine})`}; ` +
        "set GEMINI_API_KEY (or GOOGLE_API_KEY), or log in by running `gemini` once",
      "unavailable"
    )
  }
  const busy = status === 429 || status === 499 || status === 408 || (status !== undefined && status >= 500 && status <= 599)
  if (busy || (isApiError && UNREACHABLE.test(message)) || (reported === undefined && UNREACHABLE.test(stderr))) {
    if (busy && USAGE_LIMIT.test(`${said}\n${google?.error.status ?? ""}`)) {
      return Either.left(new Agent.UsageLimitReached({ agent: name, provider, message: clean(`${exit}: ${firstLine}`) }))
    }
    const retryAfterMs = retryAfterOf(said)
    return Either.left(
      new Agent.ProviderBusy({
        agent: name,
        provider,
        message: clean(`${exit}: ${status !== undefined ? `HTTP ${status}: ` : ""}${firstLine}`),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
      })
    )
  }
  if (EXIT_CODES[run.exitCode] !== undefined) {
    return failed(`${exit}: gemini ${EXIT_CODES[run.exitCode]}${said === "" ? "" : `:\n${said}`}`)
  }
  if (run.exitCode === 0 && result === undefined) {
    return failed(`gemini exited 0 without a result${detail === "" ? "" : `:\n${detail}`}`)
  }
  return failed(`${exit}${status !== undefined ? ` (HTTP ${status})` : ""}: ${said}`)
}

// ---------------------------------------------------------------------------------------------
// the stream's config home

/**
 * Where a stream's Gemini config home lives: in the run's folder
 * (`<repo>/.braid/runs/<runId>/gemini/<stream>`: the worktree's `runDir`, or beside an old-layout
 * worktree at `…/runs/<runId>/worktrees/<stream>`), else under the system's temporary directory.
 */
export const configHomeOf = (request: Pick<Agent.AttemptRequest, "runId" | "stream" | "files">): string => {
  if (request.files._tag === "Worktree" && request.files.runDir !== undefined) return path.join(request.files.runDir, "gemini", request.stream.name)
  const dir = Workspace.directoryOf(request.files) ?? ""
  const parent = path.dirname(dir)
  return path.basename(parent) === "worktrees"
    ? path.join(path.dirname(parent), "gemini", request.stream.name)
    : path.join(os.tmpdir(), "braid-gemini", request.runId, request.stream.name)
}

/** The user's own Gemini folder (`$GEMINI_CLI_HOME/.gemini`, else `~/.gemini`). */
export const userGeminiDir = (env: Readonly<Record<string, string | undefined>>): string =>
  path.join(env.GEMINI_CLI_HOME ?? env.HOME ?? os.homedir(), ".gemini")

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The settings a stream's CLI runs with: the user's own, with what a headless braid attempt
 * needs laid over them — API-key auth when a key is set (unless the user chose Vertex AI), one
 * attempt per model request (braid's shared limiter owns the backoff), no usage statistics or
 * update checks, and the turn limit.
 */
export const settingsFor = (
  user: Readonly<Record<string, unknown>>,
  options: { readonly apiKey: boolean; readonly maxTurns?: number | undefined }
): Record<string, unknown> => {
  const section = (key: string): Record<string, unknown> => (isRecord(user[key]) ? { ...user[key] } : {})
  const security = section("security")
  const auth = isRecord(security.auth) ? { ...security.auth } : {}
  if (options.apiKey && auth.selectedType !== "vertex-ai") auth.selectedType = "gemini-api-key"
  return {
    ...user,
    security: { ...security, auth },
    general: { ...section("general"), maxAttempts: 1, enableAutoUpdate: false, enableAutoUpdateNotification: false },
    privacy: { ...section("privacy"), usageStatisticsEnabled: false },
    model: { ...section("model"), ...(options.maxTurns !== undefined ? { maxSessionTurns: options.maxTurns } : {}) }
  }
}

/** Writes a stream's config home: the merged settings and copies of the user's login files. */
const prepareHome = (home: string, env: Readonly<Record<string, string | undefined>>, settings: Settings, apiKey: boolean) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const own = path.join(home, ".gemini")
    const user = userGeminiDir(env)
    yield* fs.makeDirectory(own, { recursive: true })
    yield* fs.makeDirectory(path.join(home, "tmp"), { recursive: true })
    const userSettings = yield* fs.readFileString(path.join(user, "settings.json")).pipe(
      Effect.map((text) => Either.getOrElse(decodeSettings(text), () => ({}))),
      Effect.orElseSucceed(() => ({}))
    )
    const merged = settingsFor(userSettings, { apiKey, maxTurns: settings.maxTurns })
    yield* fs.writeFileString(path.join(own, "settings.json"), `${JSON.stringify(merged, null, 2)}\n`)
    if (path.resolve(user) === path.resolve(own)) return
    for (const file of COPIED_FILES) {
      const from = path.join(user, file)
      if (!(yield* fs.exists(from))) continue
      yield* fs.copyFile(from, path.join(own, file))
      yield* fs.chmod(path.join(own, file), 0o600)
    }
  })

// ---------------------------------------------------------------------------------------------
// the backend

const executableOf = (settings: Settings, env: Readonly<Record<string, string | undefined>>) => {
  const [command, ...rest] = Tool.commandOf(settings, "gemini")
  const file = command === undefined ? undefined : Tool.which(command, env)
  return { command: command ?? "gemini", argv: file === undefined ? undefined : [file, ...rest] }
}

const apiKeyOf = (env: Readonly<Record<string, string | undefined>>): string | undefined =>
  [env.GEMINI_API_KEY, env.GOOGLE_API_KEY].find((k) => k !== undefined && k !== "")

/** The arguments of one run: the prompt (or a pointer to stdin), output format, approvals, model, session. */
export const argsOf = (
  settings: Settings,
  prompt: string,
  session: { readonly resume: string } | { readonly id: string }
): { readonly args: ReadonlyArray<string>; readonly stdin: string | undefined } => {
  const long = Buffer.byteLength(prompt) > PROMPT_ARG_LIMIT
  const args = [
    "-p",
    long ? "Carry out the task described above." : prompt,
    "-o",
    "stream-json",
    "--approval-mode",
    settings.permissionMode ?? "auto_edit",
    "--skip-trust",
    ...(settings.model !== undefined ? ["-m", settings.model] : []),
    ...(settings.allowedTools ?? []).flatMap((t) => ["--allowed-tools", t]),
    ...("resume" in session ? ["--resume", session.resume] : ["--session-id", session.id]),
    ...(settings.args ?? [])
  ]
  return { args, stdin: long ? prompt : undefined }
}

/** Builds the gemini agent; its dependencies are resolved here, so attempts need nothing. */
export const make = (context: Backend.BuildContext<Settings>, options: Options = {}) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    const fs = yield* FileSystem.FileSystem
    const source = options.env ?? process.env
    const settings = context.settings
    const timeoutMs = Tool.timeoutMsOf(settings, DEFAULT_TIMEOUT_SECONDS)
    const secrets = [source.GEMINI_API_KEY, source.GOOGLE_API_KEY]

    const attempt = Effect.fn("Gemini.attempt")(function*(request: Agent.AttemptRequest) {
      const failed = (message: string, reason: Agent.FailureReason = "failed") =>
        new Agent.AgentFailed({ agent: name, taskId: request.task.id, reason, message: Secrets.scrub(message, secrets) })
      if (request.files._tag !== "Worktree") {
        return yield* failed("the gemini agent works in a directory (a git worktree); this workspace has none (in-memory?)", "unavailable")
      }
      const { argv, command } = executableOf(settings, source)
      if (argv === undefined) {
        return yield* failed(`cannot find \`${command}\` (install @google/gemini-cli or set agents.gemini.command)`, "unavailable")
      }
      const prompt = yield* Effect.try({
        try: () => Prompt.render(request),
        catch: (e) => failed(`could not build the prompt: ${e instanceof Error ? e.message : String(e)}`)
      })
      const apiKey = apiKeyOf(source)
      const home = configHomeOf(request)
      yield* prepareHome(home, source, settings, apiKey !== undefined).pipe(
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.mapError((e) => failed(`could not prepare gemini's config home ${home}: ${e.message}`))
      )
      const env = Tool.minimalEnv(source, NEEDED_ENV, settings, {
        GEMINI_CLI_HOME: home,
        GEMINI_CLI_TRUST_WORKSPACE: "true",
        // Without it the CLI starts a second node process of itself (only to raise its heap
        // limit to half the machine's memory), which doubles each attempt's start-up (about
        // 1 CPU-s). A user who wants that relaunch sets GEMINI_CLI_NO_RELAUNCH to "".
        GEMINI_CLI_NO_RELAUNCH: source.GEMINI_CLI_NO_RELAUNCH ?? "true",
        // `gemini-api-key` auth reads GEMINI_API_KEY only.
        GEMINI_API_KEY: source.GEMINI_API_KEY ?? apiKey,
        GOOGLE_GEMINI_BASE_URL: settings.baseUrl ?? source.GOOGLE_GEMINI_BASE_URL,
        // The CLI's error reports (which quote the conversation) stay with the run.
        TMPDIR: path.join(home, "tmp"),
        NO_COLOR: "1"
      })

      const run = (session: { readonly resume: string } | { readonly id: string }) =>
        Effect.gen(function*() {
          if ("id" in session) yield* request.note({ _tag: "Session", sessionId: session.id })
          const { args, stdin } = argsOf(settings, prompt, session)
          // Confined: its stream's home, the user's settings and login read-only, the Gemini API (or the base URL's).
          const sandbox = Tool.allowance({
            home,
            login: [userGeminiDir(source)],
            urls: env.GOOGLE_GEMINI_BASE_URL !== undefined ? [env.GOOGLE_GEMINI_BASE_URL] : ["https://generativelanguage.googleapis.com", "https://oauth2.googleapis.com"]
          })
          return yield* Tool.runAttempt(name, request, { argv: [...argv, ...args], env, timeoutMs, stdin, sandbox })
        }).pipe(Effect.provideService(CommandExecutor.CommandExecutor, executor))

      let result = yield* run(request.session !== undefined ? { resume: request.session } : { id: randomUUID() })
      // A session the CLI cannot resume (another machine's, a cleaned run, one whose first
      // request failed before the model answered) starts afresh under a new id (exit 42).
      if (request.session !== undefined && !result.timedOut && /Error resuming session/i.test(result.stderr)) {
        yield* Effect.logDebug(`gemini could not resume session ${request.session}; starting a new one`)
        result = yield* run({ id: randomUUID() })
      }
      return yield* Either.match(
        outcomeOf(result, { taskId: request.task.id, prices: request.plan.prices, model: settings.model, secrets }),
        { onLeft: Effect.fail, onRight: Effect.succeed }
      )
    })

    return { agent: { name, provider, attempt } satisfies Agent.Service }
  })

/** Every problem that stops the gemini backend from running: the executable, its start, credentials, the workspace. */
export const preflight = (context: Backend.PreflightContext<Settings>, options: Options = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const source = options.env ?? process.env
    const problems: Array<Backend.Problem> = []
    problems.push(...Tool.worktreeProblems(context, "gemini edits files"))
    const { argv, command } = executableOf(context.settings, source)
    if (argv === undefined) {
      problems.push({
        path: context.path,
        message: `gemini: cannot find \`${command}\` on PATH or in node_modules/.bin; install @google/gemini-cli (npm i -g @google/gemini-cli) or set agents.gemini.command`
      })
    } else {
      const problem = yield* Tool.checkRuns(argv, Tool.minimalEnv(source, NEEDED_ENV, context.settings, { NO_COLOR: "1" }))
      if (problem !== undefined) problems.push({ path: context.path, message: `gemini: ${Secrets.scrub(problem, [source.GEMINI_API_KEY, source.GOOGLE_API_KEY])}` })
    }
    const user = userGeminiDir(source)
    const loggedIn = yield* Effect.forEach(COPIED_FILES.filter((f) => f !== "GEMINI.md"), (f) => fs.exists(path.join(user, f)).pipe(Effect.orElseSucceed(() => false)))
    const vertex = source.GOOGLE_GENAI_USE_VERTEXAI === "true" && (source.GOOGLE_CLOUD_PROJECT !== undefined || source.GOOGLE_APPLICATION_CREDENTIALS !== undefined)
    if (apiKeyOf(source) === undefined && !vertex && !loggedIn.some((b) => b)) {
      problems.push({
        path: context.path,
        message: `gemini: no credentials; set GEMINI_API_KEY (or GOOGLE_API_KEY), or log in by running \`gemini\` once (no login found in ${user})`
      })
    }
    return problems
  })

/** The gemini backend: Google's Gemini CLI, headless, in each stream's worktree. */
export const backend: Backend.Backend<Settings> = {
  name,
  description: "Google's Gemini CLI (`gemini -p … -o stream-json --approval-mode auto_edit`) in each stream's worktree",
  settings: Settings,
  preflight: (context) => preflight(context),
  make: (context) => make(context)
}
