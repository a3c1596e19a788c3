/**
 * Durable steps: the one owner of a run's durable state. `step(key, schema, effect)` returns
 * the journaled result of step `key` when there is one; otherwise it runs `effect` and
 * journals its Schema-encoded result before returning it, so nothing acts on a result that a
 * crash could lose. An effect that fails journals nothing: it runs again when the run is
 * continued (a conflict left for a person, a landing refused because the target moved).
 * `record` journals a fact that is not a step's result but must be durable before the next
 * action (an agent's session id before its process starts, the pid of that process).
 *
 * The stages depend only on this Tag. The JSONL journal of the run store is the embedded
 * implementation, `layerMemory` the library's and the tests'; an `@effect/workflow` engine
 * on `@effect/cluster` fits the same shape (a step is an activity named by its key, a fact a
 * durable value), so a distributed run needs a new layer, not new stages.
 *
 * Keys are braid's stable step names: `run`, `stream/<s>/task/<t>[/retry/<r>]`,
 * `…/attempt/<n>`, `…/attempt/<n>/review`, `integration/<g>/merge/<s>`,
 * `integration/<g>/verify/<commit>`, `land/<commit>`. Resuming a run is running it again:
 * every journaled step replays its result.
 *
 * @since 0.2.0
 */
import { Context, Effect, Layer, Option, Schema } from "effect"

/** One journaled result or fact: the step's key and its Schema-encoded value. */
export interface Entry {
  readonly key: string
  readonly value: unknown
}

/** The durable-step port. */
export interface Service {
  /** The journaled result of `key`, or `effect`'s result journaled before it is returned. */
  readonly step: <A, I, E, R>(key: string, schema: Schema.Schema<A, I>, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Journals a fact (last one wins for a key); returns once it is durable. */
  readonly record: <A, I>(key: string, schema: Schema.Schema<A, I>, value: A) => Effect.Effect<void>
  /** A fact recorded earlier (or a step's result), if there is one. */
  readonly recall: <A, I>(key: string, schema: Schema.Schema<A, I>) => Effect.Effect<Option.Option<A>>
}

/** The steps a run journals to. */
export class Steps extends Context.Tag("@braid/core/Steps")<Steps, Service>() {}

/**
 * Steps over a journal: `entries` are what it holds already, `append` makes one more entry
 * durable (a failure to write is a defect: a run that cannot journal cannot promise to be
 * resumable).
 */
export const make = (
  entries: ReadonlyArray<Entry>,
  append: (entry: Entry) => Effect.Effect<void, unknown>
): Service => {
  const done = new Map<string, unknown>()
  for (const e of entries) done.set(e.key, e.value)
  const decode = <A, I>(key: string, schema: Schema.Schema<A, I>, value: unknown) =>
    Schema.decodeUnknown(schema)(value).pipe(
      Effect.orDieWith((e) => new Error(`journal entry ${key} cannot be read by this braid: ${e.message}`))
    )
  const write = <A, I>(key: string, schema: Schema.Schema<A, I>, value: A) =>
    Effect.gen(function*() {
      const encoded = yield* Schema.encode(schema)(value).pipe(Effect.orDie)
      yield* append({ key, value: encoded }).pipe(Effect.orDie)
      done.set(key, encoded)
    })
  return {
    step: <A, I, E, R>(key: string, schema: Schema.Schema<A, I>, effect: Effect.Effect<A, E, R>) =>
      Effect.suspend(() =>
        done.has(key)
          ? decode(key, schema, done.get(key))
          : Effect.tap(effect, (value) => write(key, schema, value))
        // No stack trace per span: the key says which step, and a run makes thousands of them.
      ).pipe(Effect.withSpan("Steps.step", { attributes: { key }, captureStackTrace: false })),
    record: (key, schema, value) => write(key, schema, value).pipe(Effect.withSpan("Steps.record", { attributes: { key }, captureStackTrace: false })),
    recall: (key, schema) =>
      Effect.suspend(() => done.has(key) ? Effect.map(decode(key, schema, done.get(key)), Option.some) : Effect.succeed(Option.none()))
  }
}

/** In-memory steps, and the entries they journaled (the library's default, and tests'). */
export const memory = (entries: ReadonlyArray<Entry> = []) => {
  const journal: Array<Entry> = [...entries]
  const service = make(entries, (entry) => Effect.sync(() => void journal.push(entry)))
  return { service, journal }
}

/** In-memory steps: a run is durable for as long as the process lives. */
export const layerMemory: Layer.Layer<Steps> = Layer.sync(Steps, () => memory().service)
