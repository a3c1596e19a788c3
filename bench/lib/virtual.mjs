/**
 * Runs a plan through the real Orchestrator under virtual time: `TestContext` replaces the
 * clock with a `TestClock`, which is advanced until the run's fiber is done. Agents sleep
 * for their scripted durations; the makespan is read from the RunStarted and RunFinished
 * event timestamps, which come from that clock, so it is exact.
 */
import { MemoryWorkspace, Orchestrator, Progress, Workspace } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { Duration, Effect, Fiber, Layer, TestClock, TestContext } from "effect"

/** `durations`: task id → milliseconds. Resolves to the makespan and a few run facts. */
export const makespan = (plan, durations) =>
  Effect.gen(function*() {
    const tasks = Object.fromEntries(Object.entries(durations).map(([id, ms]) => [id, [{ duration: Duration.millis(ms) }]]))
    const harness = yield* Harness.make({ tasks })
    const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
    const stamps = {}
    const fiber = yield* Orchestrator.run(plan, { runId: "schedule" }).pipe(
      Effect.provide(Layer.mergeAll(
        harness.layer,
        Layer.succeed(Workspace.Workspace, memory.service),
        Progress.layerCallback((e) => {
          if (e._tag === "RunStarted" || e._tag === "RunFinished") stamps[e._tag] = Date.parse(e.at)
        })
      )),
      Effect.fork
    )
    // One adjust runs every sleep due before its end, in time order; repeat until done.
    while (fiber.unsafePoll() === null) yield* TestClock.adjust(Duration.days(1))
    const report = yield* Fiber.join(fiber)
    return {
      makespanMs: stamps.RunFinished - stamps.RunStarted,
      status: report.status,
      maxActive: harness.calls.maxActive,
      agentCalls: harness.calls.agent.length
    }
  }).pipe(Effect.provide(NodeContext.layer), Effect.provide(TestContext.TestContext), Effect.runPromise)
