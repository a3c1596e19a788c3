/**
 * Provider limits shared across streams: every agent attempt against one provider (anthropic,
 * openai, google, …) goes through that provider's limiter. A transient provider error
 * (`Agent.ProviderBusy`: 429, 529, 5xx, unreachable) is waited out — a backoff with jitter
 * that honours what the provider asked for — and the attempt is tried again; it never uses
 * up one of the task's gate runs. While errors keep coming the provider's concurrency is
 * halved (additive increase after successes, multiplicative decrease on errors), so a
 * fan-out of streams settles at what the provider accepts. After a bounded number of
 * transient errors the attempt fails with a clear message.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Random } from "effect"
import * as Agent from "../ports/Agent.js"
import type * as Plan from "../run/Plan.js"

/** Transient errors tolerated per attempt when the plan says nothing. */
export const DEFAULT_RETRIES = 6
export const DEFAULT_BACKOFF_MS = 2_000
export const DEFAULT_MAX_BACKOFF_MS = 120_000
/** Successes in a row after which a lowered concurrency is raised by one. */
export const SUCCESSES_TO_RAISE = 2

/** One wait on a busy provider, as it is reported. */
export interface Wait {
  readonly provider: string
  readonly message: string
  /** Which transient failure of this attempt it was (1, 2, …). */
  readonly failure: number
  readonly waitMs: number
  /** The provider's concurrency after lowering it. */
  readonly concurrency: number
}

/** What running an attempt through a limiter can fail with: busy providers are retried away. */
export type LimitedError = Agent.AgentFailed | Agent.UsageLimitReached

/** The limiters of one run, one per provider. */
export interface Service {
  /**
   * Runs one agent attempt under the provider's limiter. `attempt` is called again after
   * each transient error (with the count of errors so far); `onWait` hears every wait.
   */
  readonly run: <A>(
    provider: string | undefined,
    taskId: string,
    attempt: (failures: number) => Effect.Effect<A, Agent.AttemptError>,
    onWait: (wait: Wait) => Effect.Effect<void>
  ) => Effect.Effect<A, LimitedError>
  /** The provider's current concurrency (for reports and tests). */
  readonly concurrency: (provider: string) => number
}

interface State {
  readonly max: number
  limit: number
  active: number
  successes: number
  readonly waiting: Array<Deferred.Deferred<void>>
}

/** Builds the limiters of a run: `limits` from the plan, `maxParallel` the default concurrency. */
export const make = (limits: Readonly<Record<string, Plan.ProviderLimit>>, maxParallel: number) =>
  Effect.sync((): Service => {
    const states = new Map<string, State>()
    const stateOf = (provider: string): State => {
      let state = states.get(provider)
      if (state === undefined) {
        const max = limits[provider]?.concurrency ?? maxParallel
        state = { max, limit: max, active: 0, successes: 0, waiting: [] }
        states.set(provider, state)
      }
      return state
    }

    // Hands freed capacity to waiters in arrival order.
    const wake = (state: State) =>
      Effect.gen(function*() {
        while (state.active < state.limit && state.waiting.length > 0) {
          state.active++
          yield* Deferred.succeed(state.waiting.shift()!, undefined)
        }
      })

    // Runs `effect` holding one unit of the provider's capacity. Only the wait and the effect
    // are interruptible: capacity granted is always given back, and never granted twice.
    const withCapacity = <A, E>(state: State, effect: Effect.Effect<A, E>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          if (state.active < state.limit && state.waiting.length === 0) state.active++
          else {
            const ticket = yield* Deferred.make<void>()
            state.waiting.push(ticket)
            yield* restore(Deferred.await(ticket)).pipe(
              Effect.onInterrupt(() =>
                Effect.suspend(() => {
                  const i = state.waiting.indexOf(ticket)
                  if (i >= 0) {
                    state.waiting.splice(i, 1)
                    return Effect.void
                  }
                  // Granted just as it was interrupted: give the capacity back.
                  return release(state)
                })
              )
            )
          }
          return yield* restore(effect).pipe(Effect.ensuring(release(state)))
        })
      )

    const release = (state: State) =>
      Effect.suspend(() => {
        state.active--
        return wake(state)
      })

    const run: Service["run"] = (provider, taskId, attempt, onWait) => {
      if (provider === undefined) {
        return attempt(0).pipe(
          Effect.catchTag("ProviderBusy", (e) =>
            Effect.fail(new Agent.AgentFailed({ agent: e.agent, taskId, message: e.message })))
        ) as Effect.Effect<never, LimitedError>
      }
      const state = stateOf(provider)
      const setting = limits[provider]
      const retries = setting?.retries ?? DEFAULT_RETRIES
      const base = setting?.backoffSeconds !== undefined ? setting.backoffSeconds * 1000 : DEFAULT_BACKOFF_MS
      const cap = setting?.maxBackoffSeconds !== undefined ? setting.maxBackoffSeconds * 1000 : DEFAULT_MAX_BACKOFF_MS
      const started = Date.now()

      const loop = (failures: number): Effect.Effect<any, LimitedError> =>
        withCapacity(state, Effect.either(attempt(failures))).pipe(Effect.flatMap((result) => {
          if (result._tag === "Right") {
            return Effect.sync(() => {
              state.successes++
              if (state.limit < state.max && state.successes >= SUCCESSES_TO_RAISE) {
                state.limit++
                state.successes = 0
              }
            }).pipe(Effect.zipRight(wake(state)), Effect.as(result.right))
          }
          const error = result.left
          if (error._tag !== "ProviderBusy") return Effect.fail(error)
          const failure = failures + 1
          state.successes = 0
          state.limit = Math.max(1, Math.floor(state.limit / 2))
          if (failure > retries) {
            const seconds = Math.round((Date.now() - started) / 1000)
            return Effect.fail(
              new Agent.AgentFailed({
                agent: error.agent,
                taskId,
                message: `${provider} stayed busy after ${failure} tries over ${seconds} s (${error.message}); ` +
                  `braid's retries are bounded by limits.${provider}.retries (${retries}), and none used a gate run`
              })
            )
          }
          return Effect.gen(function*() {
            const jitter = yield* Random.nextRange(0.5, 1.5)
            const backoff = Math.min(cap, base * 2 ** (failure - 1)) * jitter
            // A provider's own word on when to come back wins over our guess, within reason.
            const waitMs = Math.round(
              error.retryAfterMs !== undefined ? Math.min(Math.max(error.retryAfterMs, 0), Math.max(cap, 1000) * 5) : backoff
            )
            yield* onWait({ provider, message: error.message, failure, waitMs, concurrency: state.limit })
            yield* Effect.sleep(Duration.millis(waitMs))
            return yield* loop(failure)
          })
        }))
      return loop(0)
    }

    return { run, concurrency: (provider) => stateOf(provider).limit }
  })
