import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as ExecutionPlan from "../src/pipeline/ExecutionPlan.js"
import * as Plan from "../src/run/Plan.js"
import * as Terminal from "../src/present/Terminal.js"

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

  it.effect("reads sandbox: a mode alone or with endpoints, a stream's own endpoints; a wrong one is named with its path", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual((yield* Plan.decode(base)).sandbox, { mode: undefined, network: [] })
      assert.strictEqual((yield* Plan.decode({ ...base, sandbox: "required" })).sandbox.mode, "required")
      const plan = yield* Plan.decode({
        ...base,
        sandbox: { mode: "off", network: ["registry.npmjs.org:443"] },
        streams: [{ name: "s1", type: "api", sandbox: { network: ["127.0.0.1:5432"] } }]
      })
      assert.deepStrictEqual(plan.sandbox, { mode: "off", network: [{ host: "registry.npmjs.org", port: 443 }] })
      assert.deepStrictEqual(plan.streams[0]!.network, [{ host: "127.0.0.1", port: 5432 }])
      const shown = (problems: ReadonlyArray<{ readonly path: string; readonly message: string }>) => problems.map((p) => `${p.path}: ${p.message}`).join("\n")
      const mode = shown(yield* problemsOf({ ...base, sandbox: "sometimes" }))
      assert.include(mode, "sandbox")
      const endpoint = shown(yield* problemsOf({ ...base, sandbox: { network: ["registry.npmjs.org"] } }))
      assert.include(endpoint, "sandbox.network[0]")
      assert.include(endpoint, "host:port")
      // The run has one mode: a stream's is an unknown field, said so.
      const streamMode = yield* Plan.decode({ ...base, streams: [{ name: "s1", type: "api", sandbox: { mode: "off" } }] })
      assert.deepStrictEqual(streamMode.warnings.map((w) => w.path), ["streams[0].sandbox.mode"])
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
      // The heaviest chain a1 → b2 holds two tasks; plan says so rather than "35 tasks".
      assert.strictEqual(execution.criticalPathTasks, 2)
      assert.strictEqual(ExecutionPlan.chainLine(execution), "longest dependency chain (by effort): 35 effort points over 2 tasks")
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

/** What `braid plan` prints for a refused plan (after `braid: `), from the text of the plan file. */
const refusal = (text: string, source = "plan.yaml") => Effect.map(Effect.flip(Plan.parse(text, source)), (e) => e.message)

/** `tasks` in one stream, each after the one before it (a chain of `n`). */
const chain = (n: number, extra: Record<string, unknown> = {}) => ({
  streams: [{ name: "s", type: "api" }],
  tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, title: `T${i}`, stream: "s" })),
  ...extra
})

describe("task fields a backend declares", () => {
  // A backend's own field, as the mock's `mock:` is: core knows only that it was declared.
  class Notes extends Schema.Class<Notes>("Notes")({
    level: Schema.optional(Schema.Int.pipe(Schema.between(1, 3))),
    body: Schema.optional(Schema.String),
    tags: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
  }) {}
  const notes = Plan.taskField("notes", Notes, { multiLine: (path) => path.length === 1 && path[0] === "body" })
  const base = { streams: [{ name: "api", type: "api" }] }
  const withNotes = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, Plan.BackendFields, { taskFields: [notes], settings: {} })
  const problemsOf = (input: unknown) =>
    Effect.map(Effect.flip(withNotes(Plan.decode(input))), (e) => e.problems.map((p) => `${p.path}: ${p.message}`))

  it.effect("a declared field's value is decoded with its Schema and kept with the plan, through overrides", () =>
    Effect.gen(function*() {
      const plan = yield* withNotes(Plan.decode({
        ...base,
        tasks: [{ id: "t1", title: "T", stream: "api", notes: { level: 2, body: "first line\nsecond line" } }, { id: "t2", title: "U", stream: "api" }]
      }))
      assert.deepStrictEqual(plan.warnings, [])
      const value = notes.of(plan, plan.tasks.get("t1")!)
      assert.instanceOf(value, Notes)
      assert.strictEqual(value?.level, 2)
      assert.isUndefined(notes.of(plan, plan.tasks.get("t2")!))
      assert.notProperty(plan.tasks.get("t1")!, "notes")
      const overridden = yield* Plan.override(plan, { maxParallel: 2 })
      assert.strictEqual(notes.of(overridden, overridden.tasks.get("t1")!)?.body, "first line\nsecond line")
    }))

  it.effect("a wrong value is named at its path, a misspelling in it is found, every problem at once", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        ...base,
        tasks: [
          { id: "t1", title: "T", stream: "api", notes: { level: 7, bdy: "x" } },
          { id: "t2", title: "U", stream: "api", notes: "loud", dependsOn: ["nope"] },
          { id: "t3", title: "V", stream: "api", notse: {} }
        ]
      })
      assert.includeMembers(problems, [
        "tasks[0].notes.bdy: unknown field \"bdy\" — did you mean \"body\"?",
        "tasks[2].notse: unknown field \"notse\" — did you mean \"notes\"?",
        "tasks[1].dependsOn[0]: task \"t2\" depends on unknown task \"nope\""
      ])
      assert.isTrue(problems.some((p) => p.startsWith("tasks[0].notes.level: expected a number between 1 and 3")), problems.join("\n"))
      assert.isTrue(problems.some((p) => p.startsWith("tasks[1].notes: ")), problems.join("\n"))
    }))

  it.effect("its texts are one line but where the field says, and its keys always one line", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        ...base,
        tasks: [{ id: "t1", title: "T", stream: "api", notes: { body: "a\n\tb \u001b[2J", tags: { "x\ny": "z", w: "one\ntwo" } } }]
      })
      assert.sameMembers(problems, [
        "tasks[0].notes.body: contains an escape character (\\x1b) at character 6; only line breaks and tabs may stand in this text, no other control character",
        "tasks[0].notes.tags.x\ny: the field name contains a line break (\\n) at character 2; this field must be a single line of printable text",
        "tasks[0].notes.tags.w: contains a line break (\\n) at character 4; this field must be a single line of printable text"
      ])
    }))

  it.effect("undeclared, the field is an unknown one: ignored with a warning; a backend cannot redeclare braid's own", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({ ...base, tasks: [{ id: "t1", title: "T", stream: "api", notes: { level: 7 } }] })
      assert.deepStrictEqual(plan.warnings.map((w) => `${w.path}: ${w.message}`), ["tasks[0].notes: unknown field \"notes\" is ignored"])
      assert.isUndefined(notes.of(plan, plan.tasks.get("t1")!))
      const taken = yield* Effect.exit(
        Plan.decode({ ...base, tasks: [{ id: "t1", title: "T", stream: "api" }] }).pipe(Effect.provideService(Plan.BackendFields, { taskFields: [Plan.taskField("run", Schema.String)], settings: {} }))
      )
      assert.isTrue(Exit.isFailure(taken) && taken.cause._tag === "Die")
    }))
})

describe("settings a backend declares", () => {
  // A backend's own settings Schema: core's fields and its own; core knows only that it was declared.
  class ToolSettings extends Schema.Class<ToolSettings>("ToolSettings")({
    ...Plan.AgentSettings.fields,
    model: Schema.optional(Schema.String),
    maxTurns: Schema.optional(Schema.Int.pipe(Schema.positive()))
  }) {}
  class ApiSettings extends Schema.Class<ApiSettings>("ApiSettings")({
    ...Plan.AgentSettings.fields,
    baseUrl: Schema.optional(Schema.String)
  }) {}
  const base = { streams: [{ name: "api", type: "api" }], tasks: [{ id: "t1", title: "T", stream: "api" }] }
  const declared = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.provideService(effect, Plan.BackendFields, { taskFields: [], settings: { tool: ToolSettings, api: ApiSettings } })
  const lines = (problems: ReadonlyArray<Plan.PlanProblem>) => problems.map((p) => `${p.path}: ${p.message}`)

  it.effect("each agents.<name> is decoded with its Schema, the plan's over the config's field by field, through overrides", () =>
    Effect.gen(function*() {
      const config = new Plan.ConfigFile({ agents: { tool: { model: "c", maxTurns: 4 }, api: { baseUrl: "http://c" } } })
      const plan = yield* declared(Plan.decode({ ...base, agents: { tool: { model: "p", provider: "x" } } }, "plan", undefined, config))
      assert.deepStrictEqual(plan.warnings, [])
      assert.instanceOf(plan.agents.tool, ToolSettings)
      assert.deepInclude({ ...plan.agents.tool } as Record<string, unknown>, { model: "p", maxTurns: 4, provider: "x" })
      assert.instanceOf(plan.agents.api, ApiSettings)
      const overridden = yield* Plan.override(plan, { maxParallel: 2 })
      assert.strictEqual(overridden.agents.tool, plan.agents.tool)
    }))

  it.effect("a misspelling is one of its own fields', another backend's field a warning, a wrong value named at its path", () =>
    Effect.gen(function*() {
      const problems = yield* Effect.flip(declared(Plan.decode({ ...base, agents: { tool: { modle: "m", maxTurns: 0 }, api: { baseURL: "u" } } })))
      assert.sameMembers(lines(problems.problems).map((l) => l.split(", got")[0]!), [
        "agents.tool.modle: unknown field \"modle\" — did you mean \"model\"?",
        "agents.api.baseURL: unknown field \"baseURL\" — did you mean \"baseUrl\"?",
        "agents.tool.maxTurns: expected a positive number"
      ])
      const plan = yield* declared(Plan.decode({ ...base, agents: { api: { maxTurns: 3 } } }))
      assert.deepStrictEqual(lines(plan.warnings), ["agents.api.maxTurns: unknown field \"maxTurns\" is ignored: the api backend has no such setting"])
      assert.notProperty(plan.agents.api, "maxTurns")
    }))

  it.effect("undeclared, a backend's settings are kept as written, with core's fields checked", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({ ...base, agents: { tool: { model: "m", maxTurns: 3 } } })
      assert.deepStrictEqual(plan.warnings, [])
      assert.deepInclude({ ...plan.agents.tool } as Record<string, unknown>, { model: "m", maxTurns: 3 })
      const problems = yield* Effect.flip(Plan.decode({ ...base, agents: { tool: { provider: 5 } } }))
      assert.deepStrictEqual(problems.problems.map((p) => p.path), ["agents.tool.provider"])
    }))
})

describe("plans that cannot hurt", () => {
  it.effect("a YAML alias bomb and an alias without its anchor are refused at their line", () =>
    Effect.gen(function*() {
      const levels = "abcdefg".split("").map((name, i) =>
        `${name}: &${name} [${Array.from({ length: 10 }, () => (i === 0 ? "\"lol\"" : `*${"abcdefg"[i - 1]}`)).join(", ")}]`
      )
      const bomb = [...levels, "streams: [{name: s, type: api}]", "tasks: [{id: a, title: A, stream: s}]", ""].join("\n")
      assert.strictEqual(
        yield* refusal(bomb),
        "plan.yaml: invalid plan (1 problem)\n" +
          "  - line 2, column 8: YAML aliases here expand too far (more than 10,000 uses, an \"alias bomb\"): write the values out, or use fewer aliases"
      )
      assert.strictEqual(
        yield* refusal("streams: [{name: s, type: api}]\ntasks: [{id: a, title: *nope, stream: s}]\n"),
        "plan.yaml: invalid plan (1 problem)\n  - line 2, column 24: the alias *nope names no anchor &nope defined before it"
      )
      // One anchor shared by every task of a large plan is fine.
      const shared = ["common: &checks [[node, --test]]", "streams: [{name: s, type: api}]", "tasks:"]
      for (let i = 0; i < 2000; i++) shared.push(`  - {id: t${i}, title: T, stream: s, checks: *checks}`)
      const plan = yield* Plan.parse(shared.join("\n"))
      assert.strictEqual(plan.tasks.size, 2000)
    }))

  it.effect("a value that contains itself, and documents nested too deeply, are refused without a stack overflow", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* refusal("streams: [{name: s, type: api}]\ntasks: [{id: a, title: A, stream: s, checks: &x [*x]}]\n"),
        "plan.yaml: invalid plan (1 problem)\n  - tasks[0].checks: " +
          "contains itself (a YAML alias inside its own anchor): a plan is a tree of values"
      )
      const deepJson = `{"streams": [{"name": "s", "type": "api"}], "tasks": [], "notes": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`
      assert.strictEqual(
        yield* refusal(deepJson, "plan.json"),
        "plan.json: invalid plan (1 problem)\n  - notes[0][0][0][0][0]…: is nested more than 64 levels deep; no plan field goes that deep"
      )
      const deepYaml = `notes: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`
      assert.match(
        yield* refusal(deepYaml),
        /^plan\.yaml: invalid plan \(\d+ problems?\)\n {2}- line 1, column \d+: the document is nested too deeply to read \(no plan field goes more than 64 levels deep\)/
      )
    }))

  it.effect("a dependency cycle through a chain of 10,000 tasks is named by its ends", () =>
    Effect.gen(function*() {
      const plan = chain(10_000)
      plan.tasks[0] = { ...plan.tasks[0]!, dependsOn: ["t9999"] } as (typeof plan.tasks)[number]
      const problems = yield* problemsOf(plan)
      assert.deepStrictEqual(problems, [{
        path: "tasks",
        message: "dependency cycle of 10,000 tasks: t1 → t2 → t3 → t4 → t5 → t6 → t7 → t8 → t9 → t10 → … (9,985 more) … → t9996 → t9997 → t9998 → t9999 → t0 → t1"
      }])
      // The same chain without the cycle plans, its critical path 10,000 long.
      const ok = yield* Plan.decode(chain(10_000))
      assert.strictEqual(ExecutionPlan.make(ok).criticalPathLength, 10_000)
    }))

  it.effect("10,000 streams plan; a plan over the size limits is refused, naming the limit", () =>
    Effect.gen(function*() {
      const wide = {
        streams: Array.from({ length: 10_000 }, (_, i) => ({ name: `s${i}`, type: "api" })),
        tasks: Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, title: "T", stream: `s${i}`, dependsOn: i > 0 ? [`t${i - 1}`] : [] }))
      }
      const plan = yield* Plan.decode(wide)
      const execution = ExecutionPlan.make(plan)
      assert.strictEqual(execution.batches.length, 10_000)
      assert.include(ExecutionPlan.render(plan, execution), "s9999 (api, priority 5), waits on s9998")
      assert.deepStrictEqual(yield* problemsOf(chain(10_001)), [{ path: "tasks", message: "the plan has 10,001 tasks; braid runs at most 10,000 in one plan" }])
      assert.deepStrictEqual(
        yield* problemsOf({ streams: Array.from({ length: 10_001 }, (_, i) => ({ name: `s${i}`, type: "api" })), tasks: [] }),
        [{ path: "streams", message: "the plan has 10,001 streams; braid runs at most 10,000 in one plan" }]
      )
      // Ten thousand wrong values: every one is in the error, the first 200 are printed.
      const wrong = yield* Effect.flip(Plan.decode({ ...chain(1), checks: Array.from({ length: 10_000 }, (_, i) => i) }, "plan.yaml"))
      assert.strictEqual(wrong.problems.length, 10_000)
      const printed = wrong.message.split("\n")
      assert.strictEqual(printed[0], "plan.yaml: invalid plan (10,000 problems)")
      assert.strictEqual(printed[1], "  - checks[0]: expected string, got 0")
      assert.strictEqual(printed.at(-1), "  … and 9,800 more problems (the first 200 are shown)")
      assert.lengthOf(printed, 202)
      const many = { ...chain(1), notes: Array.from({ length: 1_000_001 }, () => 0) }
      assert.deepStrictEqual(yield* problemsOf(many), [{
        path: "",
        message: "the plan holds more than 1,000,000 values (counting what YAML aliases repeat); braid reads plans up to that size"
      }])
    }))

  it.effect("a file over 10 MiB, a device and bytes that are not UTF-8 are refused before they are parsed", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-plan-"))
      const big = path.join(dir, "big.yaml")
      fs.writeFileSync(big, `notes: "${"x".repeat(11 * 1024 * 1024)}"\n`)
      const latin1 = path.join(dir, "latin1.yaml")
      fs.writeFileSync(latin1, Buffer.concat([Buffer.from("streams: [{name: s, type: api}]\nprojectName: caf"), Buffer.from([0xe9]), Buffer.from("\ntasks: []\n")]))
      const message = (file: string) => Effect.map(Effect.flip(Plan.load(file)), (e) => e.message)
      assert.strictEqual(yield* message(big), `${big}: invalid plan (1 problem)\n  - (plan): the file is 11.0 MiB, more than 10 MiB, the most braid reads for a plan`)
      assert.strictEqual(yield* message("/dev/zero"), "/dev/zero: invalid plan (1 problem)\n  - (plan): the file is larger than 10 MiB, the most braid reads for a plan")
      assert.strictEqual(yield* message(latin1), `${latin1}: invalid plan (1 problem)\n  - line 2, column 17: is not UTF-8 text (byte 0xe9): save the plan as UTF-8`)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a newline in an id cannot forge commit trailers; control characters and lone surrogates are refused with their field", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        projectName: "shop\u0000",
        featureName: "\ud800checkout",
        streams: [{ name: "api\u001b]0;pwned\u0007", type: "api" }],
        tasks: [
          { id: "a\nBraid-Step: forged\nSigned-off-by: Mallory <m@example.com>", title: "A", stream: "api\u001b]0;pwned\u0007" },
          { id: "b", title: "\u001b]0;pwned\u0007\u001b[2J", stream: "api\u001b]0;pwned\u0007", description: "line one\n\tline two\r\n" },
          { id: "c", title: "C\twith a tab", stream: "api\u001b]0;pwned\u0007", description: "clears the screen \u001b[2J", acceptanceCriteria: ["ok", "bell \u0007"] }
        ],
        verify: [{ name: "tests\u009b", command: ["node", "-e", "console.log(1)\nconsole.log(2)"] }],
        agents: { "claude\u001bcode": { model: "m" } }
      })
      assert.deepStrictEqual(problems.map((p) => `${p.path}: ${p.message}`), [
        "projectName: contains a NUL character (\\x00) at character 5; this field must be a single line of printable text",
        "featureName: contains an unpaired UTF-16 surrogate at character 1, which is not Unicode text",
        "tasks[0].id: contains a line break (\\n) at character 2; this field must be a single line of printable text",
        "tasks[0].stream: contains an escape character (\\x1b) at character 4; this field must be a single line of printable text",
        "tasks[1].title: contains an escape character (\\x1b) at character 1; this field must be a single line of printable text",
        "tasks[1].stream: contains an escape character (\\x1b) at character 4; this field must be a single line of printable text",
        "tasks[2].title: contains a tab (\\t) at character 2; this field must be a single line of printable text",
        "tasks[2].stream: contains an escape character (\\x1b) at character 4; this field must be a single line of printable text",
        "tasks[2].description: contains an escape character (\\x1b) at character 19; only line breaks and tabs may stand in this text, no other control character",
        "tasks[2].acceptanceCriteria[1]: contains a control character (\\x07) at character 6; only line breaks and tabs may stand in this text, no other control character",
        "streams[0].name: contains an escape character (\\x1b) at character 4; this field must be a single line of printable text",
        "agents.claude\u001bcode: the field name contains an escape character (\\x1b) at character 7; this field must be a single line of printable text",
        "verify[0].name: contains a C1 control character (\\x9b) at character 6; this field must be a single line of printable text"
      ])
      // What the user sees: every problem on its own line, the escapes shown, never acted on.
      const error = yield* Effect.flip(Plan.decode({ ...base, tasks: [{ ...base.tasks[0], title: "\u001b]0;pwned\u0007\u001b[2J" }] }, "plan.yaml"))
      assert.strictEqual(
        error.message,
        "plan.yaml: invalid plan (1 problem)\n  - tasks[0].title: contains an escape character (\\x1b) at character 1; this field must be a single line of printable text"
      )
      assert.notInclude(error.message, "\u001b")
    }))

  it.effect("a stream name too long for a branch and a folder, or with a /, is refused naming the field", () =>
    Effect.gen(function*() {
      const long = "x".repeat(252)
      assert.deepStrictEqual(yield* problemsOf({ streams: [{ name: long, type: "api" }, { name: "front/end", type: "ui" }], tasks: [{ id: "a", title: "A", stream: long }] }), [
        {
          path: "streams[0].name",
          message: `stream name "${"x".repeat(40)}…${"x".repeat(10)}" cannot name the stream's git branch braid/<run>/<name> and checkout folder <worktrees>/<run>/<name> (it is 252 bytes long, more than 128)`
        },
        {
          path: "streams[1].name",
          message: "stream name \"front/end\" cannot name the stream's git branch braid/<run>/<name> and checkout folder <worktrees>/<run>/<name> (it contains \"/\")"
        }
      ])
      const longId = "é".repeat(65)
      assert.deepStrictEqual(yield* problemsOf({ ...base, tasks: [{ ...base.tasks[0], id: longId }] }), [
        { path: "tasks[0].id", message: `task id "${"é".repeat(40)}…${"é".repeat(10)}" is 130 bytes long; an id may be at most 128 bytes (UTF-8)` }
      ])
    }))

  it.live("a stream name braid accepts is a valid part of a git ref (git check-ref-format agrees)", () =>
    Effect.sync(() => {
      const names = ["api", "a.b", "x-1_2", "caf\u00e9", "a..b", "a.lock", ".hidden", "end.", "a@{b", "@", "-x", "a b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", "a\\b", "a/b", "ok@home", "x".repeat(128)]
      for (const name of names) {
        if (Plan.branchNameProblem(name) !== undefined) continue
        const git = spawnSync("git", ["check-ref-format", `refs/heads/braid/run-1/${name}`])
        assert.strictEqual(git.status, 0, `git refuses braid/run-1/${name}, which braid accepts`)
      }
    }))
})

describe("Terminal", () => {
  it("shows the control characters a terminal would act on as visible escapes; tabs and line breaks stay", () => {
    assert.strictEqual(Terminal.safe("\u001b]0;pwned\u0007\u001b[2J title"), "\\x1b]0;pwned\\x07\\x1b[2J title")
    assert.strictEqual(Terminal.safe("a\tb\nc\rd\u009be\u0000"), "a\tb\nc\\rd\\x9be\\x00")
    assert.strictEqual(Terminal.safeLine("a\tb\nc"), "a\\tb\\nc")
    assert.strictEqual(Terminal.safe("plain — text ✓"), "plain — text ✓")
  })
})
