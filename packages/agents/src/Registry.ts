/**
 * The agents, reviewer and conflict resolver of a real run, chosen per stream from an open
 * list of backend values (`all`, or the caller's `Options.backends`). A stream's backend is
 * its own `agent`, else the plan's, else `braid.config.yaml`'s, else the caller's (`--agent`),
 * else "script". Each task is reviewed by its backend's own reviewer when it has one, else by
 * the plan's checks. `check` runs every chosen backend's preflight and reports every problem
 * at once, before anything starts. Every attempt of a backend that names a provider counts
 * against that provider's shared limits.
 *
 * @since 0.1.0
 */
import { Agent, ConflictResolver, ConflictStrategy, Plan, Review } from "@braid/core"
import { Context, Effect, Either, Layer } from "effect"
import * as AgentResolver from "./AgentResolver.js"
import * as Aider from "./Aider.js"
import type * as Backend from "./Backend.js"
import * as ClaudeCode from "./ClaudeCode.js"
import * as Codex from "./Codex.js"
import * as CommandAgent from "./CommandAgent.js"
import * as Gemini from "./Gemini.js"
import * as Llm from "./Llm.js"
import * as Prompt from "./Prompt.js"
import * as Reviewers from "./Reviewers.js"
import * as ScriptAgent from "./ScriptAgent.js"
import * as BackendSettings from "./Settings.js"

/**
 * Every backend this package holds. Adding one: a module exporting a `Backend`, an entry here,
 * its tests. (The `mock` backend is `@braid/testkit`'s `Harness.backend`: a caller offering it,
 * as the CLI does, passes its own list as `Options.backends`.)
 */
export const all: ReadonlyArray<Backend.Backend> = [
  ScriptAgent.backend,
  Aider.backend,
  CommandAgent.backend,
  ClaudeCode.backend,
  Codex.backend,
  Gemini.backend,
  Llm.backend
]

/** The names of the backends, as streams and plans select them. */
export const backends: ReadonlyArray<string> = all.map((b) => b.name)

/** The backend named `name` in `list` (default `all`). */
export const find = (name: string, list: ReadonlyArray<Backend.Backend> = all): Backend.Backend | undefined =>
  list.find((b) => b.name === name)

/** The task fields `list`'s backends declare. */
export const taskFields = (list: ReadonlyArray<Backend.Backend> = all): ReadonlyArray<Plan.TaskField> =>
  list.flatMap((b) => b.taskFields ?? [])

/** The settings Schemas of `list`'s backends, by name (`agents.<name>`). */
export const settings = (list: ReadonlyArray<Backend.Backend> = all): Readonly<Record<string, Backend.Backend["settings"]>> =>
  Object.fromEntries(list.map((b) => [b.name, b.settings]))

/**
 * What `list`'s backends add to plans, to decode plans with:
 * `Plan.decode(doc).pipe(Effect.provideService(Plan.BackendFields, Registry.planFields(backends)))`.
 */
export const planFields = (list: ReadonlyArray<Backend.Backend> = all): Plan.Declarations => ({
  taskFields: taskFields(list),
  settings: settings(list)
})

/** The caller's choices (the CLI's flags). */
export interface Options extends Reviewers.Options {
  /** The backends streams may choose from (default `all`). */
  readonly backends?: ReadonlyArray<Backend.Backend> | undefined
  /** The backend for streams that name none, below the plan and its config (default "script"). */
  readonly agent?: string | undefined
  /** How problems name where `agent` came from (default "options.agent"; the CLI says "--agent"). */
  readonly agentSource?: string | undefined
  /**
   * The workspace the run uses, as whoever chose it knows (default "git"): backends that work
   * in a directory refuse the memory one at preflight, whose checkouts have none.
   */
  readonly workspace?: "git" | "memory" | undefined
}

/** The backend that runs a stream: stream > plan > `braid.config.yaml` > caller > "script". */
export const backendOf = (plan: Plan.Plan, stream: Plan.PlannedStream, options: Options = {}): string =>
  stream.agent ?? plan.file.agent ?? plan.configAgent ?? options.agent ?? "script"

/** Where a stream's backend was chosen, as a path into the plan (or the config, or the option). */
const backendPath = (plan: Plan.Plan, index: number, options: Options): string =>
  plan.streams[index]!.agent !== undefined
    ? `streams[${index}].agent`
    : plan.file.agent !== undefined
    ? "agent"
    : plan.configAgent !== undefined
    ? "braid.config.yaml: agent"
    : options.agent !== undefined
    ? options.agentSource ?? "options.agent"
    : `streams[${index}].agent`

/**
 * The backend that resolves conflicts under the `agent` strategy, in the architect role:
 * `resolver.agent` (the plan's, else `braid.config.yaml`'s) > `script` when the plan has a
 * `resolve` command > the backend every stream uses > the plan's `agent` > the config's >
 * the caller's (`--agent`) > `script`.
 */
export const resolverBackendOf = (plan: Plan.Plan, options: Options = {}): string => {
  if (plan.resolverAgent !== undefined) return plan.resolverAgent
  if (plan.resolve !== undefined) return ScriptAgent.name
  const used = new Set(plan.streams.map((s) => backendOf(plan, s, options)))
  if (used.size === 1) return [...used][0]!
  return plan.file.agent ?? plan.configAgent ?? options.agent ?? ScriptAgent.name
}

/** Where the resolver's backend was chosen, as a path (for problems). */
const resolverPath = (plan: Plan.Plan, options: Options): string =>
  plan.file.resolver?.agent !== undefined
    ? "resolver.agent"
    : plan.resolverAgent !== undefined
    ? "braid.config.yaml: resolver.agent"
    : plan.file.agent !== undefined
    ? "agent"
    : options.agent !== undefined
    ? options.agentSource ?? "options.agent"
    : "conflictStrategy"

/** The services a run needs from this registry. */
export type Provided = Agent.AgentRegistry | Review.Reviewer | ConflictResolver.ConflictResolver

/** What building the registry needs: the backends' needs. */
export type Requirements = Backend.Requirements

/** A backend's settings in `plan`, decoded with its Schema (`Settings.of`). */
const settingsOf = (plan: Plan.Plan, backend: Backend.Backend) => BackendSettings.of(plan, backend.name, backend.settings)

/** A backend's preflight with its settings, or the problems of its settings when they are wrong (a plan decoded without them). */
const preflightOf = (plan: Plan.Plan, backend: Backend.Backend, context: Omit<Backend.PreflightContext, "settings" | "plan">) =>
  Either.match(settingsOf(plan, backend), {
    onLeft: (problems) => Effect.succeed(problems),
    onRight: (settings) => backend.preflight({ ...context, plan, settings })
  })

/**
 * A backend built with its settings. Wrong ones (a plan decoded without them) build an agent
 * that fails every attempt as unavailable: the registry's `check` reports them before any starts.
 */
const makeOf = (plan: Plan.Plan, backend: Backend.Backend): Effect.Effect<Backend.Built, never, Backend.Requirements> =>
  Either.match(settingsOf(plan, backend), {
    onLeft: (problems) =>
      Effect.succeed({
        agent: {
          name: backend.name,
          attempt: (request) =>
            Effect.fail(
              new Agent.AgentFailed({
                agent: backend.name,
                taskId: request.task.id,
                reason: "unavailable",
                message: problems.map((p) => `${p.path}: ${p.message}`).join("; ")
              })
            )
        }
      }),
    onRight: (settings) => backend.make({ plan, settings })
  })

/** Every problem that stops `plan` from running with its backends (empty when it can run). */
export const preflight = (
  plan: Plan.Plan,
  options: Options & { readonly workspaceKind: "git" | "memory" }
): Effect.Effect<ReadonlyArray<Backend.Problem>, never, Backend.PreflightRequirements> =>
  Effect.gen(function*() {
    const list = options.backends ?? all
    const known = list.map((b) => b.name).join(", ")
    const problems: Array<Backend.Problem> = []
    const chosen = new Map<string, Array<{ index: number; stream: Plan.PlannedStream }>>()
    const unknown = new Set<string>()
    plan.streams.forEach((stream, index) => {
      const name = backendOf(plan, stream, options)
      if (find(name, list) === undefined) {
        unknown.add(name)
        problems.push({ path: backendPath(plan, index, options), message: `unknown agent "${name}" (known: ${known})` })
      } else {
        const same = chosen.get(name)
        if (same === undefined) chosen.set(name, [{ index, stream }])
        else same.push({ index, stream })
      }
    })
    for (const [name, streams] of chosen) {
      problems.push(...(yield* preflightOf(plan, find(name, list)!, {
        streams,
        path: backendPath(plan, streams[0]!.index, options),
        workspaceKind: options.workspaceKind
      })))
    }
    // The resolver's backend, when the strategy asks a resolver and no stream already uses it.
    if (ConflictStrategy.named(plan.conflictStrategy).needsResolver) {
      const name = resolverBackendOf(plan, options)
      const backend = find(name, list)
      if (backend === undefined) {
        if (!unknown.has(name)) problems.push({ path: resolverPath(plan, options), message: `unknown resolver agent "${name}" (known: ${known})` })
      } else if (!chosen.has(name)) {
        problems.push(...(yield* preflightOf(plan, backend, {
          streams: [],
          path: resolverPath(plan, options),
          workspaceKind: options.workspaceKind
        })))
      }
    }
    // A prompt template that is missing or names an unknown placeholder would fail every attempt.
    problems.push(...(yield* Prompt.check(plan)))
    // A judge without a model or a key would fail every review.
    problems.push(...(yield* Reviewers.preflight(plan, options)))
    // One line per problem, even when several streams share a cause.
    const seen = new Set<string>()
    return problems.filter((p) => {
      const key = `${p.path}\n${p.message}`
      return seen.has(key) ? false : (seen.add(key), true)
    })
  })

/** Builds the registry, reviewer and resolver for a plan. */
export const make = (plan: Plan.Plan, options: Options = {}) =>
  Effect.gen(function*() {
    const list = options.backends ?? all
    const known = list.map((b) => b.name).join(", ")
    // Preflight runs later (when the run starts); it needs what building the registry had.
    const context = yield* Effect.context<Requirements>()
    const reviewers = yield* Reviewers.make(plan, options)

    // Each backend a stream uses is built once, with its settings.
    const built = new Map<string, Backend.Built>()
    for (const stream of plan.streams) {
      const name = backendOf(plan, stream, options)
      const backend = find(name, list)
      if (backend === undefined || built.has(name)) continue
      built.set(name, yield* makeOf(plan, backend))
    }
    const unknownAgent = (name: string): Agent.Service => ({
      name,
      attempt: (request) =>
        Effect.fail(
          new Agent.AgentFailed({
            agent: name,
            taskId: request.task.id,
            reason: "unavailable",
            message: `unknown agent "${name}" (known: ${known})`
          })
        )
    })
    const builtFor = (stream: Plan.PlannedStream) => built.get(backendOf(plan, stream, options))
    const withProvider = (agent: Agent.Service): Agent.Service => {
      const provider = plan.agents[agent.name]?.provider
      return provider === undefined ? agent : { ...agent, provider }
    }

    const check = Effect.fn("Registry.check")(function*(checked: Plan.Plan) {
      const problems = yield* preflight(checked, { ...options, workspaceKind: options.workspace ?? "git" }).pipe(Effect.provide(context))
      if (problems.length > 0) return yield* new Agent.AgentUnavailable({ problems })
    })

    const registry: Agent.RegistryService = {
      check,
      forStream: (stream) => {
        const b = builtFor(stream)
        return b === undefined ? unknownAgent(backendOf(plan, stream, options)) : withProvider(b.agent)
      }
    }

    // Each task is judged by the reviewer its stream, role, plan or caller chose, else by its backend's own, else by the checks.
    const reviewer: Review.Service = {
      review: (request) => reviewers.forStream(request.stream, builtFor(request.stream)?.reviewer).review(request)
    }

    // The resolver's backend (see `resolverBackendOf`): its own resolver when it has one (the
    // script backend's runs the plan's `resolve`; the mock's is scripted), else its agent in the
    // architect role.
    const resolverName = resolverBackendOf(plan, options)
    const resolverBackend = find(resolverName, list)
    if (resolverBackend !== undefined && !built.has(resolverName)) {
      built.set(resolverName, yield* makeOf(plan, resolverBackend))
    }
    const resolverBuilt = built.get(resolverName)
    const resolver: ConflictResolver.Service = resolverBuilt === undefined
      ? {
        name: resolverName,
        resolve: (request) =>
          Effect.fail(new ConflictResolver.ResolutionFailed({ paths: [...request.paths], message: `unknown resolver agent "${resolverName}" (known: ${known})` }))
      }
      : resolverBuilt.resolver ?? AgentResolver.make(withProvider(resolverBuilt.agent), plan)

    return Context.make(Agent.AgentRegistry, registry).pipe(
      Context.add(Review.Reviewer, reviewer),
      Context.add(ConflictResolver.ConflictResolver, resolver)
    )
  })

/** The agent registry, reviewer and conflict resolver for a real run of `plan`. */
export const layer = (plan: Plan.Plan, options: Options = {}): Layer.Layer<Provided, never, Requirements> =>
  Layer.effectContext(make(plan, options))
