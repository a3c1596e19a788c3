/**
 * Who reviews a stream's attempts: one of the kinds of core's `ReviewerKind.all` — `checks` (the
 * task's and plan's commands, `CommandReviewer`), `judge` (an LLM, `Judge`), or `composite` —
 * made from the parts built here. A stream's reviewer is its own `reviewer`, else its
 * role's (`roles.<role>.reviewer`), else the plan's, else `braid.config.yaml`'s, else the
 * caller's (`--reviewer`), else `composite` when a judge is configured and `checks` otherwise.
 *
 * @since 0.1.0
 */
import { Plan, type Review, ReviewerKind } from "@braid/core"
import type { CommandExecutor } from "@effect/platform"
import { Effect } from "effect"
import type * as Backend from "./Backend.js"
import * as CommandReviewer from "./CommandReviewer.js"
import * as Judge from "./Judge.js"

/** The reviewer of composite reviews. */
export const COMPOSITE = ReviewerKind.composite.name

/** The caller's choice (the CLI's `--reviewer`), below every plan setting. */
export interface Options {
  readonly reviewer?: Plan.ReviewerKind | undefined
  /** How problems name where `reviewer` came from (the CLI says "--reviewer"). */
  readonly reviewerSource?: string | undefined
}

/** A stream's reviewer and judge, and whether the reviewer was chosen anywhere (else it is the default). */
export const reviewOf = (plan: Plan.Plan, stream: Plan.PlannedStream, options: Options = {}) => {
  const settings = Plan.reviewSettingsOf(plan, stream)
  const chosen = settings.reviewer ?? options.reviewer
  const kind: Plan.ReviewerKind = chosen ?? (settings.judge !== undefined ? ReviewerKind.composite : ReviewerKind.checks).name
  return { kind, chosen: chosen !== undefined, judge: Judge.resolve(plan, settings.judge) }
}

/** Where a stream's judge settings come from, as a path into the plan. */
const judgePath = (plan: Plan.Plan, index: number): string => {
  const stream = plan.streams[index]!
  if (stream.judge !== undefined) return `streams[${index}].judge`
  const role = Plan.ROLES[stream.type]
  if (plan.file.roles?.[role]?.judge !== undefined) return `roles.${role}.judge`
  if (plan.file.judge !== undefined) return "judge"
  if (plan.config.judge !== undefined) return "braid.config.yaml: judge"
  return plan.agents.llm !== undefined ? "agents.llm" : "judge"
}

/** Every problem of the judges the plan's streams would use. */
export const preflight = (plan: Plan.Plan, options: Options = {}): Effect.Effect<ReadonlyArray<Backend.Problem>> =>
  Effect.gen(function*() {
    const found: Array<Backend.Problem> = []
    for (const [index, stream] of plan.streams.entries()) {
      const { judge, kind } = reviewOf(plan, stream, options)
      if (!ReviewerKind.named(kind).usesJudge) continue
      found.push(...(yield* Judge.problems(judge, judgePath(plan, index))))
    }
    return found
  })

/** Reviewers per stream. */
export interface Service {
  /** The reviewer of a stream's attempts; `own` is the stream's backend's own reviewer, used unless one is chosen. */
  readonly forStream: (stream: Plan.PlannedStream, own: Review.Service | undefined) => Review.Service
}

/** Builds the reviewers of a plan. */
export const make = (plan: Plan.Plan, options: Options = {}) =>
  Effect.gen(function*() {
    const checks = yield* CommandReviewer.make
    const judges = new Map<string, Judge.Service>()
    const judgeFor = (settings: Judge.Resolved) =>
      Effect.gen(function*() {
        const key = JSON.stringify(settings)
        const known = judges.get(key)
        if (known !== undefined) return known
        const made = yield* Judge.make(settings, plan.prices)
        judges.set(key, made)
        return made
      })

    const reviewers = new Map<string, Review.Service>()
    for (const stream of plan.streams) {
      const { judge: settings, kind } = reviewOf(plan, stream, options)
      reviewers.set(stream.name, yield* ReviewerKind.named(kind).make({ checks, judge: judgeFor(settings), noChange: CommandReviewer.noChange }))
    }

    const service: Service = {
      forStream: (stream, own) => {
        const chosen = reviewOf(plan, stream, options).chosen
        return (chosen ? undefined : own) ?? reviewers.get(stream.name) ?? checks
      }
    }
    return service
  })

/** What building the reviewers needs. */
export type Requirements = CommandExecutor.CommandExecutor
