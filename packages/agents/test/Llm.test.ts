/**
 * The `llm` backend through the real `@effect/ai` clients (Anthropic Messages, OpenAI
 * Responses) against scripted servers on 127.0.0.1: a multi-turn tool loop that reads, edits
 * and writes files and runs a check; paths escaping the worktree refused and told to the model;
 * a 429 with `Retry-After` waited out by braid's shared limiter; the turn cap; preflight.
 */
import { Agent, CommandSpec, Plan, ProviderLimits } from "@braid/core"
import { AnthropicServer, Harness, OpenAiServer, ScriptedServer } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Llm from "../src/Llm.js"

const KEYS = new Map([["ANTHROPIC_API_KEY", "sk-ant-test-PLANTED-1111"], ["OPENAI_API_KEY", "sk-test-PLANTED-2222"]])
const withKeys = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withConfigProvider(effect, ConfigProvider.fromMap(KEYS))

const providers = [
  { name: "anthropic", server: AnthropicServer.provider, model: "claude-sonnet-4-5", base: (url: string) => url },
  { name: "openai", server: OpenAiServer.provider, model: "gpt-5", base: (url: string) => `${url}/v1` }
] as const

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

const planOf = (settings: Record<string, unknown>) =>
  Plan.decode({
    streams: [{ name: "api", type: "api" }],
    tasks: [{ id: "api-1", title: "Add the total", stream: "api" }],
    agent: "llm",
    agents: { llm: settings }
  }, "plan", os.tmpdir())

const check = (argv: readonly [string, ...Array<string>], name = "test") =>
  CommandSpec.toCommand({ name, command: [...argv] }) as CommandSpec.Command

describe("llm backend", () => {
  for (const p of providers) {
    it.scoped(`${p.name}: a multi-turn tool loop reads, edits and writes files and runs the task's check`, () =>
      withKeys(Effect.gen(function*() {
        const dir = yield* tempDir("braid-llm-")
        fs.mkdirSync(path.join(dir, "src"))
        fs.writeFileSync(path.join(dir, "src", "total.js"), "export const total = (xs) => 0\n")
        fs.writeFileSync(path.join(dir, "test.mjs"), [
          `import { total } from "./src/total.js"`,
          `import { readFileSync } from "node:fs"`,
          `if (total([1, 2]) !== 3) { console.log("total is wrong"); process.exit(1) }`,
          `if (!readFileSync("NOTES.md", "utf8").includes("total")) process.exit(2)`,
          `console.log("all good")`
        ].join("\n"))
        const script: Array<ScriptedServer.Turn> = [
          { text: "Reading first.", toolCalls: [{ name: "read_file", input: { path: "src/total.js" } }] },
          { toolCalls: [{ name: "edit_file", input: { path: "src/total.js", old_text: "=> 0", new_text: "=> xs.reduce((a, b) => a + b, 0)" } }] },
          { toolCalls: [{ name: "write_file", input: { path: "NOTES.md", content: "total adds the items\n" } }] },
          { toolCalls: [{ name: "run_check", input: { name: "test" } }] },
          { text: "total now adds the items; the check passes.", usage: { inputTokens: 400, outputTokens: 30 } }
        ]
        const server = yield* ScriptedServer.start(p.server, ScriptedServer.sequence(...script))
        const plan = yield* planOf({ provider: p.name, model: p.model, baseUrl: p.base(server.url) })
        const agent = yield* Llm.make({ plan, settings: plan.agents.llm! })
        const { notes, request } = Harness.firstAttempt(plan, dir, { checks: [check(["node", "test.mjs"])] })
        const output = yield* agent.attempt(request)

        assert.strictEqual(fs.readFileSync(path.join(dir, "src", "total.js"), "utf8"), "export const total = (xs) => xs.reduce((a, b) => a + b, 0)\n")
        assert.strictEqual(fs.readFileSync(path.join(dir, "NOTES.md"), "utf8"), "total adds the items\n")
        // What each tool answered, as the model saw it on the next turn.
        const results = server.requests.at(-1)!.conversation!.toolResults.join("\n")
        assert.include(results, "export const total = (xs) => 0")
        assert.include(results, "edited src/total.js")
        assert.include(results, "wrote NOTES.md")
        assert.include(results, "test exited 0")
        assert.include(results, "all good")
        assert.strictEqual(output.summary, "total now adds the items; the check passes.")
        assert.strictEqual(output.turns, 5)
        assert.strictEqual(output.model, p.model)
        assert.deepStrictEqual(output.permissionDenials, [])
        assert.strictEqual(output.usage?.inputTokens, 4 * 100 + 400)
        assert.strictEqual(output.usage?.outputTokens, 4 * 20 + 30)
        assert.isAbove(output.usage?.costUsd ?? 0, 0)
        assert.strictEqual(server.requests.filter((r) => r.conversation !== undefined).length, 5)
        // The key went in the provider's header, the session was journaled first.
        const headers = server.requests[0]!.headers
        assert.include(String(headers["x-api-key"] ?? headers["authorization"]), p.name === "anthropic" ? "sk-ant-test-PLANTED-1111" : "sk-test-PLANTED-2222")
        assert.strictEqual(notes[0]?._tag, "Session")
        // The check's process was journaled as it started (a resumed run ends an orphan).
        assert.isTrue(notes.some((n) => n._tag === "Process" && n.command === "node"))
      }).pipe(Effect.provide(NodeContext.layer))))
  }

  it.scoped("paths that leave the worktree are refused, told to the model and recorded as denials", () =>
    withKeys(Effect.gen(function*() {
      const outside = yield* tempDir("braid-llm-outside-")
      const dir = yield* tempDir("braid-llm-")
      const worktree = path.join(dir, "wt")
      fs.mkdirSync(worktree)
      fs.writeFileSync(path.join(outside, "secret.txt"), "do not read\n")
      fs.symlinkSync(outside, path.join(worktree, "link"))
      fs.symlinkSync(path.join(outside, "missing.txt"), path.join(worktree, "dangling"))
      const script: Array<ScriptedServer.Turn> = [
        { toolCalls: [{ name: "write_file", input: { path: "../x", content: "escaped\n" } }] },
        { toolCalls: [{ name: "read_file", input: { path: path.join(outside, "secret.txt") } }] },
        { toolCalls: [{ name: "write_file", input: { path: "link/evil.txt", content: "escaped\n" } }] },
        { toolCalls: [{ name: "read_file", input: { path: "link/secret.txt" } }] },
        { toolCalls: [{ name: "write_file", input: { path: "dangling", content: "escaped\n" } }] },
        { toolCalls: [{ name: "edit_file", input: { path: ".git/config", old_text: "a", new_text: "b" } }] },
        { toolCalls: [{ name: "write_file", input: { path: "inside.txt", content: "fine\n" } }] },
        { text: "Done." }
      ]
      const server = yield* ScriptedServer.start(AnthropicServer.provider, ScriptedServer.sequence(...script))
      const plan = yield* planOf({ model: "claude-sonnet-4-5", baseUrl: server.url })
      const agent = yield* Llm.make({ plan, settings: plan.agents.llm! })
      const output = yield* agent.attempt(Harness.firstAttempt(plan, worktree).request)

      assert.isFalse(fs.existsSync(path.join(dir, "x")))
      assert.isFalse(fs.existsSync(path.join(outside, "evil.txt")))
      assert.isFalse(fs.existsSync(path.join(outside, "missing.txt")))
      assert.strictEqual(fs.readFileSync(path.join(worktree, "inside.txt"), "utf8"), "fine\n")
      const results = server.requests.at(-1)!.conversation!.toolResults
      assert.strictEqual(results.filter((r) => r.includes("refused")).length, 6)
      assert.notInclude(results.join("\n"), "do not read")
      assert.strictEqual(output.permissionDenials.length, 6)
      assert.match(output.permissionDenials[0]!, /^write_file \.\.\/x: it is outside the working directory/)
      assert.match(output.permissionDenials[1]!, /^read_file \/.*secret\.txt: it is outside the working directory/)
      assert.match(output.permissionDenials[2]!, /^write_file link\/evil\.txt: it resolves to .*outside the working directory \(a symlink\)/)
      assert.match(output.permissionDenials[3]!, /^read_file link\/secret\.txt: it resolves to/)
      assert.match(output.permissionDenials[4]!, /^write_file dangling: it is a symlink to something that does not exist/)
      assert.match(output.permissionDenials[5]!, /^edit_file \.git\/config: git's own files/)
    }).pipe(Effect.provide(NodeContext.layer))))

  it.live("a 429 with Retry-After is waited out by the shared limiter and the conversation goes on", () =>
    withKeys(Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir("braid-llm-")
      const script: Array<ScriptedServer.Turn> = [
        { toolCalls: [{ name: "write_file", input: { path: "a.txt", content: "a\n" } }] },
        { error: { status: 429, retryAfterSeconds: 1, message: "slow down" } },
        { text: "Wrote a.txt." }
      ]
      const server = yield* ScriptedServer.start(OpenAiServer.provider, ScriptedServer.sequence(...script))
      const plan = yield* planOf({ provider: "openai", model: "gpt-5", baseUrl: `${server.url}/v1` })
      const agent = yield* Llm.make({ plan, settings: plan.agents.llm! })
      const limits = yield* ProviderLimits.make({}, 2)
      const waits: Array<ProviderLimits.Wait> = []
      let session: string | undefined
      const { request } = Harness.firstAttempt(plan, dir)
      const output = yield* limits.run(
        agent.provider,
        "api-1",
        () =>
          agent.attempt({
            ...request,
            session,
            note: (note) => Effect.sync(() => void (note._tag === "Session" ? (session = note.sessionId) : undefined))
          }),
        (wait) => Effect.sync(() => void waits.push(wait))
      )
      assert.strictEqual(waits.length, 1)
      assert.strictEqual(waits[0]!.waitMs, 1000)
      assert.include(waits[0]!.message, "HTTP 429")
      assert.strictEqual(output.summary, "Wrote a.txt.")
      assert.strictEqual(output.turns, 2)
      // Continued, not started over: the prompt was sent once, the tool's result came back once.
      const last = server.requests.at(-1)!.conversation!
      assert.deepStrictEqual(last.toolResults.length, 1)
      assert.strictEqual(server.requests.filter((r) => r.conversation !== undefined).length, 3)
    }).pipe(Effect.provide(NodeContext.layer)))))

  it.scoped("the turn cap fails the attempt with what it spent; a usage limit is not transient", () =>
    withKeys(Effect.gen(function*() {
      const dir = yield* tempDir("braid-llm-")
      const server = yield* ScriptedServer.start(
        AnthropicServer.provider,
        (conversation) =>
          conversation.lastUserText.includes("usage")
            ? { error: { status: 429, type: "rate_limit_error", message: "You have reached your usage limit (quota)" } }
            : { toolCalls: [{ name: "list_files", input: { path: "." } }] }
      )
      const plan = yield* planOf({ model: "claude-sonnet-4-5", baseUrl: server.url, maxTurns: 3 })
      const agent = yield* Llm.make({ plan, settings: plan.agents.llm! })
      const capped = yield* Effect.either(agent.attempt(Harness.firstAttempt(plan, dir).request))
      assert.isTrue(Either.isLeft(capped))
      const error = (capped as Either.Left<Agent.AttemptError, unknown>).left
      assert.strictEqual(error._tag, "AgentFailed")
      assert.include(error.message, "turn limit (agents.llm.maxTurns: 3)")
      assert.strictEqual((error as Agent.AgentFailed).spent?.turns, 3)

      const usage = yield* Effect.either(agent.attempt(Harness.firstAttempt(plan, dir, { userNote: "usage" }).request))
      assert.strictEqual(Either.isLeft(usage) ? usage.left._tag : "none", "UsageLimitReached")
    }).pipe(Effect.provide(NodeContext.layer))))

  it.effect("preflight: an unknown provider, no model, no key", () =>
    Effect.gen(function*() {
      const plan = yield* planOf({ provider: "mistral" })
      const problems = yield* Llm.preflight({
        plan,
        streams: plan.streams.map((stream, index) => ({ index, stream })),
        settings: plan.agents.llm!,
        path: "agent",
        workspaceKind: "git"
      })
      assert.deepStrictEqual(problems.map((p) => p.path), ["agents.llm.provider", "agents.llm.model"])
      const keyless = yield* planOf({ model: "claude-sonnet-4-5" })
      const missing = yield* Llm.preflight({
        plan: keyless,
        streams: keyless.streams.map((stream, index) => ({ index, stream })),
        settings: keyless.agents.llm!,
        path: "agent",
        workspaceKind: "git"
      }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      assert.deepStrictEqual(missing.map((p) => p.message), ["the llm agent has no anthropic key: set ANTHROPIC_API_KEY"])
    }).pipe(Effect.provide(NodeContext.layer)))
})
