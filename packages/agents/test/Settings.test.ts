/**
 * Each backend's settings under `agents.<name>`, decoded with its own Schema: a misspelling is
 * one of its own fields', a field another backend reads is ignored with a warning, a wrong value
 * is named at `agents.<name>.<field>` (in `braid.config.yaml` too), and the plan's settings win
 * over the config file's field by field.
 */
import { Aider, ClaudeCode, Codex, CommandAgent, Gemini, Judge, Llm, Registry, Settings } from "@braid/agents"
import { Plan } from "@braid/core"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const base = { streams: [{ name: "api", type: "api" }], tasks: [{ id: "t1", title: "T", stream: "api" }] }
const offered = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Plan.BackendFields, Registry.planFields())
const lines = (problems: ReadonlyArray<Plan.PlanProblem>) => problems.map((p) => `${p.path}: ${p.message}`)
const problemsOf = (input: unknown, config?: Plan.ConfigFile) =>
  Effect.map(Effect.flip(offered(Plan.decode(input, "plan.yaml", undefined, config))), (e) => lines(e.problems))

/**
 * Per backend: a misspelling of one of its own fields and what it suggests, a field another
 * backend reads but it does not, and a field with a value of the wrong type.
 */
const kinds = [
  { name: "aider", misspelled: ["modle", "model"], other: "maxTurns", wrong: ["timeoutSeconds", "soon"] },
  { name: "command", misspelled: ["arsg", "args"], other: "baseUrl", wrong: ["args", "run.sh"] },
  { name: "claude-code", misspelled: ["allowedTool", "allowedTools"], other: "maxTokens", wrong: ["maxTurns", 2.5] },
  { name: "codex", misspelled: ["permisionMode", "permissionMode"], other: "allowedTools", wrong: ["env", "HOME"] },
  { name: "gemini", misspelled: ["maxTurn", "maxTurns"], other: "maxTokens", wrong: ["command", 5] },
  { name: "llm", misspelled: ["maxToken", "maxTokens"], other: "command", wrong: ["maxTokens", -1] }
] as const

describe("each backend's settings", () => {
  it("are the backend's own Schema, and Settings declares the one each backend reads", () => {
    assert.strictEqual(Aider.backend.settings, Settings.Aider)
    assert.strictEqual(CommandAgent.backend.settings, Settings.Command)
    assert.strictEqual(ClaudeCode.backend.settings, Settings.ClaudeCode)
    assert.strictEqual(Codex.backend.settings, Settings.Codex)
    assert.strictEqual(Gemini.backend.settings, Settings.Gemini)
    assert.strictEqual(Llm.backend.settings, Settings.Llm)
    // Core's part, which every backend's holds.
    assert.deepStrictEqual(Object.keys(Plan.AgentSettings.fields), ["provider"])
    for (const backend of Registry.all) {
      assert.include(Object.keys((backend.settings as unknown as typeof Plan.AgentSettings).fields), "provider", backend.name)
    }
  })

  for (const kind of kinds) {
    describe(kind.name, () => {
      it.effect("a misspelled field is an error suggesting its own field", () =>
        Effect.gen(function*() {
          const [typo, meant] = kind.misspelled
          const problems = yield* problemsOf({ ...base, agents: { [kind.name]: { [typo]: 1 } } })
          assert.deepStrictEqual(problems, [`agents.${kind.name}.${typo}: unknown field "${typo}" — did you mean "${meant}"?`])
        }))

      it.effect("a field only another backend reads is ignored with a warning", () =>
        Effect.gen(function*() {
          const plan = yield* offered(Plan.decode({ ...base, agents: { [kind.name]: { [kind.other]: ["x"], model: "m1" } } }))
          assert.deepStrictEqual(lines(plan.warnings), [
            `agents.${kind.name}.${kind.other}: unknown field "${kind.other}" is ignored: the ${kind.name} backend has no such setting`
          ])
          assert.notProperty(plan.agents[kind.name], kind.other)
          assert.strictEqual((plan.agents[kind.name] as { model?: string }).model, "m1")
        }))

      it.effect("a wrong value is named at agents.<name>.<field>, in the plan and in braid.config.yaml", () =>
        Effect.gen(function*() {
          const [field, value] = kind.wrong
          const inPlan = yield* problemsOf({ ...base, agents: { [kind.name]: { [field]: value } } })
          assert.lengthOf(inPlan, 1)
          assert.isTrue(inPlan[0]!.startsWith(`agents.${kind.name}.${field}: `), inPlan.join("\n"))
          const config = new Plan.ConfigFile({ agents: { [kind.name]: { [field]: value } } })
          const inConfig = yield* problemsOf(base, config)
          assert.lengthOf(inConfig, 1)
          assert.isTrue(inConfig[0]!.startsWith(`braid.config.yaml: agents.${kind.name}.${field}: `), inConfig.join("\n"))
        }))
    })
  }

  it.effect("a backend's misspelling in braid.config.yaml is named there; another backend's field there is a warning", () =>
    Effect.gen(function*() {
      const config = new Plan.ConfigFile({ agents: { codex: { modle: "m" }, llm: { allowedTools: ["Read"] } } })
      assert.deepStrictEqual(yield* problemsOf(base, config), ["braid.config.yaml: agents.codex.modle: unknown field \"modle\" — did you mean \"model\"?"])
      const plan = yield* offered(Plan.decode(base, "plan.yaml", undefined, new Plan.ConfigFile({ agents: { llm: { allowedTools: ["Read"] } } })))
      assert.deepStrictEqual(lines(plan.warnings), [
        "braid.config.yaml: agents.llm.allowedTools: unknown field \"allowedTools\" is ignored: the llm backend has no such setting"
      ])
    }))

  it.effect("the plan's settings win over braid.config.yaml's field by field, read from the files", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-settings-"))
      try {
        fs.writeFileSync(path.join(dir, "braid.config.yaml"), "agents:\n  claude-code: { model: from-config, maxTurns: 7, provider: team }\n")
        fs.writeFileSync(
          path.join(dir, "plan.yaml"),
          "agents:\n  claude-code: { model: from-plan }\nstreams: [{ name: api, type: api }]\ntasks: [{ id: t1, title: T, stream: api }]\n"
        )
        const plan = yield* offered(Plan.load(path.join(dir, "plan.yaml")))
        const settings = plan.agents["claude-code"]
        assert.instanceOf(settings, Settings.ClaudeCode)
        assert.deepInclude({ ...settings }, { model: "from-plan", maxTurns: 7, provider: "team" })
        fs.writeFileSync(path.join(dir, "braid.config.yaml"), "agents:\n  claude-code: { maxTurns: many }\n")
        const refused = yield* Effect.flip(offered(Plan.load(path.join(dir, "plan.yaml"))))
        assert.deepStrictEqual(lines(refused.problems).map((l) => l.split(": expected")[0]), ["braid.config.yaml: agents.claude-code.maxTurns"])
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a name no backend has keeps today's reading: misspellings of any backend's field, other fields warned", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ ...base, agents: { "my-tool": { modle: "m", notes: "x" } } })
      assert.deepStrictEqual(problems, ["agents.my-tool.modle: unknown field \"modle\" — did you mean \"model\"?"])
      const plan = yield* offered(Plan.decode({ ...base, agents: { "my-tool": { model: "m", notes: "x", provider: "p" } } }))
      assert.deepStrictEqual(lines(plan.warnings), ["agents.my-tool.notes: unknown field \"notes\" is ignored"])
      assert.strictEqual(plan.agents["my-tool"]?.provider, "p")
    }))

  it.effect("decoded without the backends' Schemas (a library caller), settings are kept as written and read with the backend's Schema", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({ ...base, agents: { llm: { model: "m2", maxTurns: 3 }, codex: { maxTurns: "x" } } })
      assert.deepStrictEqual(plan.warnings, [])
      const llm = Settings.of(plan, "llm", Settings.Llm)
      assert.isTrue(Either.isRight(llm) && llm.right instanceof Settings.Llm && llm.right.maxTurns === 3)
      // The judge reads agents.llm as the llm backend does.
      assert.strictEqual(Judge.resolve(plan, undefined).model, "m2")
      // Codex reads no maxTurns: ignored; a wrong value of its own would be named.
      assert.isTrue(Either.isRight(Settings.of(plan, "codex", Settings.Codex)))
      const wrong = yield* Plan.decode({ ...base, agents: { codex: { timeoutSeconds: "x" } } })
      const problems = Settings.of(wrong, "codex", Settings.Codex)
      assert.isTrue(Either.isLeft(problems) && problems.left[0]!.path === "agents.codex.timeoutSeconds", JSON.stringify(problems))
    }))

  it.effect("the registry's preflight names a backend's wrong setting in a plan decoded without the Schemas", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({ ...base, agent: "codex", agents: { codex: { timeoutSeconds: "soon" } } })
      const problems = yield* Registry.preflight(plan, { workspaceKind: "memory" })
      assert.deepStrictEqual(problems.filter((p) => p.path.startsWith("agents.")).map((p) => `${p.path}: ${p.message}`), [
        "agents.codex.timeoutSeconds: expected number, got \"soon\""
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})
