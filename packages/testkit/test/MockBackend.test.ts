/**
 * The mock backend (`agent: mock`): its `mock:` task field is declared by the backend, not by
 * core's plan, and decodes as it always has where the mock is offered (the CLI's backends); a
 * run of a plan with `agent: mock` plays each task's scores and files through the registry.
 */
import { Registry } from "@braid/agents"
import { MemoryWorkspace, Orchestrator, Plan, Progress, type RunReport, Workspace } from "@braid/core"
import { Harness, MockField } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"

/** The backends the CLI offers: the agents' and the mock. */
const backends = [...Registry.all, Harness.backend]
const withMock = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, Plan.BackendFields, Registry.planFields(backends))
const problemsOf = (input: unknown) =>
  Effect.map(Effect.flip(withMock(Plan.decode(input, "plan.yaml"))), (e) => e.problems.map((p) => `${p.path}: ${p.message}`))

const streams = [{ name: "api", type: "api" }]

describe("the mock backend's plan field", () => {
  it("is the mock backend's declaration, and only the mock declares one", () => {
    assert.deepStrictEqual(Harness.backend.taskFields, [MockField.field])
    assert.deepStrictEqual(Registry.taskFields().map((f) => f.name), [])
    assert.deepStrictEqual(Registry.taskFields(backends).map((f) => f.name), ["mock"])
  })

  it.effect("decodes scores and files, a file's content over several lines", () =>
    Effect.gen(function*() {
      const plan = yield* withMock(Plan.decode({
        streams,
        tasks: [{ id: "a1", title: "A", stream: "api", mock: { scores: [60, 95], files: { "src/a.ts": "export const a = 1\n\tnext line\n" } } }]
      }))
      assert.deepStrictEqual(plan.warnings, [])
      const mock = MockField.field.of(plan, plan.tasks.get("a1")!)
      assert.deepStrictEqual(mock?.scores, [60, 95])
      assert.deepStrictEqual(Harness.scriptFromPlan(plan).tasks?.a1?.map((s) => s.score), [60, 95])
    }))

  it.effect("a wrong score is named at its path; misspellings in and of the field are suggested", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        streams,
        tasks: [
          { id: "a1", title: "A", stream: "api", mock: { scores: [200] } },
          { id: "a2", title: "B", stream: "api", mock: { scroes: [10] } },
          { id: "a3", title: "C", stream: "api", mokc: { scores: [10] } }
        ]
      })
      assert.sameMembers(problems, [
        "tasks[0].mock.scores[0]: expected a number between 0 and 100, got 200",
        "tasks[1].mock.scroes: unknown field \"scroes\" — did you mean \"scores\"?",
        "tasks[2].mokc: unknown field \"mokc\" — did you mean \"mock\"?"
      ])
    }))

  it.effect("a file's name is one line and its content has no control character but line breaks and tabs", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        streams,
        tasks: [{ id: "a1", title: "A", stream: "api", mock: { files: { "a\nb.txt": "x", "c.txt": "bell \u0007" } } }]
      })
      assert.sameMembers(problems, [
        "tasks[0].mock.files.a\nb.txt: the field name contains a line break (\\n) at character 2; this field must be a single line of printable text",
        "tasks[0].mock.files.c.txt: contains a control character (\\x07) at character 6; only line breaks and tabs may stand in this text, no other control character"
      ])
    }))

  it.effect("a plan read without the mock (a library caller offering only the agents' backends) ignores it with a warning", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({ streams, tasks: [{ id: "a1", title: "A", stream: "api", mock: { scores: [200] } }] })
      assert.deepStrictEqual(plan.warnings.map((w) => w.path), ["tasks[0].mock"])
      assert.deepStrictEqual(Harness.scriptFromPlan(plan).tasks?.a1, [{}])
    }))
})

describe("a run with agent: mock", () => {
  it.effect("plays each task's scores and files through the registry, reviewed by the mock's own reviewer", () =>
    Effect.gen(function*() {
      const plan = yield* withMock(Plan.decode({
        agent: "mock",
        streams,
        tasks: [
          { id: "a1", title: "A", stream: "api", mock: { scores: [40, 90], files: { "a.txt": "one\ntwo\n" } } },
          { id: "a2", title: "B", stream: "api" }
        ]
      }))
      const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
      const workspace = Layer.succeed(Workspace.Workspace, memory.service)
      const report = yield* Orchestrator.run(plan).pipe(
        Effect.provide(Layer.mergeAll(
          Registry.layer(plan, { backends }).pipe(Layer.provideMerge(workspace), Layer.provide(NodeContext.layer)),
          Progress.layerSilent
        ))
      )
      const result = (id: string): RunReport.TaskResult => report.streamResults.flatMap((s) => s.results).find((r) => r.taskId === id)!
      assert.deepStrictEqual(result("a1").attempts.map((a) => a.review?.score), [40, 90])
      // The second attempt writes the same file again: nothing more changes.
      assert.deepStrictEqual(result("a1").attempts.map((a) => [...a.changedFiles]), [["a.txt"], []])
      assert.strictEqual(result("a1").status, "completed")
      assert.deepStrictEqual(result("a2").attempts.map((a) => [...a.changedFiles]), [["api/a2.txt"]])
      assert.strictEqual(report.success, true)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("is unknown to a registry offering only the agents' backends", () =>
    Effect.gen(function*() {
      const plan = yield* withMock(Plan.decode({ agent: "mock", streams, tasks: [{ id: "a1", title: "A", stream: "api" }] }))
      const problems = yield* Registry.preflight(plan, { workspaceKind: "memory" }).pipe(Effect.provide(NodeContext.layer))
      assert.deepStrictEqual(problems.map((p) => p.path), ["agent"])
      assert.match(problems[0]!.message, /unknown agent "mock" \(known: script, aider/)
    }))
})
