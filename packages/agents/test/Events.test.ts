/**
 * A library user watching a run: `Progress.withEvents` hands the run's events to a consumer as a
 * `Stream` that ends with the run, and `Progress.subscribe` gives a `PubSub`'s events as one.
 */
import { MemoryWorkspace, Orchestrator, Plan, Progress, Workspace } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, PubSub, Stream } from "effect"

const plan = Plan.decode({
  maxParallel: 2,
  streams: [{ name: "db", type: "database" }, { name: "api", type: "api" }],
  tasks: [
    { id: "db-1", title: "Orders table", stream: "db" },
    { id: "api-1", title: "Checkout", stream: "api", dependsOn: ["db-1"] }
  ]
})

const services = (harness: Effect.Effect.Success<ReturnType<typeof Harness.make>>) =>
  Effect.map(MemoryWorkspace.make({ base: { "README.md": "base\n" } }), (memory) =>
    Layer.merge(harness.layer, Layer.succeed(Workspace.Workspace, memory.service)))

describe("watching a run as a Stream", () => {
  it.live("withEvents: the consumer sees every stage's events in order, and its stream ends with the run", () =>
    Effect.gen(function*() {
      const harness = yield* Harness.make({ tasks: { "api-1": [{ score: 40, issues: ["total is wrong"] }, { score: 95 }] } })
      const layer = yield* services(harness)
      const [report, events] = yield* Progress.withEvents(
        Orchestrator.run(yield* plan).pipe(Effect.provide(layer)),
        (events) => Stream.runCollect(events)
      )
      assert.strictEqual(report.status, "succeeded")
      const tags = Chunk.toArray(events).map((e) => e._tag)
      assert.strictEqual(tags[0], "RunStarted")
      assert.strictEqual(tags.at(-1), "RunFinished")
      const api = Chunk.toArray(events).filter((e) => "taskId" in e && e.taskId === "api-1").map((e) => e._tag === "TaskWaiting" ? `${e._tag}:${e.for}` : e._tag)
      assert.deepStrictEqual(api.slice(0, 3), ["TaskWaiting:dependency", "TaskWaiting:slot", "TaskStarted"])
      assert.strictEqual(api.filter((t) => t === "ReviewRecorded").length, 2)
      assert.includeMembers(tags, ["IntegrationStarted", "StreamMerged", "VerificationStarted", "VerificationFinished", "Landed"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("withEvents: a run that fails still ends the consumer's stream", () =>
    Effect.gen(function*() {
      const outcome = yield* Progress.withEvents(Effect.fail("boom" as const), (events) => Stream.runCollect(events)).pipe(Effect.flip)
      assert.strictEqual(outcome, "boom")
    }))

  it.live("subscribe: a PubSub's events as a Stream, from the moment of subscribing", () =>
    Effect.gen(function*() {
      const pubsub = yield* PubSub.unbounded<Progress.RunEvent>()
      const events = yield* Progress.subscribe(pubsub)
      const harness = yield* Harness.make({})
      const layer = yield* services(harness)
      const watcher = yield* Effect.fork(Stream.runCollect(Stream.takeUntil(events, (e) => e._tag === "RunFinished")))
      yield* Orchestrator.run(yield* plan).pipe(Effect.provide(Layer.merge(layer, Progress.layerPubSub(pubsub))))
      const seen = Chunk.toArray(yield* Fiber.join(watcher)).map((e) => e._tag)
      assert.strictEqual(seen[0], "RunStarted")
      assert.strictEqual(seen.filter((t) => t === "TaskSettled").length, 2)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})
