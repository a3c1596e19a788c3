import { MemoryWorkspace, Orchestrator, Plan, Progress, type RunReport, Workspace } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schedule, TestClock } from "effect"

type PlanInput = Parameters<typeof Plan.decode>[0]

/** Runs a plan over a memory workspace with the scripted harness; advances virtual time until done. */
const runWith = (input: PlanInput, script: Harness.Script, options: Orchestrator.RunOptions = {}) =>
  Effect.gen(function*() {
    const plan = yield* Plan.decode(input)
    const harness = yield* Harness.make(script)
    const events: Array<Progress.RunEvent> = []
    const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
    const fiber = yield* Orchestrator.run(plan, { reviewRetry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(4))), ...options }).pipe(
      Effect.provide(Layer.mergeAll(
        harness.layer,
        Layer.succeed(Workspace.Workspace, memory.service),
        Progress.layerCallback((e) => events.push(e))
      )),
      Effect.fork
    )
    // Advance virtual time in steps so scripted durations elapse and backoffs fire.
    for (let i = 0; i < 2000 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("1 second")
    const report = yield* Fiber.join(fiber)
    return { report, calls: harness.calls, events, state: memory.state, plan }
  }).pipe(Effect.provide(NodeContext.layer))

const task = (id: string, stream: string, extra: Record<string, unknown> = {}) => ({ id, title: `Task ${id}`, stream, ...extra })
const streams = (...names: Array<string>) => names.map((name) => ({ name, type: "api" }))
const result = (report: RunReport.RunReport, taskId: string) =>
  report.streamResults.flatMap((s) => s.results).find((r) => r.taskId === taskId)!

describe("dispatch", () => {
  it.effect("never exceeds maxParallel and reaches it when work allows", () =>
    Effect.gen(function*() {
      const names = ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]
      const { calls, report } = yield* runWith(
        { maxParallel: 3, streams: streams(...names), tasks: names.flatMap((s) => [task(`${s}-a`, s), task(`${s}-b`, s)]) },
        { defaultAttempt: { duration: "10 seconds" } }
      )
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(calls.agent.length, 14)
      assert.strictEqual(calls.maxActive, 3)
      assert.isTrue(calls.agent.every((c) => c.concurrent <= 3))
    }))

  it.effect("runs a stream's tasks one after another, each seeing the earlier results", () =>
    Effect.gen(function*() {
      const { calls } = yield* runWith(
        { maxParallel: 4, streams: streams("s1", "s2"), tasks: ["1", "2", "3"].flatMap((n) => [task(`a${n}`, "s1"), task(`b${n}`, "s2")]) },
        { defaultAttempt: { duration: "5 seconds" } }
      )
      for (const stream of ["s1", "s2"]) {
        const events = calls.timeline.filter((e) => e.stream === stream)
        let open = 0
        for (const e of events) {
          open += e.event === "start" ? 1 : -1
          assert.isAtMost(open, 1, `tasks of ${stream} overlapped`)
        }
      }
      const third = calls.agent.find((c) => c.taskId === "a3")!
      assert.deepStrictEqual(third.earlier.map((e) => e.taskId), ["a1", "a2"])
      assert.deepStrictEqual(third.earlier.map((e) => e.status), ["completed", "completed"])
    }))

  it.effect("starts a task only after the tasks it depends on in other streams have finished", () =>
    Effect.gen(function*() {
      const { calls } = yield* runWith(
        {
          maxParallel: 5,
          streams: streams("db", "api", "ui"),
          tasks: [task("db1", "db"), task("db2", "db"), task("api1", "api", { dependsOn: ["db2"] }), task("ui1", "ui", { dependsOn: ["api1", "db1"] })]
        },
        { tasks: { db1: [{ duration: "30 seconds" }], db2: [{ duration: "20 seconds" }], api1: [{ duration: "5 seconds" }] }, defaultAttempt: { duration: "1 second" } }
      )
      const index = (event: "start" | "end", taskId: string) => calls.timeline.findIndex((e) => e.event === event && e.taskId === taskId)
      assert.isAbove(index("start", "api1"), index("end", "db2"))
      assert.isAbove(index("start", "ui1"), index("end", "api1"))
      assert.isAbove(index("start", "ui1"), index("end", "db1"))
    }))

  it.effect("gives a free slot to the task holding up the longest chain, not the first stream listed", () =>
    Effect.gen(function*() {
      const { calls } = yield* runWith(
        {
          maxParallel: 1,
          streams: streams("short", "long"),
          tasks: [task("s1", "short"), task("l1", "long"), task("l2", "long"), task("l3", "long")]
        },
        { defaultAttempt: { duration: "1 second" } }
      )
      assert.deepStrictEqual(calls.agent.map((c) => c.taskId), ["l1", "l2", "l3", "s1"])
    }))

  it.effect("keeps every other stream's results when one stream's agent fails", () =>
    Effect.gen(function*() {
      const { report } = yield* runWith(
        { streams: streams("s1", "s2"), tasks: [task("a1", "s1"), task("a2", "s1"), task("b1", "s2"), task("b2", "s2")] },
        { tasks: { a1: [{ agentError: "agent crashed" }] } }
      )
      assert.strictEqual(result(report, "a1").status, "failed")
      assert.match(result(report, "a1").error!, /agent crashed/)
      assert.strictEqual(result(report, "a2").status, "skipped")
      assert.strictEqual(result(report, "b1").status, "completed")
      assert.strictEqual(result(report, "b2").status, "completed")
      assert.strictEqual(report.status, "failed")
      assert.isFalse(report.mergeResult.landed)
    }))
})

describe("quality gate", () => {
  it.effect("a task passing on its 2nd attempt is completed with the 2nd review's score; the retry saw the 1st review", () =>
    Effect.gen(function*() {
      const { calls, report } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ score: 55, issues: ["missing index on orders.user_id"] }, { score: 91 }] } }
      )
      const t1 = result(report, "t1")
      assert.strictEqual(t1.status, "completed")
      assert.strictEqual(t1.quality!.score, 91)
      assert.isTrue(t1.quality!.passes)
      assert.strictEqual(t1.qualityIterations, 1)
      assert.deepStrictEqual(t1.attempts.map((a) => a.review!.score), [55, 91])
      assert.strictEqual(calls.agent.length, 2)
      assert.isUndefined(calls.agent[0]!.feedback)
      assert.deepStrictEqual(calls.agent[1]!.feedback!.issues, ["missing index on orders.user_id"])
    }))

  it.effect("each retry is fed the latest review, not the first", () =>
    Effect.gen(function*() {
      const { calls } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ score: 10, issues: ["first"] }, { score: 20, issues: ["second"] }, { score: 95 }] } }
      )
      assert.deepStrictEqual(calls.agent.map((c) => c.feedback?.issues), [undefined, ["first"], ["second"]])
    }))

  it.effect("a task failing three times needs review after exactly 3 agent calls and 3 reviews", () =>
    Effect.gen(function*() {
      const { calls, report } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ score: 10 }, { score: 20 }, { score: 79 }, { score: 100 }] } }
      )
      const t1 = result(report, "t1")
      assert.strictEqual(t1.status, "needs-review")
      assert.strictEqual(t1.quality!.score, 79)
      assert.isFalse(t1.quality!.passes)
      assert.strictEqual(calls.agent.length, 3)
      assert.strictEqual(calls.review.length, 3)
      assert.strictEqual(report.status, "needs-review")
      assert.isFalse(report.success)
    }))

  it.effect("a score equal to the threshold passes", () =>
    Effect.gen(function*() {
      const { calls, report } = yield* runWith(
        { qualityThreshold: 72, streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ score: 72 }] } }
      )
      assert.strictEqual(result(report, "t1").status, "completed")
      assert.strictEqual(calls.agent.length, 1)
    }))

  it.effect("a reviewer error is retried and does not use up one of the three runs", () =>
    Effect.gen(function*() {
      const { calls, report } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ score: 40, reviewFailures: 2 }, { score: 50, reviewFailures: 1 }, { score: 85 }] } }
      )
      const t1 = result(report, "t1")
      assert.strictEqual(t1.status, "completed")
      assert.strictEqual(t1.attempts.length, 3)
      assert.strictEqual(calls.agent.length, 3)
      assert.strictEqual(calls.review.filter((r) => r.failed).length, 3)
      assert.strictEqual(calls.review.filter((r) => !r.failed).length, 3)
    }))

  it.effect("a reviewer that keeps failing fails the task with a typed error, after its retries", () =>
    Effect.gen(function*() {
      const { calls, report } = yield* runWith(
        { streams: streams("s1"), tasks: [task("t1", "s1")] },
        { tasks: { t1: [{ reviewFailures: 100 }] } }
      )
      const t1 = result(report, "t1")
      assert.strictEqual(t1.status, "failed")
      assert.match(t1.error!, /scripted reviewer failure/)
      assert.strictEqual(calls.agent.length, 1)
      assert.strictEqual(calls.review.length, 5)
    }))
})

describe("onGateFailure", () => {
  const input = (policy: string) => ({
    onGateFailure: policy,
    maxParallel: 1,
    streams: [{ name: "s1", type: "api", priority: 1 }, { name: "s2", type: "ui", priority: 2 }],
    tasks: [task("a1", "s1"), task("a2", "s1"), task("b1", "s2"), task("b2", "s2")]
  })
  const script: Harness.Script = { tasks: { a1: [{ score: 10 }] }, defaultAttempt: { duration: "1 second" } }

  it.effect("continue: the stream goes on, the run ends needing review and does not land", () =>
    Effect.gen(function*() {
      const { report } = yield* runWith(input("continue"), script)
      assert.deepStrictEqual(["a1", "a2", "b1", "b2"].map((t) => result(report, t).status), ["needs-review", "completed", "completed", "completed"])
      assert.strictEqual(report.status, "needs-review")
      assert.isFalse(report.mergeResult.landed)
      assert.match(report.mergeResult.reason!, /need review/)
      assert.isTrue(report.integrationResult.passed || !report.integrationResult.ran)
    }))

  it.effect("halt-stream: the rest of that stream is skipped, other streams finish", () =>
    Effect.gen(function*() {
      const { calls, report } = yield* runWith(input("halt-stream"), script)
      assert.deepStrictEqual(["a1", "a2", "b1", "b2"].map((t) => result(report, t).status), ["needs-review", "skipped", "completed", "completed"])
      assert.isFalse(calls.agent.some((c) => c.taskId === "a2"))
      assert.match(result(report, "a2").error!, /a1 needs-review/)
    }))

  it.effect("fail-run: nothing new starts anywhere and the run fails", () =>
    Effect.gen(function*() {
      const { calls, report } = yield* runWith(input("fail-run"), script)
      assert.deepStrictEqual(["a1", "a2", "b1", "b2"].map((t) => result(report, t).status), ["needs-review", "skipped", "skipped", "skipped"])
      assert.deepStrictEqual(calls.agent.map((c) => c.taskId), ["a1", "a1", "a1"])
      assert.isFalse(report.mergeResult.landed)
      assert.isFalse(report.success)
    }))
})

describe("conflicts over the memory workspace", () => {
  const input = (strategy: string) => ({
    conflictStrategy: strategy,
    streams: [{ name: "api", type: "api", priority: 2 }, { name: "docs", type: "docs", priority: 1 }],
    tasks: [task("api1", "api"), task("docs1", "docs")]
  })
  const script: Harness.Script = {
    tasks: {
      api1: [{ files: { "README.md": "api says hello\n", "api.ts": "export {}\n" } }],
      docs1: [{ files: { "README.md": "docs say hello\n" } }]
    }
  }

  it.effect("agent: the resolver edits the conflicted file, the merge is committed, the result lands", () =>
    Effect.gen(function*() {
      const { calls, report, state } = yield* runWith(input("agent"), script)
      assert.deepStrictEqual(report.conflictReport.overlaps.map((o) => [o.streams, o.paths]), [[["api", "docs"], ["README.md"]]])
      assert.strictEqual(report.conflictReport.conflicts.length, 1)
      const conflict = report.conflictReport.conflicts[0]!
      assert.deepStrictEqual(conflict.paths, ["README.md"])
      assert.strictEqual(conflict.outcome, "resolved")
      assert.isNotNull(conflict.commit)
      assert.deepStrictEqual(calls.resolve.map((c) => c.paths), [["README.md"]])
      assert.strictEqual(report.status, "succeeded")
      assert.isTrue(report.mergeResult.landed)
      assert.deepStrictEqual(report.mergeResult.mergedStreams, ["docs", "api"])
      const landed = state.commits.get(state.landed!)!
      assert.strictEqual(landed.get("README.md"), "docs say hello\napi says hello\n")
      assert.strictEqual(landed.get("api.ts"), "export {}\n")
    }))

  it.effect("priority: the higher-priority stream's side wins", () =>
    Effect.gen(function*() {
      const { calls, report, state } = yield* runWith(input("priority"), script)
      assert.strictEqual(report.conflictReport.conflicts[0]!.outcome, "resolved")
      assert.match(report.conflictReport.conflicts[0]!.detail, /docs has the higher priority/)
      assert.strictEqual(calls.resolve.length, 0)
      assert.strictEqual(state.commits.get(state.landed!)!.get("README.md"), "docs say hello\n")
    }))

  it.effect("manual: the run stops blocked with the conflict left for a person", () =>
    Effect.gen(function*() {
      const { report, state } = yield* runWith(input("manual"), script)
      assert.strictEqual(report.status, "blocked")
      assert.strictEqual(report.conflictReport.conflicts[0]!.outcome, "blocked")
      assert.isFalse(report.mergeResult.landed)
      assert.isUndefined(state.landed)
      assert.match(state.integration!.files.get("README.md")!, /^<{7} integration/m)
      assert.isTrue(report.nextSteps.some((s) => s.includes("README.md")))
    }))

  it.effect("a resolver that leaves markers fails the conflict and nothing lands", () =>
    Effect.gen(function*() {
      const { report } = yield* runWith(input("agent"), { ...script, resolve: (_p, content) => content })
      assert.strictEqual(report.conflictReport.conflicts[0]!.outcome, "failed")
      assert.match(report.conflictReport.conflicts[0]!.detail, /conflict markers remain/)
      assert.strictEqual(report.status, "failed")
      assert.isFalse(report.mergeResult.landed)
    }))
})

describe("verification", () => {
  it.effect("a failed verify command stops the landing and its output tail is reported", () =>
    Effect.gen(function*() {
      const { report } = yield* runWith(
        {
          streams: streams("s1"),
          tasks: [task("t1", "s1")],
          verify: [["node", "-e", "console.log('checking'); process.exit(3)"], ["node", "-e", "0"]]
        },
        {}
      )
      assert.isTrue(report.integrationResult.ran)
      assert.isFalse(report.integrationResult.passed)
      assert.deepStrictEqual(report.integrationResult.checks.map((c) => c.exitCode), [3, 0])
      assert.match(report.integrationResult.checks[0]!.outputTail, /checking/)
      assert.isFalse(report.mergeResult.landed)
      assert.strictEqual(report.status, "failed")
    }))
})
