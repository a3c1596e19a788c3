/**
 * Child process for section 1 (dispatch overhead). Input: { variant, tasks, streams,
 * maxParallel, seed }. Variants: "baseline" (plain Promises), "braid" (Orchestrator.run
 * over a MemoryWorkspace with the mocked harness and silent progress), "braid-profile" (the
 * same run under the inspector's CPU profiler, to see what dominates).
 */
import { measure, report } from "./measure.mjs"
import { overheadPlan } from "./plans.mjs"

const input = JSON.parse(process.argv[2])
const doc = overheadPlan(input)

if (input.variant === "baseline") {
  const { runBaseline } = await import("./baseline.mjs")
  global.gc()
  const m = await measure(() => runBaseline(doc))
  report({ ...m, status: m.value.status, completed: m.value.completed, value: undefined })
} else {
  const { MemoryWorkspace, Orchestrator, Plan, Progress, Workspace } = await import("@braid/core")
  const { Harness } = await import("@braid/agents")
  const { NodeContext } = await import("@effect/platform-node")
  const { Effect, Layer } = await import("effect")
  const Profile = await import("./profile.mjs")

  const decodeStarted = performance.now()
  const plan = await Effect.runPromise(Plan.decode(doc, "bench"))
  const decodeMs = performance.now() - decodeStarted

  const setup = await Effect.runPromise(Effect.gen(function*() {
    const harness = yield* Harness.make({})
    const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
    return { harness, memory }
  }).pipe(Effect.provide(NodeContext.layer)))
  const services = Layer.mergeAll(
    setup.harness.layer,
    Layer.succeed(Workspace.Workspace, setup.memory.service),
    Progress.layerSilent
  )
  const run = () => Effect.runPromise(Orchestrator.run(plan, { runId: "bench" }).pipe(Effect.provide(services)))
  const profiling = input.variant === "braid-profile"
  global.gc()
  const m = await measure(profiling ? () => Profile.profiled(run) : run)
  const r = profiling ? m.value.value : m.value
  report({
    ...m,
    value: undefined,
    decodeMs: +decodeMs.toFixed(1),
    status: r.status,
    completed: r.summary.completedTasks,
    ...(profiling ? { profile: Profile.summarise(m.value.profile, 12) } : {})
  })
}
