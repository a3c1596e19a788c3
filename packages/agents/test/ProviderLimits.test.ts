import { Agent, MemoryWorkspace, Orchestrator, Plan, Progress, ProviderLimits, type RunReport, Workspace } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, TestClock } from "effect"

type PlanInput = Parameters<typeof Plan.decode>[0]

/** Runs a plan over a memory workspace with scripted agents of provider "acme"; virtual time. */
const runWith = (input: PlanInput, script: Harness.Script) =>
  Effect.gen(function*() {
    const plan = yield* Plan.decode(input)
    const harness = yield* Harness.make({ provider: "acme", ...script })
    const events: Array<Progress.RunEvent> = []
    const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
    const fiber = yield* Orchestrator.run(plan).pipe(
      Effect.provide(Layer.mergeAll(
        harness.layer,
        Layer.succeed(Workspace.Workspace, memory.service),
        Progress.layerCallback((e) => events.push(e))
      )),
      Effect.either,
      Effect.fork
    )
    for (let i = 0; i < 5000 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("1 second")
    const outcome = yield* Fiber.join(fiber)
    return { outcome, calls: harness.calls, events }
  }).pipe(Effect.provide(NodeContext.layer))

const task = (id: string, stream: string) => ({ id, title: `Task ${id}`, stream })
const streams = (...names: Array<string>) => names.map((name) => ({ name, type: "api" }))
const report = (outcome: Either.Either<RunReport.RunReport, unknown>) => {
  assert.isTrue(Either.isRight(outcome), `the run failed: ${String(Either.isLeft(outcome) ? outcome.left : "")}`)
  return (outcome as Either.Right<unknown, RunReport.RunReport>).right
}
const resultOf = (r: RunReport.RunReport, id: string) => r.streamResults.flatMap((s) => s.results).find((t) => t.taskId === id)!
const waits = (events: ReadonlyArray<Progress.RunEvent>) =>
  events.filter((e): e is Extract<Progress.RunEvent, { _tag: "ProviderWaited" }> => e._tag === "ProviderWaited")

describe("provider limits", () => {
  it.effect("a busy provider is waited out: the task passes on its first gate run", () =>
    Effect.gen(function*() {
      const { calls, events, outcome } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ providerBusy: 2 }] } }
      )
      const t1 = resultOf(report(outcome), "t1")
      assert.strictEqual(t1.status, "completed")
      assert.strictEqual(t1.attempts.length, 1, "no gate run was used by the busy provider")
      assert.strictEqual(calls.agent.length, 3, "the attempt was tried again twice")
      assert.strictEqual(waits(events).length, 2)
      assert.strictEqual(t1.attempts[0]!.agent?.providerWaits, 2)
    }))

  it.effect("an agent that fails keeps its attempt on record, unreviewed, with what it spent", () =>
    Effect.gen(function*() {
      const { outcome } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ agentError: "the model gave up", usage: { inputTokens: 1200, outputTokens: 300, costUsd: 0.05 } }] } }
      )
      const r = report(outcome)
      const t1 = resultOf(r, "t1")
      assert.strictEqual(t1.status, "failed")
      assert.strictEqual(t1.attempts.length, 1)
      assert.isNull(t1.attempts[0]!.review)
      assert.strictEqual(t1.attempts[0]!.inputTokens, 1200)
      assert.closeTo(r.usage.costUsd, 0.05, 1e-9)
    }))

  it.effect("a provider's Retry-After is honoured", () =>
    Effect.gen(function*() {
      const { events } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ providerBusy: 1, retryAfterMs: 42_000 }] } }
      )
      assert.deepStrictEqual(waits(events).map((w) => w.waitMs), [42_000])
    }))

  it.effect("a provider that stays busy fails the task with a clear error after bounded retries, using no gate run", () =>
    Effect.gen(function*() {
      const { calls, outcome } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")], limits: { acme: { retries: 3 } } },
        { tasks: { t1: [{ providerBusy: 1000 }] } }
      )
      const r = report(outcome)
      const t1 = resultOf(r, "t1")
      assert.strictEqual(t1.status, "failed")
      assert.match(t1.error!, /acme stayed busy after 4 tries/)
      assert.match(t1.error!, /none used a gate run/)
      // The failed attempt is on record, unreviewed: the busy provider used no review of a gate run.
      assert.deepStrictEqual(t1.attempts.map((a) => a.review), [null])
      assert.match(t1.attempts[0]!.summary, /stayed busy/)
      assert.strictEqual(calls.agent.length, 4)
      assert.strictEqual(r.success, false)
    }))

  it.effect("the provider's concurrency is halved while errors keep coming and raised again after successes", () =>
    Effect.gen(function*() {
      const names = ["s1", "s2", "s3", "s4"]
      const { events, outcome } = yield* runWith(
        { maxParallel: 4, streams: streams(...names), tasks: names.flatMap((s) => [task(`${s}-a`, s), task(`${s}-b`, s)]) },
        { tasks: { "s1-a": [{ providerBusy: 1 }], "s2-a": [{ providerBusy: 1 }], "s3-a": [{ providerBusy: 1 }] }, defaultAttempt: { duration: "5 seconds" } }
      )
      assert.strictEqual(report(outcome).status, "succeeded")
      const seen = waits(events).map((w) => w.concurrency)
      assert.deepStrictEqual(seen, [2, 1, 1])
    }))

  it.effect("a usage limit stops the run, resumable: the task does not settle and the error says when it resets", () =>
    Effect.gen(function*() {
      const { events, outcome } = yield* runWith(
        { maxParallel: 2, streams: streams("s1", "s2"), tasks: [task("a", "s1"), task("b", "s2"), task("b2", "s2")] },
        { tasks: { a: [{ usageLimit: "2026-11-25T18:00:00Z" }], b: [{ duration: "30 seconds" }] } }
      )
      assert.isTrue(Either.isLeft(outcome))
      const error = (outcome as Either.Left<unknown, unknown>).left as Agent.UsageLimitReached
      assert.strictEqual(error._tag, "UsageLimitReached")
      assert.match(Agent.describeUsageLimit(error), /resets at 2026-11-25T18:00:00Z/)
      const settled = events.filter((e) => e._tag === "TaskSettled").map((e) => (e as { taskId: string }).taskId)
      assert.notInclude(settled, "a")
      assert.notInclude(settled, "b2", "nothing new is dispatched")
      assert.isFalse(events.some((e) => e._tag === "RunFinished"))
    }))
})

describe("ProviderLimits.make", () => {
  it.effect("an attempt interrupted while it waits for the provider gives no capacity away", () =>
    Effect.gen(function*() {
      const limits = yield* ProviderLimits.make({ acme: new Plan.ProviderLimit({ concurrency: 1 }) }, 4)
      const hold = yield* limits.run("acme", "t1", () => Effect.never, () => Effect.void).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const waiting = yield* limits.run("acme", "t2", () => Effect.succeed("t2"), () => Effect.void).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(waiting)
      yield* Fiber.interrupt(hold)
      const after = yield* limits.run("acme", "t3", () => Effect.succeed("t3"), () => Effect.void)
      assert.strictEqual(after, "t3")
      assert.strictEqual(limits.concurrency("acme"), 1)
    }))

  it.effect("agents without a provider run unlimited, and a stray busy error is a plain failure", () =>
    Effect.gen(function*() {
      const limits = yield* ProviderLimits.make({}, 1)
      const error = yield* limits.run(
        undefined,
        "t1",
        () => Effect.fail(new Agent.ProviderBusy({ agent: "x", provider: "p", message: "busy" })),
        () => Effect.void
      ).pipe(Effect.flip)
      assert.strictEqual(error._tag, "AgentFailed")
      assert.strictEqual(error._tag === "AgentFailed" ? error.taskId : undefined, "t1")
    }))
})
