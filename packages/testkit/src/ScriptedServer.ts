/**
 * A local model server whose replies are scripted: the real agent CLIs (claude, codex,
 * gemini) run against it offline, on 127.0.0.1, as braid's own tests do. A `Provider`
 * speaks one provider's streaming API (Anthropic Messages, OpenAI Responses, Gemini
 * streamGenerateContent); the `Responder` decides each model turn from the conversation so
 * far — tool calls that write and edit files, a closing text, an error status, a hang.
 *
 * @example
 * const server = yield* ScriptedServer.start(Anthropic.provider, (conversation) =>
 *   conversation.toolResults.length === 0
 *     ? { toolCalls: [{ name: "Write", input: { file_path: "a.txt", content: "hi" } }] }
 *     : { text: "Wrote a.txt." })
 * // point the CLI at server.url
 *
 * @since 0.1.0
 */
import { Effect, type Scope } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** A tool call the model makes. */
export interface ToolCall {
  readonly name: string
  readonly input: Readonly<Record<string, unknown>>
  /** Default: generated. */
  readonly id?: string
}

/** One scripted model turn. */
export interface Turn {
  /** What the model says (with tool calls, said before them; alone, the closing message). */
  readonly text?: string
  readonly toolCalls?: ReadonlyArray<ToolCall>
  /** Answer with an HTTP error instead of a turn. */
  readonly error?: {
    readonly status: number
    readonly message?: string
    /** Sent as `retry-after` (seconds). */
    readonly retryAfterSeconds?: number
    /** The provider's error type (e.g. `overloaded_error`, `rate_limit_error`, `usage_limit_reached`). */
    readonly type?: string
    readonly headers?: Readonly<Record<string, string>>
    /** Extra fields merged into the error body. */
    readonly body?: Readonly<Record<string, unknown>>
  }
  /**
   * A structured answer, for a client that asked for one (`@effect/ai`'s `generateObject`):
   * Anthropic gets it as the forced tool call's input, OpenAI as the JSON text of the reply.
   * Give it a wrong shape to script a reply that does not decode.
   */
  readonly object?: unknown
  /** Answer HTTP 200 with exactly this body (not JSON, cut off: a malformed reply). */
  readonly body?: string
  /** Never answer: the request stays open until the client gives up or the server closes. */
  readonly hang?: boolean
  /** Wait this long before answering. */
  readonly delayMs?: number
  /** Token counts to report (defaults are small fixed numbers). */
  readonly usage?: { readonly inputTokens?: number; readonly outputTokens?: number; readonly cacheReadTokens?: number }
}

/** The conversation a request carries, in provider-neutral terms. */
export interface Conversation {
  /** Every text the client sent (system prompt and user messages), joined. */
  readonly text: string
  /** The text of the latest user message (the prompt, on a first turn). */
  readonly lastUserText: string
  /** The outputs of tool calls returned so far, oldest first. */
  readonly toolResults: ReadonlyArray<string>
  /** Names of the tools the client offers. */
  readonly tools: ReadonlyArray<string>
  readonly model: string | undefined
  /** The request body as sent. */
  readonly raw: unknown
}

/** An HTTP reply. `chunks` are written one after another (an SSE stream), then the response ends. */
export interface Reply {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly chunks: ReadonlyArray<string>
}

/** One provider's wire format. */
export interface Provider {
  readonly name: string
  /** Whether a request is a model turn this provider answers (others go to `other`). */
  readonly isTurn: (method: string, url: URL) => boolean
  /** Reads the conversation out of a model-turn request. */
  readonly conversation: (body: unknown, url: URL) => Conversation
  /** Encodes a turn as the provider's streaming reply. */
  readonly reply: (turn: Turn, conversation: Conversation, index: number) => Reply
  /** Answers requests that are not model turns (model lists, token counts, telemetry); 404 when undefined. */
  readonly other?: (method: string, url: URL, body: unknown) => Reply | undefined
}

/** Decides the model's turn; `index` counts model-turn requests from 0. */
export type Responder = (conversation: Conversation, index: number) => Turn

/** A request the server received. */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: unknown
  /** Set for model turns. */
  readonly conversation: Conversation | undefined
  /** What the server answered: the turn's kind. */
  readonly answer: "turn" | "error" | "hang" | "other"
  readonly at: number
}

/** A running scripted server. */
export interface Server {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  readonly port: number
  /** Every request, in arrival order. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Model-turn requests being answered right now, and the most ever at once. */
  readonly inFlight: () => { readonly now: number; readonly max: number }
  readonly close: () => Promise<void>
}

const readBody = (request: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (c: Buffer) => chunks.push(c))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

/** Starts a scripted server (outside Effect: for scripts, the demo and benchmarks). */
export const listen = async (provider: Provider, respond: Responder, options: { readonly port?: number } = {}): Promise<Server> => {
  const requests: Array<RecordedRequest> = []
  const sockets = new Set<import("node:net").Socket>()
  let turns = 0
  let now = 0
  let max = 0
  const server = http.createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? "/", "http://127.0.0.1")
      const text = await readBody(request)
      let body: unknown = text
      try {
        body = text === "" ? undefined : JSON.parse(text)
      } catch {
        // not JSON: kept as text
      }
      const record = (conversation: Conversation | undefined, answer: RecordedRequest["answer"]) =>
        requests.push({ method: request.method ?? "GET", path: url.pathname + url.search, headers: request.headers, body, conversation, answer, at: Date.now() })
      const send = (reply: Reply) => {
        response.writeHead(reply.status, { "content-type": "application/json", ...reply.headers })
        for (const chunk of reply.chunks) response.write(chunk)
        response.end()
      }
      if (!provider.isTurn(request.method ?? "GET", url)) {
        record(undefined, "other")
        send(provider.other?.(request.method ?? "GET", url, body) ?? { status: 404, chunks: [JSON.stringify({ error: "not found" })] })
        return
      }
      const conversation = provider.conversation(body, url)
      const index = turns++
      const turn = respond(conversation, index)
      record(conversation, turn.hang ? "hang" : turn.error ? "error" : "turn")
      now++
      max = Math.max(max, now)
      response.on("close", () => {
        now--
      })
      if (turn.delayMs !== undefined) await new Promise((r) => setTimeout(r, turn.delayMs))
      if (turn.hang) return
      if (turn.body !== undefined) return send({ status: 200, headers: { "content-type": "application/json" }, chunks: [turn.body] })
      send(provider.reply(turn, conversation, index))
    })().catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" })
      response.end(JSON.stringify({ error: String(error) }))
    })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    inFlight: () => ({ now, max }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** Starts a scripted server for the life of the scope. */
export const start = (provider: Provider, respond: Responder, options: { readonly port?: number } = {}): Effect.Effect<Server, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => listen(provider, respond, options)),
    (server) => Effect.promise(() => server.close())
  )

/** A responder that plays turns in order, whatever the conversation (the last one repeats). */
export const sequence = (...turns: ReadonlyArray<Turn>): Responder => (_conversation, index) =>
  turns[Math.min(index, turns.length - 1)]!

/** A whole JSON reply (an error body, a model list, a token count). */
export const json = (status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): Reply => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  chunks: [JSON.stringify(body)]
})

/** Server-sent events: `event:` (when named) and `data:` lines, a blank line after each. */
export const sse = (events: ReadonlyArray<{ readonly event?: string; readonly data: unknown }>): Array<string> =>
  events.map((e) => `${e.event !== undefined ? `event: ${e.event}\n` : ""}data: ${typeof e.data === "string" ? e.data : JSON.stringify(e.data)}\n\n`)
