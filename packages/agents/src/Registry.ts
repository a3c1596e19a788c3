/**
 * The agents, reviewer and conflict resolver of a real run, chosen per stream: a stream's
 * backend is its own `agent`, else the plan's `agent`, else the caller's, else "script".
 * Each task is reviewed by the reviewer of its stream's backend (commands for the script
 * agent, the scripted harness for mock streams). `check` finds every reason a plan cannot
 * run with these backends, all at once, before anything starts.
 *
 * @since 0.1.0
 */
import { Agent, ConflictResolver, type Plan, Review, Workspace } from "@braid/core"
import { type CommandExecutor, FileSystem } from "@effect/platform"
import { Context, Effect, Layer } from "effect"
import * as path from "node:path"
import * as CommandReviewer from "./CommandReviewer.js"
import * as Harness from "./Harness.js"
import * as ScriptAgent from "./ScriptAgent.js"
import * as ScriptResolver from "./ScriptResolver.js"

/** The backends this registry knows. */
export const backends = ["script", "mock"] as const
export type Backend = typeof backends[number]

/** The caller's choices (the CLI's flags). */
export interface Options {
  /** The backend for streams and plans that name none (default "script"). */
  readonly agent?: string | undefined
}

/** The backend that runs a stream: `stream.agent ?? plan.agent ?? options.agent ?? "script"`. */
export const backendOf = (plan: Plan.Plan, stream: Plan.PlannedStream, options: Options = {}): string =>
  stream.agent ?? plan.file.agent ?? options.agent ?? "script"

const isBackend = (name: string): name is Backend => (backends as ReadonlyArray<string>).includes(name)

/** Where a stream's backend was chosen, as a path into the plan (or the options). */
const backendPath = (plan: Plan.Plan, index: number, options: Options): string =>
  plan.streams[index]!.agent !== undefined
    ? `streams[${index}].agent`
    : plan.file.agent !== undefined
    ? "agent"
    : options.agent !== undefined
    ? "options.agent"
    : `streams[${index}].agent`

/** The services a run needs from this registry. */
export type Provided = Agent.AgentRegistry | Review.Reviewer | ConflictResolver.ConflictResolver

/** What building the registry needs. */
export type Requirements = CommandExecutor.CommandExecutor | FileSystem.FileSystem | Workspace.Workspace

/** Builds the registry, reviewer and resolver for a plan. */
export const make = (plan: Plan.Plan, options: Options = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const workspace = yield* Workspace.Workspace
    const script = yield* ScriptAgent.make({ baseDir: plan.baseDir })
    const commandReviewer = yield* CommandReviewer.make
    const harness = yield* Harness.make(Harness.scriptFromPlan(plan))
    const scriptResolver = yield* ScriptResolver.make({ resolve: plan.resolve })

    const unknownAgent = (backend: string): Agent.Service => ({
      name: backend,
      attempt: (request) =>
        Effect.fail(
          new Agent.AgentFailed({
            agent: backend,
            taskId: request.task.id,
            message: `unknown agent "${backend}" (known: ${backends.join(", ")})`
          })
        )
    })

    const agentFor = (backend: string): Agent.Service =>
      backend === "script" ? script : backend === "mock" ? harness.agent : unknownAgent(backend)

    const check = Effect.fn("Registry.check")(function*(checked: Plan.Plan) {
      const problems: Array<{ path: string; message: string }> = []
      const seen = new Set<string>()
      const problem = (p: string, message: string) => {
        const key = `${p}\n${message}`
        if (!seen.has(key)) {
          seen.add(key)
          problems.push({ path: p, message })
        }
      }
      const scriptStreams = new Set<string>()
      checked.streams.forEach((stream, i) => {
        const backend = backendOf(checked, stream, options)
        if (!isBackend(backend)) {
          problem(backendPath(checked, i, options), `unknown agent "${backend}" (known: ${backends.join(", ")})`)
        } else if (backend === "script") {
          scriptStreams.add(stream.name)
          if (workspace.kind !== "git") {
            problem(
              backendPath(checked, i, options),
              `stream "${stream.name}" uses the script agent, which runs commands in a git worktree; ` +
                `the ${workspace.kind} workspace has no directories`
            )
          }
        }
      })
      for (const [i, task] of checked.file.tasks.entries()) {
        const stream = checked.streamOf.get(task.id)
        if (stream === undefined || !scriptStreams.has(stream)) continue
        if (task.run === undefined) {
          problem(
            `tasks[${i}].run`,
            `task "${task.id}" has no \`run\` and stream "${stream}" uses the script agent; add \`run\` or choose another agent`
          )
          continue
        }
        const resolved = ScriptAgent.resolveRun(task, checked.baseDir)
        if (typeof resolved === "string") {
          problem(`tasks[${i}].run`, resolved)
          continue
        }
        if (resolved.script === undefined) continue
        const info = yield* fs.stat(resolved.script).pipe(Effect.option)
        if (info._tag === "None" || info.value.type !== "File") {
          problem(
            `tasks[${i}].run.script`,
            `script ${resolved.script} ${info._tag === "None" ? "does not exist" : "is not a file"} ` +
              `(script paths are relative to the plan's directory ${checked.baseDir})`
          )
        } else if (resolved.command.argv[0] === resolved.script && (info.value.mode & 0o111) === 0) {
          problem(
            `tasks[${i}].run.script`,
            `script ${resolved.script} is not executable: make it executable, or name it .sh, .js, .mjs or .cjs ` +
              `(${path.extname(resolved.script) === "" ? "no extension" : `"${path.extname(resolved.script)}"`} is run directly)`
          )
        }
      }
      if (problems.length > 0) return yield* new Agent.AgentUnavailable({ problems })
    })

    const registry: Agent.RegistryService = {
      check,
      forStream: (stream) => agentFor(backendOf(plan, stream, options))
    }

    // Each task is judged by its own stream's kind of reviewer.
    const reviewer: Review.Service = {
      review: (request) =>
        backendOf(plan, request.stream, options) === "mock"
          ? harness.reviewer.review(request)
          : commandReviewer.review(request)
    }

    // A plan's own `resolve` command wins; an all-mock plan without one uses the scripted resolver.
    const allMock = plan.streams.length > 0 && plan.streams.every((s) => backendOf(plan, s, options) === "mock")
    const resolver: ConflictResolver.Service = plan.resolve === undefined && allMock ? harness.resolver : scriptResolver

    return Context.make(Agent.AgentRegistry, registry).pipe(
      Context.add(Review.Reviewer, reviewer),
      Context.add(ConflictResolver.ConflictResolver, resolver)
    )
  })

/** The agent registry, reviewer and conflict resolver for a real run of `plan`. */
export const layer = (plan: Plan.Plan, options: Options = {}): Layer.Layer<Provided, never, Requirements> =>
  Layer.effectContext(make(plan, options))
