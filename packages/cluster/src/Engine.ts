/**
 * The cluster engine: braid's stages on `@effect/workflow` run by `@effect/cluster` over
 * Postgres.
 *
 * - A run is a workflow (`braid/run/<group>`) keyed by its run id and execution (the first,
 *   then each `retry`, `land` or `resume`): the cluster places it on one runner of the group
 *   and, when that runner dies, on another, which executes it again; every step it journaled
 *   replays, the rest runs.
 * - Its tasks go to the group's task queue (a `PersistedQueue` in the same database): any
 *   runner of the group with a free slot takes the next one, so one run's streams work on
 *   several machines at once, and the run's own agent slots (`maxParallel`, held by its
 *   dispatch) hold across all of them. A task whose runner died is taken again when its lease
 *   runs out; it starts from its stream's branch on the remote, and finds an attempt that was
 *   pushed but not journaled in git.
 * - Steps are rows of `braid_journal` (`SqlRunStore`), read and written by the run's workflow
 *   and by the runners doing its tasks alike, and by `braid runs|status|report`.
 *
 * @since 0.5.0
 */
import {
  type Agent,
  type ConflictResolver,
  Dispatch,
  GitWorkspace,
  Landing,
  Orchestrator,
  Plan,
  Progress,
  type Review,
  RunReport,
  RunState,
  type RunStore,
  Steps,
  TaskExecutor,
  Workspace
} from "@braid/core"
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as PersistedQueue from "@effect/experimental/PersistedQueue"
import * as SqlClient from "@effect/sql/SqlClient"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Workflow from "@effect/workflow/Workflow"
import { Cause, Context, DateTime, Effect, Exit, Layer, Option, Schedule, Schema, Scope } from "effect"
import { createHash } from "node:crypto"
import * as PlanBundle from "./PlanBundle.js"
import * as Remote from "./Remote.js"
import * as SqlEvents from "./SqlEvents.js"
import type * as SqlRunStore from "./SqlRunStore.js"

/** What the command line gives the engine: how a stored run becomes its plan and its services. */
export interface Host {
  /** The plan as the run uses it, from its record; the plan's files are in `baseDir`. */
  readonly planOf: (stored: RunStore.StoredRun, baseDir: string) => Effect.Effect<Plan.Plan, Plan.InvalidPlan>
  /** The agents, the reviewer and the conflict resolver of a run (they work in the checkouts the run hands them). */
  readonly services: (
    plan: Plan.Plan,
    stored: RunStore.StoredRun
  ) => Layer.Layer<Agent.AgentRegistry | Review.Reviewer | ConflictResolver.ConflictResolver>
}

/** This runner: its name, work folder and group, the runs' store, the host, its stream checkouts. */
export interface RunnerInfo {
  readonly name: string
  readonly workdir: string
  readonly group: string
  readonly store: SqlRunStore.Service
  readonly host: Host
  readonly checkouts: Checkouts
}

/** A stream's checkout on a runner: its clone's workspace, prepared for the run (`release` closes its scope). */
export interface Checkout {
  readonly workspace: Workspace.Run
  readonly release: Effect.Effect<void>
}

/**
 * A runner's stream checkouts, kept between a stream's tasks: the stream's next task here
 * starts from the prepared workspace (a fetch and a branch update away), not a new one. One
 * that saw a failure is given back, and the least recently used go beyond `MAX_CHECKOUTS`.
 */
export interface Checkouts {
  readonly use: <A, E, R, E2, R2>(
    key: string,
    open: Effect.Effect<Checkout, E2, R2>,
    f: (checkout: Checkout) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | E2, R | R2>
}

const MAX_CHECKOUTS = 32

/** The checkouts of a runner; every one is given back when the scope closes. */
export const checkouts: Effect.Effect<Checkouts, never, Scope.Scope> = Effect.gen(function*() {
  const open = new Map<string, { readonly checkout: Checkout; readonly lock: Effect.Semaphore }>()
  const locks = new Map<string, Effect.Semaphore>()
  const drop = (key: string) =>
    Effect.suspend(() => {
      const entry = open.get(key)
      open.delete(key)
      return entry === undefined ? Effect.void : entry.checkout.release
    })
  yield* Effect.addFinalizer(() => Effect.forEach([...open.keys()], drop, { discard: true }))
  return {
    use: (key, make, f) =>
      Effect.suspend(() => {
        let lock = locks.get(key)
        if (lock === undefined) locks.set(key, lock = Effect.unsafeMakeSemaphore(1))
        return lock.withPermits(1)(Effect.gen(function*() {
          let entry = open.get(key)
          if (entry === undefined) {
            while (open.size >= MAX_CHECKOUTS) yield* drop(open.keys().next().value!)
            entry = { checkout: yield* make, lock: lock! }
          }
          // Most recently used last.
          open.delete(key)
          open.set(key, entry)
          const checkout = entry.checkout
          return yield* f(checkout).pipe(Effect.onError(() => drop(key)))
        }))
      })
  }
})

export class Runner extends Context.Tag("@braid/cluster/Runner")<Runner, RunnerInfo>() {}

/** The options of a cluster run, as its manifest has them (beside the command line's own). */
export const ClusterOptions = Schema.Struct({
  /** The run's git remote: the URL every runner clones, fetches and pushes. */
  remoteUrl: Schema.String,
  /** The branch the run starts from and lands on. */
  target: Schema.String,
  group: Schema.String,
  land: Schema.Boolean,
  landMode: Schema.optional(Landing.ModeName)
})
export type ClusterOptions = typeof ClusterOptions.Type
const decodeOptions = Schema.decodeUnknownSync(ClusterOptions)

/** A run's execution, as submitted. */
export const RunPayload = Schema.Struct({
  runId: Schema.String,
  /** `submit` for the first; `retry/<round>`, `land/<n>`, `resume/<n>` for continuations. */
  execution: Schema.String
})
export type RunPayload = typeof RunPayload.Type

/** How an execution ended: the run's status (or `paused`, `error`), and what to tell people. */
export const RunResult = Schema.Struct({
  status: Schema.String,
  message: Schema.NullOr(Schema.String)
})
export type RunResult = typeof RunResult.Type

const workflows = new Map<string, ReturnType<typeof makeWorkflow>>()
const makeWorkflow = (group: string) =>
  Workflow.make({
    name: `braid/run/${group}`,
    payload: RunPayload,
    success: RunResult,
    idempotencyKey: (p) => `${p.runId}/${p.execution}`,
    // Only runners of the group hold its repositories: its runs are placed on them alone.
    annotations: Context.make(ClusterSchema.ShardGroup, () => group)
  })

/** The workflow of a group's runs. */
export const runWorkflow = (group: string) => {
  let workflow = workflows.get(group)
  if (workflow === undefined) workflows.set(group, workflow = makeWorkflow(group))
  return workflow
}

/** One task for a runner to take. */
export const TaskItem = Schema.Struct({ request: TaskExecutor.TaskRequest })

/** The queue a group's tasks wait in. */
export const taskQueue = (group: string) => PersistedQueue.make({ name: `braid/tasks/${group}`, schema: TaskItem })

/** A queue item's id: the same task asked for by the same execution is one item, however often it is asked. */
const itemId = (request: TaskExecutor.TaskRequest) => createHash("sha256").update(`${request.execution}\n${request.key}`).digest("hex").slice(0, 32)

const isoNow = Effect.map(DateTime.now, DateTime.formatIso)
const encodeDone = Schema.encodeSync(TaskExecutor.TaskDone)
const encodeStopped = Schema.encodeSync(TaskExecutor.TaskStopped)
const encodeTaken = Schema.encodeSync(TaskExecutor.TaskTaken)
const decodeDone = Schema.decodeUnknownOption(TaskExecutor.TaskDone)
const decodeStopped = Schema.decodeUnknownOption(TaskExecutor.TaskStopped)

/** A run's record on this runner: its plan (files materialized here), its fold, its options. */
const loadRun = (runner: RunnerInfo, runId: string) =>
  Effect.gen(function*() {
    const stored = yield* runner.store.load(runId)
    const baseDir = Remote.planFolder(runner.workdir, runId)
    // A run's files never change: read from the database and written here once per runner.
    if (!(yield* PlanBundle.materialized(baseDir))) yield* PlanBundle.materialize(yield* runner.store.files(runId), baseDir)
    const plan = yield* runner.host.planOf(stored, baseDir)
    return { stored, plan, state: RunState.fold(stored.records), options: decodeOptions(stored.manifest.options) }
  })

/** Steps of the run over its journal in the database. */
const stepsOf = (runner: RunnerInfo, runId: string, records: ReadonlyArray<Steps.Entry>) =>
  Steps.make(records, (entry) => runner.store.append(runId, entry))

/**
 * The run's side of a task: hand it to the group's queue, wait for the runner that takes it
 * to report, then make the stream's branch (as that runner pushed it) the integration
 * clone's. A task already reported (the run's workflow executed again) is not asked again.
 */
const executorFor = (input: {
  readonly runner: RunnerInfo
  readonly runId: string
  readonly dir: string
  readonly base: string
}): Effect.Effect<TaskExecutor.Service, never, PersistedQueue.PersistedQueueFactory> =>
  Effect.gen(function*() {
    const { base, dir, runId, runner } = input
    const queue = yield* taskQueue(runner.group)
    const git = yield* Effect.makeSemaphore(1)
    const reported = (request: TaskExecutor.TaskRequest) =>
      Effect.map(
        runner.store.latest(runId, [TaskExecutor.keys.done(request.key), TaskExecutor.keys.stopped(request.key)]),
        (facts) => ({
          done: decodeDone(facts.get(TaskExecutor.keys.done(request.key))),
          stopped: decodeStopped(facts.get(TaskExecutor.keys.stopped(request.key))).pipe(Option.filter((s) => s.execution === request.execution))
        })
      )
    return {
      settle: (request) =>
        Effect.gen(function*() {
          let found = yield* reported(request)
          if (Option.isNone(found.done) && Option.isNone(found.stopped)) {
            yield* queue.offer({ request }, { id: itemId(request) }).pipe(
              Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.upTo("3 minutes")))
            )
            while (Option.isNone(found.done) && Option.isNone(found.stopped)) {
              yield* Effect.sleep("100 millis")
              found = yield* reported(request)
            }
          }
          if (Option.isSome(found.stopped)) return yield* Effect.fail(found.stopped.value.error)
          yield* git.withPermits(1)(Effect.zipRight(Remote.fetch(dir), Remote.adopt(dir, Remote.streamBranch(runId, request.stream), base)))
          return Option.getOrThrow(found.done).result
        }).pipe(
          Effect.catchTags({
            StoreFailed: (e) => Effect.die(e),
            WorkspaceFailed: (e) => Effect.die(e),
            PersistedQueueError: (e) => Effect.die(e),
            ParseError: (e) => Effect.die(e)
          })
        )
    }
  })

/** A task that could not be worked on at all (its plan, its clone): failed with why, so its run goes on. */
const failedTask = (request: TaskExecutor.TaskRequest, title: string, why: string) =>
  RunState.taskRecord({ task: { id: request.taskId, title }, attempts: [], status: "failed", error: why, durationMs: 0 })

/**
 * A runner's side of a task: its stream's clone on this runner, fetched and put back at the
 * branch the remote has (an attempt cut off on a runner that died is not in it, unless it was
 * pushed: then it is found and not made again); the task's work, each attempt pushed; the
 * result reported in the run's journal. What goes wrong before the work can start fails the
 * task with the reason, so the run never waits for a task no runner can do.
 */
export const workOn = (request: TaskExecutor.TaskRequest) =>
  Effect.gen(function*() {
    const runner = yield* Runner
    const { runId } = request
    const report = (key: string, value: unknown) => runner.store.append(runId, { key, value })
    yield* report(TaskExecutor.keys.taken(request.key), encodeTaken(new TaskExecutor.TaskTaken({ runner: runner.name, at: yield* isoNow })))
    yield* Effect.logInfo(`task ${request.taskId} of run ${runId} (stream ${request.stream}) taken`)
    const outcome = yield* Effect.scoped(Effect.gen(function*() {
      const { options, plan, state, stored } = yield* loadRun(runner, runId)
      const begun = state.started
      if (begun === undefined) return yield* Effect.dieMessage(`run ${runId} has not started`)
      const dir = Remote.streamClone(runner.workdir, runId, request.stream)
      const branch = Remote.streamBranch(runId, request.stream)
      yield* Remote.clone(options.remoteUrl, dir)
      yield* Remote.trackTarget(dir, begun.target)
      yield* Remote.adopt(dir, branch, begun.base)
      const open = Effect.gen(function*() {
        const git = (yield* GitWorkspace.make({
          repo: dir,
          base: begun.base,
          target: begun.target,
          worktreesDir: Remote.checkoutsOf(dir)
        })).service
        // Every attempt's commit goes to the remote at once: the stream's work outlives this runner.
        const publishing = Workspace.decorate(git, {
          checkout: (checkout) => ({ ...checkout, commitAttempt: (attempt) => Effect.tap(checkout.commitAttempt(attempt), () => Remote.push(dir, branch)) })
        })
        // Kept between the stream's tasks on this runner: its scope closes when the runner gives the checkout back.
        const scope = yield* Scope.make()
        const workspace = yield* publishing.prepare({
          runId,
          streams: plan.streams.map((s) => ({ name: s.name })),
          land: false,
          resume: { base: begun.base, targetAt: begun.targetAt }
        }).pipe(Scope.extend(scope), Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))))
        return { workspace, release: Scope.close(scope, Exit.void) } satisfies Checkout
      })
      const progress = yield* SqlEvents.publisher(runId)
      const settled = yield* runner.checkouts.use(`${runId}/${request.stream}`, open, ({ workspace }) =>
        Dispatch.settleHere({ plan, workspace, request, spent: state.spent }).pipe(
          Effect.provide(runner.host.services(plan, stored)),
          Effect.provideService(Steps.Steps, stepsOf(runner, runId, stored.records)),
          Effect.provideService(Progress.Progress, progress)
        )).pipe(Effect.either)
      yield* Remote.push(dir, branch)
      return { settled, title: plan.tasks.get(request.taskId)?.title ?? request.taskId }
    })).pipe(
      Effect.provide(NodeContext.layer),
      // Interrupted (the runner is stopping): the task is handed back to the queue, not settled.
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.succeed({
          settled: undefined,
          title: request.taskId,
          why: Cause.pretty(cause).split("\n")[0] ?? "unknown"
        })
      )
    )
    if (outcome.settled === undefined) {
      const why = "why" in outcome ? outcome.why : "unknown"
      yield* Effect.logWarning(`task ${request.taskId} of run ${runId} could not be worked on: ${why}`)
      return yield* report(
        TaskExecutor.keys.done(request.key),
        encodeDone(new TaskExecutor.TaskDone({ runner: runner.name, result: failedTask(request, outcome.title, `runner ${runner.name} could not work on it: ${why}`) }))
      )
    }
    const settled = outcome.settled
    if (settled._tag === "Right") {
      yield* report(TaskExecutor.keys.done(request.key), encodeDone(new TaskExecutor.TaskDone({ runner: runner.name, result: settled.right })))
    } else if (settled.left._tag === "UsageLimitReached" || settled.left._tag === "BudgetReached") {
      yield* report(
        TaskExecutor.keys.stopped(request.key),
        encodeStopped(new TaskExecutor.TaskStopped({ execution: request.execution, runner: runner.name, error: settled.left }))
      )
    } else {
      // Its stream's worktree could not be opened here.
      yield* report(
        TaskExecutor.keys.done(request.key),
        encodeDone(new TaskExecutor.TaskDone({ runner: runner.name, result: failedTask(request, outcome.title, settled.left.message) }))
      )
    }
    yield* Effect.logInfo(`task ${request.taskId} of run ${runId} settled`)
  })

/** The group's tasks, `slots` at a time on this runner, until it stops. */
export const worker = (slots: number) =>
  Effect.gen(function*() {
    const runner = yield* Runner
    const queue = yield* taskQueue(runner.group)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    // The queue's own lease refresh (SqlPersistedQueue in @effect/sql 0.52) never runs: it
    // refreshes the items in a set nothing adds to. Without this, a task that takes longer
    // than the lease (10 s) would be taken again by another runner while it is at work.
    const renewed = (id: string) =>
      sql`UPDATE braid_tasks SET acquired_at = NOW() WHERE id = ${id} AND acquired_at IS NOT NULL`.pipe(
        Effect.ignore,
        Effect.repeat(Schedule.spaced("2 seconds")),
        Effect.forkScoped
      )
    const one = queue.take(({ request }, { id }) =>
      Effect.scoped(Effect.zipRight(renewed(id), workOn(request).pipe(Effect.provideService(Runner, runner))))
    ).pipe(
      Effect.catchAllCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.logWarning(Cause.pretty(cause)))
    )
    yield* Effect.forkScoped(Effect.replicateEffect(Effect.forever(one), slots, { concurrency: slots, discard: true }))
  })

/**
 * The integration's commits go to the remote as they are made (`braid/<run>/integration`), as
 * a stream's attempts do: a run executed again on another runner continues the integration
 * from there instead of merging onto a base that lacks what was merged already.
 */
const publishingIntegration = (workspace: Workspace.Service, dir: string, branch: string): Workspace.Service => {
  const publish = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.tap(effect, () => Remote.push(dir, branch))
  return Workspace.decorate(workspace, {
    integration: (integration) => ({
      ...integration,
      begin: (options) => publish(integration.begin(options)),
      merge: (stream, side) => publish(integration.merge(stream, side)),
      conclude: (stream) => publish(integration.conclude(stream)),
      catchUp: publish(integration.catchUp)
    })
  })
}

/**
 * One execution of a run, on the runner the cluster placed it on: its integration clone here,
 * fetched, with every stream's branch as the remote has it; then the orchestrator, as in a
 * local run, over the run's journal, with its tasks handed to the queue. Landing moves the
 * remote's target (`push`: the clone is this runner's own, so `local` means the same here) or
 * opens a pull request (`pr`).
 */
export const executeRun = (payload: RunPayload, executionId: string) =>
  Effect.gen(function*() {
    const runner = yield* Runner
    const { runId } = payload
    const recordStop = (reason: string) =>
      Effect.flatMap(isoNow, (at) =>
        runner.store.append(runId, { key: RunState.keys.interrupted, value: Schema.encodeSync(RunState.Interrupted)(new RunState.Interrupted({ reason, at })) }))
    yield* Effect.logInfo(`run ${runId} (${payload.execution}) starts here`)
    return yield* Effect.gen(function*() {
      const { options, plan, state, stored } = yield* loadRun(runner, runId)
      const dir = Remote.integrationClone(runner.workdir, runId)
      yield* Remote.clone(options.remoteUrl, dir)
      const targetNow = yield* Remote.trackTarget(dir, options.target)
      const base = state.started?.base ?? targetNow
      for (const s of plan.streams) yield* Remote.adopt(dir, Remote.streamBranch(runId, s.name), base)
      // The integration as far as an earlier execution took it (on this runner or one that died).
      const integration = Remote.integrationBranch(runId)
      if (!(yield* Remote.checkedOut(dir, integration))) yield* Remote.adopt(dir, integration, base)
      const progress = yield* SqlEvents.publisher(runId)
      const executor = yield* executorFor({ runner, runId, dir, base })
      const mode = options.landMode === undefined || options.landMode === "local" ? "push" : options.landMode
      const report = yield* Orchestrator.run(plan, {
        runId,
        executionId,
        land: options.land || state.landRequested,
        retries: state.retries.map((r) => ({ round: r.round, tasks: r.tasks, note: r.note ?? undefined })),
        catchUp: state.landRequested,
        spent: state.spent,
        landing: Landing.modeNamed(mode),
        remote: "origin"
      }).pipe(
        Effect.provide(runner.host.services(plan, stored)),
        Effect.provide(Layer.effect(
          Workspace.Workspace,
          Effect.map(GitWorkspace.make({ repo: dir, base, target: options.target, worktreesDir: Remote.checkoutsOf(dir) }), (made) => publishingIntegration(made.service, dir, integration))
        )),
        Effect.provide(NodeContext.layer),
        Effect.provideService(Steps.Steps, stepsOf(runner, runId, stored.records)),
        Effect.provideService(Progress.Progress, progress),
        Effect.provideService(TaskExecutor.TaskExecutor, executor)
      )
      yield* runner.store.saveReport(runId, JSON.stringify(RunReport.encode(RunReport.scrub(report)), null, 2))
      yield* Effect.logInfo(`run ${runId} (${payload.execution}): ${report.status}`)
      if (report.status === "succeeded") yield* Remote.forget(runner.workdir, runId)
      return { status: report.status, message: null } satisfies RunResult
    }).pipe(
      Effect.scoped,
      // What stops a run before its report is an outcome people are told of, and a continuation resumes.
      Effect.catchAll((e) => {
        const message = "message" in e && typeof e.message === "string" && e.message !== "" ? e.message : e._tag
        const status = e._tag === "UsageLimitReached" || e._tag === "BudgetReached" ? "paused" : "error"
        return Effect.as(Effect.zipRight(recordStop(message).pipe(Effect.ignore), Effect.logWarning(`run ${runId}: ${status}: ${message}`)), {
          status,
          message
        } satisfies RunResult)
      })
    )
  })

/** The workflow of the runner's group, executed here. */
export const workflowLayer = (group: string) => runWorkflow(group).toLayer((payload, executionId) => executeRun(payload, executionId))

