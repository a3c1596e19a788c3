/**
 * Builds the layers a run needs from the command line: the workspace, the agents, the
 * reviewer and the conflict resolver.
 *
 * @since 0.1.0
 */
import { Registry } from "@braid/agents"
import { type Agent, type ConflictResolver, GitWorkspace, MemoryWorkspace, type Plan, type Review, type Workspace } from "@braid/core"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import * as Backends from "./Backends.js"

/** Agent backends the command knows. */
export const backends = Backends.names

export interface WiringOptions {
  readonly workspace: "git" | "memory"
  readonly agent: string | undefined
  readonly reviewer?: Plan.ReviewerKind | undefined
  readonly repo: string | undefined
  readonly base: string | undefined
  readonly target: string | undefined
  /** Where a new run's checkouts go (absolute; default: the workspace's, outside the repository). */
  readonly worktreesDir?: string | undefined
}

/** The workspace layer the options choose. */
export const workspaceLayer = (options: WiringOptions): Layer.Layer<Workspace.Workspace> =>
  (options.workspace === "memory"
    ? MemoryWorkspace.layer({})
    : GitWorkspace.layer({
      repo: options.repo ?? process.cwd(),
      ...(options.base !== undefined ? { base: options.base } : {}),
      ...(options.target !== undefined ? { target: options.target } : {}),
      ...(options.worktreesDir !== undefined ? { worktreesDir: options.worktreesDir } : {})
    })).pipe(Layer.provide(NodeContext.layer))

/** Every service `Orchestrator.run` needs except `Progress`. */
export const layer = (
  plan: Plan.Plan,
  options: WiringOptions
): Layer.Layer<Agent.AgentRegistry | Review.Reviewer | ConflictResolver.ConflictResolver | Workspace.Workspace> => {
  const workspace = workspaceLayer(options)
  const agents = Registry.layer(plan, {
    backends: Backends.all,
    agent: options.agent,
    agentSource: "--agent",
    reviewer: options.reviewer,
    reviewerSource: "--reviewer",
    workspace: options.workspace
  }).pipe(Layer.provide(NodeContext.layer))
  return Layer.merge(agents, workspace)
}
