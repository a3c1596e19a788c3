/**
 * The `llm` backend: an agent that talks to a model API directly through `@effect/ai`
 * (Anthropic Messages or OpenAI Responses), in a tool loop (`Chat`) whose tools list, read,
 * search, write and edit the stream's worktree and run the task's own check commands —
 * every path confined to the worktree (`internal/worktreeTools.ts`), every command one of the
 * plan's. A refused call is told to the model and recorded as a permission denial.
 *
 * Each attempt is bounded by a turn cap (`maxTurns`, default 30) and a token budget
 * (`maxTokens`, default 500,000 input and output tokens over all its turns); reaching either
 * fails the attempt with what it spent. A busy provider (429 with its `Retry-After`, 529,
 * 5xx, unreachable) is `ProviderBusy` for braid's shared limiter, which waits and calls
 * again: the conversation continues where it stopped (the session is kept in memory). A usage
 * or quota limit is `UsageLimitReached`. `@effect/ai` does no retrying of its own.
 *
 * A task's retry continues the same conversation, told the latest review.
 *
 * Settings (`agents.llm`): `provider` (`anthropic`, the default, or `openai`), `model`
 * (required), `baseUrl` (else `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`), `maxTurns`,
 * `maxTokens`, `timeoutSeconds` (default 1800), `env` (names passed to check commands).
 * Keys: `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`, read with `Config.redacted`.
 *
 * @since 0.1.0
 */
import type * as Chat from "@effect/ai/Chat"
import { Agent, Process } from "@braid/core"
import type { CommandExecutor } from "@effect/platform"
import { Duration, Effect, Either, Option } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs/promises"
import type * as Backend from "./Backend.js"
import * as Model from "./internal/model.js"
import * as tool from "./internal/tool.js"
import type * as WorktreeToolsModule from "./internal/worktreeTools.js"
import * as Pricing from "./Pricing.js"
import * as Prompt from "./Prompt.js"
import * as BackendSettings from "./Settings.js"

/** What the backend reads under `agents.llm` (`Settings.Llm`). */
export const Settings = BackendSettings.Llm
export type Settings = BackendSettings.Llm

/** The backend's name, as streams and plans select it. */
export const name = "llm"

/** The provider unless the settings name another. */
export const DEFAULT_PROVIDER: Model.Provider = "anthropic"
export const DEFAULT_MAX_TURNS = 30
export const DEFAULT_MAX_TOKENS = 500_000
export const DEFAULT_TIMEOUT_SECONDS = 30 * 60

/** What the model is told before the task: its tools and its bounds. */
export const SYSTEM_PROMPT = [
  "You are a coding agent working in one git worktree, through tools only.",
  "Tools: list_files, read_file, search_files, write_file, edit_file (paths relative to the working directory), and",
  "run_check (one of the task's check commands, by name). Paths outside the working directory are refused.",
  "Read before you edit. Make the change the task asks for, run its checks, then reply with a short summary of what you did",
  "and no tool call. Do not commit: braid commits what you leave in the working directory."
].join(" ")

/**
 * `@effect/ai` and the toolkit, loaded when an attempt first needs them: commands and runs that
 * use no model do not pay for loading them (see `internal/model.ts`).
 */
const loadAi = () =>
  Effect.promise(async () => {
    const [Chat, WorktreeTools] = await Promise.all([import("@effect/ai/Chat"), import("./internal/worktreeTools.js")])
    return { Chat, WorktreeTools: WorktreeTools as typeof WorktreeToolsModule }
  })

/** The conversation of one session, kept between calls of the same attempt (after a busy provider) and across a task's attempts. */
interface Session {
  readonly chat: Chat.Service
  /** The attempt the counters belong to. */
  attempt: number
  /** Whether that attempt's prompt is in the history (a call that failed left it out). */
  prompted: boolean
  turns: number
  inputTokens: number
  outputTokens: number
  cacheReadTokens: number
  denials: Array<string>
  started: number
}

/** Builds the `llm` agent for a plan's settings. */
export const make = (context: Backend.BuildContext<Settings>) =>
  Effect.gen(function*() {
    const executor = yield* Effect.context<CommandExecutor.CommandExecutor>()
    const { plan, settings } = context
    const provider = settings.provider ?? DEFAULT_PROVIDER
    const maxTurns = settings.maxTurns ?? DEFAULT_MAX_TURNS
    const maxTokens = settings.maxTokens ?? DEFAULT_MAX_TOKENS
    const timeoutMs = tool.timeoutMsOf(settings, DEFAULT_TIMEOUT_SECONDS)
    const prompts = yield* Prompt.make(plan)
    const sessions = new Map<string, Session>()

    const attempt = Effect.fn("Llm.attempt")(function*(request: Agent.AttemptRequest) {
      const unavailable = (message: string) => new Agent.AgentFailed({ agent: name, taskId: request.task.id, reason: "unavailable", message })
      if (request.files._tag !== "Worktree") return yield* unavailable("the llm agent works in a directory (a git worktree); this workspace has none (in-memory?)")
      const worktree = request.files.dir
      if (!Model.isProvider(provider)) return yield* unavailable(`unknown provider "${provider}" (agents.${name}.provider: ${Model.PROVIDERS.join(" or ")})`)
      const model = settings.model
      if (model === undefined) return yield* unavailable(`no model: set agents.${name}.model`)
      const key = yield* Model.keyOf(provider)
      if (Option.isNone(key)) return yield* unavailable(`no ${Model.KEY_ENV[provider]} in the environment`)
      const prompt = prompts.forAttempt(request)
      if (Either.isLeft(prompt)) return yield* unavailable(prompt.left.message)
      const root = yield* Effect.tryPromise(() => fs.realpath(worktree)).pipe(Effect.mapError(() => unavailable(`cannot read the worktree ${worktree}`)))
      const baseUrl = yield* Model.baseUrlOf(provider, settings.baseUrl)
      const languageModel = Model.languageModel({ provider, model, apiKey: key.value, baseUrl })
      const { Chat, WorktreeTools } = yield* loadAi()

      // The session: this attempt's own (after a busy provider), the task's previous one, or a new one.
      let sessionId = request.session
      let session = sessionId !== undefined ? sessions.get(sessionId) : undefined
      if (session === undefined || sessionId === undefined) {
        sessionId = randomUUID()
        session = {
          chat: yield* Chat.fromPrompt([{ role: "system", content: SYSTEM_PROMPT }]),
          attempt: 0,
          prompted: false,
          turns: 0,
          inputTokens: 0,
          outputTokens: 0,
          cacheReadTokens: 0,
          denials: [],
          started: Date.now()
        }
        sessions.set(sessionId, session)
      }
      if (session.attempt !== request.attempt) {
        Object.assign(session, { attempt: request.attempt, prompted: false, turns: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, denials: [], started: Date.now() })
      }
      const state = session
      const id = sessionId
      yield* request.note({ _tag: "Session", sessionId: id })

      const spent = (summary: string) => {
        const tokens = { inputTokens: state.inputTokens, outputTokens: state.outputTokens, cacheReadTokens: state.cacheReadTokens, cacheWriteTokens: 0 }
        const costUsd = Pricing.costOf(plan.prices, model, tokens)
        return new Agent.AttemptOutput({
          summary,
          // The API reports tokens only: the cost is braid's price for them.
          usage: new Agent.Usage({ ...tokens, ...(costUsd !== undefined ? { costUsd, costSource: "table" as const } : {}) }),
          sessionId: id,
          turns: state.turns,
          model,
          permissionDenials: [...state.denials],
          durationMs: Date.now() - state.started
        })
      }
      const failed = (message: string, reason: Agent.FailureReason = "failed") =>
        new Agent.AgentFailed({ agent: name, taskId: request.task.id, reason, message, spent: spent(message) })

      const handlers = WorktreeTools.handlers({
        root,
        checks: request.checks,
        env: { ...tool.minimalEnv(process.env, [], settings), BRAID_AGENT: tool.agentMarker(request) },
        denied: (line) => Effect.sync(() => void state.denials.push(WorktreeTools.denial(line))),
        started: (pid, command) => request.note({ _tag: "Process", pid, startTime: Process.startTimeOf(pid) ?? "", command })
      }, executor)
      const toolContext = yield* WorktreeTools.toolkit.toContext(handlers)

      const turn = state.chat.generateText({ prompt: state.prompted ? [] : prompt.right, toolkit: WorktreeTools.toolkit }).pipe(
        Effect.provide(toolContext),
        Effect.provide(languageModel),
        Effect.mapError((error): Agent.AttemptError => {
          const failure = Model.failureOf(error)
          switch (failure._tag) {
            case "Busy":
              return new Agent.ProviderBusy({
                agent: name,
                provider,
                message: failure.message,
                ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {})
              })
            case "Malformed":
              // A reply that does not decode is the provider's fault, not the attempt's: asked again.
              return new Agent.ProviderBusy({ agent: name, provider, message: failure.message })
            case "UsageLimit":
              return new Agent.UsageLimitReached({
                agent: name,
                provider,
                message: failure.message,
                ...(failure.resetsAt !== undefined ? { resetsAt: failure.resetsAt } : {})
              })
            case "Refused":
              // A refused key cannot work on a retry; any other refusal is this attempt's failure.
              return failed(`the ${provider} API refused the request: ${failure.message}`, failure.auth ? "unavailable" : "failed")
          }
        })
      )

      const loop = Effect.gen(function*() {
        for (;;) {
          if (state.turns >= maxTurns) return yield* failed(`stopped at its turn limit (agents.${name}.maxTurns: ${maxTurns})`)
          const tokens = state.inputTokens + state.outputTokens + state.cacheReadTokens
          if (tokens >= maxTokens) return yield* failed(`stopped at its token budget: ${tokens} tokens (agents.${name}.maxTokens: ${maxTokens})`)
          const response = yield* turn
          state.prompted = true
          state.turns++
          const usage = response.usage
          const cached = usage.cachedInputTokens ?? 0
          // OpenAI counts cached prompt tokens inside its input total; Anthropic apart from it.
          state.inputTokens += Math.max(0, (usage.inputTokens ?? 0) - (provider === "openai" ? cached : 0))
          state.cacheReadTokens += cached
          state.outputTokens += usage.outputTokens ?? 0
          if (response.toolCalls.length === 0) return spent(response.text.trim())
        }
      })

      return yield* loop.pipe(
        Effect.timeoutFail({
          duration: Duration.millis(timeoutMs),
          onTimeout: () => failed(`the model did not finish within ${Math.round(timeoutMs / 1000)} s (agents.${name}.timeoutSeconds); it was stopped`, "timeout")
        })
      )
    })

    const agent: Agent.Service = {
      name,
      provider,
      attempt: (request) => Effect.provide(attempt(request), executor)
    }
    return agent
  })

/** Everything that stops the `llm` backend from running a plan: no worktree, an unknown provider, no model, no key. */
export const preflight = (context: Backend.PreflightContext<Settings>) =>
  Effect.gen(function*() {
    const { settings } = context
    const at = (field: string) => `agents.${name}.${field}`
    const problems: Array<Backend.Problem> = [...tool.worktreeProblems(context, "the llm agent edits files")]
    const provider = settings.provider ?? DEFAULT_PROVIDER
    if (!Model.isProvider(provider)) {
      problems.push({ path: at("provider"), message: `unknown provider "${provider}" (the llm agent speaks ${Model.PROVIDERS.join(", ")})` })
    } else if (Option.isNone(yield* Model.keyOf(provider))) {
      problems.push({ path: context.path, message: `the llm agent has no ${provider} key: set ${Model.KEY_ENV[provider]}` })
    }
    if (settings.model === undefined) {
      problems.push({ path: at("model"), message: `the llm agent needs a model (e.g. claude-sonnet-4-5 for anthropic, gpt-5 for openai)` })
    }
    problems.push(...(yield* Prompt.check(context.plan)))
    return problems
  })

/** The llm backend. */
export const backend: Backend.Backend<Settings> = {
  name,
  description: "a model API (Anthropic or OpenAI, through @effect/ai) in a tool loop confined to each stream's worktree",
  settings: Settings,
  preflight: (context) => preflight(context),
  make: (context) => Effect.map(make(context), (agent) => ({ agent }))
}
