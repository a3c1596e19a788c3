/**
 * What the `llm` backend and the judge share: a `LanguageModel` for a provider (Anthropic
 * Messages or OpenAI Responses through `@effect/ai`), its key read with `Config.redacted`,
 * and one reading of the provider's failures — busy (429, 529, 5xx, unreachable: braid's
 * shared limiter waits, honouring `Retry-After`), a usage or quota limit (not transient), a
 * refused key, a reply that does not decode.
 *
 * `@effect/ai`'s clients do not retry on their own: braid's limiter (agents) and the gate's
 * reviewer retry (judges) own every backoff.
 *
 * @internal
 */
import type * as LanguageModel from "@effect/ai/LanguageModel"
import type * as AiError from "@effect/ai/AiError"
// The modules themselves, not the packages' indexes: those load the tokenizers too, which braid never uses.
import * as AnthropicClient from "@effect/ai-anthropic/AnthropicClient"
import * as AnthropicLanguageModel from "@effect/ai-anthropic/AnthropicLanguageModel"
import * as OpenAiClient from "@effect/ai-openai/OpenAiClient"
import * as OpenAiLanguageModel from "@effect/ai-openai/OpenAiLanguageModel"
import { FetchHttpClient } from "@effect/platform"
import { Config, Effect, Layer, Option, Redacted } from "effect"

/** The APIs braid speaks directly. */
export const PROVIDERS = ["anthropic", "openai"] as const
export type Provider = (typeof PROVIDERS)[number]

/** The environment variable that holds each provider's key. */
export const KEY_ENV: Readonly<Record<Provider, string>> = { anthropic: "ANTHROPIC_API_KEY", openai: "OPENAI_API_KEY" }

/** The variable that sets each provider's base URL when the settings give none. */
export const BASE_URL_ENV: Readonly<Record<Provider, string>> = { anthropic: "ANTHROPIC_BASE_URL", openai: "OPENAI_BASE_URL" }

/** The longest reply one model turn may write (Anthropic needs a `max_tokens`). */
export const DEFAULT_MAX_OUTPUT_TOKENS = 8192

export const isProvider = (name: string | undefined): name is Provider => PROVIDERS.includes(name as Provider)

/** The provider's key, when the environment (or the current `ConfigProvider`) has one. */
export const keyOf = (provider: Provider): Effect.Effect<Option.Option<Redacted.Redacted>> =>
  Config.redacted(KEY_ENV[provider]).pipe(
    Config.option,
    Effect.map(Option.filter((key) => Redacted.value(key) !== "")),
    Effect.orElseSucceed(() => Option.none())
  )


/** The base URL: the settings', else the provider's variable, else the SDK's default. */
export const baseUrlOf = (provider: Provider, baseUrl: string | undefined): Effect.Effect<string | undefined> =>
  baseUrl !== undefined
    ? Effect.succeed(baseUrl)
    : Config.string(BASE_URL_ENV[provider]).pipe(Config.option, Effect.map(Option.getOrUndefined), Effect.orElseSucceed(() => undefined))

/** What one model is asked with. */
export interface ModelOptions {
  readonly provider: Provider
  readonly model: string
  readonly apiKey: Redacted.Redacted
  readonly baseUrl: string | undefined
  readonly maxOutputTokens?: number | undefined
  readonly temperature?: number | undefined
}

/** A `LanguageModel` for one provider and model, over `fetch`. */
export const languageModel = (options: ModelOptions): Layer.Layer<LanguageModel.LanguageModel> => {
  const maxOutput = options.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS
  const temperature = options.temperature !== undefined ? { temperature: options.temperature } : {}
  const apiUrl = options.baseUrl?.replace(/\/+$/, "")
  return options.provider === "anthropic"
    ? AnthropicLanguageModel.layer({ model: options.model, config: { max_tokens: maxOutput, ...temperature } }).pipe(
      Layer.provide(AnthropicClient.layer({ apiKey: options.apiKey, ...(apiUrl !== undefined ? { apiUrl } : {}) })),
      Layer.provide(FetchHttpClient.layer)
    )
    : OpenAiLanguageModel.layer({ model: options.model, config: { max_output_tokens: maxOutput, ...temperature } }).pipe(
      Layer.provide(OpenAiClient.layer({ apiKey: options.apiKey, ...(apiUrl !== undefined ? { apiUrl } : {}) })),
      Layer.provide(FetchHttpClient.layer)
    )
}

/** How a provider failure is read. */
export type Failure =
  | { readonly _tag: "Busy"; readonly message: string; readonly retryAfterMs: number | undefined }
  | { readonly _tag: "UsageLimit"; readonly message: string; readonly resetsAt: string | undefined }
  | { readonly _tag: "Refused"; readonly message: string; readonly auth: boolean }
  | { readonly _tag: "Malformed"; readonly message: string }

const USAGE_TEXT = /insufficient_quota|usage_limit|usage limit|quota|credit balance|billing|spend limit/i

/** `Retry-After` (seconds or an HTTP date) in milliseconds. */
const retryAfterOf = (headers: Readonly<Record<string, string>>): number | undefined => {
  const value = headers["retry-after"] ?? headers["Retry-After"]
  if (value === undefined) {
    const ms = headers["retry-after-ms"]
    return ms !== undefined && Number.isFinite(Number(ms)) ? Number(ms) : undefined
  }
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/** The provider's own words from an error body (`{error: {message}}`), short. */
const saidIn = (body: string | undefined): string => {
  if (body === undefined) return ""
  const match = /"message"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(body)
  const text = match !== null ? match[1]! : body
  return text.length > 300 ? `${text.slice(0, 297)}...` : text
}

/** Reads an `@effect/ai` failure. */
export const failureOf = (error: AiError.AiError): Failure => {
  switch (error._tag) {
    case "HttpResponseError": {
      const status = error.response.status
      const said = saidIn(error.body)
      const message = `HTTP ${status}${said !== "" ? `: ${said}` : ""}`
      if (error.reason !== "StatusCode") return { _tag: "Malformed", message: `the reply could not be read (${error.reason}): ${said}` }
      if ((status === 429 || status === 402 || status === 403) && USAGE_TEXT.test(error.body ?? "")) {
        const reset = retryAfterOf(error.response.headers)
        return { _tag: "UsageLimit", message, resetsAt: reset !== undefined ? new Date(Date.now() + reset).toISOString() : undefined }
      }
      if (status === 408 || status === 409 || status === 429 || status >= 500) {
        return { _tag: "Busy", message, retryAfterMs: retryAfterOf(error.response.headers) }
      }
      return { _tag: "Refused", message, auth: status === 401 || status === 403 }
    }
    case "HttpRequestError":
      return error.reason === "Transport"
        ? { _tag: "Busy", message: `cannot reach the API (${error.description ?? error.reason})`, retryAfterMs: undefined }
        : { _tag: "Refused", message: `the request could not be made (${error.reason}: ${error.description ?? ""})`, auth: false }
    case "MalformedOutput":
      return { _tag: "Malformed", message: `the model's reply did not decode: ${error.description ?? error.message}` }
    default:
      return { _tag: "Refused", message: error.message, auth: false }
  }
}
