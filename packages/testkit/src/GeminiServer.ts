/**
 * The Gemini API as a `ScriptedServer.Provider`: the real `gemini` CLI runs against it
 * offline (`GOOGLE_GEMINI_BASE_URL`). Model turns are
 * `POST /v1beta/models/<model>:streamGenerateContent?alt=sse`, answered as the API streams
 * them: `data:` chunks of `GenerateContentResponse` (`candidates[].content.parts` with `text`
 * and `functionCall {name, args, id}`, then `finishReason` and `usageMetadata`). Errors are
 * Google error bodies `{error: {code, message, status, details}}`, with `RetryInfo` and
 * `retry-after` when a delay is asked for and a per-day `QuotaFailure` for a usage limit.
 * The CLI's side requests (the model router's `generateContent`, `countTokens`, model
 * listings, Code Assist's `loadCodeAssist`) get a plain, sensible answer.
 *
 * @example
 * const server = yield* ScriptedServer.start(GeminiServer.provider, (c) =>
 *   c.toolResults.length === 0
 *     ? { toolCalls: [{ name: "write_file", input: { file_path: "a.txt", content: "hi\n" } }] }
 *     : { text: "Wrote a.txt." })
 * // gemini with GOOGLE_GEMINI_BASE_URL=server.url
 *
 * @since 0.1.0
 */
import type * as ScriptedServer from "./ScriptedServer.js"
import { json, sse } from "./ScriptedServer.js"

/** The model named in replies when the request names none. */
export const DEFAULT_MODEL = "gemini-2.5-pro"

/** What `error.type` means to this provider: a usage (per-day quota) limit rather than a rate limit. */
export const USAGE_LIMIT = "usage_limit_reached"

type Part = {
  readonly text?: unknown
  readonly thought?: unknown
  readonly functionCall?: unknown
  readonly functionResponse?: { readonly name?: unknown; readonly response?: unknown } | undefined
}
type Content = { readonly role?: unknown; readonly parts?: unknown }

const objects = <A extends object>(value: unknown): ReadonlyArray<A> =>
  Array.isArray(value) ? value.filter((v): v is A => typeof v === "object" && v !== null) : []

const textOf = (parts: ReadonlyArray<Part>): string =>
  parts.filter((p) => typeof p.text === "string" && p.thought !== true).map((p) => p.text as string).join("\n")

/** A function response as text: its `output` (or `error`) when a string, else its JSON. */
const responseText = (part: Part): string => {
  const response = part.functionResponse?.response as { readonly output?: unknown; readonly error?: unknown } | undefined
  return typeof response?.output === "string"
    ? response.output
    : typeof response?.error === "string"
    ? response.error
    : JSON.stringify(response ?? null)
}

/** The model a request path names: `/v1beta/models/<model>:<method>`. */
export const modelOf = (url: URL): string | undefined => {
  const match = /\/models\/([^/:]+)(?::|$)/.exec(url.pathname)
  return match === null ? undefined : decodeURIComponent(match[1]!)
}

/** Reads the conversation out of a `streamGenerateContent` request body. */
export const conversation = (body: unknown, url: URL): ScriptedServer.Conversation => {
  const request = (typeof body === "object" && body !== null ? body : {}) as {
    readonly contents?: unknown
    readonly systemInstruction?: { readonly parts?: unknown } | undefined
    readonly tools?: unknown
  }
  const texts = [textOf(objects<Part>(request.systemInstruction?.parts))]
  const toolResults: Array<string> = []
  let lastUserText = ""
  for (const content of objects<Content>(request.contents)) {
    if (content.role !== "user") continue
    const parts = objects<Part>(content.parts)
    const text = textOf(parts)
    texts.push(text)
    if (text !== "") lastUserText = text
    for (const part of parts) if (part.functionResponse !== undefined) toolResults.push(responseText(part))
  }
  const tools = objects<{ readonly functionDeclarations?: unknown }>(request.tools).flatMap((t) =>
    objects<{ readonly name?: unknown }>(t.functionDeclarations).flatMap((f) => typeof f.name === "string" ? [f.name] : [])
  )
  return {
    text: texts.filter((t) => t !== "").join("\n"),
    lastUserText,
    toolResults,
    tools,
    model: modelOf(url),
    raw: body
  }
}


/** The canonical status name Google's APIs give an HTTP status. */
export const statusNameOf = (status: number): string =>
  status === 400
    ? "INVALID_ARGUMENT"
    : status === 401
    ? "UNAUTHENTICATED"
    : status === 403
    ? "PERMISSION_DENIED"
    : status === 404
    ? "NOT_FOUND"
    : status === 429
    ? "RESOURCE_EXHAUSTED"
    : status === 499
    ? "CANCELLED"
    : status === 501
    ? "UNIMPLEMENTED"
    : status === 503
    ? "UNAVAILABLE"
    : status === 504
    ? "DEADLINE_EXCEEDED"
    : "INTERNAL"

const defaultMessageOf = (status: number, usageLimit: boolean): string =>
  usageLimit
    ? "You exceeded your current quota, please check your plan and billing details."
    : status === 429
    ? "Resource has been exhausted (e.g. check quota)."
    : status === 503
    ? "The model is overloaded. Please try again later."
    : status === 401 || status === 403
    ? "API key not valid. Please pass a valid API key."
    : `scripted ${status}`

/**
 * A Google error reply: `{error: {code, message, status, details}}`. A delay adds `retry-after`
 * and a `RetryInfo` detail (the CLI reads the detail, not the header); `type:
 * "usage_limit_reached"` adds a per-day `QuotaFailure`, which the CLI treats as terminal.
 * Any other `type` is taken as the status name.
 */
export const errorReply = (error: NonNullable<ScriptedServer.Turn["error"]>): ScriptedServer.Reply => {
  const usageLimit = error.type === USAGE_LIMIT
  const details: Array<Record<string, unknown>> = []
  if (usageLimit) {
    details.push({
      "@type": "type.googleapis.com/google.rpc.QuotaFailure",
      violations: [{
        quotaMetric: "generativelanguage.googleapis.com/generate_content_requests",
        quotaId: "GenerateRequestsPerDayPerProjectPerModel"
      }]
    })
  }
  if (error.retryAfterSeconds !== undefined) {
    details.push({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${error.retryAfterSeconds}s` })
  }
  const { error: extra, ...rest } = (error.body ?? {}) as { readonly error?: Readonly<Record<string, unknown>> }
  return json(
    error.status,
    {
      error: {
        code: error.status,
        message: error.message ?? defaultMessageOf(error.status, usageLimit),
        status: error.type !== undefined && !usageLimit ? error.type : statusNameOf(error.status),
        ...(details.length > 0 ? { details } : {}),
        ...extra
      },
      ...rest
    },
    {
      ...(error.retryAfterSeconds !== undefined ? { "retry-after": String(error.retryAfterSeconds) } : {}),
      ...error.headers
    }
  )
}

/** `usageMetadata` of a turn: prompt tokens include the cached ones, as the API counts them. */
const usageOf = (turn: ScriptedServer.Turn) => {
  const cached = turn.usage?.cacheReadTokens ?? 0
  const prompt = (turn.usage?.inputTokens ?? 100) + cached
  const candidates = turn.usage?.outputTokens ?? 20
  return {
    promptTokenCount: prompt,
    candidatesTokenCount: candidates,
    ...(cached > 0 ? { cachedContentTokenCount: cached } : {}),
    totalTokenCount: prompt + candidates
  }
}

/** Encodes a turn as a streamed `GenerateContentResponse` (SSE `data:` chunks). */
export const reply = (turn: ScriptedServer.Turn, conversation: ScriptedServer.Conversation, index: number): ScriptedServer.Reply => {
  if (turn.error !== undefined) return errorReply(turn.error)
  const model = conversation.model ?? DEFAULT_MODEL
  const chunk = (parts: ReadonlyArray<unknown>, last: boolean) => ({
    candidates: [{
      content: { role: "model", parts },
      ...(last ? { finishReason: "STOP" } : {}),
      index: 0
    }],
    ...(last ? { usageMetadata: usageOf(turn) } : {}),
    modelVersion: model,
    responseId: `scripted-${index}`
  })
  const calls = (turn.toolCalls ?? []).map((call, i) => ({
    functionCall: { id: call.id ?? `call_scripted_${index}_${i}`, name: call.name, args: call.input }
  }))
  // Text streams first (in pieces, as the API sends it); the calls, the finish reason and the
  // usage come in the last chunk.
  const text = turn.text ?? ""
  const cut = Math.ceil(text.length / 2)
  const pieces = [text.slice(0, cut), text.slice(cut)].filter((t) => t !== "")
  const events = pieces.map((piece, i) =>
    chunk([{ text: piece }], calls.length === 0 && i === pieces.length - 1)
  )
  if (calls.length > 0 || events.length === 0) events.push(chunk(calls, true))
  return { status: 200, headers: { "content-type": "text/event-stream" }, chunks: sse(events.map((data) => ({ data }))) }
}

/** A value a JSON schema accepts: the first enum value, else a plain value of its type. */
const sampleOf = (schema: unknown): unknown => {
  const s = (typeof schema === "object" && schema !== null ? schema : {}) as {
    readonly type?: unknown
    readonly enum?: unknown
    readonly properties?: unknown
    readonly items?: unknown
  }
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0]
  const type = String(Array.isArray(s.type) ? s.type[0] : s.type ?? "object").toLowerCase()
  if (type === "string") return "scripted"
  if (type === "integer" || type === "number") return 1
  if (type === "boolean") return false
  if (type === "array") return []
  const properties = (typeof s.properties === "object" && s.properties !== null ? s.properties : {}) as Record<string, unknown>
  return Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, sampleOf(v)]))
}

/**
 * A whole (non-streamed) `generateContent` answer. The CLI uses these for side questions (the
 * model router's complexity score, loop and next-speaker checks): asked for JSON, it gets an
 * object its schema accepts; else a short text.
 */
const generateContent = (url: URL, body: unknown): ScriptedServer.Reply => {
  const config = (body as { readonly generationConfig?: { readonly responseJsonSchema?: unknown; readonly responseSchema?: unknown } } | undefined)
    ?.generationConfig
  const schema = config?.responseJsonSchema ?? config?.responseSchema
  const text = schema !== undefined ? JSON.stringify(sampleOf(schema)) : "ok"
  return json(200, {
    candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason: "STOP", index: 0 }],
    usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1, totalTokenCount: 2 },
    modelVersion: modelOf(url) ?? DEFAULT_MODEL
  })
}

const modelInfo = (model: string) => ({
  name: `models/${model}`,
  displayName: model,
  inputTokenLimit: 1_048_576,
  outputTokenLimit: 65_536,
  supportedGenerationMethods: ["generateContent", "streamGenerateContent", "countTokens"]
})

/** Answers the CLI's requests that are not model turns. */
export const other = (method: string, url: URL, body: unknown): ScriptedServer.Reply | undefined => {
  const path = url.pathname
  if (method === "POST" && path.endsWith(":generateContent")) return generateContent(url, body)
  if (method === "POST" && path.endsWith(":countTokens")) {
    // A rough count: four characters a token, as the CLI's own estimate does.
    return json(200, { totalTokens: Math.max(1, Math.ceil(JSON.stringify(body ?? "").length / 4)) })
  }
  if (method === "POST" && path.endsWith(":embedContent")) return json(200, { embedding: { values: [0] } })
  if (method === "POST" && path.endsWith(":loadCodeAssist")) {
    return json(200, { currentTier: { id: "standard-tier", name: "scripted" }, cloudaicompanionProject: "scripted-project" })
  }
  if (method === "POST" && path.endsWith(":onboardUser")) {
    return json(200, { done: true, response: { cloudaicompanionProject: { id: "scripted-project" } } })
  }
  if (method === "GET" && /\/models\/?$/.test(path)) {
    return json(200, { models: ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"].map(modelInfo) })
  }
  if (method === "GET" && modelOf(url) !== undefined) return json(200, modelInfo(modelOf(url)!))
  return undefined
}

/** The Gemini `streamGenerateContent` wire format. */
export const provider: ScriptedServer.Provider = {
  name: "gemini",
  isTurn: (method, url) => method === "POST" && url.pathname.endsWith(":streamGenerateContent"),
  conversation,
  reply,
  other: (method, url, body) => other(method, url, body) ?? json(404, { error: { code: 404, message: `${url.pathname} is not scripted`, status: "NOT_FOUND" } })
}
