/**
 * The command backend with a real program: its argv template filled per attempt, the prompt in
 * a file, the JSON line it may print read for usage, summary and session, a non-zero exit
 * failing the attempt, and preflight naming what is missing.
 */
import { Agent, Plan } from "@braid/core"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CommandAgent from "../src/CommandAgent.js"
import * as Prompt from "../src/Prompt.js"

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `braid-${prefix}-`)))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/**
 * An agent program: records its argv, cwd, environment names and the prompt file's text in
 * `$AGENT_LOG`, writes `done.txt`, prints some lines and what `AGENT_REPORT` holds, and exits
 * with `AGENT_EXIT`.
 */
const AGENT = `#!/usr/bin/env node
import fs from "node:fs"
const args = process.argv.slice(2)
const promptFile = args[args.indexOf("--prompt") + 1]
fs.appendFileSync(process.env.AGENT_LOG, JSON.stringify({
  args,
  cwd: process.cwd(),
  envNames: Object.keys(process.env),
  prompt: fs.readFileSync(promptFile, "utf8"),
  braidPromptFile: process.env.BRAID_PROMPT_FILE
}) + "\\n")
fs.writeFileSync("done.txt", "done\\n")
console.log("working on it")
console.log("wrote done.txt")
if (process.env.AGENT_REPORT) console.log(process.env.AGENT_REPORT)
console.log('{"unrelated": true}')
if (process.env.AGENT_EXIT !== "0") console.error("something broke: quota file missing")
process.exit(Number(process.env.AGENT_EXIT))
`

const planOf = (baseDir: string) =>
  Plan.decode(
    {
      projectName: "Shop",
      featureName: "Greeting",
      streams: [{ name: "api", type: "api" }],
      tasks: [{ id: "api-1", title: "Greet", stream: "api", description: "Say hello." }]
    },
    "plan.yaml",
    baseDir
  )

/** A plan directory holding the agent program as `bin/agent.mjs`, and a worktree. */
const setup = Effect.gen(function*() {
  const planDir = yield* tempDir("command-plan")
  const worktree = yield* tempDir("command-tree")
  fs.mkdirSync(path.join(planDir, "bin"))
  fs.writeFileSync(path.join(planDir, "bin/agent.mjs"), AGENT, { mode: 0o755 })
  return { planDir, worktree, log: path.join(planDir, "log.jsonl") }
})

const attempt = (
  dirs: { readonly planDir: string; readonly worktree: string; readonly log: string },
  options: {
    readonly vars?: Record<string, string>
    readonly args?: ReadonlyArray<string>
    readonly settings?: Partial<ConstructorParameters<typeof CommandAgent.Settings>[0]>
    readonly request?: Partial<Agent.AttemptRequest>
  } = {}
) =>
  Effect.gen(function*() {
    const plan = yield* planOf(dirs.planDir)
    const vars = { AGENT_LOG: dirs.log, AGENT_EXIT: "0", ...options.vars }
    // Set for the program through the passthrough list, as a user would.
    for (const [k, v] of Object.entries(vars)) process.env[k] = v
    const settings = new CommandAgent.Settings({
      command: "./bin/agent.mjs",
      args: options.args ?? ["--prompt", "{promptFile}"],
      env: Object.keys(vars),
      ...options.settings
    })
    const agent = yield* CommandAgent.make({ plan, settings })
    const base = Prompt.preview(plan, "api-1")!
    return yield* Effect.either(agent.attempt({
      ...base,
      runId: "run-7",
      attempt: 2,
      files: { ...base.files, _tag: "Worktree", dir: dirs.worktree },
      ...options.request
    })).pipe(Effect.ensuring(Effect.sync(() => Object.keys(vars).forEach((k) => delete process.env[k]))))
  }).pipe(Effect.provide(NodeContext.layer))

const logOf = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l))

describe("command backend", () => {
  it.scopedLive("fills the argv template, gives the prompt in a file, and reads the JSON report line", () =>
    Effect.gen(function*() {
      const dirs = yield* setup
      process.env.BRAID_TEST_NOT_PASSED = "leak"
      const report = JSON.stringify({
        usage: { inputTokens: 1000, outputTokens: 200, costUsd: 0.5 },
        summary: "Added the greeting.",
        sessionId: "sess-42",
        extra: "ignored"
      })
      const result = yield* attempt(dirs, {
        vars: { AGENT_REPORT: report },
        args: ["--prompt", "{promptFile}", "--task={taskId}", "{role}", "{attempt}", "{worktree}", "{stream}", "{runId}", "{\"literal\":1}"]
      }).pipe(Effect.ensuring(Effect.sync(() => delete process.env.BRAID_TEST_NOT_PASSED)))
      const output = Either.getOrThrowWith(result, (e) => new Error(e.message))
      assert.strictEqual(output.summary, "Added the greeting.")
      assert.strictEqual(output.sessionId, "sess-42")
      assert.strictEqual(output.usage?.inputTokens, 1000)
      assert.strictEqual(output.usage?.outputTokens, 200)
      assert.strictEqual(output.usage?.costUsd, 0.5)
      assert.strictEqual(fs.readFileSync(path.join(dirs.worktree, "done.txt"), "utf8"), "done\n")

      const [call] = logOf(dirs.log)
      const promptFile = call.args[1]
      assert.deepStrictEqual(call.args.slice(2), [
        "--task=api-1",
        "api-developer",
        "2",
        dirs.worktree,
        "api",
        "run-7",
        "{\"literal\":1}"
      ])
      assert.strictEqual(call.braidPromptFile, promptFile)
      assert.strictEqual(call.cwd, dirs.worktree)
      assert.include(call.prompt, "## Your task: api-1 — Greet")
      assert.include(call.prompt, "Say hello.")
      assert.notInclude(call.envNames, "BRAID_TEST_NOT_PASSED")
      assert.isFalse(fs.existsSync(promptFile), "the prompt file is removed after the attempt")
    }))

  it.scopedLive("prices tokens reported without a cost by the model's price; without a report the last line is the summary", () =>
    Effect.gen(function*() {
      const dirs = yield* setup
      const priced = Either.getOrThrow(yield* attempt(dirs, {
        vars: { AGENT_REPORT: JSON.stringify({ usage: { inputTokens: 1_000_000, outputTokens: 1_000_000 } }) },
        settings: { model: "gpt-4.1" }
      }))
      assert.strictEqual(priced.usage?.costUsd, 10)
      assert.strictEqual(priced.model, "gpt-4.1")

      const plain = Either.getOrThrow(yield* attempt(dirs))
      assert.strictEqual(plain.summary, "wrote done.txt")
      assert.isUndefined(plain.usage)
    }))

  it.scopedLive("a non-zero exit fails the attempt with the end of the program's output", () =>
    Effect.gen(function*() {
      const dirs = yield* setup
      const result = yield* attempt(dirs, { vars: { AGENT_EXIT: "3" } })
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "AgentFailed")
        assert.include(result.left.message, "agent.mjs exited 3")
        assert.include(result.left.message, "something broke: quota file missing")
        assert.include(result.left.message, "wrote done.txt")
      }
    }))

  it.effect("preflight names a missing command, a program not found and an unknown placeholder", () =>
    Effect.gen(function*() {
      const plan = yield* planOf(os.tmpdir())
      const context = (settings: ConstructorParameters<typeof CommandAgent.Settings>[0]) => ({
        plan,
        streams: [{ index: 0, stream: plan.streams[0]! }],
        settings: new CommandAgent.Settings(settings),
        path: "agent",
        workspaceKind: "git" as const
      })
      const none = yield* CommandAgent.backend.preflight(context({}))
      assert.deepStrictEqual(none.map((p) => p.path), ["agents.command.command"])
      assert.include(none[0]!.message, "needs agents.command.command")

      const bad = yield* CommandAgent.backend.preflight(context({
        command: "./no-such-agent --in {worktree}",
        args: ["--prompt", "{promptFile}", "--model={modle}"]
      }))
      assert.deepStrictEqual(bad.map((p) => p.path), ["agents.command.command", "agents.command.args[2]"])
      assert.include(bad[0]!.message, "`./no-such-agent` not found")
      assert.include(bad[1]!.message, "unknown placeholder {modle} (known: {promptFile}, {taskId}")

      const ok = yield* CommandAgent.backend.preflight(context({ command: "node", args: ["{promptFile}"] }))
      assert.deepStrictEqual(ok, [])
    }).pipe(Effect.provide(NodeContext.layer)))
})
