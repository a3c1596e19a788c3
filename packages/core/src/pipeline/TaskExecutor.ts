/**
 * Where a task's work is done. Embedded, dispatch does it in its own process: the stream's
 * worktree is a checkout of the repository it runs in. A cluster run gives dispatch a
 * `TaskExecutor` instead: each task that gets one of the run's agent slots is handed to
 * whichever runner of the cluster takes it, which checks the stream's branch out of the run's
 * remote, brings in the dependencies' work, runs the quality gate (its attempts and reviews
 * durable steps of the same run), pushes the branch and reports the task's result. Dispatch
 * keeps everything else: the order of tasks, the dependency waits, the slots (so `maxParallel`
 * holds for the run across every runner), the halts, the task's own durable step.
 *
 * @since 0.5.0
 */
import { Context, type Effect, Schema } from "effect"
import * as Agent from "../ports/Agent.js"
import * as Budget from "./Budget.js"
import * as RunState from "../run/RunState.js"

/** What another stream's task left for this one: its stream's head when it settled. */
export const Dependency = Schema.Struct({ taskId: Schema.String, stream: Schema.String, head: Schema.String })

const Summary = Schema.Struct({
  taskId: Schema.String,
  title: Schema.String,
  summary: Schema.String,
  changedFiles: Schema.Array(Schema.String)
})

/** One task to settle, as dispatch hands it over (Schema-encoded, it travels to another machine). */
export const TaskRequest = Schema.Struct({
  runId: Schema.String,
  /** Which execution of the run asked (a continuation is a new one): a stop reported to an earlier one is not this one's. */
  execution: Schema.String,
  /** The task's durable step (`stream/<s>/task/<t>[/retry/<r>]`). */
  key: Schema.String,
  stream: Schema.String,
  taskId: Schema.String,
  round: Schema.Number,
  note: Schema.NullOr(Schema.String),
  /** Dependencies in other streams, to bring into this stream first. */
  deps: Schema.Array(Dependency),
  /** Earlier tasks of the stream, as its agent is told of them. */
  earlier: Schema.Array(Schema.extend(Summary, Schema.Struct({ status: Schema.String }))),
  /** Work of other streams this task builds on, as its agent is told of it. */
  broughtIn: Schema.Array(Schema.extend(Summary, Schema.Struct({ stream: Schema.String })))
})
export type TaskRequest = typeof TaskRequest.Type

/** What stops a whole run from inside a task: a provider's usage limit, or the run's budget. */
export const TaskStop = Schema.Union(Agent.UsageLimitReached, Budget.BudgetReached)
export type TaskStop = typeof TaskStop.Type

/** Fact `<task>/done`: the task's result as the runner that did its work reported it. */
export class TaskDone extends Schema.TaggedClass<TaskDone>()("TaskDone", {
  runner: Schema.String,
  result: RunState.TaskRecord
}) {}

/** Fact `<task>/stopped`: a task's work stopped the run (for the execution that asked). */
export class TaskStopped extends Schema.TaggedClass<TaskStopped>()("TaskStopped", {
  execution: Schema.String,
  runner: Schema.String,
  error: TaskStop
}) {}

/** Fact `<task>/runner`: a runner took the task (each time one does: a task cut off is taken again). */
export class TaskTaken extends Schema.TaggedClass<TaskTaken>()("TaskTaken", {
  runner: Schema.String,
  at: Schema.String
}) {}

/** Keys of the executor's facts, beside the task's own step. */
export const keys = {
  done: (task: string) => `${task}/done`,
  stopped: (task: string) => `${task}/stopped`,
  taken: (task: string) => `${task}/runner`
} as const

export interface Service {
  /**
   * Settles one task elsewhere and makes its stream's head (its branch, as the runner pushed
   * it) this workspace's. Fails with what stops the run.
   */
  readonly settle: (request: TaskRequest) => Effect.Effect<RunState.TaskRecord, TaskStop>
}

/** Given to dispatch, tasks' work is done by it rather than in this process. */
export class TaskExecutor extends Context.Tag("@braid/core/TaskExecutor")<TaskExecutor, Service>() {}
