/**
 * An agent backend is a value: its name, its preflight, how it builds the agent that runs
 * attempts, and its defaults. The registry is a list of these values; adding a backend is
 * one module exporting one `Backend`, one entry in `Registry.all`, and its tests.
 *
 * @since 0.1.0
 */
import type { Agent, ConflictResolver, Plan, Review } from "@braid/core"
import type { CommandExecutor, FileSystem } from "@effect/platform"
import type { Effect } from "effect"

/** One reason a backend cannot run, with where it was chosen or configured. */
export interface Problem {
  readonly path: string
  readonly message: string
}

/** What a backend's preflight looks at. */
export interface PreflightContext {
  readonly plan: Plan.Plan
  /** The streams that use this backend, with their index in the plan's `streams`. */
  readonly streams: ReadonlyArray<{ readonly index: number; readonly stream: Plan.PlannedStream }>
  /** The backend's settings: `agents.<name>` of the plan over `braid.config.yaml`'s. */
  readonly settings: Plan.AgentSettings
  /** Where the backend was chosen, as a path into the plan (`streams[2].agent`, `agent`, `--agent`). */
  readonly path: string
  readonly workspaceKind: "git" | "memory"
}

/** What a backend builds its agent from. */
export interface BuildContext {
  readonly plan: Plan.Plan
  readonly settings: Plan.AgentSettings
}

/** What a backend provides: its agent, and where it has its own, a reviewer and a conflict resolver. */
export interface Built {
  readonly agent: Agent.Service
  /** Reviews the attempts of streams using this backend (default: the plan's checks). */
  readonly reviewer?: Review.Service | undefined
  /**
   * Resolves conflicts when this backend is the resolver's (`Registry.resolverBackendOf`);
   * without one its agent resolves them in the architect role (`AgentResolver`).
   */
  readonly resolver?: ConflictResolver.Service | undefined
}

/** What backends may use when they are checked and built: processes and files, never the run's workspace. */
export type Requirements = CommandExecutor.CommandExecutor | FileSystem.FileSystem

/** What a preflight may use (it looks and changes nothing). */
export type PreflightRequirements = Requirements

/** An agent backend. */
export interface Backend {
  /** What streams and plans name it by (`agent: claude-code`). */
  readonly name: string
  /** One line for help and `braid plan`. */
  readonly description: string
  /**
   * Fields the backend adds to a plan's tasks (the mock's `mock:`): plans are decoded with the
   * fields of the backends on offer (`Plan.TaskFields`, `Registry.taskFields`).
   */
  readonly taskFields?: ReadonlyArray<Plan.TaskField> | undefined
  /**
   * Everything that would stop the backend from running this plan, found before anything
   * changes: the executable missing or not runnable, no key or login, a task it cannot do.
   */
  readonly preflight: (context: PreflightContext) => Effect.Effect<ReadonlyArray<Problem>, never, PreflightRequirements>
  readonly make: (context: BuildContext) => Effect.Effect<Built, never, Requirements>
}
