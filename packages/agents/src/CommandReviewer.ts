/**
 * The command reviewer: scores an attempt by running the task's `checks`, then the plan's
 * `checks`, in the stream's workspace. Every check passing scores 100; any failing check
 * keeps the score below 50, so it fails any sensible threshold, and each failure becomes
 * an issue carrying the check's output for the next attempt to read.
 *
 * @since 0.1.0
 */
import { CommandSpec, Review } from "@braid/core"
import { Effect, Layer } from "effect"

/** The reviewer's name, as reviews record it. */
export const name = "checks"

/** An attempt that changed nothing scores this, whatever the checks say. */
export const NO_CHANGE_ISSUE = "the attempt changed no files"

/** The outcome of one check. */
export interface CheckOutcome {
  readonly name: string
  readonly exitCode: number
  readonly timedOut: boolean
  readonly outputTail: string
}

/** The checks a review runs: the task's own, then the plan-wide ones. */
export const checksOf = (request: Review.ReviewRequest): ReadonlyArray<CommandSpec.Command | { readonly name: string; readonly problem: string }> => [
  ...(request.task.checks ?? []).map((spec, i) => {
    const command = CommandSpec.toCommand(spec)
    return typeof command === "string" ? { name: `check ${i + 1} of task ${request.task.id}`, problem: command } : command
  }),
  ...request.planChecks
]

/** Scores check outcomes: all pass → 100, else `floor(49 × passed / total)` with one issue per failure. */
export const score = (outcomes: ReadonlyArray<CheckOutcome>): Review.Review => {
  const failing = outcomes.filter((o) => o.exitCode !== 0 || o.timedOut)
  if (failing.length === 0) return new Review.Review({ score: 100, issues: [], suggestions: [], reviewer: name })
  const passed = outcomes.length - failing.length
  return new Review.Review({
    score: Math.floor((49 * passed) / outcomes.length),
    issues: failing.map((o) =>
      `${o.name} exited ${o.exitCode}${o.timedOut ? " (timed out)" : ""}${o.outputTail === "" ? "" : `\n${o.outputTail}`}`
    ),
    suggestions: failing.map((o) => `make \`${o.name}\` pass`),
    reviewer: name,
    // A failing check fails the gate whatever the plan's threshold.
    blockers: failing.map((o) => `${o.name} failed`)
  })
}

/** Builds a command reviewer: its checks run in the checkout of the attempt it reviews. */
export const make = Effect.sync(() => {

  const review = Effect.fn("CommandReviewer.review")(function*(request: Review.ReviewRequest) {
    return (yield* run(request)).review
  })

  /** The checks' outcomes and the review they make (none ran when the attempt changed nothing). */
  const run = Effect.fn("CommandReviewer.run")(function*(request: Review.ReviewRequest) {
    // Checking the repository, not the agent's word: no change, no pass.
    if (request.change.commit === null) return { outcomes: [] as ReadonlyArray<CheckOutcome>, review: noChange(request) }
    const env = {
      BRAID_RUN_ID: request.runId,
      BRAID_STREAM: request.stream.name,
      BRAID_TASK_ID: request.task.id,
      BRAID_ATTEMPT: String(request.attempt)
    }
    const outcomes: Array<CheckOutcome> = []
    // One after another: checks share the worktree (a build may feed the tests).
    for (const check of checksOf(request)) {
      if ("problem" in check) {
        outcomes.push({ name: check.name, exitCode: 127, timedOut: false, outputTail: check.problem })
        continue
      }
      const result = yield* request.exec(check, env).pipe(
        Effect.mapError((e) => new Review.ReviewFailed({ reviewer: name, message: `running ${check.name}: ${e.message}` }))
      )
      outcomes.push(result)
    }
    return { outcomes: outcomes as ReadonlyArray<CheckOutcome>, review: score(outcomes) }
  })

  return { review, run } satisfies Review.Service & { readonly run: unknown }
})

/** The review of an attempt that changed nothing: a blocker whatever else is said. */
export const noChange = (request: Review.ReviewRequest): Review.Review =>
  new Review.Review({
    score: 0,
    issues: [NO_CHANGE_ISSUE],
    suggestions: [`change the files task ${request.task.id} asks for; the engine commits whatever the attempt leaves in the workspace`],
    reviewer: name,
    blockers: [NO_CHANGE_ISSUE]
  })

/** The reviewer layer. */
export const layer: Layer.Layer<Review.Reviewer> = Layer.effect(Review.Reviewer, make)
