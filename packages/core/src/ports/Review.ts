/**
 * Reviews and the `Reviewer` port: an attempt scored 0–100 with issues and suggestions.
 * Whether it passes is decided by the engine (`score >= qualityThreshold`), never by a reviewer.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import type * as Attempt from "../run/Attempt.js"
import type * as Plan from "../run/Plan.js"
import type * as Workspace from "./Workspace.js"

/** How much an issue a judge found matters. */
export const Severity = Schema.Literal("critical", "major", "minor")
export type Severity = typeof Severity.Type

/** One issue a judge found, where it is. */
export class Finding extends Schema.Class<Finding>("Finding")({
  severity: Severity,
  /** The file it is in, when it is in one. */
  file: Schema.NullOr(Schema.String),
  message: Schema.String
}) {}

/** One answer of an LLM judge (a review may ask it up to three times and take the median). */
export class JudgeSample extends Schema.Class<JudgeSample>("JudgeSample")({
  score: Schema.Number,
  findings: Schema.Array(Finding),
  suggestions: Schema.Array(Schema.String),
  model: Schema.NullOr(Schema.String),
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costUsd: Schema.NullOr(Schema.Number)
}) {}

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
  blockers: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** The judge's issues with their severity and file (its `issues` carry the same as text). */
  findings: Schema.optionalWith(Schema.Array(Finding), { default: () => [] }),
  /** Every answer a judge gave (three when the first landed near the threshold; the score is their median). */
  samples: Schema.optionalWith(Schema.Array(JudgeSample), { default: () => [] })
}) {}

/** What a reviewer is asked to judge. */
export interface ReviewRequest {
  readonly runId: string
  readonly task: Plan.Task
  readonly stream: Plan.PlannedStream
  readonly attempt: number
  readonly threshold: number
  /** The attempt as the journal holds it: its commit and files, the agent's summary, usage and session. */
  readonly recorded: Attempt.AttemptDone
  /** The attempt's commit and the files it changed (the recorded attempt's). */
  readonly change: Workspace.AttemptChange
  readonly files: Workspace.Files
  /** Runs a command in the stream's checkout (the checks of a command reviewer). */
  readonly exec: Workspace.Checkout["exec"]
  /** Plan-wide checks every task also runs. */
  readonly planChecks: ReadonlyArray<import("../run/CommandSpec.js").Command>
}

/** The reviewer could not produce a review (an error, not a low score); retried with backoff. */
export class ReviewFailed extends Schema.TaggedError<ReviewFailed>()("ReviewFailed", {
  reviewer: Schema.String,
  message: Schema.String,
  /** How long the reviewer's provider asked to wait before asking again (`Retry-After`). */
  retryAfterMs: Schema.optional(Schema.Number)
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

