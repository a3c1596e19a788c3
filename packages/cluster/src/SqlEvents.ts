/**
 * A cluster run's events: what its stages publish, on whichever runner they run, written to
 * the database in order; `submit --wait` (and anyone else) follows them from there and draws
 * the same board and lines as a local run. Events are for people: a write that fails is
 * dropped after a while, never the run's failure.
 *
 * @since 0.5.0
 */
import { Progress } from "@braid/core"
import * as SqlClient from "@effect/sql/SqlClient"
import { Chunk, type Duration, Effect, Queue, Schedule, Schema, type Scope, Stream } from "effect"

const encode = Schema.encodeSync(Progress.RunEvent)
const decode = Schema.decodeUnknownEither(Progress.RunEvent)

/** A `Progress` that writes the run's events to the database, in batches, in order; the last batch is written when the scope closes. */
export const publisher = (runId: string): Effect.Effect<Progress.Service, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const queue = yield* Queue.unbounded<unknown>()
    const write = (events: Chunk.Chunk<unknown>) =>
      Chunk.isEmpty(events) ? Effect.void : sql`INSERT INTO braid_events ${
        sql.insert(Chunk.toReadonlyArray(events).map((event) => ({ run_id: runId, event: JSON.stringify(event) })))
      }`.pipe(
        Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.upTo("1 minute"))),
        Effect.ignore
      )
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.takeBetween(queue, 1, 500), write)))
    yield* Effect.addFinalizer(() => Effect.flatMap(Queue.takeAll(queue), write))
    return Progress.scrubbed({ publish: (event) => Effect.asVoid(Queue.offer(queue, encode(event))) })
  })

/** The run's events from `after` (a sequence number; 0 for the first), as they are written; polls every `every`. */
export const follow = (
  runId: string,
  options: { readonly after?: number; readonly every?: Duration.DurationInput } = {}
): Stream.Stream<{ readonly seq: number; readonly event: Progress.RunEvent }, never, SqlClient.SqlClient> =>
  Stream.unwrap(Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    let after = options.after ?? 0
    const next = sql<{ seq: string; event: unknown }>`SELECT seq::text AS seq, event FROM braid_events WHERE run_id = ${runId} AND seq > ${after} ORDER BY braid_events.seq LIMIT 1000`.pipe(
      Effect.map((rows) => {
        const out: Array<{ readonly seq: number; readonly event: Progress.RunEvent }> = []
        for (const row of rows) {
          after = Number(row.seq)
          const raw = typeof row.event === "string" ? JSON.parse(row.event) : row.event
          const decoded = decode(raw)
          if (decoded._tag === "Right") out.push({ seq: after, event: decoded.right })
        }
        return out
      }),
      // A database that is restarting: nothing new yet.
      Effect.orElseSucceed(() => [])
    )
    return Stream.repeatEffectWithSchedule(next, Schedule.spaced(options.every ?? "250 millis")).pipe(Stream.flattenIterables)
  }))

/** The sequence number of the run's latest event so far (0 when it has none): a follower of what comes next starts there. */
export const lastSeq = (runId: string): Effect.Effect<number, never, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (client) =>
    client.withoutTransforms()<{ seq: string | null }>`SELECT max(seq)::text AS seq FROM braid_events WHERE run_id = ${runId}`.pipe(
      Effect.map((rows) => Number(rows[0]?.seq ?? 0)),
      Effect.orElseSucceed(() => 0)
    ))
