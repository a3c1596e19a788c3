/**
 * What an attempt cost, for tools that report only tokens (codex, gemini, aider's text): a
 * price table per model in USD per million tokens, overridable under `prices` in the plan or
 * `braid.config.yaml`. Tools that report their own cost (claude) are taken at their word.
 *
 * @since 0.1.0
 */
import { Plan } from "@braid/core"

/**
 * braid's table (USD per million tokens; list prices as published by each provider). A model
 * is matched by its exact name, else by the longest entry its name starts with, so dated
 * variants (`claude-sonnet-4-5-20250929`) find their family.
 */
export const table: Readonly<Record<string, Plan.ModelPrice>> = {
  "claude-opus-4": new Plan.ModelPrice({ input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 }),
  "claude-opus-4-5": new Plan.ModelPrice({ input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 }),
  "claude-sonnet-4": new Plan.ModelPrice({ input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }),
  "claude-haiku-4": new Plan.ModelPrice({ input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25 }),
  "gpt-5": new Plan.ModelPrice({ input: 1.25, output: 10, cacheRead: 0.125 }),
  "gpt-5-mini": new Plan.ModelPrice({ input: 0.25, output: 2, cacheRead: 0.025 }),
  "gpt-5-codex": new Plan.ModelPrice({ input: 1.25, output: 10, cacheRead: 0.125 }),
  "gpt-4.1": new Plan.ModelPrice({ input: 2, output: 8, cacheRead: 0.5 }),
  "o4-mini": new Plan.ModelPrice({ input: 1.1, output: 4.4, cacheRead: 0.275 }),
  "gemini-2.5-pro": new Plan.ModelPrice({ input: 1.25, output: 10, cacheRead: 0.31 }),
  "gemini-2.5-flash": new Plan.ModelPrice({ input: 0.3, output: 2.5, cacheRead: 0.075 })
}

/** The price of `model`: the plan's (or config's) entry, else braid's table; undefined when unknown. */
export const priceOf = (
  prices: Readonly<Record<string, Plan.ModelPrice>>,
  model: string | undefined
): Plan.ModelPrice | undefined => {
  if (model === undefined) return undefined
  const lookup = (from: Readonly<Record<string, Plan.ModelPrice>>) => {
    if (from[model] !== undefined) return from[model]
    const family = Object.keys(from).filter((name) => model.startsWith(name)).sort((a, b) => b.length - a.length)[0]
    return family === undefined ? undefined : from[family]
  }
  return lookup(prices) ?? lookup(table)
}

/** Token counts of one attempt. */
export interface Tokens {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheReadTokens?: number
  readonly cacheWriteTokens?: number
}

/**
 * What the tokens cost at the model's price; undefined when the model has no price.
 * `inputTokens` are the uncached prompt tokens (tools that count cached tokens inside their
 * input total should subtract them first).
 */
export const costOf = (
  prices: Readonly<Record<string, Plan.ModelPrice>>,
  model: string | undefined,
  tokens: Tokens
): number | undefined => {
  const price = priceOf(prices, model)
  if (price === undefined) return undefined
  const perToken = (usd: number) => usd / 1_000_000
  return tokens.inputTokens * perToken(price.input) +
    tokens.outputTokens * perToken(price.output) +
    (tokens.cacheReadTokens ?? 0) * perToken(price.cacheRead ?? price.input) +
    (tokens.cacheWriteTokens ?? 0) * perToken(price.cacheWrite ?? price.input)
}
