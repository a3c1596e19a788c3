/**
 * The run's budget in the engine (memory workspace, scripted agents, virtual time): once it is
 * reached no new attempt starts; `onExceeded: finish` lets running attempts finish, `stop`
 * stops them; what a journal says was spent before counts from the start.
 */
import { Budget, MemoryWorkspace, Orchestrator, Plan, Progress, Workspace } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, TestClock } from "effect"

const runWith = (input: Record<string, unknown>, script: Harness.Script, options: Orchestrator.RunOptions = {}) =>
  Effect.gen(function*() {
    const plan = yield* Plan.decode(input)
    const harness = yield* Harness.make(script)
    const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
    const fiber = yield* Orchestrator.run(plan, options).pipe(
      Effect.provide(Layer.mergeAll(harness.layer, Layer.succeed(Workspace.Workspace, memory.service), Progress.layerSilent)),
      Effect.either,
      Effect.fork
    )
    for (let i = 0; i < 200 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("1 second")
    return { outcome: yield* Fiber.join(fiber), calls: harness.calls, state: memory.state }
  }).pipe(Effect.provide(NodeContext.layer))

const plan = (onExceeded: "finish" | "stop") => ({
  maxParallel: 2,
  budget: { usd: 1, onExceeded },
  streams: [{ name: "s1", type: "api" }, { name: "s2", type: "ui" }],
  tasks: [
    { id: "t1", title: "t1", stream: "s1" },
    { id: "t2", title: "t2", stream: "s1" },
    { id: "u1", title: "u1", stream: "s2" },
    { id: "u2", title: "u2", stream: "s2" }
  ]
})

// t1 spends the whole budget in 1 s while u1 is still at work (5 s).
const script: Harness.Script = {
  tasks: {
    t1: [{ duration: "1 second", usage: { inputTokens: 10, outputTokens: 1, costUsd: 1 } }],
    u1: [{ duration: "5 seconds", files: { "u1.txt": "u1\n" }, usage: { inputTokens: 10, outputTokens: 1, costUsd: 0.1 } }]
  }
}

const started = (calls: Harness.Calls) => calls.timeline.filter((e) => e.event === "start").map((e) => e.taskId)
/** Whether u1's attempt got to write its file (it does so at the end of its 5 s). */
const u1Wrote = (state: MemoryWorkspace.State) => state.streams.get("s2")?.files.get("u1.txt") !== undefined

describe("the run's budget", () => {
  it.effect("finish: the running attempt finishes, nothing new starts, the run pauses with BudgetReached", () =>
    Effect.gen(function*() {
      const { calls, outcome, state } = yield* runWith(plan("finish"), script)
      assert.isTrue(Either.isLeft(outcome))
      const error = Either.flip(outcome).pipe(Either.getOrThrow)
      assert.strictEqual(error._tag, "BudgetReached")
      assert.include(error.message, "$1.0000 spent of $1.00")
      assert.deepStrictEqual(started(calls).sort(), ["t1", "u1"])
      assert.isTrue(u1Wrote(state))
    }))

  it.effect("stop: the running attempt is stopped too", () =>
    Effect.gen(function*() {
      const { calls, outcome, state } = yield* runWith(plan("stop"), script)
      const error = Either.flip(outcome).pipe(Either.getOrThrow)
      assert.strictEqual(error._tag, "BudgetReached")
      assert.deepStrictEqual(started(calls).sort(), ["t1", "u1"])
      assert.isFalse(u1Wrote(state))
    }))

  it.effect("what the journal says was spent before counts: a spent budget starts nothing; a raised one runs the rest", () =>
    Effect.gen(function*() {
      const spent = new Map([[Budget.attemptId(0, "old", 1), { usd: 1, tokens: 0 }]])
      const paused = yield* runWith(plan("finish"), script, { spent })
      assert.strictEqual(Either.flip(paused.outcome).pipe(Either.getOrThrow)._tag, "BudgetReached")
      assert.deepStrictEqual(started(paused.calls), [])
      const raised = yield* runWith({ ...plan("finish"), budget: { usd: 5 } }, script, { spent })
      assert.isTrue(Either.isRight(raised.outcome))
      assert.deepStrictEqual(started(raised.calls).sort(), ["t1", "t2", "u1", "u2"])
    }))
})
