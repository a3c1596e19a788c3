/**
 * @braid/core — the braid engine.
 *
 * @since 0.1.0
 */
export * as Agent from "./Agent.js"
export * as AgentSlots from "./AgentSlots.js"
export * as CommandSpec from "./CommandSpec.js"
export * as ConflictResolver from "./ConflictResolver.js"
export * as Conflicts from "./Conflicts.js"
export * as Dispatch from "./Dispatch.js"
export * as ExecutionPlan from "./ExecutionPlan.js"
export * as FileRunStore from "./FileRunStore.js"
export * as GitWorkspace from "./GitWorkspace.js"
export * as Journal from "./Journal.js"
export * as Landing from "./Landing.js"
export * as MemoryWorkspace from "./MemoryWorkspace.js"
export * as Orchestrator from "./Orchestrator.js"
export * as Plan from "./Plan.js"
export * as Process from "./Process.js"
export * as Progress from "./Progress.js"
export * as ProviderLimits from "./ProviderLimits.js"
export * as QualityGate from "./QualityGate.js"
export * as Replay from "./Replay.js"
export * as Review from "./Review.js"
export * as RunReport from "./RunReport.js"
export * as RunStore from "./RunStore.js"
export * as Verification from "./Verification.js"
export * as Workspace from "./Workspace.js"
