/**
 * The `codex` backend: runs OpenAI's Codex CLI once per attempt —
 * `codex exec --json -s workspace-write -C <worktree> --skip-git-repo-check [-m M] [-c …]
 * [resume <thread>] -- "<prompt>"` — an argv with stdin closed (a prompt too long for one
 * argument goes on stdin as `-`), in the stream's worktree, with a timeout and a minimal
 * environment.
 *
 * Threads: codex names the thread itself (`thread.started`); braid reads codex's output as it
 * arrives and journals the thread at once, so a retry of the task — or the same attempt after
 * a busy provider, or after a crash — continues it with `codex exec resume <thread>`, and falls
 * back to a fresh thread when codex no longer has it.
 *
 * Each stream gets its own `CODEX_HOME` beside the run's worktrees (sessions, logs and config
 * are the stream's alone; git does not see it); the user's login (`auth.json` of
 * `$CODEX_HOME` or `~/.codex`) is linked into it, so a token refresh reaches the user's file,
 * and the user's `config.toml` seeds it. Its `tmp` folder is the attempt's `TMPDIR`, the one
 * temporary place the sandbox lets commands write (`/tmp` itself is not writable: a main
 * checkout under `/tmp` stays out of reach).
 *
 * A custom API base (`baseUrl`, else `OPENAI_BASE_URL`, which codex 0.169 itself ignores) is
 * passed as a model provider of braid's (`-c model_provider=braid -c model_providers.braid={…}`)
 * with codex's own request and stream retries switched off, so braid's shared limiter owns the
 * backoff; codex's endless reconnecting to an unreachable server is switched off too.
 *
 * Every JSONL line is decoded with a Schema; `turn.failed` is a failure whatever the exit code.
 * A busy or unreachable provider is `ProviderBusy`, an exhausted plan or quota is
 * `UsageLimitReached`, a missing or refused key or login fails as `unavailable`.
 *
 * Settings (`agents.codex`): `command` (default `codex`), `model`, `permissionMode` (the sandbox:
 * `workspace-write`, the default, or `read-only`; `danger-full-access` is refused), `args`,
 * `timeoutSeconds` (default 1800), `env`, `baseUrl`, `provider`.
 *
 * @since 0.1.0
 */
import { Agent, type Plan, Process, Sandbox, Secrets, Workspace } from "@braid/core"
import { type CommandExecutor, FileSystem } from "@effect/platform"
import { Effect, Either, FiberRef, Schema } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import type * as Backend from "./Backend.js"
import * as tool from "./internal/tool.js"
import * as Pricing from "./Pricing.js"
import * as Prompt from "./Prompt.js"
import * as BackendSettings from "./Settings.js"

/** What the backend reads under `agents.codex` (`Settings.Codex`). */
export const Settings = BackendSettings.Codex
export type Settings = BackendSettings.Codex

/** The backend's name, as streams and plans select it. */
export const name = "codex"

/** The provider whose limits codex's attempts count against. */
export const provider = "openai"

/** Default time one attempt may take. */
export const DEFAULT_TIMEOUT_SECONDS = 30 * 60

/** codex's own retries of a failed request or broken stream: none, because braid's shared limiter owns the backoff. */
export const MAX_RETRIES = 0

/** The sandbox unless the settings choose another. */
export const DEFAULT_SANDBOX = "workspace-write"

/** Sandboxes braid lets codex run in; `danger-full-access` is not among them. */
export const SANDBOXES: ReadonlyArray<string> = ["workspace-write", "read-only"]

/** Options that switch codex's sandbox off: never passed. */
export const REFUSED_ARGS: ReadonlyArray<string> = ["--dangerously-bypass-approvals-and-sandbox", "--yolo", "danger-full-access"]

/** The name of braid's model provider in codex's config, when braid routes codex to a custom API base. */
export const PROVIDER_ID = "braid"

/** Longest prompt passed as an argument; a longer one goes on stdin (an argument is capped at 128 KiB on Linux). */
export const PROMPT_ARG_LIMIT = 100_000

/** Variables that carry an OpenAI key. */
export const CREDENTIAL_ENV: ReadonlyArray<string> = ["OPENAI_API_KEY", "CODEX_API_KEY"]

/** What codex reads, passed through when set; anything else goes through only when `env` names it. */
export const ENV: ReadonlyArray<string> = [...CREDENTIAL_ENV, "OPENAI_ORGANIZATION", "OPENAI_PROJECT", "CODEX_CA_CERTIFICATE"]

// ---------------------------------------------------------------------------------------------
// JSONL events. Structs ignore fields they do not name, in any order; nulls read as absent.

const optionalNumber = Schema.optionalWith(Schema.Number, { nullable: true })
const optionalString = Schema.optionalWith(Schema.String, { nullable: true })

/** codex opened (or resumed) a thread. */
export const ThreadStarted = Schema.Struct({ type: Schema.Literal("thread.started"), thread_id: Schema.String })

/** A turn began. */
export const TurnStarted = Schema.Struct({ type: Schema.Literal("turn.started") })

/** Token counts of the thread so far (a resumed thread's include its earlier turns). */
export const TokenUsage = Schema.Struct({
  input_tokens: optionalNumber,
  cached_input_tokens: optionalNumber,
  output_tokens: optionalNumber,
  reasoning_output_tokens: optionalNumber
})

/** A turn ended well. */
export const TurnCompleted = Schema.Struct({
  type: Schema.Literal("turn.completed"),
  usage: Schema.optionalWith(TokenUsage, { nullable: true })
})

/** A turn ended badly (whatever the exit code). */
export const TurnFailed = Schema.Struct({
  type: Schema.Literal("turn.failed"),
  error: Schema.optionalWith(Schema.Struct({ message: optionalString }), { nullable: true })
})

/** An error codex reports on the way (`Reconnecting… 1/5 (…)`, or the one that ends the turn). */
export const StreamError = Schema.Struct({ type: Schema.Literal("error"), message: optionalString })

/** One thread item: `agent_message`, `command_execution`, `file_change`, `error`, or a kind braid does not read. */
export const ThreadItem = Schema.Struct({
  type: Schema.String,
  text: optionalString,
  command: optionalString,
  aggregated_output: optionalString,
  exit_code: optionalNumber,
  status: optionalString,
  message: optionalString,
  changes: Schema.optionalWith(Schema.Array(Schema.Struct({ path: Schema.String, kind: optionalString })), { nullable: true })
})

/** An item's progress. */
export const ItemEvent = Schema.Struct({
  type: Schema.Literal("item.started", "item.updated", "item.completed"),
  item: ThreadItem
})

/** Any line braid reads; others are skipped. */
export const Line = Schema.Union(ThreadStarted, TurnStarted, TurnCompleted, TurnFailed, StreamError, ItemEvent)
export type Line = typeof Line.Type

const decodeLine = Schema.decodeUnknownEither(Line)

/** What one codex run said, folded from its JSONL events. */
export interface Transcript {
  readonly threadId: string | undefined
  readonly turns: number
  /** The last `turn.completed` usage: the thread's totals. */
  readonly usage: typeof TokenUsage.Type | undefined
  /** The text of the last agent message. */
  readonly lastMessage: string | undefined
  /** Why the turn failed, when it did. */
  readonly turnFailed: string | undefined
  /** Errors reported on the way (top-level `error` events, `error` items), in order. */
  readonly errors: ReadonlyArray<string>
  /** Commands the sandbox refused. */
  readonly denials: ReadonlyArray<string>
}

/** Output of a call the sandbox stopped (a write outside the workspace, a blocked call, a patch outside the project). */
const SANDBOX_TEXT =
  /read-only file system|operation not permitted|denied by (?:the )?sandbox|sandbox (?:denied|blocked)|outside (?:of )?the (?:project|workspace|writable roots)/i

/** A command as the model wrote it: codex shows the shell line it ran (`/bin/bash -lc "…"`), quoted. */
export const describeCommand = (command: string): string => {
  const match = /^\S*sh -l?c (['"])([\s\S]*)\1$/.exec(command)
  const inner = match === null
    ? command
    : match[1] === "'"
    ? match[2]!.replace(/'\\''/g, "'")
    : match[2]!.replace(/\\([\\"$`])/g, "$1")
  return inner.length > 300 ? `${inner.slice(0, 297)}...` : inner
}

/** Reads codex's stdout: every line it understands, in order. */
export const transcriptOf = (stdout: string): Transcript => {
  let threadId: string | undefined
  let turns = 0
  let usage: typeof TokenUsage.Type | undefined
  let lastMessage: string | undefined
  let turnFailed: string | undefined
  const errors: Array<string> = []
  const denials: Array<string> = []
  for (const raw of tool.jsonLines(stdout)) {
    const decoded = decodeLine(raw)
    if (Either.isLeft(decoded)) continue
    const line = decoded.right
    switch (line.type) {
      case "thread.started":
        threadId = line.thread_id
        break
      case "turn.completed":
        turns++
        usage = line.usage ?? usage
        break
      case "turn.failed":
        turns++
        turnFailed = line.error?.message ?? "the turn failed"
        break
      case "error":
        if (line.message !== undefined) errors.push(line.message)
        break
      case "item.completed": {
        const item = line.item
        if (item.type === "agent_message" && item.text !== undefined && item.text !== "") lastMessage = item.text
        if (item.type === "error" && item.message !== undefined) errors.push(item.message)
        if (
          item.type === "command_execution" && item.command !== undefined &&
          (item.status === "declined" || SANDBOX_TEXT.test(item.aggregated_output ?? ""))
        ) {
          denials.push(describeCommand(item.command))
        }
        break
      }
    }
  }
  return { threadId, turns, usage, lastMessage, turnFailed, errors, denials }
}

// ---------------------------------------------------------------------------------------------
// Outcomes

/** codex could not resume the thread an attempt asked for (a fresh thread is opened instead). */
export class ResumeFailed extends Schema.TaggedError<ResumeFailed>()("ResumeFailed", {
  threadId: Schema.String,
  message: Schema.String
}) {}

/** Token totals a thread had before this run (subtracted from a resumed thread's totals). */
export interface Baseline {
  readonly input: number
  readonly cached: number
  readonly output: number
}

/** What classifying a run needs besides the run itself. */
export interface RunContext {
  readonly taskId: string
  readonly timeoutMs: number
  /** The thread the run resumed, when it did. */
  readonly resumed: string | undefined
  /** The thread's totals before the run (zero for a new thread). */
  readonly baseline: Baseline
  /** The model: the settings', else the one codex recorded for the thread. */
  readonly model: string | undefined
  readonly prices: Readonly<Record<string, Plan.ModelPrice>>
  /** Values that must never appear in a message (keys of the child's environment). */
  readonly secrets: ReadonlyArray<string>
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`)

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

/**
 * When a usage limit resets, as codex words it: "try again at 4:01 AM" (today or tomorrow, local
 * time), "try again at Nov 26th, 2026 4:13 AM", or a raw `resets_in_seconds` / `resets_at`.
 */
export const resetsAtOf = (text: string, now: Date = new Date()): string | undefined => {
  const inSeconds = /resets_in_seconds"?\s*[:=]\s*(\d+)/.exec(text)
  if (inSeconds !== null) return new Date(now.getTime() + Number(inSeconds[1]) * 1000).toISOString()
  const at = /resets_at"?\s*[:=]\s*(\d{9,})/.exec(text)
  if (at !== null) return new Date(Number(at[1]) * 1000).toISOString()
  const match = /try again at (?:([A-Za-z]{3})[a-z]* (\d{1,2})(?:st|nd|rd|th)?,? (\d{4}),? )?(\d{1,2}):(\d{2}) ?([AP]M)?/i.exec(text)
  if (match === null) return undefined
  const [, month, day, year, hour, minute, half] = match
  let h = Number(hour) % (half !== undefined ? 12 : 24)
  if (half?.toUpperCase() === "PM") h += 12
  if (month !== undefined) {
    const m = MONTHS.indexOf(month.toLowerCase())
    if (m < 0) return undefined
    return new Date(Number(year), m, Number(day), h, Number(minute)).toISOString()
  }
  const date = new Date(now.getFullYear(), now.getMonth(), now.getDate(), h, Number(minute))
  if (date.getTime() < now.getTime() - 60_000) date.setDate(date.getDate() + 1)
  return date.toISOString()
}

/** "Please try again in 1.5s" / "in 20ms" (the API's rate-limit wording), in milliseconds. */
export const retryAfterOf = (text: string): number | undefined => {
  const match = /try again in (\d+(?:\.\d+)?)\s*(ms|s|seconds?)\b/i.exec(text)
  if (match === null) return undefined
  const value = Number(match[1])
  return match[2]!.toLowerCase() === "ms" ? value : Math.round(value * 1000)
}

const AUTH_TEXT =
  /\b401\b|unauthorized|incorrect api key|invalid api key|invalid_api_key|missing environment variable: `?(?:OPENAI_API_KEY|CODEX_API_KEY)|not logged in|codex login|please log ?in|refresh token|token (?:has )?(?:expired|been revoked)|upgrade to plus/i
const USAGE_TEXT = /usage limit|usage_limit_reached|quota exceeded|insufficient_quota|exceeded your current quota|check your plan and billing/i
const BUSY_TEXT =
  /\b429\b|too many requests|rate limit|status:? 5\d\d|\b5\d\d (?:internal|bad gateway|service unavailable|gateway)|internal server error|overloaded|high demand|service unavailable|reconnecting|stream disconnected|connection (?:failed|refused|reset|closed)|error sending request|timed out|timeout|econnrefused|econnreset|temporarily/i

/** Lines of codex's stderr that say nothing about what went wrong. */
const NOISE = /^(?:WARNING: proceeding, even though|Reading additional input from stdin)/

/** What a finished codex run amounts to: the attempt's output, or why it failed. */
export const outcomeOf = (
  run: Process.Result,
  transcript: Transcript,
  context: RunContext
): Either.Either<Agent.AttemptOutput, Agent.AttemptError | ResumeFailed> => {
  const failed = (message: string, reason: Agent.FailureReason = "failed") =>
    Either.left(new Agent.AgentFailed({ agent: name, taskId: context.taskId, reason, message: Secrets.scrub(message, context.secrets) }))
  if (run.timedOut) {
    return failed(`codex did not finish within ${seconds(context.timeoutMs)} (agents.${name}.timeoutSeconds); it was stopped`, "timeout")
  }
  const stderr = run.stderr.split("\n").filter((l) => l.trim() !== "" && !NOISE.test(l)).join("\n")
  if (context.resumed !== undefined && transcript.threadId === undefined && run.exitCode !== 0) {
    return Either.left(new ResumeFailed({ threadId: context.resumed, message: Secrets.scrub(Process.tail(stderr, 5, 600), context.secrets) }))
  }
  const succeeded = run.exitCode === 0 && transcript.turnFailed === undefined && (transcript.usage !== undefined || transcript.lastMessage !== undefined)
  if (succeeded) return Either.right(outputOf(transcript, context, run.durationMs))

  // What codex said went wrong: the failed turn, else its last error, else the end of its stderr.
  const said = transcript.turnFailed ?? transcript.errors.at(-1) ?? Process.tail(stderr !== "" ? stderr : run.stdout, 5, 600)
  const message = Secrets.scrub(said.trim(), context.secrets)
  const text = Secrets.scrub([said, ...transcript.errors, stderr].join("\n"), context.secrets)
  if (AUTH_TEXT.test(message) || (transcript.turnFailed === undefined && AUTH_TEXT.test(text))) {
    return failed(
      `codex cannot use its OpenAI key or login (${message}): set OPENAI_API_KEY (or CODEX_API_KEY), or run \`codex login\``,
      "unavailable"
    )
  }
  if (USAGE_TEXT.test(message)) {
    return Either.left(new Agent.UsageLimitReached({ agent: name, provider, message, resetsAt: resetsAtOf(text) }))
  }
  if (BUSY_TEXT.test(message)) {
    const retryAfterMs = retryAfterOf(text)
    return Either.left(new Agent.ProviderBusy({ agent: name, provider, message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }))
  }
  if (transcript.turnFailed !== undefined) {
    return failed(`codex's turn failed${run.exitCode !== 0 ? ` (exit ${run.exitCode})` : ""}: ${message}`)
  }
  return failed(`codex exited ${run.exitCode}${message === "" ? " without saying why" : `:\n${message}`}`)
}

/** The attempt's output from a completed turn: this run's share of the thread's tokens, priced. */
const outputOf = (transcript: Transcript, context: RunContext, durationMs: number): Agent.AttemptOutput => {
  const usage = transcript.usage
  const share = (total: number | undefined, before: number) => Math.max(0, (total ?? 0) - before)
  const input = share(usage?.input_tokens, context.baseline.input)
  const cached = Math.min(input, share(usage?.cached_input_tokens, context.baseline.cached))
  const tokens = { inputTokens: input - cached, outputTokens: share(usage?.output_tokens, context.baseline.output), cacheReadTokens: cached }
  const costUsd = Pricing.costOf(context.prices, context.model, tokens)
  const sessionId = transcript.threadId ?? context.resumed
  return new Agent.AttemptOutput({
    summary: Secrets.scrub(transcript.lastMessage ?? "", context.secrets),
    ...(usage !== undefined ? { usage: new Agent.Usage({ ...tokens, ...(costUsd !== undefined ? { costUsd, costSource: "table" as const } : {}) }) } : {}),
    ...(sessionId !== undefined ? { sessionId } : {}),
    turns: transcript.turns,
    ...(context.model !== undefined ? { model: context.model } : {}),
    permissionDenials: [...new Set(transcript.denials)],
    durationMs
  })
}

// ---------------------------------------------------------------------------------------------
// Invocation

/** The API base codex is routed to: the settings', else `OPENAI_BASE_URL`; a bare host gets `/v1`. */
export const baseUrlOf = (settings: Settings, source: Readonly<Record<string, string | undefined>>): string | undefined => {
  const raw = settings.baseUrl ?? (source.OPENAI_BASE_URL !== "" ? source.OPENAI_BASE_URL : undefined)
  if (raw === undefined) return undefined
  const trimmed = raw.replace(/\/+$/, "")
  const bare = /^[a-z][a-z0-9+.-]*:\/\/[^/]+$/i.test(trimmed)
  return bare ? `${trimmed}/v1` : trimmed
}

/** A TOML basic string (JSON's escapes are TOML's for the text a URL or a name holds). */
const tomlString = (value: string): string => JSON.stringify(value)

/**
 * The `-c` overrides of one run: no endless reconnecting to an unreachable server; `/tmp` not
 * writable in the sandbox (the attempt's scratch space is its `TMPDIR`, in the stream's codex
 * home); and — with a custom API base — braid's model provider, using the key in
 * `OPENAI_API_KEY` (else codex's own login) and none of codex's own retries.
 */
export const configArgsOf = (baseUrl: string | undefined, keyInEnv: boolean): ReadonlyArray<string> => {
  const args = ["-c", "features.unbounded_connection_retries=false", "-c", "sandbox_workspace_write.exclude_slash_tmp=true"]
  if (baseUrl === undefined) return args
  const fields = [
    `name=${tomlString(PROVIDER_ID)}`,
    `base_url=${tomlString(baseUrl)}`,
    keyInEnv ? `env_key="OPENAI_API_KEY"` : "requires_openai_auth=true",
    `wire_api="responses"`,
    `request_max_retries=${MAX_RETRIES}`,
    `stream_max_retries=${MAX_RETRIES}`
  ]
  return [...args, "-c", `model_provider=${PROVIDER_ID}`, "-c", `model_providers.${PROVIDER_ID}={${fields.join(",")}}`]
}

/** How a run carries the thread: a new one, or an earlier one continued. */
export type ThreadChoice = { readonly _tag: "New" } | { readonly _tag: "Resume"; readonly id: string }

/** The argv of one attempt, and what goes on stdin (the prompt, when it is too long for an argument). */
export const argvOf = (
  command: ReadonlyArray<string>,
  settings: Settings,
  options: {
    readonly worktree: string
    readonly thread: ThreadChoice
    readonly prompt: string
    readonly baseUrl: string | undefined
    readonly keyInEnv: boolean
    /**
     * braid confines the attempt itself (bubblewrap): codex's own sandbox cannot be nested in it
     * (its commands' writes are lost), so it is switched off in favour of braid's, which keeps the
     * same bounds — the worktree and codex's home writable, the model API the only host.
     */
    readonly confinedByBraid?: boolean | undefined
  }
): { readonly argv: ReadonlyArray<string>; readonly stdin: string | undefined } => {
  const long = Buffer.byteLength(options.prompt) > PROMPT_ARG_LIMIT
  return {
    argv: [
      ...command,
      "exec",
      "--json",
      "-s",
      // Never a sandbox braid does not allow, even when preflight was skipped; inside braid's own
      // confinement codex's is off (`danger-full-access` there is braid's choice, never a setting's).
      options.confinedByBraid === true ? "danger-full-access" : SANDBOXES.includes(settings.permissionMode ?? "") ? settings.permissionMode! : DEFAULT_SANDBOX,
      "-C",
      options.worktree,
      "--skip-git-repo-check",
      ...(settings.model !== undefined ? ["-m", settings.model] : []),
      ...configArgsOf(options.baseUrl, options.keyInEnv),
      ...(settings.args ?? []),
      ...(options.thread._tag === "Resume" ? ["resume", options.thread.id] : []),
      // `--`: a prompt that starts with "-" is still the prompt; `-` reads it from stdin.
      ...(long ? ["-"] : ["--", options.prompt])
    ],
    stdin: long ? options.prompt : undefined
  }
}

/** Where the user's codex keeps its config and login: `CODEX_HOME`, else `~/.codex`. */
export const userHomeOf = (source: Readonly<Record<string, string | undefined>>): string =>
  source.CODEX_HOME !== undefined && source.CODEX_HOME !== "" ? source.CODEX_HOME : path.join(source.HOME ?? os.homedir(), ".codex")

/**
 * A stream's own `CODEX_HOME`, in the run's folder (`.braid/runs/<run>/codex/<stream>`, which
 * git does not see; for a worktree with no `runDir`, beside an old-layout `…/worktrees/<stream>`),
 * else under the system's temporary directory.
 */
export const codexHomeOf = (request: Pick<Agent.AttemptRequest, "runId" | "stream" | "files">): string => {
  if (request.files._tag === "Worktree" && request.files.runDir !== undefined) return path.join(request.files.runDir, "codex", request.stream.name)
  const parent = path.dirname(Workspace.directoryOf(request.files) ?? "")
  return path.basename(parent) === "worktrees"
    ? path.join(path.dirname(parent), "codex", request.stream.name)
    : path.join(os.tmpdir(), "braid-codex", request.runId, request.stream.name)
}

/** The file in a stream's codex home where braid keeps each thread's token totals after its last run. */
export const LEDGER = "braid-threads.json"

const Ledger = Schema.parseJson(Schema.Record({
  key: Schema.String,
  value: Schema.Struct({ input: Schema.Number, cached: Schema.Number, output: Schema.Number })
}))
const decodeLedger = Schema.decodeUnknownEither(Ledger)

// ---------------------------------------------------------------------------------------------
// codex's rollout of a thread (`$CODEX_HOME/sessions/…/rollout-…-<thread>.jsonl`): each turn
// opens with a `turn_context` (the model it used), then the Responses API items of the turn.

/** A turn's settings, as the rollout records them. */
export const RolloutTurn = Schema.Struct({
  type: Schema.Literal("turn_context"),
  payload: Schema.Struct({ model: optionalString })
})

/** A tool call or its output (Responses API items), as the rollout records them. */
export const RolloutItem = Schema.Struct({
  type: Schema.Literal("response_item"),
  payload: Schema.Union(
    Schema.Struct({ type: Schema.Literal("function_call"), name: Schema.String, arguments: Schema.String, call_id: Schema.String }),
    Schema.Struct({ type: Schema.Literal("custom_tool_call"), name: Schema.String, input: Schema.String, call_id: Schema.String }),
    Schema.Struct({ type: Schema.Literal("function_call_output", "custom_tool_call_output"), call_id: Schema.String, output: Schema.Unknown })
  )
})

const decodeRolloutLine = Schema.decodeUnknownEither(Schema.parseJson(Schema.Union(RolloutTurn, RolloutItem)))

/** What the rollout says of a thread's last turn. */
export interface LastTurn {
  readonly model: string | undefined
  /** The turn's tool calls that the sandbox refused, as the model wrote them. */
  readonly denials: ReadonlyArray<string>
}

const CallArguments = Schema.parseJson(Schema.Struct({
  cmd: optionalString,
  command: Schema.optionalWith(Schema.Union(Schema.String, Schema.Array(Schema.String)), { nullable: true })
}))
const decodeCallArguments = Schema.decodeUnknownEither(CallArguments)

const outputText = (output: unknown): string =>
  typeof output === "string"
    ? output
    : Array.isArray(output)
    ? output.map((p) => (typeof p === "object" && p !== null && typeof (p as { text?: unknown }).text === "string" ? (p as { text: string }).text : "")).join("\n")
    : JSON.stringify(output ?? "")

/** One readable line for a refused call: the command it ran, the files a patch touched, or the tool. */
const describeCall = (call: { readonly name: string; readonly arguments?: string; readonly input?: string }): string => {
  const args = call.arguments === undefined ? undefined : Either.getOrUndefined(decodeCallArguments(call.arguments))
  const command = args?.cmd ?? (typeof args?.command === "string" ? args.command : args?.command?.join(" "))
  if (command !== undefined) return describeCommand(command)
  const files = [...(call.input ?? "").matchAll(/^\*\*\* (?:Add|Update|Delete) File: (.+)$/gm)].map((m) => m[1]!.trim())
  const line = files.length > 0 ? `${call.name} ${files.join(", ")}` : call.name
  return line.length > 300 ? `${line.slice(0, 297)}...` : line
}

/**
 * Reads the last turn of a rollout: its model, and the calls the sandbox refused. (codex's own
 * events sometimes leave a refused command out; its rollout keeps every call and its output.)
 */
export const lastTurnOf = (rollout: string): LastTurn => {
  let model: string | undefined
  let calls = new Map<string, { readonly name: string; readonly arguments?: string; readonly input?: string }>()
  let denials: Array<string> = []
  for (const line of rollout.split("\n")) {
    if (!line.includes(`"turn_context"`) && !line.includes(`"response_item"`)) continue
    const decoded = decodeRolloutLine(line)
    if (Either.isLeft(decoded)) continue
    const entry = decoded.right
    if (entry.type === "turn_context") {
      model = entry.payload.model ?? model
      calls = new Map()
      denials = []
      continue
    }
    const item = entry.payload
    if (item.type === "function_call" || item.type === "custom_tool_call") {
      calls.set(item.call_id, item)
    } else {
      const call = calls.get(item.call_id)
      if (call !== undefined && SANDBOX_TEXT.test(outputText(item.output))) denials.push(describeCall(call))
    }
  }
  return { model, denials }
}

/** The scratch folder (`TMPDIR`) of a stream's codex home: the one temporary place its sandbox lets commands write. */
export const scratchOf = (codexHome: string): string => path.join(codexHome, "tmp")

/**
 * The environment of one attempt: what codex needs from braid's, the settings' passthrough,
 * then the stream's codex home and its scratch folder.
 */
export const environmentOf = (
  source: Readonly<Record<string, string | undefined>>,
  settings: Settings,
  codexHome: string | undefined
): Record<string, string> =>
  tool.minimalEnv(source, ENV, settings, {
    CODEX_HOME: codexHome ?? source.CODEX_HOME,
    TMPDIR: codexHome !== undefined ? scratchOf(codexHome) : source.TMPDIR,
    NO_COLOR: "1"
  })

/** Whether a key is in the environment codex gets. */
const keyOf = (env: Readonly<Record<string, string | undefined>>): string | undefined =>
  CREDENTIAL_ENV.map((n) => env[n]).find((v) => v !== undefined && v !== "")

/** Builds the codex agent for a plan's settings; `source` is the environment it draws from. */
export const make = (
  context: Backend.BuildContext<Settings>,
  source: Readonly<Record<string, string | undefined>> = process.env
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const executor = yield* Effect.context<CommandExecutor.CommandExecutor>()
    const { settings, plan } = context
    const command = tool.commandOf(settings, "codex")
    const executable = [tool.which(command[0]!, source, plan.baseDir) ?? command[0]!, ...command.slice(1)]
    const timeoutMs = tool.timeoutMsOf(settings, DEFAULT_TIMEOUT_SECONDS)
    const baseUrl = baseUrlOf(settings, source)
    const prompts = yield* Prompt.make(plan)

    // The stream's codex home: the user's login linked (a refresh then reaches the user's file),
    // the user's config copied once; nothing of the user's history.
    const prepareHome = (home: string) =>
      Effect.gen(function*() {
        yield* fs.makeDirectory(scratchOf(home), { recursive: true, mode: 0o700 })
        const user = userHomeOf(source)
        if (path.resolve(user) === path.resolve(home)) return
        const auth = path.join(user, "auth.json")
        const ownAuth = path.join(home, "auth.json")
        if ((yield* fs.exists(auth)) && !(yield* fs.exists(ownAuth))) {
          yield* fs.symlink(auth, ownAuth).pipe(Effect.orElse(() => fs.copyFile(auth, ownAuth)))
        }
        const config = path.join(user, "config.toml")
        const ownConfig = path.join(home, "config.toml")
        if ((yield* fs.exists(config)) && !(yield* fs.exists(ownConfig))) yield* fs.copyFile(config, ownConfig)
      })

    const readLedger = (home: string) =>
      fs.readFileString(path.join(home, LEDGER)).pipe(
        Effect.map((text) => Either.getOrElse(decodeLedger(text), (): typeof Ledger.Type => ({}))),
        Effect.orElseSucceed((): typeof Ledger.Type => ({}))
      )

    // After a completed turn: the thread's totals, so the next run on it counts only its own share.
    const writeLedger = (home: string, threadId: string, usage: typeof TokenUsage.Type) =>
      Effect.gen(function*() {
        const ledger = yield* readLedger(home)
        const entry = { input: usage.input_tokens ?? 0, cached: usage.cached_input_tokens ?? 0, output: usage.output_tokens ?? 0 }
        yield* fs.writeFileString(path.join(home, LEDGER), JSON.stringify({ ...ledger, [threadId]: entry }))
      }).pipe(Effect.ignore)

    // codex's events name no model and may leave out a refused command; its rollout has both.
    const lastTurn = (home: string, threadId: string) =>
      Effect.gen(function*() {
        const files = yield* fs.readDirectory(path.join(home, "sessions"), { recursive: true })
        const rollout = files.filter((f) => f.endsWith(`${threadId}.jsonl`)).sort().at(-1)
        if (rollout === undefined) return { model: undefined, denials: [] }
        return lastTurnOf(yield* fs.readFileString(path.join(home, "sessions", rollout)))
      }).pipe(Effect.orElseSucceed((): LastTurn => ({ model: undefined, denials: [] })))

    const attempt = Effect.fn("Codex.attempt")(function*(request: Agent.AttemptRequest) {
      const unavailable = (message: string) => new Agent.AgentFailed({ agent: name, taskId: request.task.id, reason: "unavailable", message })
      if (request.files._tag !== "Worktree") {
        return yield* unavailable("codex works in a directory (a git worktree); this workspace has none (in-memory?)")
      }
      const worktree = request.files.dir
      const home = codexHomeOf(request)
      yield* prepareHome(home).pipe(Effect.mapError((e) => unavailable(`cannot prepare codex's home ${home}: ${e.message}`)))
      const env = environmentOf(source, settings, home)
      const secrets = CREDENTIAL_ENV.map((n) => env[n]).filter((v): v is string => v !== undefined)
      const prompt = prompts.forAttempt(request)
      if (Either.isLeft(prompt)) return yield* unavailable(prompt.left.message)

      const runOnce = (thread: ThreadChoice) =>
        Effect.gen(function*() {
          // The thread is journaled the moment codex names it: a crash from then on can still continue it.
          let pending = ""
          let noted: string | undefined
          const onStdout = (text: string) =>
            Effect.gen(function*() {
              const lines = `${pending}${text}`.split("\n")
              pending = lines.pop() ?? ""
              for (const raw of tool.jsonLines(lines.join("\n"))) {
                const line = decodeLine(raw)
                if (Either.isRight(line) && line.right.type === "thread.started" && line.right.thread_id !== noted) {
                  noted = line.right.thread_id
                  yield* request.note({ _tag: "Session", sessionId: noted })
                }
              }
            })
          const baseline = thread._tag === "Resume" ? (yield* readLedger(home))[thread.id] : undefined
          const confinedByBraid = (yield* FiberRef.get(Sandbox.ambient)) !== undefined
          const { argv, stdin } = argvOf(executable, settings, { worktree, thread, prompt: prompt.right, baseUrl, keyInEnv: env.OPENAI_API_KEY !== undefined, confinedByBraid })
          // Confined: its stream's home, the user's login read-only, the OpenAI API (or the base URL's).
          const sandbox = tool.allowance({ home, login: [userHomeOf(source)], urls: baseUrl !== undefined ? [baseUrl] : ["https://api.openai.com", "https://chatgpt.com"] })
          const result = yield* tool.runAttempt(name, request, { argv, env, timeoutMs, stdin, onStdout, sandbox })
          const transcript = transcriptOf(result.stdout)
          if (transcript.threadId !== undefined && transcript.usage !== undefined) yield* writeLedger(home, transcript.threadId, transcript.usage)
          const recorded = transcript.threadId !== undefined ? yield* lastTurn(home, transcript.threadId) : undefined
          return outcomeOf(result, { ...transcript, denials: [...transcript.denials, ...(recorded?.denials ?? [])] }, {
            taskId: request.task.id,
            timeoutMs,
            resumed: thread._tag === "Resume" ? thread.id : undefined,
            baseline: baseline ?? { input: 0, cached: 0, output: 0 },
            model: settings.model ?? recorded?.model,
            prices: plan.prices,
            secrets
          })
        })

      let outcome = yield* runOnce(request.session !== undefined ? { _tag: "Resume", id: request.session } : { _tag: "New" })
      if (Either.isLeft(outcome) && outcome.left._tag === "ResumeFailed") {
        // codex no longer has it (another home, a cleaned run, a thread that never got going): start afresh.
        yield* Effect.logDebug(`codex could not resume thread ${outcome.left.threadId} (${outcome.left.message}); starting a new one`)
        outcome = yield* runOnce({ _tag: "New" })
      }
      if (Either.isRight(outcome)) return outcome.right
      const error = outcome.left
      if (error._tag === "ResumeFailed") return yield* unavailable(`codex could not start: ${error.message}`)
      return yield* Effect.fail(error)
    })

    const agent: Agent.Service = {
      name,
      provider,
      attempt: (request) => Effect.provide(attempt(request), executor)
    }
    return agent
  })

/** Everything that stops codex from running a plan, found before anything starts. */
export const preflight = (
  context: Backend.PreflightContext<Settings>,
  source: Readonly<Record<string, string | undefined>> = process.env
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { settings } = context
    const at = (field: string) => `agents.${name}.${field}`
    const problems: Array<Backend.Problem> = []
    problems.push(...tool.worktreeProblems(context, "codex edits files"))
    const mode = settings.permissionMode
    if (mode === "danger-full-access") {
      problems.push({
        path: at("permissionMode"),
        message: "danger-full-access is refused: it lets codex write and run anything anywhere; use workspace-write (the default)"
      })
    } else if (mode !== undefined && !SANDBOXES.includes(mode)) {
      problems.push({ path: at("permissionMode"), message: `unknown sandbox "${mode}" (codex's sandboxes braid allows: ${SANDBOXES.join(", ")})` })
    }
    for (const refused of REFUSED_ARGS) {
      if ((settings.args ?? []).some((a) => a === refused || a.endsWith(`=${refused}`) || a.includes(`"${refused}"`))) {
        problems.push({ path: at("args"), message: `${refused} is refused: braid keeps codex's sandbox on` })
      }
    }
    if (settings.baseUrl !== undefined && !/^https?:\/\/[^/\s]+/i.test(settings.baseUrl)) {
      problems.push({ path: at("baseUrl"), message: `"${settings.baseUrl}" is not an http(s) URL` })
    }
    problems.push(...(yield* Prompt.check(context.plan)))

    const command = tool.commandOf(settings, "codex")
    const found = tool.which(command[0]!, source, context.plan.baseDir)
    if (found === undefined) {
      problems.push({
        path: settings.command !== undefined ? at("command") : context.path,
        message: `codex not found: \`${command[0]}\` is not ${command[0]!.includes("/") ? "an executable file" : "on PATH"} ` +
          `(install it with \`npm install -g @openai/codex\`, or set ${at("command")})`
      })
      return problems
    }
    const env = environmentOf(source, settings, undefined)
    const broken = yield* tool.checkRuns([found, ...command.slice(1)], env)
    if (broken !== undefined) {
      problems.push({ path: settings.command !== undefined ? at("command") : context.path, message: Secrets.scrub(broken, [keyOf(env)]) })
      return problems
    }

    // A key in the environment, or a login (or stored key) in the user's codex home.
    if (keyOf(env) !== undefined) return problems
    const auth = path.join(userHomeOf(source), "auth.json")
    if (yield* fs.exists(auth).pipe(Effect.orElseSucceed(() => false))) return problems
    problems.push({
      path: context.path,
      message: `codex has no OpenAI key or login: set OPENAI_API_KEY (or CODEX_API_KEY), or run \`codex login\` (no ${auth})`
    })
    return problems
  })

/** The codex backend: OpenAI's Codex CLI in each stream's worktree, reviewed by the plan's checks. */
export const backend: Backend.Backend<Settings> = {
  name,
  description: "OpenAI's Codex CLI (`codex exec --json -s workspace-write`) in each stream's worktree; threads continue across a task's attempts",
  settings: Settings,
  preflight: (context) => preflight(context),
  make: (context) => Effect.map(make(context), (agent) => ({ agent }))
}
