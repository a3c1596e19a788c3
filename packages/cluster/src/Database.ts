/**
 * The cluster's database: one Postgres holds the cluster's own tables (runners, shards,
 * messages, the task queue) and braid's (runs, their journals, their events). Its URL comes
 * from `--database` or `BRAID_DATABASE_URL`; its password never appears in output.
 *
 * @since 0.5.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Exit, Layer, Redacted, Schema, Scope } from "effect"

/** The database URL is missing or not a Postgres URL. */
export class DatabaseUrlInvalid extends Schema.TaggedError<DatabaseUrlInvalid>()("DatabaseUrlInvalid", {
  source: Schema.String,
  message: Schema.String
}) {}

/** A database to use, and how to name it in output (password hidden). */
export interface Database {
  readonly url: Redacted.Redacted<string>
  /** The URL with its password replaced by `***`. */
  readonly shown: string
}

/** A URL as people may see it: the password (and a token in the user part) hidden. */
export const redact = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.password !== "") u.password = "***"
    return u.toString()
  } catch {
    return url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@")
  }
}

/** The database named by `--database` (or, when absent, `BRAID_DATABASE_URL`). */
export const resolve = (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Effect.Effect<Database, DatabaseUrlInvalid> => {
  const source = flag !== undefined ? "--database" : "BRAID_DATABASE_URL"
  const url = flag ?? env.BRAID_DATABASE_URL
  if (url === undefined || url === "") {
    return Effect.fail(new DatabaseUrlInvalid({ source: "--database", message: "no database given: pass --database postgres://… or set BRAID_DATABASE_URL" }))
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Effect.fail(new DatabaseUrlInvalid({ source, message: `${source}: not a URL (${redact(url)}); expected postgres://user:password@host:port/database` }))
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return Effect.fail(new DatabaseUrlInvalid({ source, message: `${source}: expected a postgres:// URL, got ${parsed.protocol}//…` }))
  }
  return Effect.succeed({ url: Redacted.make(url), shown: redact(url) })
}

/** The database did not answer when braid first connected. */
export class DatabaseUnreachable extends Schema.TaggedError<DatabaseUnreachable>()("DatabaseUnreachable", {
  database: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `cannot reach the database ${this.database}: ${this.problem}`
  }
}

/** A Postgres client for the database; once connected, the pool reconnects when the server comes back. */
export const client = (database: Database): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, DatabaseUnreachable> =>
  PgClient.layer({
    url: database.url,
    maxConnections: 8,
    connectTimeout: "10 seconds"
  }).pipe(
    Layer.mapError((e) => {
      const cause = (e.cause as { message?: string } | undefined)?.message
      return new DatabaseUnreachable({ database: database.shown, problem: redactIn(cause ?? e.message, database) })
    })
  )

/** A driver's message with the database's password taken out, should it quote the URL. */
const redactIn = (text: string, database: Database) => {
  const password = (() => {
    try {
      return decodeURIComponent(new URL(Redacted.value(database.url)).password)
    } catch {
      return ""
    }
  })()
  return password === "" ? text : text.split(password).join("***")
}

/**
 * braid's tables. Runs: the plan as given and the files beside it, the options, the final
 * report. The journal: each run's steps in order, exactly what a local run's JSONL journal
 * holds. Events: what the run's stages published, for `submit --wait` and the board.
 */
const migrations = {
  "0001_braid_runs": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`CREATE TABLE IF NOT EXISTS braid_runs (
        run_id TEXT PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        manifest JSONB NOT NULL,
        plan_text TEXT NOT NULL,
        files JSONB NOT NULL,
        report TEXT NULL
      )`,
      sql`CREATE TABLE IF NOT EXISTS braid_journal (
        seq BIGSERIAL PRIMARY KEY,
        run_id TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        key TEXT NOT NULL,
        value JSONB NOT NULL
      )`,
      sql`CREATE INDEX IF NOT EXISTS braid_journal_run ON braid_journal (run_id, seq)`,
      sql`CREATE INDEX IF NOT EXISTS braid_journal_key ON braid_journal (run_id, key)`,
      sql`CREATE TABLE IF NOT EXISTS braid_events (
        seq BIGSERIAL PRIMARY KEY,
        run_id TEXT NOT NULL,
        event JSONB NOT NULL
      )`,
      sql`CREATE INDEX IF NOT EXISTS braid_events_run ON braid_events (run_id, seq)`
    ], { discard: true }))
}

/** Creates braid's tables, or brings them up to this braid's schema (the runner does it on start). */
export const migrate: Effect.Effect<void, Migrator.MigrationError | import("@effect/sql/SqlError").SqlError, SqlClient.SqlClient> = Migrator.make({})({
  loader: Migrator.fromRecord(migrations),
  table: "braid_migrations"
}).pipe(Effect.asVoid)

/** The advisory lock braid takes while it creates tables: `braid` in ASCII. */
const STARTUP_LOCK = 0x6272616964

/**
 * Builds `layer` while holding the database's startup lock: Postgres' `CREATE TABLE IF NOT
 * EXISTS` is not safe against itself, so runners (and submitters) that start together make
 * the cluster's tables and braid's one after the other.
 */
export const oneAtATime = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E | import("@effect/sql/SqlError").SqlError, R | SqlClient.SqlClient> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const held = yield* Scope.make()
    const connection = yield* Scope.extend(sql.reserve, held)
    yield* connection.executeUnprepared(`SELECT pg_advisory_lock(${STARTUP_LOCK})`, [], undefined)
    const built = yield* Layer.build(layer).pipe(
      Effect.ensuring(Effect.ignore(connection.executeUnprepared(`SELECT pg_advisory_unlock(${STARTUP_LOCK})`, [], undefined)).pipe(Effect.zipRight(Scope.close(held, Exit.void))))
    )
    return Layer.succeedContext(built)
  }))
