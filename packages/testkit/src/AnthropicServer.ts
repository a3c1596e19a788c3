/**
 * The Anthropic Messages API as a `ScriptedServer.Provider`: the real `claude` CLI runs
 * against it offline. Model turns are `POST /v1/messages` answered as the API streams them
 * (`message_start`, `content_block_start/delta/stop` for text and `tool_use` blocks with
 * `input_json_delta`, `message_delta` with the stop reason and usage, `message_stop`);
 * errors are Anthropic error bodies with `retry-after`; token counts, `HEAD` probes and
 * other side requests get a plain, sensible answer.
 *
 * @example
 * const server = yield* ScriptedServer.start(AnthropicServer.provider, (c) =>
 *   c.toolResults.length === 0
 *     ? { toolCalls: [{ name: "Write", input: { file_path: "a.txt", content: "hi\n" } }] }
 *     : { text: "Wrote a.txt." })
 * // claude with ANTHROPIC_BASE_URL=server.url
 *
 * @since 0.1.0
 */
import type * as ScriptedServer from "./ScriptedServer.js"
import { json, sse } from "./ScriptedServer.js"

/** The model named in replies when the request names none. */
export const DEFAULT_MODEL = "claude-sonnet-4-5-20250929"

type Block = { readonly type?: unknown; readonly text?: unknown; readonly content?: unknown; readonly name?: unknown }
type Message = { readonly role?: unknown; readonly content?: unknown }

const blocksOf = (content: unknown): ReadonlyArray<Block> =>
  typeof content === "string"
    ? [{ type: "text", text: content }]
    : Array.isArray(content)
    ? content.filter((b): b is Block => typeof b === "object" && b !== null)
    : []

const textOf = (blocks: ReadonlyArray<Block>): string =>
  blocks.filter((b) => b.type === "text" && typeof b.text === "string").map((b) => b.text as string).join("\n")

/** A tool result's content: a string, or text blocks. */
const toolResultText = (block: Block): string => typeof block.content === "string" ? block.content : textOf(blocksOf(block.content))

/** Reads the conversation out of a Messages request body. */
export const conversation = (body: unknown): ScriptedServer.Conversation => {
  const request = (typeof body === "object" && body !== null ? body : {}) as {
    readonly system?: unknown
    readonly messages?: unknown
    readonly tools?: unknown
    readonly model?: unknown
  }
  const messages = Array.isArray(request.messages) ? request.messages.filter((m): m is Message => typeof m === "object" && m !== null) : []
  const texts = [textOf(blocksOf(request.system))]
  const toolResults: Array<string> = []
  let lastUserText = ""
  for (const message of messages) {
    const blocks = blocksOf(message.content)
    if (message.role !== "user") continue
    const text = textOf(blocks)
    texts.push(text)
    if (text !== "") lastUserText = text
    for (const block of blocks) if (block.type === "tool_result") toolResults.push(toolResultText(block))
  }
  const tools = Array.isArray(request.tools)
    ? request.tools.flatMap((t: Block) => (typeof t?.name === "string" ? [t.name] : []))
    : []
  return {
    text: texts.filter((t) => t !== "").join("\n"),
    lastUserText,
    toolResults,
    tools,
    model: typeof request.model === "string" ? request.model : undefined,
    raw: body
  }
}


/** The error type the API uses for a status. */
const errorTypeOf = (status: number): string =>
  status === 429
    ? "rate_limit_error"
    : status === 529
    ? "overloaded_error"
    : status === 401
    ? "authentication_error"
    : status === 403
    ? "permission_error"
    : status === 404
    ? "not_found_error"
    : status === 400
    ? "invalid_request_error"
    : "api_error"

/** An Anthropic error reply: `{type: "error", error: {type, message}}`, with `retry-after` when asked. */
export const errorReply = (error: NonNullable<ScriptedServer.Turn["error"]>, index: number): ScriptedServer.Reply =>
  json(
    error.status,
    {
      type: "error",
      error: { type: error.type ?? errorTypeOf(error.status), message: error.message ?? `scripted ${error.status}` },
      request_id: `req_scripted_${index}`,
      ...error.body
    },
    {
      "request-id": `req_scripted_${index}`,
      ...(error.retryAfterSeconds !== undefined ? { "retry-after": String(error.retryAfterSeconds) } : {}),
      ...error.headers
    }
  )

/** The tool a request forces (`tool_choice: {type: "tool", name}`): how `generateObject` asks for a structured answer. */
const forcedTool = (conversation: ScriptedServer.Conversation): string | undefined => {
  const choice = (conversation.raw as { readonly tool_choice?: { readonly type?: unknown; readonly name?: unknown } } | undefined)?.tool_choice
  return choice?.type === "tool" && typeof choice.name === "string" ? choice.name : undefined
}

/** The content blocks of a turn as the API returns them (a scripted `object` is the forced tool's input). */
const contentOf = (turn: ScriptedServer.Turn, index: number, conversation: ScriptedServer.Conversation) => [
  ...(turn.object !== undefined
    ? [{ type: "tool_use" as const, id: `toolu_scripted_${index}_object`, name: forcedTool(conversation) ?? "generateObject", input: turn.object as Record<string, unknown> }]
    : []),
  ...(turn.text !== undefined ? [{ type: "text" as const, text: turn.text }] : []),
  ...(turn.toolCalls ?? []).map((call, i) => ({
    type: "tool_use" as const,
    id: call.id ?? `toolu_scripted_${index}_${i}`,
    name: call.name,
    input: call.input
  }))
]

/** Encodes a turn as a streamed Messages reply (or a whole message when the request did not ask to stream). */
export const reply = (turn: ScriptedServer.Turn, conversation: ScriptedServer.Conversation, index: number): ScriptedServer.Reply => {
  if (turn.error !== undefined) return errorReply(turn.error, index)
  const model = conversation.model ?? DEFAULT_MODEL
  const content = contentOf(turn, index, conversation)
  const stopReason = (turn.toolCalls ?? []).length > 0 || turn.object !== undefined ? "tool_use" : "end_turn"
  const usage = {
    input_tokens: turn.usage?.inputTokens ?? 100,
    output_tokens: turn.usage?.outputTokens ?? 20,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: turn.usage?.cacheReadTokens ?? 0
  }
  const id = `msg_scripted_${index}`
  const raw = conversation.raw as { readonly stream?: unknown } | undefined
  if (raw?.stream !== true) {
    return json(200, { id, type: "message", role: "assistant", model, content, stop_reason: stopReason, stop_sequence: null, usage })
  }
  const events: Array<{ event: string; data: unknown }> = [{
    event: "message_start",
    data: {
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 }
      }
    }
  }]
  content.forEach((block, i) => {
    if (block.type === "text") {
      events.push(
        { event: "content_block_start", data: { type: "content_block_start", index: i, content_block: { type: "text", text: "" } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: i, delta: { type: "text_delta", text: block.text } } }
      )
    } else {
      const input = JSON.stringify(block.input)
      const half = Math.floor(input.length / 2)
      events.push(
        {
          event: "content_block_start",
          data: { type: "content_block_start", index: i, content_block: { type: "tool_use", id: block.id, name: block.name, input: {} } }
        },
        // In two pieces, as the API streams a tool call's arguments.
        { event: "content_block_delta", data: { type: "content_block_delta", index: i, delta: { type: "input_json_delta", partial_json: input.slice(0, half) } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: i, delta: { type: "input_json_delta", partial_json: input.slice(half) } } }
      )
    }
    events.push({ event: "content_block_stop", data: { type: "content_block_stop", index: i } })
  })
  events.push(
    {
      event: "message_delta",
      data: { type: "message_delta", delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }
    },
    { event: "message_stop", data: { type: "message_stop" } }
  )
  return {
    status: 200,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": `req_scripted_${index}` },
    chunks: sse(events)
  }
}

/** Model turns: `POST /v1/messages` (claude adds `?beta=true`). */
export const isTurn = (method: string, url: URL): boolean => method === "POST" && url.pathname.replace(/\/+$/, "") === "/v1/messages"

/** Side requests: token counts, connectivity probes (`HEAD`), model lists; anything else is a JSON 404. */
export const other = (method: string, url: URL, body: unknown): ScriptedServer.Reply | undefined => {
  const pathname = url.pathname.replace(/\/+$/, "")
  if (method === "HEAD") return { status: 200, chunks: [] }
  if (method === "POST" && pathname === "/v1/messages/count_tokens") {
    // A rough count: about four characters a token, as the API's own estimates go.
    return json(200, { input_tokens: Math.max(1, Math.ceil(JSON.stringify(body ?? "").length / 4)) })
  }
  if (method === "GET" && pathname === "/v1/models") {
    return json(200, { data: [{ type: "model", id: DEFAULT_MODEL, display_name: "Scripted", created_at: "2025-09-29T00:00:00Z" }], has_more: false })
  }
  if (method === "GET" && (pathname === "" || pathname === "/")) return json(200, { ok: true })
  return json(404, { type: "error", error: { type: "not_found_error", message: `scripted server: no ${method} ${pathname}` } })
}

/** The Anthropic Messages API, scripted. */
export const provider: ScriptedServer.Provider = {
  name: "anthropic",
  isTurn,
  conversation: (body) => conversation(body),
  reply,
  other
}

/**
 * Headers of the unified rate limit an Anthropic account is under (what a subscription's
 * usage limit looks like on the wire): `status` rejected means the limit is reached until `resetsAt`.
 */
export const usageLimitHeaders = (
  status: "allowed" | "allowed_warning" | "rejected",
  resetsAt: Date,
  claim = "five_hour"
): Record<string, string> => ({
  "anthropic-ratelimit-unified-status": status,
  "anthropic-ratelimit-unified-reset": String(Math.floor(resetsAt.getTime() / 1000)),
  "anthropic-ratelimit-unified-representative-claim": claim
})
