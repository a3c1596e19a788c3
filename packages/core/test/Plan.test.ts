import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import * as ExecutionPlan from "../src/ExecutionPlan.js"
import * as Plan from "../src/Plan.js"

const seedPlan = path.resolve(__dirname, "../../../examples/seed-shape/plan.json")

const problemsOf = (input: unknown) =>
  Plan.decode(input, "test.yaml").pipe(
    Effect.flip,
    Effect.map((e) => e.problems)
  )

const base = {
  tasks: [{ id: "a", title: "A", stream: "s1", streamType: "api" }],
  streams: [{ name: "s1", type: "api" }]
}

describe("Plan", () => {
  it.effect("loads a plan written in the seed's exact shape, unchanged", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.load(seedPlan)
      assert.strictEqual(plan.projectName, "shop")
      assert.strictEqual(plan.featureName, "checkout-flow")
      assert.strictEqual(plan.githubRepo, "acme/shop")
      assert.strictEqual(plan.qualityThreshold, 80)
      assert.strictEqual(plan.maxParallel, 3)
      assert.deepStrictEqual(plan.streams.map((s) => s.name), ["database", "api", "ui", "testing", "docs"])
      assert.deepStrictEqual(plan.streams[1]!.tasks.map((t) => t.id), ["api-1", "api-2"])
      assert.strictEqual(plan.tasks.get("db-1")!.githubIssueNumber, 101)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("applies the defaults: threshold 80, maxParallel 5", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode(base)
      assert.strictEqual(plan.qualityThreshold, 80)
      assert.strictEqual(plan.maxParallel, 5)
      assert.strictEqual(plan.conflictStrategy, "agent")
      assert.strictEqual(plan.onGateFailure, "continue")
    }))

  it.effect("reads YAML", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.parse(
        "tasks:\n  - id: a\n    title: A\n    stream: s1\n    streamType: api\nstreams:\n  - name: s1\n    type: api\nverify:\n  - npm test\n"
      )
      assert.deepStrictEqual(plan.verify.map((v) => v.argv), [["npm", "test"]])
    }))

  it.effect("reads the plan's tracking issue and GitHub settings, and names a wrong one with its path", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({ ...base, githubRepo: "acme/shop", githubIssueNumber: 7, github: { apiUrl: "http://127.0.0.1:9/api" } })
      assert.strictEqual(plan.githubIssueNumber, 7)
      assert.strictEqual(plan.github.apiUrl, "http://127.0.0.1:9/api")
      const problems = yield* problemsOf({
        ...base,
        githubIssueNumber: 0,
        github: { apiUrl: "not a url" },
        tasks: [{ ...base.tasks[0], githubIssueNumber: -3 }]
      })
      const at = (p: string) => problems.filter((x) => x.path === p).map((x) => x.message)
      assert.match(at("githubIssueNumber")[0]!, /at least 1, got 0/)
      assert.match(at("tasks[0].githubIssueNumber")[0]!, /at least 1, got -3/)
      assert.match(at("github.apiUrl")[0]!, /http\(s\) URL, got "not a url"/)
      const typo = yield* problemsOf({ ...base, githubIssueNumbr: 3, github: { apiURL: "x" } })
      assert.isTrue(typo.some((p) => p.path === "githubIssueNumbr" && /did you mean "githubIssueNumber"/.test(p.message)))
      assert.isTrue(typo.some((p) => p.path === "github.apiURL" && /did you mean "apiUrl"/.test(p.message)))
    }))

  it.effect("reports every problem at once, each with its path", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        qualityThreshold: 120,
        maxParallel: 0,
        githubRepo: "not a repo",
        tasks: [
          { id: "a", title: "A", stream: "s1", streamType: "api" },
          { id: "a", title: "A again", stream: "s1", streamType: "api" },
          { id: "b", title: "B", stream: "nowhere", streamType: "api" },
          { id: "c", title: "C", stream: "s1", streamType: "ui" },
          { id: "d", title: "D", stream: "s2", streamType: "database", dependsOn: ["ghost"] }
        ],
        streams: [
          { name: "s1", type: "api" },
          { name: "s2", type: "database" },
          { name: "s3", type: "ui" },
          { name: "s4", type: "blockchain" }
        ]
      })
      const at = (p: string) => problems.filter((x) => x.path === p).map((x) => x.message)
      assert.match(at("qualityThreshold")[0]!, /between 0 and 100, got 120/)
      assert.match(at("maxParallel")[0]!, /at least 1, got 0/)
      assert.match(at("githubRepo")[0]!, /owner\/name/)
      assert.match(at("tasks[1].id")[0]!, /duplicate task id "a"/)
      assert.match(at("tasks[2].stream")[0]!, /names stream "nowhere", which is not in streams/)
      assert.match(at("tasks[3].streamType")[0]!, /in two streams: "s1" by name and "s3" by streamType "ui"/)
      assert.match(at("tasks[4].dependsOn[0]")[0]!, /unknown task "ghost"/)
      assert.match(at("streams[3].type")[0]!, /unknown stream type "blockchain"/)
      assert.isAtLeast(problems.length, 8)
    }))

  it.effect("names the members of a dependency cycle, including one through stream order", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        tasks: [
          { id: "a1", title: "", stream: "a", dependsOn: ["b2"] },
          { id: "a2", title: "", stream: "a" },
          { id: "b1", title: "", stream: "b", dependsOn: ["a2"] },
          { id: "b2", title: "", stream: "b" }
        ],
        streams: [{ name: "a", type: "api" }, { name: "b", type: "ui" }]
      })
      assert.strictEqual(problems.length, 1)
      assert.strictEqual(problems[0]!.path, "tasks")
      const message = problems[0]!.message
      assert.match(message, /^dependency cycle: /)
      for (const id of ["a1", "a2", "b1", "b2"]) assert.include(message, id)
    }))

  it.effect("reports a task in no stream and a stream type matched twice", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        tasks: [
          { id: "x", title: "X" },
          { id: "y", title: "Y", streamType: "api" },
          { id: "z", title: "Z", streamType: "docs" }
        ],
        streams: [{ name: "api-1", type: "api" }, { name: "api-2", type: "api" }]
      })
      assert.deepStrictEqual(problems.map((p) => p.path), ["tasks[0].stream", "tasks[1].stream", "tasks[2].stream"])
      assert.match(problems[0]!.message, /in no stream/)
      assert.match(problems[1]!.message, /in 2 streams of type "api"/)
      assert.match(problems[2]!.message, /in no stream \(no stream of type "docs"\)/)
    }))

  it.effect("reports schema errors with paths (wrong types, missing fields) all at once", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        tasks: [{ title: "no id", stream: "s1" }, { id: "b", title: 3, stream: "s1" }],
        streams: [{ name: "s1", type: "api", priority: "urgent" }],
        maxParallel: "five"
      })
      const paths = problems.map((p) => p.path)
      assert.include(paths, "tasks[0].id")
      assert.include(paths, "tasks[1].title")
      assert.include(paths, "streams[0].priority")
      assert.include(paths, "maxParallel")
    }))

  it.effect("budgets and the resolver: every problem with its path; --budget replaces one amount and keeps the rest", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        ...base,
        tasks: [{ ...base.tasks[0], budget: {} }],
        budget: { usd: -1, onExceeded: "later" },
        resolver: { agnet: "claude-code" }
      })
      assert.deepStrictEqual(problems.map((p) => `${p.path}: ${p.message}`).sort(), [
        "budget.onExceeded: expected one of finish, stop, got \"later\"",
        "budget.usd: expected a positive number of US dollars, got -1",
        "resolver.agnet: unknown field \"agnet\" — did you mean \"agent\"?",
        "tasks[0].budget: give usd or tokens (or both): budget: { usd: 1 } or budget: { tokens: 50000 }"
      ])
      const plan = yield* Plan.decode({ ...base, budget: { usd: 1, tokens: 5000, onExceeded: "stop" }, resolver: { agent: "codex" } })
      assert.strictEqual(plan.resolverAgent, "codex")
      const raised = yield* Plan.override(plan, { budget: { usd: 10 } })
      assert.deepStrictEqual({ ...raised.budget }, { usd: 10, tokens: 5000, onExceeded: "stop" })
    }))

  it.effect("reports unparseable text and a missing file clearly", () =>
    Effect.gen(function*() {
      const parse = yield* Effect.flip(Plan.parse("tasks: [\n", "bad.yaml"))
      assert.match(parse.message, /^bad.yaml: invalid plan/)
      const missing = yield* Effect.flip(Plan.load("/nonexistent/plan.yaml"))
      assert.match(missing.message, /file not found/)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("splits commands into argv without a shell", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({
        ...base,
        checks: ["node -e 'console.log(1 + 1)'", ["npm", "test"], { name: "lint", command: "npm run lint", timeoutSeconds: 30 }]
      })
      assert.deepStrictEqual(plan.checks.map((c) => c.argv), [["node", "-e", "console.log(1 + 1)"], ["npm", "test"], [
        "npm",
        "run",
        "lint"
      ]])
      assert.strictEqual(plan.checks[2]!.timeoutMs, 30_000)
      assert.strictEqual(plan.checks[2]!.name, "lint")
    }))
})

describe("ExecutionPlan", () => {
  it.effect("groups streams into batches after the streams they depend on, priority first, maxParallel per batch", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.load(seedPlan)
      const execution = ExecutionPlan.make(plan)
      assert.deepStrictEqual(execution.batches.map((b) => b.streams), [["database", "ui"], ["api"], ["testing", "docs"]])
      assert.deepStrictEqual(execution.integrationOrder, ["database", "ui", "api", "testing", "docs"])
      assert.strictEqual(execution.criticalPathLength, 3)
      assert.strictEqual(ExecutionPlan.render(plan, execution), ExecutionPlan.render(plan, ExecutionPlan.make(plan)))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("weighs the critical path by effort (numbers or T-shirt sizes), one per task otherwise", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({
        streams: [{ name: "a", type: "api" }, { name: "b", type: "ui" }],
        tasks: [
          { id: "a1", title: "", stream: "a", effort: 30 },
          { id: "a2", title: "", stream: "a" },
          { id: "b1", title: "", stream: "b", effort: "L" },
          { id: "b2", title: "", stream: "b", dependsOn: ["a1"], effort: 5 }
        ]
      })
      const execution = ExecutionPlan.make(plan)
      // a1 → a2 (stream order) and a1 → b2 (dependency): 30 + max(1, 5)
      assert.strictEqual(execution.criticalPath.get("a1"), 35)
      // b1 (L = 8) → b2 (5)
      assert.strictEqual(execution.criticalPath.get("b1"), 13)
      assert.strictEqual(execution.criticalPathLength, 35)
    }))

  it.effect("splits a wide level into batches of at most maxParallel", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({
        maxParallel: 2,
        tasks: ["a", "b", "c", "d", "e"].map((s) => ({ id: `${s}1`, title: s, stream: s })),
        streams: [
          { name: "a", type: "api", priority: "low" },
          { name: "b", type: "api", priority: "critical" },
          { name: "c", type: "api" },
          { name: "d", type: "api", priority: 2 },
          { name: "e", type: "api", priority: 2 }
        ]
      })
      assert.deepStrictEqual(ExecutionPlan.make(plan).batches.map((b) => b.streams), [["b", "d"], ["e", "a"], ["c"]])
    }))
})

describe("strict plans", () => {
  const base = {
    streams: [{ name: "api", type: "api" }],
    tasks: [{ id: "t1", title: "T", stream: "api" }]
  }
  const problemsOf = (input: unknown) =>
    Effect.map(Effect.flip(Plan.decode(input)), (e) => e.problems.map((p) => `${p.path}: ${p.message}`))

  it.effect("a misspelled field is an error with a suggestion, in every place of the plan", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        ...base,
        verfy: ["npm test"],
        maxParalel: 2,
        tasks: [{ id: "t1", title: "T", stream: "api", dependOn: [], priorty: 1, check: ["npm test"] }],
        streams: [{ name: "api", type: "api", priorty: 1 }]
      })
      assert.includeMembers(problems, [
        "verfy: unknown field \"verfy\" — did you mean \"verify\"?",
        "maxParalel: unknown field \"maxParalel\" — did you mean \"maxParallel\"?",
        "tasks[0].dependOn: unknown field \"dependOn\" — did you mean \"dependsOn\"?",
        "tasks[0].check: unknown field \"check\" — did you mean \"checks\"?",
        "streams[0].priorty: unknown field \"priorty\" — did you mean \"priority\"?"
      ])
    }))

  it.effect("any other unknown field is a warning kept with the plan, and the plan loads", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({ ...base, owner: "team-checkout", tasks: [{ id: "t1", title: "T", stream: "api", notes: "see RFC" }] })
      assert.sameMembers(plan.warnings.map((w) => w.path), ["owner", "tasks[0].notes"])
      assert.isTrue(plan.warnings.some((w) => /unknown field "owner" is ignored/.test(w.message)))
    }))

  it.effect("a wrong type is one plain line per field, and the rest of the plan is still checked", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        ...base,
        qualityThreshold: "80",
        tasks: [{ id: "t1", title: "T", stream: "api", dependsOn: ["nope"] }, { id: "t1", title: "again", stream: "api" }]
      })
      assert.include(problems, "qualityThreshold: expected a number from 0 to 100, got \"80\"")
      assert.strictEqual(problems.filter((p) => p.startsWith("qualityThreshold")).length, 1)
      assert.include(problems, "tasks[0].dependsOn[0]: task \"t1\" depends on unknown task \"nope\"")
      assert.isTrue(problems.some((p) => p.startsWith("tasks[1].id: duplicate task id")))
    }))

  it.effect("stream names that cannot be part of a git branch are named, every one", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        streams: [{ name: "front end", type: "ui" }, { name: "a..b", type: "api" }, { name: "x.lock", type: "docs" }, { name: "ok-1", type: "testing" }],
        tasks: [{ id: "t", title: "T", stream: "ok-1" }]
      })
      assert.deepStrictEqual(problems.filter((p) => p.includes("git branch")).map((p) => p.split(":")[0]), [
        "streams[0].name",
        "streams[1].name",
        "streams[2].name"
      ])
    }))

  it.effect("an effort that is neither a number nor a size is refused", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ ...base, tasks: [{ id: "t1", title: "T", stream: "api", effort: "huge" }] })
      assert.deepStrictEqual(problems, ["tasks[0].effort: expected a number or a size (XS, S, M, L, XL), got \"huge\""])
    }))

  it.effect("YAML syntax errors give line and column", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Plan.parse("streams:\n  - name: api\n    type: [api\n"))
      assert.match(error.problems[0]!.path, /^line \d+, column \d+$/)
    }))
})
