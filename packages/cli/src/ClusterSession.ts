/**
 * A cluster run on the command line: `braid runner` joins the cluster and works; `braid
 * submit` records a run in the cluster's database and starts its workflow (and with `--wait`
 * follows its events with the same board as a local run); `runs`, `status`, `report`,
 * `retry` and `land` with `--database` read and continue runs there.
 *
 * @since 0.5.0
 */
import { Registry } from "@braid/agents"
import * as BraidCluster from "@braid/cluster"
import { Cluster, Database, Engine, PlanBundle, SqlEvents, SqlRunStore, Workdir } from "@braid/cluster"
import { GitWorkspace, Orchestrator, Plan, RunReport, RunState, RunStore } from "@braid/core"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { DateTime, Effect, Fiber, Layer, Schedule, Schema, Stream } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Backends from "./Backends.js"
import * as PlanFields from "./PlanFields.js"
import * as Runs from "./Runs.js"
import * as Session from "./Session.js"

/** The remote cannot serve a cluster run (unreachable, or without the target branch). */
export class RemoteUnusable extends Schema.TaggedError<RemoteUnusable>()("RemoteUnusable", {
  remote: Schema.String,
  message: Schema.String
}) {}

/** The run id is taken by a different run. */
export class RunIdTaken extends Schema.TaggedError<RunIdTaken>()("RunIdTaken", { runId: Schema.String }) {
  override get message(): string {
    return `run ${this.runId} was already submitted with a different plan or options; choose another --id`
  }
}

/** A cluster run ended without a report: paused (resumable) or stopped by an error. */
export class ClusterRunStopped extends Schema.TaggedError<ClusterRunStopped>()("ClusterRunStopped", {
  runId: Schema.String,
  status: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return this.status === "paused"
      ? `run ${this.runId} paused: ${this.reason}; continue it with: braid resume ${this.runId} --database …`
      : `run ${this.runId} stopped: ${this.reason}`
  }
  /** Exit 75 when it can be resumed later, as a local run's usage limit or budget. */
  get paused(): boolean {
    return this.status === "paused"
  }
}

/** The cluster's view of how a stored run's plan and services are made: the command line's own. */
export const host: Engine.Host = {
  // The backends' task fields provided here as well as in Main: the workflow engine may run this outside the command's context.
  planOf: (stored, baseDir) =>
    Session.planOf(stored, RunState.fold(stored.records), baseDir).pipe(
      Effect.provideService(Plan.BackendFields, PlanFields.declarations),
      Effect.provide(NodeContext.layer)
    ),
  services: (plan, stored) => {
    const options = Schema.decodeUnknownSync(Session.StoredOptions)(stored.manifest.options)
    return Registry.layer(plan, { backends: Backends.all, agent: options.agent, agentSource: "--agent", reviewer: options.reviewer, reviewerSource: "--reviewer" }).pipe(
      Layer.provide(NodeContext.layer)
    )
  }
}

const git = (args: ReadonlyArray<string>) =>
  // What git said, without the command's name (the caller names the remote).
  GitWorkspace.runGit(args, { operation: "ls-remote", timeoutMs: 60_000 }).pipe(Effect.mapError((e) => e.message.replace(/^git [^:]*: /, "")))

/** The remote's branch a run starts from and lands on: the one asked for, checked, or the remote's default. */
const targetOn = (remote: string, target: string | undefined) =>
  Effect.gen(function*() {
    const shown = Database.redact(remote)
    const unusable = (message: string) => new RemoteUnusable({ remote: shown, message: `--remote ${shown}: ${message}` })
    const heads = yield* git(["ls-remote", "--symref", remote, "HEAD", "refs/heads/*"]).pipe(
      Effect.mapError((e) => unusable(`cannot be read (${e.split("\n")[0]})`))
    )
    const branches = heads.split("\n").map((l) => l.split("\t")[1]).filter((r): r is string => r?.startsWith("refs/heads/") === true).map((r) => r.slice(11))
    const fallback = /^ref: refs\/heads\/(\S+)\s+HEAD$/m.exec(heads)?.[1]
    const chosen = target ?? fallback
    if (chosen === undefined) return yield* unusable("has no default branch: pass --target")
    if (!branches.includes(chosen)) return yield* unusable(`has no branch ${chosen} to start from and land on`)
    return chosen
  })

/** The run store of the database, for the commands that read runs. */
export const store = (database: Database.Database) => Runs.clusterStore(BraidCluster, database)

/** Provides the database's client to a command that reads or continues its runs. */
export const withDatabase = <A, E, R>(database: Database.Database, effect: Effect.Effect<A, E, R>) => Runs.withDatabase(BraidCluster, database, effect)

/** Follows an execution to its end: its events drawn as a local run's, then its report (or why it has none). */
const follow = (input: {
  readonly database: Database.Database
  readonly runId: string
  readonly group: string
  readonly execution: string
  readonly plan: Plan.Plan
  readonly agent: string | undefined
  readonly display: Session.Display
  readonly after: number
}) =>
  Effect.scoped(Effect.gen(function*() {
    const render = Session.renderer(input.display, { plan: input.plan, agent: input.agent, runId: input.runId })
    yield* Effect.addFinalizer(() => Effect.sync(render.close))
    const events = yield* Effect.forkScoped(Stream.runForEach(SqlEvents.follow(input.runId, { after: input.after }), ({ event }) => render.service.publish(event)))
    const workflow = Engine.runWorkflow(input.group)
    const executionId = yield* workflow.executionId({ runId: input.runId, execution: input.execution })
    // A database that is restarting is waited for (the workflow goes on without us meanwhile).
    const poll = Effect.sandbox(workflow.poll(executionId)).pipe(
      Effect.retry(Schedule.exponential("200 millis", 1.5).pipe(Schedule.union(Schedule.spaced("2 seconds")), Schedule.upTo("3 minutes"))),
      Effect.unsandbox
    )
    let result = yield* poll
    while (result === undefined || result._tag !== "Complete") {
      yield* Effect.sleep("300 millis")
      result = yield* poll
    }
    // The last events are written before the workflow completes; give the follower one more look.
    yield* Effect.sleep("600 millis")
    yield* Fiber.interrupt(events)
    render.close()
    const exit = result.exit
    if (exit._tag === "Failure") return yield* new ClusterRunStopped({ runId: input.runId, status: "error", reason: "the run's workflow failed" })
    if (exit.value.status === "paused" || exit.value.status === "error") {
      return yield* new ClusterRunStopped({ runId: input.runId, status: exit.value.status, reason: exit.value.message ?? exit.value.status })
    }
    const s = yield* SqlRunStore.make({ shown: input.database.shown })
    const text = yield* s.loadReport(input.runId)
    if (text === undefined) return yield* new ClusterRunStopped({ runId: input.runId, status: "error", reason: "it finished without a report" })
    return yield* RunReport.decode(JSON.parse(text))
  }))

/** JSON with every object's keys sorted (the database gives them back in its own order). */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) => v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v)

/**
 * Submits a run: records it (once: the same id submitted again with the same plan and
 * options is the same run) and starts its workflow; `--wait` follows it.
 */
export const submit = (input: {
  readonly database: Database.Database
  readonly plan: Plan.Plan
  readonly planPath: string
  readonly planText: string
  readonly remote: string
  readonly target: string | undefined
  readonly group: string
  readonly runId: string | undefined
  readonly options: Session.StoredOptions
  readonly wait: boolean
  readonly display: Session.Display
}) =>
  withDatabase(input.database, Effect.gen(function*() {
    const target = yield* targetOn(input.remote, input.target)
    const files = yield* PlanBundle.collect(input.plan.baseDir)
    const runId = input.runId ?? Orchestrator.makeRunId()
    const cluster: Engine.ClusterOptions = {
      remoteUrl: input.remote,
      target,
      group: input.group,
      land: input.options.land,
      ...(input.options.landMode !== undefined ? { landMode: input.options.landMode } : {})
    }
    const options = { ...Schema.encodeSync(Session.StoredOptions)(input.options), ...Schema.encodeSync(Engine.ClusterOptions)(cluster) }
    const s = yield* SqlRunStore.make({ shown: input.database.shown })
    const created = yield* s.submit(
      new RunStore.RunManifest({
        runId,
        createdAt: DateTime.formatIso(yield* DateTime.now),
        planSource: path.resolve(input.planPath),
        planBaseDir: input.plan.baseDir,
        options
      }),
      input.planText,
      files
    )
    if (created === "exists") {
      const existing = yield* s.load(runId)
      if (existing.planText !== input.planText || canonical(existing.manifest.options) !== canonical(options)) return yield* new RunIdTaken({ runId })
      if (!input.display.quiet) process.stderr.write(`braid: run ${runId} was submitted already; not starting it again\n`)
    }
    yield* Engine.runWorkflow(input.group).execute({ runId, execution: "submit" }, { discard: true })
    process.stdout.write(`${runId}\n`)
    if (!input.display.quiet) {
      process.stderr.write(
        `submitted run ${runId} to ${input.database.shown} (group ${input.group}; ${Database.redact(input.remote)} ${target}, ${files.length} file(s) beside the plan)\n`
      )
    }
    if (!input.wait) return undefined
    return yield* follow({ ...input, runId, execution: "submit", agent: input.options.agent, after: 0 })
  }))

/** A stored cluster run, its fold, its options, its plan (read from the files that came with it). */
const loadRun = (database: Database.Database, runId: string | undefined) =>
  Effect.gen(function*() {
    const s = yield* SqlRunStore.make({ shown: database.shown })
    const id = yield* Runs.pickRun(s, runId)
    const stored = yield* s.load(id)
    const state = RunState.fold(stored.records)
    const cluster = Schema.decodeUnknownSync(Engine.ClusterOptions)(stored.manifest.options)
    const options = Schema.decodeUnknownSync(Session.StoredOptions)(stored.manifest.options)
    // The plan is read from the files that came with it, in a folder of the moment.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-plan-"))
    const plan = yield* Effect.zipRight(PlanBundle.materialize(yield* s.files(id), dir), host.planOf(stored, dir)).pipe(
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
    return { store: s, runId: id, stored, state, cluster, options, plan }
  })

/** Continues a cluster run: the request journaled, a new execution of its workflow started and followed. */
const continueRun = (
  database: Database.Database,
  loaded: Effect.Effect.Success<ReturnType<typeof loadRun>>,
  execution: string,
  request: { readonly key: string; readonly value: RunState.Value } | undefined,
  display: Session.Display
) =>
  Effect.gen(function*() {
    if (yield* loaded.store.isLocked(loaded.runId)) return yield* new RunStore.RunLocked({ runId: loaded.runId, pid: 0 })
    if (request !== undefined) {
      yield* (loaded.store as SqlRunStore.Service).append(loaded.runId, { key: request.key, value: Schema.encodeSync(RunState.Value)(request.value) })
    }
    const after = yield* SqlEvents.lastSeq(loaded.runId)
    yield* Engine.runWorkflow(loaded.cluster.group).execute({ runId: loaded.runId, execution }, { discard: true })
    return yield* follow({ database, runId: loaded.runId, group: loaded.cluster.group, execution, plan: loaded.plan, agent: loaded.options.agent, display, after })
  })

/** `braid retry --database`: a retry round journaled, then the run executed again in the cluster. */
export const retry = (input: {
  readonly database: Database.Database
  readonly runId: string | undefined
  readonly tasks: ReadonlyArray<string>
  readonly note: string | undefined
  readonly display: Session.Display
}) =>
  withDatabase(input.database, Effect.gen(function*() {
    const loaded = yield* loadRun(input.database, input.runId)
    const request = yield* Session.retryRequest({ runId: loaded.runId, plan: loaded.plan, state: loaded.state, tasks: input.tasks, note: input.note })
    if (!input.display.quiet) process.stderr.write(`retrying in run ${loaded.runId} (round ${request.round}): ${request.tasks.join(", ")}\n`)
    return yield* continueRun(input.database, loaded, `retry/${request.round}`, { key: RunState.keys.retry(request.round), value: request }, input.display)
  }))

/** `braid land --database`: a landing request journaled, then the run executed again in the cluster. */
export const land = (input: { readonly database: Database.Database; readonly runId: string | undefined; readonly display: Session.Display }) =>
  withDatabase(input.database, Effect.gen(function*() {
    const loaded = yield* loadRun(input.database, input.runId)
    const request = yield* Session.landRequest(loaded.runId, loaded.state)
    const n = loaded.state.history.filter((h) => h.value._tag === "LandRequested").length + 1
    return yield* continueRun(input.database, loaded, `land/${n}`, { key: RunState.keys.landRequested, value: request }, input.display)
  }))

/** `braid resume --database`: the run executed again in the cluster (after a pause, or an execution that stopped). */
export const resume = (input: { readonly database: Database.Database; readonly runId: string | undefined; readonly display: Session.Display }) =>
  withDatabase(input.database, Effect.gen(function*() {
    const loaded = yield* loadRun(input.database, input.runId)
    if (loaded.state.finished === "succeeded") return yield* new Session.RunAlreadyFinished({ runId: loaded.runId, status: loaded.state.finished })
    const n = loaded.state.history.filter((h) => h.value._tag === "Interrupted").length
    return yield* continueRun(input.database, loaded, `resume/${n}`, undefined, input.display)
  }))

/** This machine's first network address (another machine reaches a runner there), else loopback. */
const defaultHost = (): string => {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === "IPv4" && !a.internal) return a.address
  }
  return "127.0.0.1"
}

/** A port free on `host` now. */
const freePort = (host: string) =>
  Effect.async<number, Error>((resume) => {
    const server = net.createServer()
    server.once("error", (e) => resume(Effect.fail(e)))
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/** `braid runner`: joins the cluster and works until interrupted. */
export const runner = (input: {
  readonly database: Database.Database
  readonly group: string
  readonly slots: number
  readonly workdir: string | undefined
  readonly address: { readonly host: string; readonly port: number | undefined } | undefined
  readonly name: string | undefined
}) =>
  Effect.gen(function*() {
    const host_ = input.address?.host ?? defaultHost()
    const port = input.address?.port ?? (yield* freePort(host_).pipe(Effect.orDie))
    const name = input.name ?? `${host_}:${port}`
    // The Postgres driver's deprecation notices are about its own internals, not the runner's user.
    process.noDeprecation = true
    const workdir = path.resolve(input.workdir ?? path.join(os.homedir(), ".braid", "runner"))
    process.stderr.write(
      `braid runner ${name}: joining ${input.database.shown} (group ${input.group}, ${input.slots} slot(s), clones in ${workdir}); Ctrl-C hands its work over\n`
    )
    return yield* Effect.scoped(Effect.gen(function*() {
      for (const p of yield* Workdir.claim(workdir)) {
        process.stderr.write(`braid runner ${name}: ended process ${p.pid} (${p.command}), left at work in ${workdir} by a runner that was killed\n`)
      }
      return yield* Layer.launch(Cluster.runner({
        database: input.database,
        name,
        address: { host: host_, port },
        group: input.group,
        slots: input.slots,
        workdir,
        host
      }))
    })).pipe(
      Effect.onInterrupt(() => Effect.sync(() => process.stderr.write(`braid runner ${name}: stopped; its runs and tasks are handed to the other runners\n`)))
    )
  })
