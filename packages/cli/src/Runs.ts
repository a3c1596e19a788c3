/**
 * The runs recorded in a repository or a cluster, as `braid runs`, `status`, `report` and
 * `clean` find them: the run store a command reads, the run it means, and the two commands that
 * only read them, `runs` and `status`. Kept apart from `Session` and from the command line's
 * parser (`Cli.ts`, @effect/cli): `Main` runs these two commands from `Help.early`'s reading of
 * the arguments, so they start without either (see `Main.start`).
 *
 * @since 0.1.0
 */
// The cluster is loaded only when a command names a database; its types are named here.
import type * as BraidCluster from "@braid/cluster"
// By their paths, as Cli.ts imports @braid/core.
import * as Budget from "@braid/core/Budget"
import * as FileRunStore from "@braid/core/FileRunStore"
import * as GitWorkspace from "@braid/core/GitWorkspace"
import * as Plan from "@braid/core/Plan"
import * as RunState from "@braid/core/RunState"
import * as RunStore from "@braid/core/RunStore"
import * as Terminal from "@braid/core/Terminal"
import type * as Workspace from "@braid/core/Workspace"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import { Console, Effect, Either, Option } from "effect"
import * as path from "node:path"

/**
 * A fault-injection hook for tests, in the style of `BRAID_CRASH_AFTER_RECORDS`:
 * `BRAID_STORE_FAULT=<code>:<file name>[:<n>]` fails the n-th write (default the first) to that
 * file of the run store, and every one after it, with that error code (`ENOSPC`, `EROFS`…), as
 * a full or read-only disk would.
 */
const storeFault = (): FileRunStore.Fault | undefined => {
  const [code, name, nth] = (process.env.BRAID_STORE_FAULT ?? "").split(":")
  if (code === undefined || code === "" || name === undefined || name === "") return undefined
  const from = Math.max(1, Number.parseInt(nth ?? "1", 10) || 1)
  let writes = 0
  return (file) => path.basename(file) === name && ++writes >= from ? code : undefined
}

/** The run store of the repository containing `dir`. */
export const storeFor = (
  dir: string
): Effect.Effect<{ readonly top: string; readonly store: FileRunStore.Service }, Workspace.WorkspaceRefused | Workspace.WorkspaceFailed, CommandExecutor.CommandExecutor> =>
  Effect.map(GitWorkspace.repositoryTop(dir), (top) => ({ top, store: FileRunStore.make(path.join(top, ".braid"), { fault: storeFault() }) }))

/** Finds a run id: the one given, or the latest run in the store. */
export const pickRun = (store: RunStore.Service, runId: string | undefined) =>
  Effect.gen(function*() {
    if (runId !== undefined) return runId
    const ids = yield* store.list()
    if (ids.length === 0) return yield* new RunStore.RunNotFound({ runId: "(latest)", where: store.location })
    return ids.at(-1)!
  })

/** Whether a command reads the repository's runs, not a cluster's: no `--database`, and `--repo` or no `BRAID_DATABASE_URL`. */
export const local = (args: { readonly database: Option.Option<string>; readonly repo: Option.Option<string> }): boolean =>
  Option.isNone(args.database) && (Option.isSome(args.repo) || (process.env.BRAID_DATABASE_URL ?? "") === "")

/** The cluster's database a command names (`--database`, else `BRAID_DATABASE_URL` unless `--repo` says the repository's). */
export const clusterOf = (
  args: { readonly database: Option.Option<string>; readonly repo: Option.Option<string> }
): Effect.Effect<BraidCluster.Database.Database | undefined, BraidCluster.Database.DatabaseUrlInvalid> =>
  local(args)
    ? Effect.succeed(undefined)
    : Effect.flatMap(Effect.promise(() => import("@braid/cluster")), (c) => c.Database.resolve(Option.getOrUndefined(args.database)))

/**
 * The runs a command reads: the cluster's (with a database), else the repository's `.braid`.
 * `where` is how a continuation names them (`--repo <top>`, `--database <url>`).
 */
export const withRuns = <A, E, R>(
  args: { readonly database: Option.Option<string>; readonly repo: Option.Option<string> },
  use: (store: RunStore.Service, where: { readonly top: string | undefined; readonly flag: string }) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const db = yield* clusterOf(args)
    if (db === undefined) {
      const { store, top } = yield* storeFor(Option.getOrElse(args.repo, () => process.cwd()))
      return yield* use(store, { top, flag: `--repo ${top}` })
    }
    const cluster = yield* Effect.promise(() => import("@braid/cluster"))
    return yield* withDatabase(cluster, db, Effect.flatMap(clusterStore(cluster, db), (store) => use(store, { top: undefined, flag: `--database ${db.shown}` })))
  })

/** The cluster's runs in its database, as a run store. */
export const clusterStore = (cluster: typeof BraidCluster, database: BraidCluster.Database.Database) =>
  Effect.map(cluster.SqlRunStore.make({ shown: database.shown }), (s) => s as RunStore.Service)

/** Provides the database's client to a command that reads or continues its runs. */
export const withDatabase = <A, E, R>(cluster: typeof BraidCluster, database: BraidCluster.Database.Database, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provide(cluster.Cluster.client(database)))

const ms = (n: number) => n < 1000 ? `${n} ms` : n < 120_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n / 60_000)} min`

/** One run's state for `runs` and `status`. */
const describe = (store: RunStore.Service, runId: string) =>
  Effect.gen(function*() {
    const stored = yield* store.load(runId)
    const state = RunState.fold(stored.records)
    const locked = yield* store.isLocked(runId)
    const status = locked ? "running" : state.finished ?? (state.interrupted !== undefined ? "interrupted" : "stopped (crashed?)")
    const startedAt = state.startedAt ?? stored.manifest.createdAt
    const durationMs = state.lastAt !== undefined ? Date.parse(state.lastAt) - Date.parse(startedAt) : 0
    return { runId, stored, state, status, startedAt, durationMs }
  })

/**
 * The command that continues a run, and what to do first, from its state: none while it
 * runs or once it landed.
 */
export const continuation = (
  runId: string,
  runs: string,
  state: RunState.RunState,
  running: boolean,
  integrationDir: string | undefined
): string | undefined => {
  const at = `${runId} ${runs}`
  if (running) return undefined
  if (state.finished === undefined) {
    // Paused by its budget: it needs a raised one to go on.
    return state.interrupted?.includes("budget is reached") === true ? `braid resume ${at} --budget <more, e.g. 10usd>` : `braid resume ${at}`
  }
  const tasks = [...state.tasks.values()].map((t) => t.settled).filter((t) => t !== undefined)
  const where = integrationDir !== undefined ? ` in ${integrationDir}` : ""
  if (state.stopped !== undefined && state.stopped.conflict.outcome === "blocked") {
    return `resolve the conflict in ${state.stopped.conflict.paths.join(", ")}${where}, commit the merge, then: braid resume ${at}`
  }
  if (tasks.some((t) => t.status === "failed" || t.status === "needs-review")) {
    return `braid retry ${at} [--task ID] [--feedback "what to do differently"]`
  }
  if (state.stopped !== undefined) return `braid resume ${at}`
  if (state.verification?.ran === true && !state.verification.passed) {
    return `commit a fix${where}, then: braid resume ${at} (or braid retry ${at} --task ID)`
  }
  if (state.landed === undefined) return `braid land ${at}`
  return undefined
}

/** One run as `braid runs --json` lists it (and the MCP server's `list_runs`). */
export interface RunRow {
  readonly runId: string
  readonly status: string
  readonly startedAt?: string
  readonly durationMs?: number
  readonly settledTasks?: number
  readonly totalTasks?: number
  readonly error?: string
}

const rowsOf = (
  ids: ReadonlyArray<string>,
  rows: ReadonlyArray<Either.Either<Effect.Effect.Success<ReturnType<typeof describe>>, { readonly message: string }>>
): Array<RunRow> =>
  rows.map((row, i) =>
    row._tag === "Left"
      ? { runId: ids[i]!, status: "unreadable", error: row.left.message }
      : {
        runId: row.right.runId,
        status: row.right.status,
        startedAt: row.right.startedAt,
        durationMs: row.right.durationMs,
        settledTasks: row.right.state.progress.settled,
        totalTasks: row.right.state.progress.total
      }
  )

/** Every run recorded in a store, oldest first, as `braid runs --json` lists them (an unreadable one says why). */
export const listOf = (store: RunStore.Service) =>
  Effect.gen(function*() {
    const ids = yield* store.list()
    return rowsOf(ids, yield* Effect.forEach(ids, (id) => Effect.either(describe(store, id))))
  })

/** The arguments of `braid runs`. */
export interface RunsArgs {
  readonly repo: Option.Option<string>
  readonly database: Option.Option<string>
  readonly json: boolean
}

/**
 * `braid runs`: every run recorded, a line each (or JSON). A run whose record cannot be read is
 * listed as unreadable, with why on stderr, instead of failing the list.
 */
export const list = (args: RunsArgs) =>
  withRuns(args, (store) => Effect.gen(function*() {
    const ids = yield* store.list()
    const rows = yield* Effect.forEach(ids, (id) => Effect.either(describe(store, id)))
    const unreadable = rows.flatMap((r, i) => r._tag === "Left" ? [{ runId: ids[i]!, error: r.left.message }] : [])
    for (const u of unreadable) yield* Console.error(`braid: warning: ${u.error}`)
    if (args.json) {
      yield* Console.log(JSON.stringify(rowsOf(ids, rows), null, 2))
      return
    }
    if (rows.length === 0) {
      yield* Console.log(`no runs in ${store.location}`)
      return
    }
    yield* Console.log(["run", "status", "started", "duration", "tasks settled"].join("\t"))
    for (const [i, row] of rows.entries()) {
      if (row._tag === "Left") {
        yield* Console.log([ids[i]!, "unreadable", "-", "-", "-"].join("\t"))
        continue
      }
      const r = row.right
      yield* Console.log([r.runId, r.status, r.startedAt, ms(r.durationMs), `${r.state.progress.settled}/${r.state.progress.total}`].join("\t"))
    }
  }))

/** The arguments of `braid status`. */
export interface StatusArgs extends RunsArgs {
  readonly runId: Option.Option<string>
}

/**
 * Why a settled task did not complete: its error (failed, skipped), or for one that needs
 * review what its last review found ("the attempt changed no files").
 */
export const whyOf = (t: RunState.TaskRecord): string | undefined => {
  if (t.error !== undefined) return t.error
  if (t.status !== "needs-review") return undefined
  const review = t.quality ?? t.attempts.at(-1)?.review ?? null
  if (review === null) return undefined
  const shown = review.issues.slice(0, 3).join("; ")
  const more = review.issues.length > 3 ? ` (and ${review.issues.length - 3} more)` : ""
  return review.issues.length > 0
    ? `last review: ${shown}${more}`
    : `last review scored ${review.score}${review.passes ? "" : ", not passing"}`
}

/**
 * One run's state as `braid status` shows it: its streams and tasks (state, score, what each
 * still waits for), integration, verification, landing, cost so far, where its checkouts are and
 * the command that continues it. `json` is what `braid status --json` prints (and the MCP
 * server's `run_status` returns).
 */
export const statusOf = (store: RunStore.Service, where: { readonly top: string | undefined; readonly flag: string }, runId: string | undefined) =>
  Effect.gen(function*() {
    const r = yield* describe(store, yield* pickRun(store, runId))
    const plan = yield* Plan.parse(r.stored.planText, r.stored.manifest.planSource, r.stored.manifest.planBaseDir)
    const taskState = (t: RunState.TaskState | undefined) =>
      t === undefined
        ? "not started"
        : t.settled !== undefined
        ? `${t.settled.status}${whyOf(t.settled) !== undefined ? ` (${whyOf(t.settled)!.replace(/\s+/g, " ").trim()})` : ""}`
        : t.awaitingReview !== undefined
        ? `attempt ${t.awaitingReview} awaiting review`
        : t.cutOff !== undefined
        ? `attempt ${t.cutOff} cut off`
        : t.attempts.length > 0
        ? "in progress"
        : t.round > 0
        ? `to retry (round ${t.round})`
        : "not started"
    const streams = plan.streams.map((s) => ({
      stream: s.name,
      type: s.type,
      tasks: s.tasks.map((t) => {
        const known = r.state.tasks.get(t.id)
        return {
          taskId: t.id,
          title: t.title,
          state: taskState(known),
          status: known?.settled?.status ?? null,
          reason: known?.settled === undefined ? null : whyOf(known.settled) ?? null,
          round: known?.round ?? 0,
          attempts: known?.attempts.length ?? 0,
          score: known?.settled?.quality?.score ?? known?.attempts.at(-1)?.review?.score ?? null,
          // The tasks it depends on that have not completed yet (none once it settled).
          waitsFor: known?.settled !== undefined
            ? []
            : (plan.dependsOn.get(t.id) ?? []).filter((id) => r.state.tasks.get(id)?.settled?.status !== "completed")
        }
      })
    }))
    // A cluster run's integration is on the runner that ran it, not here; and the folder is
    // named only while it is there (a run keeps it for a conflict or a failed verification).
    // The run's checkouts are where it recorded them (outside the repository unless it is of the old layout).
    const worktrees = where.top === undefined ? undefined : yield* GitWorkspace.worktreesOf({ top: where.top, runId: r.runId })
    const fileSystem = yield* FileSystem.FileSystem
    const present = (dir: string) => fileSystem.exists(dir).pipe(Effect.orElseSucceed(() => false))
    const integrationFolder = worktrees === undefined ? undefined : path.join(worktrees, "_integration")
    const integrationDir = integrationFolder !== undefined && (yield* present(integrationFolder)) ? integrationFolder : undefined
    // The checkouts still there (kept for a person, or of a run at work): where to look at a stream's work.
    const checkouts: Array<{ readonly stream: string; readonly dir: string }> = []
    if (worktrees !== undefined) {
      for (const s of plan.streams) {
        const dir = path.join(worktrees, s.name)
        if (yield* present(dir)) checkouts.push({ stream: s.name, dir })
      }
      if (integrationDir !== undefined) checkouts.push({ stream: "integration", dir: integrationDir })
    }
    const next = continuation(r.runId, where.flag, r.state, r.status === "running", integrationDir)
    const spent = Budget.sum(r.state.spent.values())
    const json = {
      runId: r.runId,
      status: r.status,
      startedAt: r.startedAt,
      streams,
      merged: r.state.merged.map((m) => m.stream),
      stopped: r.state.stopped?.conflict.detail ?? null,
      verification: r.state.verification === undefined
        ? null
        : { ran: r.state.verification.ran, passed: r.state.verification.passed, commit: r.state.verification.commit },
      landed: r.state.landed?.pullRequest === undefined ? r.state.landed?.commit ?? null : null,
      pullRequest: r.state.landed?.pullRequest ?? null,
      landingRefused: r.state.landRefused?.message ?? null,
      next: next ?? null,
      worktreesDir: worktrees ?? null,
      checkouts,
      settledTasks: r.state.progress.settled,
      totalTasks: r.state.progress.total,
      // What the run's agents spent so far (every attempt of every round, resolutions included).
      cost: { usd: spent.usd, tokens: spent.tokens }
    }
    return { r, plan, streams, checkouts, next, json }
  })

/** `braid status`: one run's streams and tasks, and the command that continues it. */
export const status = (args: StatusArgs) =>
  withRuns(args, (store, where) => Effect.gen(function*() {
    const { checkouts, json, next, r, streams } = yield* statusOf(store, where, Option.getOrUndefined(args.runId))
    if (r.stored.warning !== undefined) yield* Console.error(`braid: warning: ${r.stored.warning}`)
    if (args.json) {
      yield* Console.log(JSON.stringify(json, null, 2))
      return
    }
    // Names, titles, agents' errors and conflict details are the plan's and the agents' text: one line each, no terminal escapes.
    const say = (text: string) => Console.log(Terminal.safeLine(text))
    yield* say(`run ${r.runId}: ${r.status}, started ${r.startedAt}, ${r.state.progress.settled}/${r.state.progress.total} tasks settled`)
    for (const s of streams) {
      yield* say(`  ${s.stream} (${s.type})`)
      for (const t of s.tasks) {
        yield* say(`    ${t.taskId}: ${t.state}${t.attempts > 0 ? `, ${t.attempts} attempt(s)` : ""}${t.score !== null ? `, score ${t.score}` : ""}${t.round > 0 ? `, retry round ${t.round}` : ""}`)
      }
    }
    if (r.state.merged.length > 0) yield* say(`  integrated: ${r.state.merged.map((m) => m.stream).join(", ")}`)
    if (r.state.stopped !== undefined) yield* say(`  integration stopped at ${r.state.stopped.stream}: ${r.state.stopped.conflict.detail}`)
    if (r.state.verification !== undefined) {
      const v = r.state.verification
      // Journaled without running (`passed` is then vacuous): the plan has no verify commands.
      yield* say(
        !v.ran
          ? `  verification did not run${v.checks.length === 0 ? ": the plan has no verify commands" : ""}`
          : `  verification ${v.passed ? "passed" : "failed"}${v.commit !== null ? ` at ${v.commit.slice(0, 10)}` : ""}${
            v.passed ? "" : `: ${v.checks.filter((c) => c.exitCode !== 0).map((c) => c.name).join(", ")}`
          }`
      )
    }
    if (r.state.landRefused !== undefined && r.state.landed === undefined) yield* say(`  landing refused: ${r.state.landRefused.message}`)
    if (r.state.landed?.pullRequest !== undefined) {
      yield* say(`  pushed ${r.state.landed.commit.slice(0, 10)} to ${r.state.landed.remote ?? "the remote"}; pull request #${r.state.landed.pullRequest.number} into ${r.state.landed.target}: ${r.state.landed.pullRequest.url}`)
    } else if (r.state.landed) {
      yield* say(`  landed ${r.state.landed.commit.slice(0, 10)} on ${r.state.landed.target}${r.state.landed.remote !== undefined ? ` of ${r.state.landed.remote}` : ""}`)
    }
    for (const c of checkouts) yield* say(`  checkout of ${c.stream}: ${c.dir}`)
    if (next !== undefined) yield* say(`continue with: ${next}`)
  }))
