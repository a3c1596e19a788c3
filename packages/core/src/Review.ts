/**
 * Reviews and the `Reviewer` port: an attempt scored 0–100 with issues and suggestions.
 * Whether it passes is decided by the engine (`score >= qualityThreshold`), never by a reviewer.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import type * as Agent from "./Agent.js"
import type * as Plan from "./Plan.js"
import type * as Workspace from "./Workspace.js"

/** A reviewer's verdict on one attempt. */
export class Review extends Schema.Class<Review>("Review")({
  score: Schema.Number.pipe(Schema.between(0, 100)),
  issues: Schema.Array(Schema.String),
  suggestions: Schema.Array(Schema.String),
  /** Which reviewer produced it. */
  reviewer: Schema.optionalWith(Schema.String, { default: () => "reviewer" }),
  /**
   * Why the attempt cannot pass whatever its score and the threshold: a failing check, no
   * change at all. A low threshold never lets these through.
   */
  blockers: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
}) {}

/** What a reviewer is asked to judge. */
export interface ReviewRequest {
  readonly runId: string
  readonly task: Plan.Task
  readonly stream: Plan.PlannedStream
  readonly attempt: number
  readonly threshold: number
  readonly output: Agent.AttemptOutput
  readonly change: Workspace.AttemptChange
  readonly files: Workspace.Files
  /** Plan-wide checks every task also runs. */
  readonly planChecks: ReadonlyArray<import("./CommandSpec.js").Command>
}

/** The reviewer could not produce a review (an error, not a low score); retried with backoff. */
export class ReviewFailed extends Schema.TaggedError<ReviewFailed>()("ReviewFailed", {
  reviewer: Schema.String,
  message: Schema.String
}) {}

/** The reviewer port. */
export interface Service {
  readonly review: (request: ReviewRequest) => Effect.Effect<Review, ReviewFailed>
}

/** The reviewer a run uses. */
export class Reviewer extends Context.Tag("@braid/core/Reviewer")<Reviewer, Service>() {}

/**
 * Whether a review passes: computed by the engine from the score and the threshold; a review
 * with a blocker (a failing check, an attempt that changed nothing) never passes.
 */
export const passes = (review: Review, threshold: number): boolean => review.blockers.length === 0 && review.score >= threshold

