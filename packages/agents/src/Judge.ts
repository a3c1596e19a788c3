/**
 * The LLM judge: reviews an attempt with `LanguageModel.generateObject` and a Schema (an
 * integer score 0–100, issues with severity, file and message, suggestions), given the task,
 * its acceptance criteria, the role's rubric, the attempt's diff (bounded, with a note when
 * cut) and the output of the checks that ran; temperature 0.
 *
 * Judges are noisy: a score within `margin` points of the threshold (default 5) is asked for
 * twice more and the median of the three is the review's score; every answer is kept in the
 * review's `samples`. A reply that does not decode, a busy provider (with its `Retry-After`)
 * or an unreachable one is a `ReviewFailed`: the gate asks again and it never counts as a
 * failed review; a judge that keeps failing fails the task (`ReviewUnavailable`).
 *
 * Settings (`judge` in the plan, a stream, `roles.<role>` or `braid.config.yaml`): `provider`,
 * `model`, `baseUrl` (each defaulting to the `llm` backend's settings, then
 * `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`), `margin`, `rubric`, `maxDiffChars`.
 *
 * @since 0.1.0
 */
import { GitWorkspace, Plan, Process, Review } from "@braid/core"
import type { CommandExecutor } from "@effect/platform"
import { Effect, Either, Option, Schema } from "effect"
import type * as Backend from "./Backend.js"
import type * as CommandReviewer from "./CommandReviewer.js"
import * as Model from "./internal/model.js"
import * as Llm from "./Llm.js"
import * as Pricing from "./Pricing.js"
import * as Roles from "./Roles.js"
import * as BackendSettings from "./Settings.js"

/** The reviewer's name, as reviews record it. */
export const name = "judge"

export const DEFAULT_MARGIN = 5
export const DEFAULT_MAX_DIFF_CHARS = 40_000
/** Answers asked for when the first lands near the threshold, in all. */
export const SAMPLES_NEAR_THRESHOLD = 3

/** What the judge answers. OpenAI's strict JSON schema needs every field required: `file` is null when none. */
export const Verdict = Schema.Struct({
  score: Schema.Int.pipe(Schema.between(0, 100)).annotations({ description: "how well the change does the task, 0 to 100" }),
  issues: Schema.Array(Schema.Struct({
    severity: Review.Severity,
    file: Schema.NullOr(Schema.String),
    message: Schema.String
  })),
  suggestions: Schema.Array(Schema.String)
}).annotations({ identifier: "review", description: "a code review of one attempt at a task" })
export type Verdict = typeof Verdict.Type

/** The judge's settings, resolved: the stream's review settings over the `llm` backend's. */
export interface Resolved {
  readonly provider: string
  readonly model: string | undefined
  readonly baseUrl: string | undefined
  readonly margin: number
  readonly rubric: string | undefined
  readonly maxDiffChars: number
}

/** The judge settings of a stream, with the `llm` backend's provider, model and base URL as defaults. */
export const resolve = (plan: Plan.Plan, judge: Plan.JudgeSettings | undefined): Resolved => {
  // Read as the `llm` backend reads them (a wrong value there is its preflight's to report).
  const llm = Either.getOrUndefined(BackendSettings.of(plan, Llm.name, Llm.Settings))
  return {
    provider: judge?.provider ?? llm?.provider ?? "anthropic",
    model: judge?.model ?? llm?.model,
    baseUrl: judge?.baseUrl ?? llm?.baseUrl,
    margin: judge?.margin ?? DEFAULT_MARGIN,
    rubric: judge?.rubric,
    maxDiffChars: judge?.maxDiffChars ?? DEFAULT_MAX_DIFF_CHARS
  }
}

/** Everything that stops a judge from reviewing: an unknown provider, no model, no key. */
export const problems = (settings: Resolved, at: string): Effect.Effect<ReadonlyArray<Backend.Problem>> =>
  Effect.gen(function*() {
    const found: Array<Backend.Problem> = []
    if (!Model.isProvider(settings.provider)) {
      found.push({ path: `${at}.provider`, message: `unknown provider "${settings.provider}" (the judge speaks ${Model.PROVIDERS.join(", ")})` })
    } else if (Option.isNone(yield* Model.keyOf(settings.provider))) {
      found.push({ path: at, message: `the judge has no ${settings.provider} key: set ${Model.KEY_ENV[settings.provider]}` })
    }
    if (settings.model === undefined) {
      found.push({ path: `${at}.model`, message: "the judge needs a model (or agents.llm.model to share)" })
    }
    return found
  })

/** What the judge is told about how to score, for a role. */
export const rubricOf = (role: string, rubric: string | undefined): string => {
  const known = Roles.all[role]
  return [
    known !== undefined ? `You review the work of a ${known.title}. ${known.identity}` : `You review the work of the ${role}.`,
    rubric ?? [
      "Score the change from 0 to 100: 90 or more when it does everything the task and its acceptance criteria ask, correctly,",
      "with the care the role owes (validation, errors, tests where they belong) and nothing out of scope; 70–89 when it works",
      "but misses a criterion's detail or has a real weakness; under 50 when it does not do the task or breaks something.",
      "List each issue with its severity (critical: wrong or broken; major: a criterion missed or a real risk; minor: style or",
      "polish), the file it is in (null when none) and what is wrong; suggest concrete fixes."
    ].join(" ")
  ].join("\n\n")
}

/** The attempt's diff, at most `max` characters, with a note when cut. */
export const diffOf = (
  request: Review.ReviewRequest,
  max: number
): Effect.Effect<string, never, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const commit = request.change.commit
    let text = ""
    if (commit !== null && request.files._tag === "Worktree") {
      // In the stream's worktree, whose repository config an agent could have changed: braid's safe git.
      const shown = yield* Process.run(GitWorkspace.safeGitArgv(["-C", request.files.dir, "show", "--no-color", "--format=", "--patch", commit]), {
        env: GitWorkspace.safeGitEnv,
        timeoutMs: 60_000,
        unconfined: true
      }).pipe(Effect.option)
      if (Option.isSome(shown) && shown.value.exitCode === 0) text = shown.value.stdout
    }
    if (text === "") {
      // No git (the memory workspace): the changed files as they are now.
      for (const file of request.change.files) {
        const content = yield* request.files.read(file).pipe(Effect.orElseSucceed(() => undefined))
        text += `--- ${file}\n${content ?? "(deleted)"}\n`
      }
    }
    return text.length > max ? `${text.slice(0, max)}\n[diff cut: the first ${max} of ${text.length} characters are shown]` : text
  })

/** The judge's prompt for one attempt. */
export const promptOf = (
  request: Review.ReviewRequest,
  settings: Resolved,
  diff: string,
  checks: ReadonlyArray<CommandReviewer.CheckOutcome> | undefined
): string => {
  const task = request.task
  const criteria = task.acceptanceCriteria === undefined ? [] : typeof task.acceptanceCriteria === "string" ? [task.acceptanceCriteria] : task.acceptanceCriteria
  return [
    rubricOf(Plan.ROLES[request.stream.type], settings.rubric),
    `## Task ${task.id}: ${task.title}`,
    ...(task.description !== undefined ? [task.description] : []),
    criteria.length > 0 ? `Acceptance criteria:\n${criteria.map((c) => `- ${c}`).join("\n")}` : "Acceptance criteria: none given beyond the title.",
    `## The agent's summary\n${request.recorded.summary === "" ? "(none)" : request.recorded.summary}`,
    `## Checks\n${
      checks === undefined
        ? "No checks ran for this review."
        : checks.length === 0
        ? "The task has no checks."
        : checks.map((c) => `- ${c.name}: exit ${c.exitCode}${c.timedOut ? " (timed out)" : ""}${c.outputTail !== "" ? `\n${c.outputTail}` : ""}`).join("\n")
    }`,
    `## The change (attempt ${request.attempt}, files: ${request.change.files.join(", ") || "none"})\n\`\`\`diff\n${diff}\n\`\`\``,
    "Answer with the review object only."
  ].join("\n\n")
}

/** The median of three (or fewer) scores. */
const median = (scores: ReadonlyArray<number>): number => [...scores].sort((a, b) => a - b)[Math.floor(scores.length / 2)]!

/** A judge, ready to review. */
export interface Service {
  readonly settings: Resolved
  /** Reviews an attempt; `checks` are the outcomes of the checks that ran before (composite), if any. */
  readonly review: (
    request: Review.ReviewRequest,
    checks: ReadonlyArray<CommandReviewer.CheckOutcome> | undefined,
    reviewer?: string
  ) => Effect.Effect<Review.Review, Review.ReviewFailed>
}

/** Builds a judge over resolved settings. */
export const make = (settings: Resolved, prices: Readonly<Record<string, Plan.ModelPrice>>) =>
  Effect.gen(function*() {
    const executor = yield* Effect.context<CommandExecutor.CommandExecutor>()
    const failed = (message: string, retryAfterMs?: number) =>
      new Review.ReviewFailed({ reviewer: name, message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })

    const sample = (prompt: string) =>
      Effect.gen(function*() {
        const provider = settings.provider
        if (!Model.isProvider(provider)) return yield* failed(`unknown judge provider "${provider}"`)
        if (settings.model === undefined) return yield* failed("the judge has no model")
        const key = yield* Model.keyOf(provider)
        if (Option.isNone(key)) return yield* failed(`the judge has no ${Model.KEY_ENV[provider]}`)
        const baseUrl = yield* Model.baseUrlOf(provider, settings.baseUrl)
        // Loaded when first used, as the llm backend loads it (see internal/model.ts).
        const LanguageModel = yield* Effect.promise(() => import("@effect/ai/LanguageModel"))
        const response = yield* LanguageModel.generateObject({ prompt, schema: Verdict, objectName: "review" }).pipe(
          Effect.provide(Model.languageModel({ provider, model: settings.model, apiKey: key.value, baseUrl, temperature: 0 })),
          Effect.mapError((error) => {
            const failure = Model.failureOf(error)
            return failed(`the judge (${provider} ${settings.model}): ${failure.message}`, failure._tag === "Busy" ? failure.retryAfterMs : undefined)
          })
        )
        const usage = response.usage
        const cached = usage.cachedInputTokens ?? 0
        const tokens = {
          inputTokens: Math.max(0, (usage.inputTokens ?? 0) - (provider === "openai" ? cached : 0)),
          outputTokens: usage.outputTokens ?? 0,
          cacheReadTokens: cached
        }
        return new Review.JudgeSample({
          score: response.value.score,
          findings: response.value.issues.map((i) => new Review.Finding(i)),
          suggestions: response.value.suggestions,
          model: settings.model,
          inputTokens: tokens.inputTokens + tokens.cacheReadTokens,
          outputTokens: tokens.outputTokens,
          costUsd: Pricing.costOf(prices, settings.model, tokens) ?? null
        })
      })

    const review: Service["review"] = (request, checks, reviewer = name) =>
      Effect.gen(function*() {
        const diff = yield* diffOf(request, settings.maxDiffChars)
        const prompt = promptOf(request, settings, diff, checks)
        const first = yield* sample(prompt)
        const samples = [first]
        // Near the threshold one answer is not enough to decide: ask twice more, take the median.
        if (Math.abs(first.score - request.threshold) <= settings.margin) {
          while (samples.length < SAMPLES_NEAR_THRESHOLD) samples.push(yield* sample(prompt))
        }
        const score = median(samples.map((s) => s.score))
        const chosen = samples.find((s) => s.score === score)!
        return new Review.Review({
          score,
          issues: chosen.findings.map((f) => `[${f.severity}] ${f.file !== null ? `${f.file}: ` : ""}${f.message}`),
          suggestions: chosen.suggestions,
          reviewer,
          findings: chosen.findings,
          samples
        })
      }).pipe(Effect.provide(executor), Effect.withSpan("Judge.review"))

    return { settings, review } satisfies Service
  })
