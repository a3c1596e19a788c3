/**
 * @braid/core — the braid engine.
 *
 * @since 0.1.0
 */
export * as Agent from "./Agent.js"
export * as CommandSpec from "./CommandSpec.js"
export * as ConflictResolver from "./ConflictResolver.js"
export * as MemoryWorkspace from "./MemoryWorkspace.js"
export * as Plan from "./Plan.js"
export * as Process from "./Process.js"
export * as Progress from "./Progress.js"
export * as Review from "./Review.js"
export * as RunReport from "./RunReport.js"
export * as Workspace from "./Workspace.js"
