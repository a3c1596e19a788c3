/**
 * Reviewer kinds: who reviews a stream's attempts. Each kind is one value in `all`, and the
 * plan's `reviewer` (and `--reviewer`) accepts their names: `Plan.ReviewerKind` is made from
 * this list. A kind makes its reviewer from the parts `@braid/agents` builds — the plan's checks
 * and, for a kind that asks for one, the stream's LLM judge — so core knows no reviewer backend.
 * This module imports no braid module at run time but `Review`, so `Plan` can take the names.
 *
 * @since 0.1.0
 */
import { Array as Arr, Effect } from "effect"
import * as Review from "./Review.js"

/** The plan's checks (the task's and the plan's commands) as a reviewer, and their outcomes for a judge. */
export interface Checks<O> extends Review.Service {
  /** The checks' outcomes and the review they make (none ran when the attempt changed nothing). */
  readonly run: (request: Review.ReviewRequest) => Effect.Effect<{ readonly outcomes: O; readonly review: Review.Review }, Review.ReviewFailed>
}

/** A judge: reviews an attempt, told the checks' outcomes when they ran first. */
export interface Judge<O> {
  readonly review: (request: Review.ReviewRequest, checks: O | undefined, reviewer?: string) => Effect.Effect<Review.Review, Review.ReviewFailed>
}

/** What a kind makes its reviewer from. */
export interface Parts<O, E, R> {
  readonly checks: Checks<O>
  /** The stream's judge, made only when a kind asks for it. */
  readonly judge: Effect.Effect<Judge<O>, E, R>
  /** The review of an attempt that changed nothing: a blocker whatever else is said. */
  readonly noChange: (request: Review.ReviewRequest) => Review.Review
}

/** One reviewer kind: a value in `all`. */
export interface Kind<N extends string = string> {
  readonly name: N
  readonly description: string
  /** Whether it asks an LLM judge (so the plan's judge settings must work). */
  readonly usesJudge: boolean
  /** The reviewer of a stream's attempts. */
  readonly make: <O, E, R>(parts: Parts<O, E, R>) => Effect.Effect<Review.Service, E, R>
}

/** The task's and the plan's checks; the default when no judge is configured. */
export const checks: Kind<"checks"> = {
  name: "checks",
  description: "the checks",
  usesJudge: false,
  make: (parts) => Effect.succeed(parts.checks)
}

/** The judge alone (an attempt that changed nothing still fails without asking it). */
export const judge: Kind<"judge"> = {
  name: "judge",
  description: "an LLM judge",
  usesJudge: true,
  make: (parts) =>
    Effect.map(parts.judge, (judge): Review.Service => ({
      review: (request) => request.change.commit === null ? Effect.succeed(parts.noChange(request)) : judge.review(request, undefined)
    }))
}

/** Checks first, then the judge; a failing check fails the gate whatever the judge says. The default when a judge is configured. */
export const composite: Kind<"composite"> = {
  name: "composite",
  description: "both (checks first; a failing check fails the gate)",
  usesJudge: true,
  make: (parts) =>
    Effect.map(parts.judge, (judge): Review.Service => ({
      review: (request) =>
        Effect.gen(function*() {
          const ran = yield* parts.checks.run(request)
          if (request.change.commit === null) return ran.review
          const judged = yield* judge.review(request, ran.outcomes, composite.name)
          if (ran.review.blockers.length === 0) return judged
          // The checks' verdict stands; the judge's words go along for the next attempt.
          return new Review.Review({
            score: Math.min(ran.review.score, judged.score),
            issues: [...ran.review.issues, ...judged.issues],
            suggestions: [...ran.review.suggestions, ...judged.suggestions],
            reviewer: composite.name,
            blockers: ran.review.blockers,
            findings: judged.findings,
            samples: judged.samples
          })
        })
    }))
}

/** Every reviewer kind; the plan's `reviewer` is one of their names. */
export const all = [checks, judge, composite] as const

/** A reviewer kind's name. */
export type Name = (typeof all)[number]["name"]

/** The kinds' names, in the list's order. */
export const names = Arr.map(all, (k): Name => k.name)

/** The kind with this name. */
export const named = (name: Name): Kind => all.find((k) => k.name === name)!
