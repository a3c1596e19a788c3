/**
 * The `ConflictResolver` port: edits conflicted files in the integration workspace so
 * that no conflict markers remain.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import type * as Plan from "./Plan.js"
import type * as Workspace from "./Workspace.js"

/** What a resolver is asked to fix. */
export interface ResolutionRequest {
  readonly runId: string
  /** The stream being merged. */
  readonly stream: Plan.PlannedStream
  /** Streams already integrated whose changes touch the conflicted paths. */
  readonly against: ReadonlyArray<Plan.PlannedStream>
  readonly paths: ReadonlyArray<string>
  readonly files: Workspace.Files
}

/** The resolver could not resolve the conflict. */
export class ResolutionFailed extends Schema.TaggedError<ResolutionFailed>()("ResolutionFailed", {
  paths: Schema.Array(Schema.String),
  message: Schema.String
}) {}

/** The resolver port. */
export interface Service {
  readonly name: string
  readonly resolve: (request: ResolutionRequest) => Effect.Effect<{ readonly summary: string }, ResolutionFailed>
}

/** The conflict resolver a run uses for the `agent` strategy. */
export class ConflictResolver extends Context.Tag("@braid/core/ConflictResolver")<ConflictResolver, Service>() {}
