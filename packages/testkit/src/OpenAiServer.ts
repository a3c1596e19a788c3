/**
 * The OpenAI Responses API as a `ScriptedServer.Provider`, as `codex` 0.169 speaks it: the
 * real `codex` CLI runs against it offline (through a custom model provider whose
 * `base_url` is the server's `/v1`). Model turns are `POST /v1/responses` answered as plain
 * server-sent events (`response.created`, `response.in_progress`, for each output item
 * `response.output_item.added`, its deltas and `response.output_item.done` — `message`
 * items with `output_text`, `function_call` items, or `custom_tool_call` items for a
 * freeform tool such as `apply_patch` — then `response.completed` with usage); errors are
 * OpenAI error bodies with `retry-after`; model lists and other side requests get a plain,
 * sensible answer.
 *
 * codex 0.169 offers the model `exec_command {cmd, workdir?}` (a shell command in the
 * workspace) among its tools; the conversation's `tools` lists what a request offered.
 *
 * Token counts: a turn's `usage.inputTokens` are the uncached prompt tokens and
 * `cacheReadTokens` the cached ones; the API reports `input_tokens` as their sum with
 * `input_tokens_details.cached_tokens`, as OpenAI does.
 *
 * A scripted error with status 200 is a response that fails mid-stream (`response.failed`
 * after `response.created`), as a model that breaks off does.
 *
 * @example
 * const server = yield* ScriptedServer.start(OpenAiServer.provider, (c) =>
 *   c.toolResults.length === 0
 *     ? { toolCalls: [{ name: "exec_command", input: { cmd: "printf 'hi\\n' > a.txt" } }] }
 *     : { text: "Wrote a.txt." })
 * // codex with -c model_providers.braid={base_url="<server.url>/v1", …}
 *
 * @since 0.1.0
 */
import type * as ScriptedServer from "./ScriptedServer.js"
import { json, sse } from "./ScriptedServer.js"

/** The model named in replies when the request names none. */
export const DEFAULT_MODEL = "gpt-5-codex"

type Item = {
  readonly type?: unknown
  readonly role?: unknown
  readonly content?: unknown
  readonly text?: unknown
  readonly output?: unknown
  readonly name?: unknown
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

const itemsOf = (value: unknown): ReadonlyArray<Item> => Array.isArray(value) ? value.filter(isObject) : []

/** The text of a message's content: a string, or `input_text` / `output_text` / `text` parts. */
const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : itemsOf(content)
      .filter((p) => (p.type === "input_text" || p.type === "output_text" || p.type === "text") && typeof p.text === "string")
      .map((p) => p.text as string)
      .join("\n")

/** A tool call's output: a string, or content parts. */
const outputOf = (output: unknown): string => typeof output === "string" ? output : textOf(output)

/** Reads the conversation out of a Responses request body. */
export const conversation = (body: unknown): ScriptedServer.Conversation => {
  const request = (isObject(body) ? body : {}) as {
    readonly instructions?: unknown
    readonly input?: unknown
    readonly tools?: unknown
    readonly model?: unknown
  }
  const texts = [typeof request.instructions === "string" ? request.instructions : ""]
  const toolResults: Array<string> = []
  let lastUserText = ""
  const input = typeof request.input === "string" ? [{ type: "message", role: "user", content: request.input }] : itemsOf(request.input)
  for (const item of input) {
    const type = item.type ?? "message"
    if (type === "message" && item.role !== "assistant") {
      const text = textOf(item.content)
      texts.push(text)
      if (item.role === "user" && text !== "") lastUserText = text
    } else if (type === "function_call_output" || type === "custom_tool_call_output" || type === "local_shell_call_output") {
      toolResults.push(outputOf(item.output))
    }
  }
  const tools = itemsOf(request.tools).flatMap((t) =>
    typeof t.name === "string" ? [t.name] : typeof t.type === "string" ? [t.type] : []
  )
  return {
    text: texts.filter((t) => t !== "").join("\n"),
    lastUserText,
    toolResults,
    tools,
    model: typeof request.model === "string" ? request.model : undefined,
    raw: body
  }
}


/** The error type and code the API uses for a status. */
const errorKindOf = (status: number): { readonly type: string; readonly code: string | null } =>
  status === 429
    ? { type: "requests", code: "rate_limit_exceeded" }
    : status === 401
    ? { type: "invalid_request_error", code: "invalid_api_key" }
    : status === 403
    ? { type: "invalid_request_error", code: "unsupported_country_region_territory" }
    : status === 404
    ? { type: "invalid_request_error", code: "model_not_found" }
    : status >= 500
    ? { type: "server_error", code: null }
    : { type: "invalid_request_error", code: null }

/**
 * An OpenAI error reply: `{error: {message, type, param, code, …body}}` with `retry-after`
 * when asked (a `usage_limit_reached` type with `resets_in_seconds` / `resets_at` in `body` is
 * how a ChatGPT plan's usage limit looks).
 */
export const errorReply = (error: NonNullable<ScriptedServer.Turn["error"]>, index: number): ScriptedServer.Reply => {
  const kind = errorKindOf(error.status)
  return json(
    error.status,
    {
      error: {
        message: error.message ?? `scripted ${error.status}`,
        type: error.type ?? kind.type,
        param: null,
        code: error.type ?? kind.code,
        ...error.body
      }
    },
    {
      "x-request-id": `req_scripted_${index}`,
      ...(error.retryAfterSeconds !== undefined ? { "retry-after": String(error.retryAfterSeconds) } : {}),
      ...error.headers
    }
  )
}

/** Whether the request offers `name` as a freeform (`custom`) tool, whose input is raw text. */
const isFreeform = (conversation: ScriptedServer.Conversation, name: string): boolean =>
  itemsOf((conversation.raw as { readonly tools?: unknown } | undefined)?.tools).some((t) => t.name === name && t.type === "custom")

type OutputItem = Record<string, unknown> & { readonly type: string; readonly id: string }

/** The output items of a turn as the API returns them (text first, then tool calls). */
const itemsOfTurn = (turn: ScriptedServer.Turn, conversation: ScriptedServer.Conversation, index: number): Array<OutputItem> => [
  // A structured answer is the reply's JSON text (the request asked for a `json_schema` format).
  ...(turn.object !== undefined
    ? [{
      type: "message",
      id: `msg_scripted_${index}_object`,
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: JSON.stringify(turn.object), annotations: [] }]
    }]
    : []),
  ...(turn.text !== undefined
    ? [{
      type: "message",
      id: `msg_scripted_${index}`,
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: turn.text, annotations: [] }]
    }]
    : []),
  ...(turn.toolCalls ?? []).map((call, i): OutputItem => {
    const callId = call.id ?? `call_scripted_${index}_${i}`
    if (isFreeform(conversation, call.name)) {
      const input = typeof call.input.input === "string" ? call.input.input : JSON.stringify(call.input)
      return { type: "custom_tool_call", id: `ctc_scripted_${index}_${i}`, status: "completed", call_id: callId, name: call.name, input }
    }
    return {
      type: "function_call",
      id: `fc_scripted_${index}_${i}`,
      status: "completed",
      call_id: callId,
      name: call.name,
      arguments: JSON.stringify(call.input)
    }
  })
]

/** The events that stream one output item: added (empty), its deltas, done (whole). */
const itemEvents = (item: OutputItem, outputIndex: number): Array<{ readonly type: string } & Record<string, unknown>> => {
  const base = { output_index: outputIndex, item_id: item.id }
  if (item.type === "message") {
    const text = ((item.content as ReadonlyArray<{ text: string }>)[0]?.text) ?? ""
    const part = { type: "output_text", text: "", annotations: [] }
    return [
      { type: "response.output_item.added", output_index: outputIndex, item: { ...item, status: "in_progress", content: [] } },
      { type: "response.content_part.added", ...base, content_index: 0, part },
      { type: "response.output_text.delta", ...base, content_index: 0, delta: text },
      { type: "response.output_text.done", ...base, content_index: 0, text },
      { type: "response.content_part.done", ...base, content_index: 0, part: { ...part, text } },
      { type: "response.output_item.done", output_index: outputIndex, item }
    ]
  }
  if (item.type === "function_call") {
    const args = item.arguments as string
    const half = Math.floor(args.length / 2)
    return [
      { type: "response.output_item.added", output_index: outputIndex, item: { ...item, status: "in_progress", arguments: "" } },
      // In two pieces, as the API streams a call's arguments.
      { type: "response.function_call_arguments.delta", ...base, delta: args.slice(0, half) },
      { type: "response.function_call_arguments.delta", ...base, delta: args.slice(half) },
      { type: "response.function_call_arguments.done", ...base, arguments: args },
      { type: "response.output_item.done", output_index: outputIndex, item }
    ]
  }
  return [
    { type: "response.output_item.added", output_index: outputIndex, item: { ...item, status: "in_progress", input: "" } },
    { type: "response.custom_tool_call_input.delta", ...base, delta: item.input },
    { type: "response.custom_tool_call_input.done", ...base, input: item.input },
    { type: "response.output_item.done", output_index: outputIndex, item }
  ]
}

/** Encodes a turn as a streamed Responses reply (or a whole response when the request did not ask to stream). */
export const reply = (turn: ScriptedServer.Turn, conversation: ScriptedServer.Conversation, index: number): ScriptedServer.Reply => {
  if (turn.error !== undefined && turn.error.status !== 200) return errorReply(turn.error, index)
  const model = conversation.model ?? DEFAULT_MODEL
  const id = `resp_scripted_${index}`
  const created = Math.floor(Date.now() / 1000)
  const base = { id, object: "response", created_at: created, model, output: [] as Array<unknown> }
  const headers = { "content-type": "text/event-stream", "cache-control": "no-cache", "x-request-id": `req_scripted_${index}` }
  if (turn.error !== undefined) {
    // HTTP 200, then the response fails mid-stream.
    const error = { code: turn.error.type ?? "server_error", message: turn.error.message ?? "scripted failure", ...turn.error.body }
    return {
      status: 200,
      headers,
      chunks: sse([
        { event: "response.created", data: { type: "response.created", sequence_number: 0, response: { ...base, status: "in_progress" } } },
        { event: "response.failed", data: { type: "response.failed", sequence_number: 1, response: { ...base, status: "failed", error } } }
      ])
    }
  }
  const items = itemsOfTurn(turn, conversation, index)
  const cached = turn.usage?.cacheReadTokens ?? 0
  const output = turn.usage?.outputTokens ?? 20
  const input = (turn.usage?.inputTokens ?? 100) + cached
  const usage = {
    input_tokens: input,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + output
  }
  const completed = { ...base, status: "completed", output: items, usage }
  const raw = conversation.raw as { readonly stream?: unknown } | undefined
  if (raw?.stream !== true) {
    // A whole response carries every field the API's schema requires (the `@effect/ai-openai` client checks them).
    return json(200, {
      ...completed,
      error: null,
      incomplete_details: null,
      instructions: null,
      metadata: null,
      temperature: null,
      top_p: null,
      tools: [],
      tool_choice: "auto",
      parallel_tool_calls: true
    })
  }
  const events = [
    { type: "response.created", response: { ...base, status: "in_progress" } },
    { type: "response.in_progress", response: { ...base, status: "in_progress" } },
    ...items.flatMap(itemEvents),
    { type: "response.completed", response: completed }
  ]
  return {
    status: 200,
    headers,
    chunks: sse(events.map((e, i) => ({ event: e.type, data: { ...e, sequence_number: i } })))
  }
}

/** Model turns: `POST /v1/responses` (any prefix before `/responses`, as a base URL may carry one). */
export const isTurn = (method: string, url: URL): boolean => method === "POST" && /\/responses\/*$/.test(url.pathname)

/** Side requests: model lists, connectivity probes (`HEAD`); anything else is an OpenAI-style 404. */
export const other = (method: string, url: URL): ScriptedServer.Reply | undefined => {
  const pathname = url.pathname.replace(/\/+$/, "")
  if (method === "HEAD") return { status: 200, chunks: [] }
  if (method === "GET" && pathname.endsWith("/models")) {
    return json(200, { object: "list", data: [{ id: DEFAULT_MODEL, object: "model", created: 1_757_000_000, owned_by: "scripted" }] })
  }
  if (method === "GET" && (pathname === "" || pathname === "/v1")) return json(200, { ok: true })
  return json(404, {
    error: { message: `scripted server: no ${method} ${pathname}`, type: "invalid_request_error", param: null, code: "not_found" }
  })
}

/** The OpenAI Responses API, scripted. */
export const provider: ScriptedServer.Provider = {
  name: "openai",
  isTurn,
  conversation: (body) => conversation(body),
  reply,
  other: (method, url) => other(method, url)
}
