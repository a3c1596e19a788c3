/**
 * Runs the `braid` command line and turns errors into one clear line and an exit code.
 *
 * @since 0.1.0
 */
import type * as Agent from "@braid/core/Agent"
import * as Plan from "@braid/core/Plan"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Exit, Option } from "effect"
import * as Help from "./Help.js"
import * as PlanFields from "./PlanFields.js"
import * as Runs from "./Runs.js"

/** braid's version. */
export const VERSION = Help.VERSION

/** Exit codes. */
export const ExitCode = { success: 0, failed: 1, usage: 2, paused: 75 } as const

/** Errors that are the user's to fix (bad input, a refused repository state): exit 2. */
const userErrors = new Set([
  "NothingToClean",
  "InvalidPlan",
  "OutputPathMissing",
  "LandModeUnavailable",
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
  "JournalTooNew",
  "JournalTooOld",
  "RunUnreadable",
  "RunsNeedRepair",
  "TargetInUse",
  "RepositoryNotReady",
  "WouldOverwrite",
  "DatabaseUrlInvalid",
  "PlanFolderUnfit",
  "RemoteUnusable",
  "DatabaseUnreachable",
  "WorkdirInUse",
  "RunIdTaken",
  "RunIdInUse",
  "SandboxUnavailable",
  "DraftInputInvalid",
  "DraftAgentUnavailable",
  "DraftRejected"
])

/**
 * The commands that only read runs (`runs`, `status`), from `Help.early`'s reading of the
 * arguments when it is the parser's too: they then start without the parser (`Cli.ts` and
 * @effect/cli, whose modules and command tree took a fifth of their start-up). Anything else
 * the command line says goes to the parser (undefined here). With `local`, also undefined when
 * the command would read a cluster's runs (`Runs.local`): the start-up snapshot holds no cluster.
 */
export const direct = (
  argv: ReadonlyArray<string>,
  options?: { readonly local?: boolean }
): ReturnType<typeof Runs.list> | ReturnType<typeof Runs.status> | undefined => {
  const early = Help.early(argv.slice(2), { color: false })
  if (early._tag !== "Parse" || !early.plain) return undefined
  const text = (name: string) => {
    const value = early.values.get(name)
    return typeof value === "string" ? Option.some(value) : Option.none()
  }
  const args = { repo: text("repo"), database: text("database"), json: early.values.get("json") === true }
  if (options?.local === true && !Runs.local(args)) return undefined
  if (early.command === "runs" && early.positionals.length === 0) return Runs.list(args)
  if (early.command === "status" && early.positionals.length <= 1) {
    return Runs.status({ ...args, runId: Option.fromNullable(early.positionals[0]) })
  }
  return undefined
}

/**
 * The command line through the parser (`Cli.ts`), loaded when a command needs it. The parser's
 * own errors (ValidationErrors) it has already printed with the usage: exit 2.
 */
const parsed = (argv: ReadonlyArray<string>) =>
  Effect.flatMap(
    Effect.promise(() => Promise.all([import("./Cli.js"), import("@effect/cli/ValidationError")])),
    ([Cli, ValidationError]) =>
      Effect.catchIf(Cli.run(argv), ValidationError.isValidationError, () => Effect.sync(() => void (process.exitCode = ExitCode.usage)))
  )

/** Runs the command line with `argv` (as `process.argv`), setting `process.exitCode`. */
export const main = (argv: ReadonlyArray<string>) =>
  (direct(argv) ?? parsed(argv)).pipe(
    // Every command reads plans with what its backends add: task fields, their settings.
    Effect.provideService(Plan.BackendFields, PlanFields.declarations),
    Effect.catchAllCause((cause) =>
      Effect.gen(function*() {
        const failure = Cause.failureOption(cause)
        if (failure._tag === "Some") {
          const error = failure.value as { readonly _tag?: string; readonly message?: string }
          const tag = error._tag ?? "Error"
          // Only a run's agents reach a usage limit: the module that words it is loaded then.
          const text = tag === "UsageLimitReached"
            ? (yield* Effect.promise(() => import("@braid/core/Agent"))).describeUsageLimit(error as Agent.UsageLimitReached)
            : error.message ?? tag
          yield* Console.error(`braid: ${text}`)
          // A usage limit or the run's budget leaves the run resumable: EX_TEMPFAIL, "try again later".
          yield* Effect.sync(() =>
            void (process.exitCode = tag === "UsageLimitReached" || tag === "BudgetReached" || (tag === "ClusterRunStopped" && (error as { paused?: boolean }).paused === true)
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

/**
 * Runs the command line as the `braid` executable does: on the Node platform, the exit code
 * from `process.exitCode` (1 for a failure nobody mapped, 130 when interrupted).
 */
export const start = (argv: ReadonlyArray<string>): void =>
  main(argv).pipe(
    Effect.provide(NodeContext.layer),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      disablePrettyLogger: true,
      teardown: (exit, onExit) =>
        onExit(Exit.isFailure(exit) ? (Cause.isInterruptedOnly(exit.cause) ? 130 : 1) : (Number(process.exitCode ?? 0)))
    })
  )
