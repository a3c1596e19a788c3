/**
 * An agent backend is a value: its name, its preflight, how it builds the agent that runs
 * attempts, and its defaults. The registry is a list of these values; adding a backend is
 * one module exporting one `Backend`, one entry in `Registry.all`, and its tests.
 *
 * @since 0.1.0
 */
import type { Agent, ConflictResolver, Plan, Review } from "@braid/core"
import type { CommandExecutor, FileSystem } from "@effect/platform"
import type { Effect, Schema } from "effect"

/** One reason a backend cannot run, with where it was chosen or configured. */
export interface Problem {
  readonly path: string
  readonly message: string
}

/** What a backend's preflight looks at; `S` is its settings (`Backend.settings`). */
export interface PreflightContext<S extends Plan.AgentSettings = Plan.AgentSettings> {
  readonly plan: Plan.Plan
  /** The streams that use this backend, with their index in the plan's `streams`. */
  readonly streams: ReadonlyArray<{ readonly index: number; readonly stream: Plan.PlannedStream }>
  /** The backend's settings: `agents.<name>` of the plan over `braid.config.yaml`'s, decoded with its Schema. */
  readonly settings: S
  /** Where the backend was chosen, as a path into the plan (`streams[2].agent`, `agent`, `--agent`). */
  readonly path: string
  readonly workspaceKind: "git" | "memory"
}

/** What a backend builds its agent from; `S` is its settings (`Backend.settings`). */
export interface BuildContext<S extends Plan.AgentSettings = Plan.AgentSettings> {
  readonly plan: Plan.Plan
  readonly settings: S
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

/** An agent backend; `S` is what it reads under `agents.<name>`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Backend<S extends Plan.AgentSettings = any> {
  /** What streams and plans name it by (`agent: claude-code`). */
  readonly name: string
  /** One line for help and `braid plan`. */
  readonly description: string
  /**
   * Fields the backend adds to a plan's tasks (the mock's `mock:`): plans are decoded with the
   * fields of the backends on offer (`Plan.BackendFields`, `Registry.planFields`).
   */
  readonly taskFields?: ReadonlyArray<Plan.TaskField> | undefined
  /**
   * Its settings under `agents.<name>` (the plan's over `braid.config.yaml`'s): a Schema holding
   * `Plan.AgentSettings`' fields and its own (`Settings`). Plans are decoded with the settings of
   * the backends on offer (`Plan.BackendFields`, `Registry.planFields`).
   */
  readonly settings: Schema.Schema<S, any>
  /**
   * Everything that would stop the backend from running this plan, found before anything
   * changes: the executable missing or not runnable, no key or login, a task it cannot do.
   */
  readonly preflight: (context: PreflightContext<S>) => Effect.Effect<ReadonlyArray<Problem>, never, PreflightRequirements>
  readonly make: (context: BuildContext<S>) => Effect.Effect<Built, never, Requirements>
}
