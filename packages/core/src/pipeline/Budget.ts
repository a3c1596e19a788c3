/**
 * Budgets: what a run's agents, and each task's, may spend, in USD or tokens. The run's
 * spend is every attempt's (all rounds, journaled or not yet), counted once per attempt; when
 * it reaches the run's budget no new attempt starts (`onExceeded: finish` lets the running
 * ones finish, `stop` stops them too) and the run pauses, resumable with a raised budget. A
 * task whose attempts spent more than its own budget fails.
 *
 * Tokens are every token the tool reports: input, output, cache read and cache write. Costs
 * are the tools' own or priced from the table (see `RunReport.AgentRecord.costSource`).
 *
 * @since 0.3.0
 */
import { Effect, Schema } from "effect"
import type * as Plan from "../run/Plan.js"
import * as RunReport from "../present/RunReport.js"

/** What some attempts spent. */
export interface Spend {
  readonly usd: number
  readonly tokens: number
}

export const zero: Spend = { usd: 0, tokens: 0 }

/** What an attempt's record holds of its spend (a journaled `AttemptDone` or attempt record, a report's attempt). */
export interface Spent {
  readonly costUsd: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly agent?: { readonly cacheReadTokens: number; readonly cacheWriteTokens: number } | null | undefined
}

/** What an agent that resolved a conflict reported (a journaled or reported conflict's `agent`). */
interface AgentSpent {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheReadTokens: number
  readonly cacheWriteTokens: number
  readonly costUsd: number | null
}

/** What one attempt spent, from its record (or its journaled `AttemptDone`). */
export const spendOf = (a: Spent): Spend => ({
  usd: a.costUsd,
  tokens: RunReport.tokensOf({
    inputTokens: a.inputTokens,
    outputTokens: a.outputTokens,
    cacheReadTokens: a.agent?.cacheReadTokens ?? 0,
    cacheWriteTokens: a.agent?.cacheWriteTokens ?? 0
  })
})

/** Adds spends up. */
export const sum = (spends: Iterable<Spend>): Spend => {
  let usd = 0
  let tokens = 0
  for (const s of spends) {
    usd += s.usd
    tokens += s.tokens
  }
  return { usd, tokens }
}

/** The identity of one attempt across rounds (what the run's spend is counted by). */
export const attemptId = (round: number, taskId: string, attempt: number): string => `${round}/${taskId}/${attempt}`

/** What the agent that resolved a conflict spent (nothing when no agent resolved it). */
export const spendOfConflict = (c: { readonly agent?: AgentSpent | undefined }): Spend =>
  c.agent === undefined ? zero : { usd: c.agent.costUsd ?? 0, tokens: RunReport.tokensOf(c.agent) }

/** The identity of the conflict resolutions a task's round made (bringing in its dependencies). */
export const resolutionId = (round: number, taskId: string, index: number): string => `${round}/${taskId}/resolution/${index}`

/** Counts a settled task's attempts and dependency-conflict resolutions into `into`. */
export const countSettled = (
  round: number,
  result: {
    readonly taskId: string
    readonly attempts: ReadonlyArray<Spent & { readonly attempt: number }>
    readonly conflicts?: ReadonlyArray<{ readonly agent?: AgentSpent | undefined }> | undefined
  },
  into: (id: string, spend: Spend) => void
): void => {
  for (const a of result.attempts) into(attemptId(round, result.taskId, a.attempt), spendOf(a))
  ;(result.conflicts ?? []).forEach((c, i) => into(resolutionId(round, result.taskId, i), spendOfConflict(c)))
}

/** A budget's amounts in words: "$5.00", "$0.004", "200000 tokens", "$5.00 or 200000 tokens". */
export const describe = (budget: { readonly usd?: number | undefined; readonly tokens?: number | undefined }): string =>
  [...(budget.usd !== undefined ? [RunReport.dollars(budget.usd)] : []), ...(budget.tokens !== undefined ? [`${budget.tokens} tokens`] : [])].join(" or ")

/** A spend in words. */
export const describeSpend = (spend: Spend): string => `$${spend.usd.toFixed(4)} and ${spend.tokens} tokens`

/** Which of a budget's amounts `spend` has reached, in words; undefined when none. */
export const reached = (
  budget: { readonly usd?: number | undefined; readonly tokens?: number | undefined } | undefined,
  spend: Spend,
  over: (spent: number, limit: number) => boolean = (spent, limit) => spent >= limit
): string | undefined => {
  if (budget === undefined) return undefined
  if (budget.usd !== undefined && over(spend.usd, budget.usd)) return `$${spend.usd.toFixed(4)} spent of ${RunReport.dollars(budget.usd)}`
  if (budget.tokens !== undefined && over(spend.tokens, budget.tokens)) return `${spend.tokens} tokens spent of ${budget.tokens}`
  return undefined
}

/** The run's budget is reached: no new attempt starts; the run pauses and can be resumed with a raised budget. */
export class BudgetReached extends Schema.TaggedError<BudgetReached>()("BudgetReached", {
  /** What was spent against what (`$5.0123 spent of $5.00`). */
  detail: Schema.String,
  spentUsd: Schema.Number,
  spentTokens: Schema.Number
}) {
  override get message(): string {
    return `the run's budget is reached (${this.detail}); no new attempt was started`
  }
}

/** A task's attempts spent more than its own budget: the task fails. */
export class TaskOverBudget extends Schema.TaggedError<TaskOverBudget>()("TaskOverBudget", {
  taskId: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `task ${this.taskId} is over its budget (${this.detail})`
  }
}

/** The run's spend, counted once per attempt, against its budget. */
export interface Tracker {
  readonly budget: Plan.Budget | undefined
  /** Counts an attempt's spend (again for the same attempt replaces it). */
  readonly spent: (id: string, spend: Spend) => Effect.Effect<void>
  /** Fails when the run's spend has reached its budget. */
  readonly check: Effect.Effect<void, BudgetReached>
  /** The run's spend so far. */
  readonly total: () => Spend
}

/** A tracker for `budget`, starting from what a journal holds (`before`: spend per `attemptId`). */
export const make = (budget: Plan.Budget | undefined, before: ReadonlyMap<string, Spend> = new Map()): Tracker => {
  const byAttempt = new Map(before)
  // Kept as attempts are counted (a check per attempt summing every attempt was quadratic in a run's size).
  let running = sum(byAttempt.values())
  const total = () => running
  return {
    budget,
    spent: (id, spend) =>
      Effect.sync(() => {
        const was = byAttempt.get(id) ?? zero
        byAttempt.set(id, spend)
        running = { usd: running.usd - was.usd + spend.usd, tokens: running.tokens - was.tokens + spend.tokens }
      }),
    check: Effect.suspend(() => {
      if (budget === undefined) return Effect.void
      const spend = total()
      const detail = reached(budget, spend)
      return detail === undefined ? Effect.void : Effect.fail(new BudgetReached({ detail, spentUsd: spend.usd, spentTokens: spend.tokens }))
    }),
    total
  }
}

/** The amounts of a `--budget` value: `5usd`, `$5`, `2.5usd`, `200000tokens`, `200k tokens`; an error text otherwise. */
export const parseAmount = (text: string): { readonly usd: number } | { readonly tokens: number } | string => {
  const t = text.trim().toLowerCase().replace(/\s+/g, "")
  const usd = /^\$?(\d+(?:\.\d+)?)(?:usd|\$)?$/.exec(t)
  if (usd !== null && (t.startsWith("$") || t.endsWith("usd") || t.endsWith("$"))) {
    const n = Number(usd[1])
    return n > 0 ? { usd: n } : `a budget must be more than 0, got "${text}"`
  }
  const tokens = /^(\d+(?:\.\d+)?)(k|m)?tokens?$/.exec(t)
  if (tokens !== null) {
    const n = Number(tokens[1]) * (tokens[2] === "k" ? 1_000 : tokens[2] === "m" ? 1_000_000 : 1)
    return n > 0 ? { tokens: Math.round(n) } : `a budget must be more than 0, got "${text}"`
  }
  return `expected an amount in USD or tokens (5usd, $5, 200000tokens, 200ktokens), got "${text}"`
}
