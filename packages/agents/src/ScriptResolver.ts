/**
 * The script resolver: resolves conflicts by running the plan's `resolve` command in the
 * integration workspace, told which paths conflict through `BRAID_*` environment variables.
 * The engine then checks that no conflict markers remain before it concludes the merge.
 *
 * @since 0.1.0
 */
import { type CommandSpec, ConflictResolver, Process } from "@braid/core"
import { CommandExecutor } from "@effect/platform"
import { Effect, Layer } from "effect"

/** The resolver's name, as conflict reports record it. */
export const name = "script-resolver"

/** How a script resolver is set up. */
export interface Options {
  /** The plan's `resolve` command (`plan.resolve`); without one every resolution fails with advice. */
  readonly resolve: CommandSpec.Command | undefined
}

/** The environment the resolve command sees (added to the inherited one). */
export const environment = (request: ConflictResolver.ResolutionRequest): Record<string, string> => ({
  BRAID_RUN_ID: request.runId,
  BRAID_CONFLICT_PATHS: request.paths.join("\n"),
  BRAID_STREAM: request.stream.name,
  BRAID_AGAINST: request.against.map((s) => s.name).join(",")
})

/** Builds a script resolver; the executor is taken here, so resolutions need nothing. */
export const make = (options: Options) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor

    const resolve = Effect.fn("ScriptResolver.resolve")(function*(request: ConflictResolver.ResolutionRequest) {
      const failed = (message: string) => new ConflictResolver.ResolutionFailed({ paths: [...request.paths], message })
      const command = options.resolve
      if (command === undefined) {
        return yield* failed(
          `the plan has no \`resolve\` command to resolve conflicts in ${request.paths.join(", ")}; ` +
            "set `resolve` in the plan, or use conflictStrategy priority or manual"
        )
      }
      if (request.files._tag !== "Worktree") {
        return yield* failed("the script resolver needs a real integration workspace (a git worktree); this one has no directory")
      }
      const dir = request.files.dir
      const result = yield* Process.run(command.argv, { cwd: dir, env: environment(request), timeoutMs: command.timeoutMs }).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        Effect.mapError((e) => failed(`could not start ${command.name}: ${e.message}`))
      )
      const output = Process.tail(`${result.stdout}${result.stderr}`)
      if (result.timedOut) return yield* failed(`${command.name} timed out after ${command.timeoutMs} ms`)
      if (result.exitCode !== 0) {
        return yield* failed(`${command.name} exited ${result.exitCode}${output === "" ? "" : `:\n${output}`}`)
      }
      const last = result.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "").at(-1)
      return { summary: last ?? `ran ${command.name} on ${request.paths.join(", ")}` }
    })

    return { name, resolve } satisfies ConflictResolver.Service
  })

/** The resolver layer for a plan's `resolve` command. */
export const layer = (
  options: Options
): Layer.Layer<ConflictResolver.ConflictResolver, never, CommandExecutor.CommandExecutor> =>
  Layer.effect(ConflictResolver.ConflictResolver, make(options))
