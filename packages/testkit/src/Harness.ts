/**
 * The test harness: scripted agents, reviewers and conflict resolvers as layers, recording
 * every call so a test can assert on them. Library users test their own plans with it.
 *
 * @example
 * const harness = yield* Harness.make({ tasks: { "db-1": [{ score: 60 }, { score: 90 }] } })
 * const report = yield* Orchestrator.run(plan).pipe(Effect.provide(harness.layer), ...)
 * assert.strictEqual(harness.calls.agent.length, 2)
 *
 * @since 0.1.0
 */
import type { Backend } from "@braid/agents"
import { Agent, ConflictResolver, Plan, Review, type Workspace } from "@braid/core"
import { Duration, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as MockField from "./MockField.js"

/** What one scripted attempt does. Every field is optional. */
export interface AttemptScript {
  /** Files the agent writes (path → content); default: one file per task noting the attempt. */
  readonly files?: Readonly<Record<string, string>>
  /** Files the agent deletes. */
  readonly remove?: ReadonlyArray<string>
  /** What the agent says it did. */
  readonly summary?: string
  /** The agent fails instead (an `AgentFailed` with this message). */
  readonly agentError?: string
  /** How long the agent works (virtual time under `it.effect`). */
  readonly duration?: Duration.DurationInput
  /** The review's score (default 100). */
  readonly score?: number
  readonly issues?: ReadonlyArray<string>
  readonly suggestions?: ReadonlyArray<string>
  /** The reviewer fails this many times before it answers (a `ReviewFailed` each time). */
  readonly reviewFailures?: number
  /** Token usage the agent reports. */
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number; readonly costUsd?: number }
  /** The provider is busy this many times (a `ProviderBusy` each) before the attempt goes through. */
  readonly providerBusy?: number
  /** `retryAfterMs` the busy provider asks for. */
  readonly retryAfterMs?: number
  /** The account's usage limit is reached instead (an `UsageLimitReached` resetting at this ISO time). */
  readonly usageLimit?: string
}

export interface Script {
  /** Per task id, per attempt (index 0 is attempt 1); the last entry repeats. */
  readonly tasks?: Readonly<Record<string, ReadonlyArray<AttemptScript>>>
  /** Used for tasks with no script. */
  readonly defaultAttempt?: AttemptScript
  /** The conflict resolver: given a conflicted file, its resolved text (default: keep both sides). */
  readonly resolve?: (path: string, content: string) => string
  /** The resolver fails instead. */
  readonly resolverError?: string
  /** The name agents report (default "mock"). */
  readonly agentName?: string
  /** The provider the agents count against (shared limits); none by default. */
  readonly provider?: string
}

export interface AgentCall {
  readonly stream: string
  readonly taskId: string
  readonly attempt: number
  readonly role: string
  readonly feedback: Agent.AttemptRequest["feedback"]
  readonly earlier: ReadonlyArray<Agent.EarlierResult>
  readonly concurrent: number
}

export interface ReviewCall {
  readonly taskId: string
  readonly attempt: number
  readonly commit: string | null
  readonly files: ReadonlyArray<string>
  readonly failed: boolean
}

export interface ResolveCall {
  readonly stream: string
  readonly against: ReadonlyArray<string>
  readonly paths: ReadonlyArray<string>
}

/** Everything the harness saw, in order. */
export interface Calls {
  readonly agent: Array<AgentCall>
  readonly review: Array<ReviewCall>
  readonly resolve: Array<ResolveCall>
  /** Agents working right now, and the most ever at once. */
  active: number
  maxActive: number
  /** Task ids in the order their first attempt started and their last attempt finished. */
  readonly timeline: Array<{ readonly event: "start" | "end"; readonly stream: string; readonly taskId: string; readonly attempt: number }>
}

const pick = (script: Script, taskId: string, attempt: number): AttemptScript => {
  const list = script.tasks?.[taskId]
  if (list === undefined || list.length === 0) return script.defaultAttempt ?? {}
  return list[Math.min(attempt, list.length) - 1]!
}

const defaultFiles = (request: Agent.AttemptRequest): Record<string, string> => ({
  [`${request.stream.name}/${request.task.id}.txt`]: `${request.task.title}\nattempt ${request.attempt}\n`
})

/** Keeps both sides of every conflict hunk, integration first. */
export const keepBoth = (_path: string, content: string): string =>
  content.replace(/^<{7}[^\n]*\n([\s\S]*?)^={7}\n([\s\S]*?)^>{7}[^\n]*\n/gm, "$1$2")

const write = (files: Workspace.Files, script: AttemptScript, request: Agent.AttemptRequest) =>
  Effect.gen(function*() {
    for (const [path, content] of Object.entries(script.files ?? defaultFiles(request))) yield* files.write(path, content)
    for (const path of script.remove ?? []) yield* files.remove(path)
  })

/** Builds a scripted agent registry, reviewer and resolver, and the record of their calls. */
export const make = (script: Script = {}) =>
  Effect.sync(() => {
    const calls: Calls = { agent: [], review: [], resolve: [], active: 0, maxActive: 0, timeline: [] }
    const reviewFailuresLeft = new Map<string, number>()
    const busyLeft = new Map<string, number>()

    const agent: Agent.Service = {
      name: script.agentName ?? "mock",
      provider: script.provider,
      attempt: (request) =>
        Effect.gen(function*() {
          const step = pick(script, request.task.id, request.attempt)
          calls.active++
          calls.maxActive = Math.max(calls.maxActive, calls.active)
          calls.agent.push({
            stream: request.stream.name,
            taskId: request.task.id,
            attempt: request.attempt,
            role: request.role,
            feedback: request.feedback,
            earlier: request.earlier,
            concurrent: calls.active
          })
          calls.timeline.push({ event: "start", stream: request.stream.name, taskId: request.task.id, attempt: request.attempt })
          if (step.duration !== undefined) yield* Effect.sleep(step.duration)
          const key = `${request.task.id}/${request.attempt}`
          const busy = busyLeft.get(key) ?? step.providerBusy ?? 0
          if (busy > 0) {
            busyLeft.set(key, busy - 1)
            return yield* new Agent.ProviderBusy({
              agent: "mock",
              provider: script.provider ?? "mock",
              message: `scripted 529 overloaded (${busy} left)`,
              ...(step.retryAfterMs !== undefined ? { retryAfterMs: step.retryAfterMs } : {})
            })
          }
          busyLeft.set(key, 0)
          if (step.usageLimit !== undefined) {
            return yield* new Agent.UsageLimitReached({ agent: "mock", provider: script.provider ?? "mock", message: "scripted usage limit", resetsAt: step.usageLimit })
          }
          if (step.agentError !== undefined) {
            return yield* new Agent.AgentFailed({
              agent: "mock",
              taskId: request.task.id,
              message: step.agentError,
              // A failing agent may still report what it spent.
              ...(step.usage ? { spent: new Agent.AttemptOutput({ summary: step.agentError, usage: new Agent.Usage(step.usage) }) } : {})
            })
          }
          yield* write(request.files, step, request).pipe(
            Effect.mapError((e) => new Agent.AgentFailed({ agent: "mock", taskId: request.task.id, message: e.message }))
          )
          // Not validated again: with a class among its fields, Schema compiles a fresh
          // validator on every construction (~57 µs an attempt; bench/ section 1).
          return new Agent.AttemptOutput({
            summary: step.summary ?? `${request.task.id}: attempt ${request.attempt} by ${request.role}`,
            ...(step.usage ? { usage: new Agent.Usage(step.usage) } : {})
          }, true)
        }).pipe(
          Effect.ensuring(Effect.sync(() => {
            calls.active--
            calls.timeline.push({ event: "end", stream: request.stream.name, taskId: request.task.id, attempt: request.attempt })
          }))
        )
    }

    const registry: Agent.RegistryService = {
      check: () => Effect.void,
      forStream: () => agent
    }

    const reviewer: Review.Service = {
      review: (request) =>
        Effect.gen(function*() {
          const step = pick(script, request.task.id, request.attempt)
          const key = `${request.task.id}/${request.attempt}`
          const left = reviewFailuresLeft.get(key) ?? step.reviewFailures ?? 0
          const failed = left > 0
          calls.review.push({
            taskId: request.task.id,
            attempt: request.attempt,
            commit: request.change.commit,
            files: request.change.files,
            failed
          })
          if (failed) {
            reviewFailuresLeft.set(key, left - 1)
            return yield* new Review.ReviewFailed({ reviewer: "mock", message: `scripted reviewer failure (${left} left)` })
          }
          reviewFailuresLeft.set(key, 0)
          return new Review.Review({
            score: step.score ?? 100,
            issues: step.issues ?? ((step.score ?? 100) < request.threshold ? [`attempt ${request.attempt} of ${request.task.id} scored ${step.score}`] : []),
            suggestions: step.suggestions ?? [],
            reviewer: "mock"
          })
        })
    }

    const resolver: ConflictResolver.Service = {
      name: "mock-resolver",
      resolve: (request) =>
        Effect.gen(function*() {
          calls.resolve.push({ stream: request.stream.name, against: request.against.map((s) => s.name), paths: request.paths })
          if (script.resolverError !== undefined) {
            return yield* new ConflictResolver.ResolutionFailed({ paths: request.paths, message: script.resolverError })
          }
          const resolve = script.resolve ?? keepBoth
          for (const path of request.paths) {
            const content = (yield* request.files.read(path).pipe(
              Effect.mapError((e) => new ConflictResolver.ResolutionFailed({ paths: request.paths, message: e.message }))
            )) ?? ""
            yield* request.files.write(path, resolve(path, content)).pipe(
              Effect.mapError((e) => new ConflictResolver.ResolutionFailed({ paths: request.paths, message: e.message }))
            )
          }
          return { summary: `resolved ${request.paths.join(", ")}` }
        })
    }

    const layer = Layer.mergeAll(
      Layer.succeed(Agent.AgentRegistry, registry),
      Layer.succeed(Review.Reviewer, reviewer),
      Layer.succeed(ConflictResolver.ConflictResolver, resolver)
    )
    return { layer, calls, agent, reviewer, resolver }
  })

/** A script from a plan's own `mock` fields (`braid run --agents mock`). */
export const scriptFromPlan = (plan: Plan.Plan): Script => {
  const tasks: Record<string, Array<AttemptScript>> = {}
  for (const task of plan.tasks.values()) {
    const mock = MockField.field.of(plan, task)
    const scores = mock?.scores ?? []
    const files = mock?.files
    tasks[task.id] = scores.length === 0
      ? [{ ...(files ? { files } : {}) }]
      : scores.map((score) => ({ score, ...(files ? { files } : {}) }))
  }
  return { tasks }
}

/**
 * The mock backend (`agent: mock`): the harness's scripted agents, driven by each task's
 * `mock` field; its own scripted reviewer judges them and its resolver keeps both sides.
 */
export const backend: Backend.Backend<Plan.AgentSettings> = {
  name: "mock",
  description: "scripted agents from each task's `mock` field, for trying a plan (no tool, no model)",
  taskFields: [MockField.field],
  // It reads nothing of its own under `agents.mock`: braid's `provider` only.
  settings: Plan.AgentSettings,
  preflight: () => Effect.succeed([]),
  make: (context) =>
    Effect.map(make(scriptFromPlan(context.plan)), (h) => ({ agent: h.agent, reviewer: h.reviewer, resolver: h.resolver }))
}

/** `Workspace.Files` over a real directory (a worktree), for driving a backend on its own. */
export const directoryFiles = (dir: string): Workspace.Worktree => ({
  _tag: "Worktree",
  dir,
  read: (p) => Effect.sync(() => (fs.existsSync(path.join(dir, p)) ? fs.readFileSync(path.join(dir, p), "utf8") : undefined)),
  write: (p, content) =>
    Effect.sync(() => {
      fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true })
      fs.writeFileSync(path.join(dir, p), content)
    }),
  remove: (p) => Effect.sync(() => fs.rmSync(path.join(dir, p), { force: true })),
  list: () => Effect.sync(() => fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).sort())
})

/**
 * The first attempt of the plan's first task as the gate asks for it (no earlier tasks, no
 * review yet), on the files of `dir`; `notes` collects what the agent journals. For testing an
 * agent backend on its own: `backend.make(...)`, then `agent.attempt(request)`.
 */
export const firstAttempt = (
  plan: Plan.Plan,
  dir: string,
  overrides: Partial<Agent.AttemptRequest> = {}
): { readonly request: Agent.AttemptRequest; readonly notes: Array<Agent.AttemptNote> } => {
  const stream = plan.streams[0]!
  const notes: Array<Agent.AttemptNote> = []
  const request: Agent.AttemptRequest = {
    // A run id of its own: tests running side by side must not share the attempt's process
    // marker (`<runId>/<stream>/<task>/<attempt>`), by which a test finds what is left running.
    runId: `r-${Math.random().toString(36).slice(2, 10)}`,
    projectName: plan.projectName,
    featureName: plan.featureName,
    plan,
    task: stream.tasks[0]!,
    stream,
    role: Agent.roleOf(stream),
    attempt: 1,
    feedback: undefined,
    earlier: [],
    broughtIn: [],
    denied: [],
    checks: [],
    session: undefined,
    note: (note) => Effect.sync(() => void notes.push(note)),
    files: directoryFiles(dir),
    ...overrides
  }
  return { request, notes }
}
