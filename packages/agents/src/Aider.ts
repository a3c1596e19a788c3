/**
 * The `aider` backend: runs aider (aider-chat) once per attempt with the prompt in a message
 * file — `aider --message-file <file> --yes-always --no-auto-commits --no-stream --no-pretty
 * --no-check-update --analytics-disable … [--model M] [files…]`, an argv with stdin closed, in
 * the stream's worktree, with a timeout and a minimal environment.
 *
 * Aider exits 0 even when its edits failed, so its exit code proves nothing: the engine decides
 * what changed from the worktree, and this backend reports only what aider printed. Tokens and
 * cost come from aider's text (`Tokens: 1.2k sent, 345 received. Cost: $0.01 message, $0.02
 * session.`); rate-limit and overload errors (`litellm.RateLimitError`, 429, overloaded) are
 * `ProviderBusy` when aider applied no edit, an exhausted quota is `UsageLimitReached`, and an
 * authentication error fails the attempt as `unavailable`.
 *
 * Settings (`agents.aider`): `command` (default `aider`), `model` (`--model`; `openai/<name>`
 * for an OpenAI-compatible `baseUrl`), `args` (extra options, before the files), `baseUrl`
 * (`OPENAI_API_BASE`), `timeoutSeconds` (default 1800), `env` (more variables passed through),
 * `provider` (default: from the model's prefix — `anthropic/`, `claude` → anthropic, `gemini`
 * → google — else openai).
 *
 * @since 0.1.0
 */
import { Agent, Plan, Process, Secrets } from "@braid/core"
import { CommandExecutor, FileSystem } from "@effect/platform"
import { Effect } from "effect"
import * as path from "node:path"
import type * as Backend from "./Backend.js"
import * as tool from "./internal/tool.js"
import * as Pricing from "./Pricing.js"
import * as Prompt from "./Prompt.js"
import * as BackendSettings from "./Settings.js"

/** What the backend reads under `agents.aider` (`Settings.Aider`). */
export const Settings = BackendSettings.Aider
export type Settings = BackendSettings.Aider

/** The backend's name, as streams and plans select it. */
export const name = "aider"

/** Default time one attempt may take. */
export const DEFAULT_TIMEOUT_SECONDS = 30 * 60

/**
 * Variables aider reads for its providers (through litellm), passed through when set: keys,
 * base URLs and cloud credentials. Anything else goes through only when `env` names it.
 */
export const ENV = [
  "OPENAI_API_KEY",
  "OPENAI_API_BASE",
  "OPENAI_ORGANIZATION",
  "ANTHROPIC_API_KEY",
  "GEMINI_API_KEY",
  "GOOGLE_API_KEY",
  "DEEPSEEK_API_KEY",
  "OPENROUTER_API_KEY",
  "GROQ_API_KEY",
  "MISTRAL_API_KEY",
  "XAI_API_KEY",
  "COHERE_API_KEY",
  "AZURE_API_KEY",
  "AZURE_API_BASE",
  "AZURE_API_VERSION",
  "OLLAMA_API_BASE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_REGION",
  "AWS_PROFILE"
] as const

/**
 * The options braid always gives aider: one message then exit, no questions, no commits (braid
 * commits), plain output, nothing fetched or suggested beyond the task, no `.gitignore` edits.
 */
export const FIXED_OPTIONS = [
  "--yes-always",
  "--no-auto-commits",
  "--no-stream",
  "--no-pretty",
  "--no-check-update",
  "--analytics-disable",
  "--no-gitignore",
  "--no-detect-urls",
  "--no-suggest-shell-commands",
  "--no-show-model-warnings"
] as const

/** The provider whose limits aider's attempts count against: the settings', else the model's. */
export const providerOf = (settings: Settings): string => {
  if (settings.provider !== undefined) return settings.provider
  const model = settings.model?.toLowerCase() ?? ""
  if (model.startsWith("anthropic/") || model.startsWith("claude")) return "anthropic"
  if (model.startsWith("gemini")) return "google"
  return "openai"
}

/** What aider's `Tokens: … Cost: …` lines add up to. */
export interface Spend {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheReadTokens: number
  readonly cacheWriteTokens: number
  /** The session's cost as aider last reported it; undefined when it printed none. */
  readonly costUsd: number | undefined
  /** How many replies reported tokens. */
  readonly replies: number
}

/** `1.2k` → 1200, `12k` → 12000, `1.5M` → 1500000, `345` → 345 (aider rounds). */
export const tokenCount = (text: string): number => {
  const match = /^([\d.,]+)\s*([kKmM]?)$/.exec(text.trim())
  if (match === null) return 0
  const n = Number(match[1]!.replace(/,/g, ""))
  const unit = match[2]!.toLowerCase()
  return Math.round(unit === "k" ? n * 1_000 : unit === "m" ? n * 1_000_000 : n)
}

const TOKENS_LINE = /^Tokens:\s*(.+?)\.(?:\s+Cost:\s*(.+))?$/

/**
 * Adds up aider's token lines: one per reply, `Tokens: 2.5k sent, 1.2k cache write, 3.1k cache
 * hit, 345 received. Cost: $0.01 message, $0.02 session.` (the cache parts only when there
 * were some). The session cost is cumulative, so the last one counts.
 */
export const parseSpend = (output: string): Spend => {
  let inputTokens = 0
  let outputTokens = 0
  let cacheReadTokens = 0
  let cacheWriteTokens = 0
  let session: number | undefined
  let messages: number | undefined
  let replies = 0
  for (const line of output.split("\n")) {
    const match = TOKENS_LINE.exec(line.trim())
    if (match === null) continue
    replies++
    for (const part of match[1]!.split(",")) {
      const [, count, what] = /^\s*([\d.]+\s*[kKmM]?)\s+(.+?)\s*$/.exec(part) ?? []
      if (count === undefined || what === undefined) continue
      if (what === "sent") inputTokens += tokenCount(count)
      else if (what === "received") outputTokens += tokenCount(count)
      else if (what === "cache hit") cacheReadTokens += tokenCount(count)
      else if (what === "cache write") cacheWriteTokens += tokenCount(count)
    }
    const cost = match[2] ?? ""
    const sessionCost = /\$\s*([\d.]+)\s+session/.exec(cost)
    if (sessionCost !== null) session = Number(sessionCost[1])
    const messageCost = /\$\s*([\d.]+)\s+message/.exec(cost)
    if (messageCost !== null) messages = (messages ?? 0) + Number(messageCost[1])
  }
  return { inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens, costUsd: session ?? messages, replies }
}

/** What aider's output says happened, beyond tokens. */
export type Outcome =
  | { readonly _tag: "Done" }
  | { readonly _tag: "Busy"; readonly message: string; readonly retryAfterMs: number | undefined }
  | { readonly _tag: "QuotaExhausted"; readonly message: string }
  | { readonly _tag: "AuthFailed"; readonly message: string }

const QUOTA = /insufficient_quota|exceeded your current quota|credit balance is too low/i
const AUTH = /litellm\.(?:AuthenticationError|PermissionDeniedError)|not able to authenticate you|Incorrect API key/i
const BUSY =
  /litellm\.(?:RateLimitError|InternalServerError|ServiceUnavailableError|APIConnectionError|Timeout|APIError)|rate limited you|servers are down or overloaded|overloaded_error|Error code: (?:429|5\d\d)\b/i
const APPLIED = /^Applied edit to /m

/** The first line matching `pattern`, as the message (keys in it are redacted). */
const lineOf = (output: string, pattern: RegExp): string =>
  Secrets.scrub(output.split("\n").find((l) => pattern.test(l))?.trim() ?? "")

/**
 * Classifies aider's output. A provider error counts only when aider applied no edit: once it
 * changed files, the attempt is judged on them like any other.
 */
export const classify = (output: string): Outcome => {
  if (APPLIED.test(output)) return { _tag: "Done" }
  if (QUOTA.test(output)) return { _tag: "QuotaExhausted", message: lineOf(output, QUOTA) }
  if (AUTH.test(output)) return { _tag: "AuthFailed", message: lineOf(output, AUTH) }
  if (BUSY.test(output)) {
    const wait = /try again in\s+([\d.]+)\s*(ms|s|seconds?)\b/i.exec(output)
    return {
      _tag: "Busy",
      message: lineOf(output, BUSY),
      retryAfterMs: wait === null ? undefined : Number(wait[1]) * (wait[2] === "ms" ? 1 : 1000)
    }
  }
  return { _tag: "Done" }
}

const ANNOUNCEMENT = /^(Aider v|Models?:|Main model:|Weak model:|Editor model:|Git repo:|Repo-map:|Added .* to the chat|Tokens:|Warning:|Creating empty file|Restored previous|https:\/\/aider\.chat)/

/** Aider's own words about the attempt: its output without the start-up lines and token counts. */
export const summaryOf = (output: string): string => {
  const text = output.split("\n").filter((l) => !ANNOUNCEMENT.test(l.trim())).join("\n")
  const tail = Process.tail(text, 30, 3000)
  return tail.trim() === "" ? "aider printed nothing" : Secrets.scrub(tail.trim())
}

/** The model aider said it used (`Model: gpt-4o with diff edit format`). */
export const modelOf = (output: string): string | undefined =>
  /^(?:Main model|Model):\s*(\S+)/m.exec(output)?.[1]

/** The model's name without a litellm provider prefix (`openai/gpt-4.1` → `gpt-4.1`), for prices. */
const bareModel = (model: string) => model.includes("/") ? model.slice(model.lastIndexOf("/") + 1) : model

/** The files given to aider's chat: the stream's scope entries and earlier tasks' changes that are files in the worktree. */
const chatFiles = (request: Agent.AttemptRequest, worktree: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    // A scope entry may list several paths ("src/app.js, src/routes.js"): each is a candidate.
    const candidates = [...Plan.scopePathsOf(request.stream), ...request.earlier.flatMap((e) => e.changedFiles)]
    const files: Array<string> = []
    for (const candidate of new Set(candidates)) {
      if (/[*?[\]{}]/.test(candidate) || path.isAbsolute(candidate) || candidate.split(/[\\/]/).includes("..")) continue
      const info = yield* fs.stat(path.join(worktree, candidate)).pipe(Effect.option)
      if (info._tag === "Some" && info.value.type === "File") files.push(candidate)
    }
    return files
  })

/** The entries aider keeps in the directory it runs in (`.aider.tags.cache.v4/`, histories). */
const aiderEntries = (worktree: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory(worktree).pipe(Effect.orElseSucceed(() => [] as Array<string>))
    return new Set(entries.filter((e) => e.startsWith(".aider")))
  })

/** Builds the aider agent; its dependencies are resolved here, so attempts need nothing. */
export const make = (context: Backend.BuildContext<Settings>) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    const fs = yield* FileSystem.FileSystem
    const prompts = yield* Prompt.make(context.plan)
    const { plan, settings } = context
    const provider = providerOf(settings)
    const command = tool.commandOf(settings, "aider")
    // A relative command is the plan's (`./bin/aider`): found from the plan's directory.
    const executable = tool.which(command[0]!, process.env, plan.baseDir) ?? command[0]!
    const timeoutMs = tool.timeoutMsOf(settings, DEFAULT_TIMEOUT_SECONDS)

    const attempt = Effect.fn("Aider.attempt")(function*(request: Agent.AttemptRequest) {
      const failed = (message: string, reason: Agent.FailureReason = "failed") =>
        new Agent.AgentFailed({ agent: name, taskId: request.task.id, message, reason })
      if (request.files._tag !== "Worktree") {
        return yield* failed("the aider agent works in a directory (a git worktree); this workspace has none (in-memory?)", "unavailable")
      }
      const worktree = request.files.dir
      const prompt = prompts.forAttempt(request)
      if (prompt._tag === "Left") return yield* failed(prompt.left.message, "unavailable")
      const env = tool.minimalEnv(process.env, ENV, settings, {
        ...(settings.baseUrl !== undefined ? { OPENAI_API_BASE: settings.baseUrl } : {}),
        NO_COLOR: "1",
        PYTHONIOENCODING: "utf-8"
      })
      // Whatever aider prints back (a rejected key's echo), no key of ours leaves this function.
      const secrets = Object.entries(env).filter(([k]) => /KEY|SECRET|TOKEN/.test(k)).map(([, v]) => v)

      const result = yield* Effect.scoped(Effect.gen(function*() {
        // The message and aider's histories live outside the worktree, so braid never commits them.
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "braid-aider-" })
        const messageFile = path.join(dir, "message.md")
        yield* fs.writeFileString(messageFile, prompt.right)
        const files = yield* chatFiles(request, worktree)
        const before = yield* aiderEntries(worktree)
        const argv = [
          executable,
          ...command.slice(1),
          "--message-file",
          messageFile,
          ...FIXED_OPTIONS,
          "--input-history-file",
          path.join(dir, "input.history"),
          "--chat-history-file",
          path.join(dir, "chat.history.md"),
          ...(settings.model !== undefined ? ["--model", settings.model] : []),
          ...(settings.args ?? []),
          ...files
        ]
        // Confined: the model API its settings name (OpenAI's and Anthropic's by default); no home of its own.
        const sandbox = tool.allowance({ urls: env.OPENAI_API_BASE !== undefined ? [env.OPENAI_API_BASE] : ["https://api.openai.com", "https://api.anthropic.com"] })
        const result = yield* tool.runAttempt(name, request, { argv, env, timeoutMs, sandbox })
        // Aider's repo-map cache appears in the worktree: what it added, it takes away again.
        for (const entry of yield* aiderEntries(worktree)) {
          if (!before.has(entry)) yield* fs.remove(path.join(worktree, entry), { recursive: true }).pipe(Effect.ignore)
        }
        return result
      })).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.catchTags({
          BadArgument: (e) => Effect.fail(failed(`could not prepare the message file: ${e.message}`)),
          SystemError: (e) => Effect.fail(failed(`could not prepare the message file: ${e.message}`))
        })
      )

      const output = Secrets.scrub(`${result.stdout}${result.stderr === "" ? "" : `\n${result.stderr}`}`, secrets)
      if (result.timedOut) return yield* failed(`aider timed out after ${Math.round(timeoutMs / 1000)} s`, "timeout")
      if (result.exitCode !== 0) {
        return yield* failed(`aider exited ${result.exitCode}:\n${Secrets.scrub(Process.tail(output, 20, 2000))}`)
      }
      const outcome = classify(output)
      switch (outcome._tag) {
        case "Busy":
          return yield* new Agent.ProviderBusy({
            agent: name,
            provider,
            message: outcome.message,
            ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {})
          })
        case "QuotaExhausted":
          return yield* new Agent.UsageLimitReached({ agent: name, provider, message: outcome.message })
        case "AuthFailed":
          return yield* failed(`aider could not authenticate with ${provider}: ${outcome.message}`, "unavailable")
      }
      const spend = parseSpend(output)
      const model = modelOf(output) ?? settings.model
      const tokens = {
        inputTokens: spend.inputTokens,
        outputTokens: spend.outputTokens,
        cacheReadTokens: spend.cacheReadTokens,
        cacheWriteTokens: spend.cacheWriteTokens
      }
      const costUsd = spend.costUsd ??
        (model === undefined ? undefined : Pricing.costOf(plan.prices, bareModel(model), tokens))
      return new Agent.AttemptOutput({
        summary: summaryOf(output),
        ...(spend.replies > 0 ? { usage: new Agent.Usage({ ...tokens, ...(costUsd !== undefined ? { costUsd, costSource: spend.costUsd !== undefined ? "tool" as const : "table" as const } : {}) }) } : {}),
        ...(spend.replies > 0 ? { turns: spend.replies } : {}),
        ...(model !== undefined ? { model } : {}),
        durationMs: result.durationMs
      })
    })

    return { name, provider, attempt } satisfies Agent.Service
  })

/** The aider backend: aider-chat, one message per attempt, judged by the plan's checks. */
export const backend: Backend.Backend<Settings> = {
  name,
  description: "aider (aider-chat): one --message-file per attempt in the stream's worktree; any model aider supports",
  settings: Settings,
  preflight: (context) =>
    Effect.gen(function*() {
      const problems: Array<Backend.Problem> = []
      problems.push(...tool.worktreeProblems(context, "aider edits files"))
      const command = tool.commandOf(context.settings, "aider")
      const env = tool.minimalEnv(process.env, ENV, context.settings)
      const found = tool.which(command[0]!, env, context.plan.baseDir)
      if (found === undefined) {
        problems.push({
          path: context.settings.command !== undefined ? "agents.aider.command" : context.path,
          message: `aider not found: \`${command[0]}\` is not ${command[0]!.includes("/") ? "an executable file" : "on PATH"} ` +
            "(install it with `python -m pip install aider-install && aider-install`, or set agents.aider.command)"
        })
        return problems
      }
      const broken = yield* tool.checkRuns([found, ...command.slice(1)], env)
      if (broken !== undefined) problems.push({ path: "agents.aider.command", message: broken })
      return problems
    }),
  make: (context) => Effect.map(make(context), (agent) => ({ agent }))
}
