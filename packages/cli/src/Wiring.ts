/**
 * Builds the layers a run needs from the command line: the workspace, the agents, the
 * reviewer and the conflict resolver.
 *
 * @since 0.1.0
 */
import { Harness } from "@braid/agents"
import { type Agent, type ConflictResolver, MemoryWorkspace, type Plan, type Review, type Workspace } from "@braid/core"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"

/** Agent backends the command knows. */
export const backends = ["script", "mock"] as const
export type Backend = typeof backends[number]

export interface WiringOptions {
  readonly workspace: "git" | "memory"
  readonly agent: Backend | undefined
  readonly repo: string | undefined
  readonly base: string | undefined
  readonly target: string | undefined
}

/** Every service `Orchestrator.run` needs except `Progress`. */
export const layer = (
  plan: Plan.Plan,
  options: WiringOptions
): Layer.Layer<Agent.AgentRegistry | Review.Reviewer | ConflictResolver.ConflictResolver | Workspace.Workspace> => {
  const agents = Layer.unwrapEffect(Effect.map(Harness.make(Harness.scriptFromPlan(plan)), (h) => h.layer))
  const workspace = MemoryWorkspace.layer({})
  return Layer.mergeAll(agents, workspace).pipe(Layer.provide(NodeContext.layer))
}
