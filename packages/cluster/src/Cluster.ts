/**
 * Joining the cluster: a runner (`braid runner`) — its socket for the other runners, its
 * shards of its group, the workflow of the group's runs, its task slots — and a client
 * (`braid submit`, `retry`, `land` with `--database`), which only sends.
 *
 * @since 0.5.0
 */
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as PersistedQueue from "@effect/experimental/PersistedQueue"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as SqlPersistedQueue from "@effect/sql/SqlPersistedQueue"
import type * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import { Effect, Layer, Option, Schedule } from "effect"
import * as Database from "./Database.js"
import * as Engine from "./Engine.js"
import * as SqlRunStore from "./SqlRunStore.js"

/** How quickly the cluster notices a runner is gone, and how often it looks for work. */
const timing = {
  // A dead runner's shards (its runs' workflows) move after this.
  shardLockRefreshInterval: "2 seconds",
  shardLockExpiration: "10 seconds",
  entityMessagePollInterval: "1 second",
  entityReplyPollInterval: "200 millis",
  refreshAssignmentsInterval: "1 second"
} as const

/** The task queue: a task whose runner stopped answering is taken again after `lockExpiration`. */
const queues = PersistedQueue.layer.pipe(
  Layer.provide(SqlPersistedQueue.layerStore({ tableName: "braid_tasks", pollInterval: "100 millis", lockRefreshInterval: "2 seconds", lockExpiration: "10 seconds" }))
)

/** Creates or migrates braid's tables; runners starting together wait for each other. */
const migrated = Layer.effectDiscard(
  Database.migrate.pipe(
    Effect.retry({ while: (e) => e._tag === "MigrationError" && e.reason === "locked", schedule: Schedule.spaced("500 millis"), times: 60 }),
    Effect.orDie
  )
)

export interface RunnerOptions {
  readonly database: Database.Database
  /** How people and the journal name this runner. */
  readonly name: string
  /** Where the other runners reach this one. */
  readonly address: { readonly host: string; readonly port: number }
  readonly group: string
  readonly slots: number
  readonly workdir: string
  readonly host: Engine.Host
}

/** A runner: joins the cluster, works until its scope closes (then hands its shards and tasks over). */
export const runner = (options: RunnerOptions): Layer.Layer<never, Database.DatabaseUnreachable> => {
  const groups = [...new Set(["default", options.group])].sort()
  const cluster = NodeClusterSocket.layer({
    storage: "sql",
    shardingConfig: {
      runnerAddress: Option.some(RunnerAddress.make(options.address.host, options.address.port)),
      availableShardGroups: groups,
      assignedShardGroups: groups,
      // Locks in a table, per shard name: runners of different groups never share lock numbers.
      shardLockDisableAdvisory: true,
      ...timing
    }
  })
  const info = Layer.scoped(
    Engine.Runner,
    Effect.map(Effect.zip(SqlRunStore.make({ shown: options.database.shown }), Engine.checkouts), ([store, checkouts]) => ({
      name: options.name,
      workdir: options.workdir,
      group: options.group,
      store,
      host: options.host,
      checkouts
    }))
  )
  return Layer.mergeAll(Engine.workflowLayer(options.group), Layer.scopedDiscard(Engine.worker(options.slots))).pipe(
    Layer.provide(ClusterWorkflowEngine.layer),
    Layer.provide(queues),
    Layer.provide(info),
    Layer.provide(cluster),
    Layer.provide(migrated),
    Database.oneAtATime,
    Layer.orDie,
    Layer.provide(Database.client(options.database))
  )
}

/** A client of the cluster: sends runs to it (never runs anything itself). */
export const client = (
  database: Database.Database
): Layer.Layer<WorkflowEngine.WorkflowEngine | import("@effect/sql/SqlClient").SqlClient, Database.DatabaseUnreachable> =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provide(NodeClusterSocket.layer({ storage: "sql", clientOnly: true, shardingConfig: timing })),
    Layer.provide(migrated),
    Database.oneAtATime,
    Layer.orDie,
    Layer.provideMerge(Database.client(database))
  )
