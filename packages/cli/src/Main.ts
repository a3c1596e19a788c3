/**
 * Runs the `braid` command line and turns errors into one clear line and an exit code.
 *
 * @since 0.1.0
 */
import { Command, ValidationError } from "@effect/cli"
import { Cause, Console, Effect } from "effect"
import { Agent } from "@braid/core"
import * as Cli from "./Cli.js"

export const VERSION = "0.1.0"

/** Exit codes. */
export const ExitCode = { success: 0, failed: 1, usage: 2, paused: 75 } as const

/** Errors that are the user's to fix (bad input, a refused repository state): exit 2. */
const userErrors = new Set([
  "InvalidPlan",
  "OutputPathMissing",
  "AgentUnavailable",
  "WorkspaceRefused",
  "RunNotFound",
  "RunLocked",
  "RunActive",
  "RunAlreadyFinished",
  "NoReportYet",
  "UnknownTask",
  "InvalidFeedback",
  "PromptTemplateError",
  "JournalCorrupt",
  "JournalTooNew"
])

/** Runs the command line with `argv` (as `process.argv`), setting `process.exitCode`. */
export const main = (argv: ReadonlyArray<string>) =>
  Command.run(Cli.braid, { name: "braid", version: VERSION })(argv).pipe(
    Effect.catchAllCause((cause) =>
      Effect.gen(function*() {
        const failure = Cause.failureOption(cause)
        if (failure._tag === "Some") {
          const error = failure.value as { readonly _tag?: string; readonly message?: string }
          if (ValidationError.isValidationError(error)) {
            // @effect/cli has already printed the problem and the usage.
            yield* Effect.sync(() => void (process.exitCode = ExitCode.usage))
            return
          }
          const tag = error._tag ?? "Error"
          yield* Console.error(
            `braid: ${tag === "UsageLimitReached" ? Agent.describeUsageLimit(error as Agent.UsageLimitReached) : error.message ?? tag}`
          )
          // A usage limit leaves the run resumable: EX_TEMPFAIL, "try again later".
          yield* Effect.sync(() =>
            void (process.exitCode = tag === "UsageLimitReached"
              ? ExitCode.paused
              : userErrors.has(tag)
              ? ExitCode.usage
              : ExitCode.failed)
          )
          return
        }
        if (Cause.isInterruptedOnly(cause)) {
          yield* Effect.sync(() => void (process.exitCode = 130))
          return
        }
        yield* Console.error(`braid: internal error\n${Cause.pretty(cause)}`)
        yield* Effect.sync(() => void (process.exitCode = ExitCode.failed))
      })
    )
  )
