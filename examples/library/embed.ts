/**
 * Embedding braid as a library: decode a plan, run it with the layers you choose, and get
 * a typed `RunReport` — or a typed error you can `catchTag`.
 *
 * Here the agents are the test harness's scripted ones and the workspace is in memory, so
 * it runs anywhere; swap in `GitWorkspace.layer({ repo })` and real agent layers for real work.
 */
import { MemoryWorkspace, Orchestrator, Plan, Progress, RunReport } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"

export const program = Effect.gen(function*() {
  const plan = yield* Plan.decode({
    projectName: "shop",
    featureName: "wishlist",
    tasks: [
      { id: "db-1", title: "wishlist table", stream: "db", streamType: "database" },
      { id: "api-1", title: "GET /wishlist", stream: "api", streamType: "api", dependsOn: ["db-1"] }
    ],
    streams: [{ name: "db", type: "database" }, { name: "api", type: "api" }]
  })
  const harness = yield* Harness.make({ tasks: { "api-1": [{ score: 70 }, { score: 95 }] } })
  const report = yield* Orchestrator.run(plan).pipe(
    Effect.provide(Layer.mergeAll(harness.layer, MemoryWorkspace.layer({ base: { "README.md": "shop\n" } }), Progress.layerSilent))
  )
  return { report, markdown: RunReport.toMarkdown(report), agentCalls: harness.calls.agent.length }
}).pipe(
  // Typed errors: handle exactly what you expect.
  Effect.catchTag("InvalidPlan", (e) => Effect.die(e.message)),
  Effect.provide(NodeContext.layer)
)

