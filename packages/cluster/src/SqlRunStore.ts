/**
 * The Postgres `RunStore`: the same record of a run as the file store keeps under `.braid/`
 * — the plan as given, the resolved options, the append-only journal of its steps, the final
 * report — plus the files beside the plan, so a runner on another machine has them. Every
 * runner and every command that names the database reads and writes runs here; the stages
 * never know which store they journal to.
 *
 * A database that goes away (a Postgres restart) is waited for: a journal append is retried
 * until the server answers again, so a run never goes on past a step that is not durable.
 *
 * @since 0.5.0
 */
import { Journal, RunStore, type Steps } from "@braid/core"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schedule, Schema } from "effect"
import * as PlanBundle from "./PlanBundle.js"

/** How long a store operation waits for a database that went away before it gives up. */
const patience = Schedule.exponential("200 millis", 1.5).pipe(
  Schedule.union(Schedule.spaced("2 seconds")),
  Schedule.upTo("3 minutes")
)

const failed = (operation: string) => (e: SqlError) => new RunStore.StoreFailed({ operation, message: e.message })

/** Runs a statement, waiting out a database that is restarting. */
const patiently = <A>(operation: string, effect: Effect.Effect<A, SqlError>): Effect.Effect<A, RunStore.StoreFailed> =>
  effect.pipe(Effect.retry(patience), Effect.mapError(failed(operation)))

const encodeManifest = Schema.encodeSync(RunStore.RunManifest)
const decodeManifest = Schema.decodeUnknownSync(RunStore.RunManifest)
const decodeFiles = Schema.decodeUnknownSync(Schema.Array(PlanBundle.PlanFile))

/** Where people are told the runs are. */
export interface Location {
  /** The database as shown (password hidden). */
  readonly shown: string
}

/** The store, and what only a cluster needs of it. */
export interface Service extends RunStore.Service {
  /** Records a submitted run once: `created`, or `exists` when a run with this id is there already. */
  readonly submit: (manifest: RunStore.RunManifest, planText: string, files: ReadonlyArray<PlanBundle.PlanFile>) => Effect.Effect<"created" | "exists", RunStore.StoreFailed>
  /** The files that came with the run's plan. */
  readonly files: (runId: string) => Effect.Effect<ReadonlyArray<PlanBundle.PlanFile>, RunStore.StoreFailed | RunStore.RunNotFound>
  /** The latest value journaled under each of `keys` (those never journaled are absent). */
  readonly latest: (runId: string, keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, unknown>, RunStore.StoreFailed>
  /** Appends one entry (for facts written outside a `Steps`). */
  readonly append: (runId: string, entry: Steps.Entry) => Effect.Effect<void, RunStore.StoreFailed>
}

interface RunRow {
  readonly run_id: string
  readonly manifest: unknown
  readonly plan_text: string
}

interface JournalRow {
  readonly seq: string
  readonly at: Date
  readonly key: string
  readonly value: unknown
}

/** The store over the database the `SqlClient` reaches (its tables made by `Database.migrate`). */
export const make = (location: Location): Effect.Effect<Service, never, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const where = `the runs of ${location.shown}`

    const row = (runId: string) =>
      patiently("read", sql<RunRow>`SELECT run_id, manifest, plan_text FROM braid_runs WHERE run_id = ${runId}`).pipe(
        Effect.flatMap((rows) => rows.length === 0 ? Effect.fail(new RunStore.RunNotFound({ runId, where })) : Effect.succeed(rows[0]!))
      )

    const append = (runId: string, entry: Steps.Entry) =>
      patiently(
        "journal",
        sql`INSERT INTO braid_journal (run_id, key, value) VALUES (${runId}, ${entry.key}, ${JSON.stringify(Journal.stored(entry.value) ?? null)})`
      ).pipe(Effect.asVoid)

    const service: Service = {
      location: where,
      create: (manifest, planText) => Effect.asVoid(service.submit(manifest, planText, [])),
      submit: (manifest, planText, files) =>
        patiently(
          "create",
          sql<{ run_id: string }>`INSERT INTO braid_runs (run_id, manifest, plan_text, files)
            VALUES (${manifest.runId}, ${JSON.stringify(encodeManifest(manifest))}, ${planText}, ${JSON.stringify(Schema.encodeSync(Schema.Array(PlanBundle.PlanFile))(files))})
            ON CONFLICT (run_id) DO NOTHING RETURNING run_id`
        ).pipe(Effect.map((rows) => rows.length > 0 ? "created" as const : "exists" as const)),
      files: (runId) =>
        patiently("read", sql<{ files: unknown }>`SELECT files FROM braid_runs WHERE run_id = ${runId}`).pipe(
          Effect.flatMap((rows) => rows.length === 0 ? Effect.fail(new RunStore.RunNotFound({ runId, where })) : Effect.succeed(decodeFiles(rows[0]!.files)))
        ),
      journal: (runId) => Effect.as(row(runId), { append: (entry: Steps.Entry) => append(runId, entry) }),
      append,
      load: (runId) =>
        Effect.gen(function*() {
          const run = yield* row(runId)
          const rows = yield* patiently(
            "read",
            sql<JournalRow>`SELECT seq::text AS seq, at, key, value FROM braid_journal WHERE run_id = ${runId} ORDER BY braid_journal.seq`
          )
          return {
            manifest: decodeManifest(run.manifest),
            planText: run.plan_text,
            records: rows.map((r) => ({ v: Journal.SCHEMA_VERSION, seq: Number(r.seq), at: new Date(r.at).toISOString(), key: r.key, value: r.value })),
            warning: undefined
          } satisfies RunStore.StoredRun
        }),
      latest: (runId, keys) =>
        keys.length === 0 ? Effect.succeed(new Map()) : patiently(
          "read",
          sql<{ key: string; value: unknown }>`SELECT DISTINCT ON (key) key, value FROM braid_journal
            WHERE run_id = ${runId} AND key IN ${sql.in(keys)} ORDER BY key, seq DESC`
        ).pipe(Effect.map((rows) => new Map(rows.map((r) => [r.key, r.value])))),
      list: () =>
        patiently("list", sql<{ run_id: string }>`SELECT run_id FROM braid_runs ORDER BY created_at, run_id`).pipe(
          Effect.map((rows) => rows.map((r) => r.run_id))
        ),
      // The cluster holds a run: one workflow execution at a time works on it, wherever it runs.
      lock: () => Effect.void,
      // In the cluster's hands: started, and its latest record is not the end of a run.
      isLocked: (runId) =>
        patiently(
          "read",
          sql<{ key: string; started: boolean }>`SELECT key, EXISTS (SELECT 1 FROM braid_journal WHERE run_id = ${runId} AND key = 'run') AS started
            FROM braid_journal WHERE run_id = ${runId} ORDER BY seq DESC LIMIT 1`
        ).pipe(Effect.map((rows) => rows.length > 0 && rows[0]!.started && rows[0]!.key !== "run/finished" && rows[0]!.key !== "run/interrupted")),
      saveReport: (runId, json) => Effect.asVoid(patiently("report", sql`UPDATE braid_runs SET report = ${json} WHERE run_id = ${runId}`)),
      loadReport: (runId) =>
        patiently("read", sql<{ report: string | null }>`SELECT report FROM braid_runs WHERE run_id = ${runId}`).pipe(
          Effect.map((rows) => rows[0]?.report ?? undefined)
        ),
      remove: (runId) =>
        patiently(
          "remove",
          sql.withTransaction(Effect.all([
            sql`DELETE FROM braid_journal WHERE run_id = ${runId}`,
            sql`DELETE FROM braid_events WHERE run_id = ${runId}`,
            sql`DELETE FROM braid_runs WHERE run_id = ${runId}`
          ], { discard: true }))
        )
    }
    return service
  })
