/**
 * @braid/cluster: braid runs spread over machines, on `@effect/workflow` + `@effect/cluster`
 * with Postgres, a shared git remote as the data plane.
 *
 * @since 0.5.0
 */
export * as Cluster from "./Cluster.js"
export * as Database from "./Database.js"
export * as Engine from "./Engine.js"
export * as PlanBundle from "./PlanBundle.js"
export * as Remote from "./Remote.js"
export * as SqlEvents from "./SqlEvents.js"
export * as SqlRunStore from "./SqlRunStore.js"
export * as Workdir from "./Workdir.js"
