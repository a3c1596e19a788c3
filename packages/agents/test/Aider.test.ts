/**
 * The aider backend against a stand-in `aider` (test/fixtures/aider/aider) that behaves as aider
 * documents: it reads --message-file, edits the file the message names, prints its token and
 * cost line, exits 0 even when no edit was made, and prints litellm's errors in its error modes.
 */
import { Agent, GitWorkspace, Orchestrator, Plan, Progress, RunReport } from "@braid/core"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Aider from "../src/Aider.js"
import * as Prompt from "../src/Prompt.js"
import * as Registry from "../src/Registry.js"

const standIn = path.resolve(__dirname, "fixtures/aider/aider")

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `braid-${prefix}-`)))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

const planOf = (description: string) =>
  Plan.decode({
    projectName: "Shop",
    featureName: "Greeting",
    streams: [{ name: "api", type: "api", scope: ["src/app.js, src/routes.js", "src/**/*.ts"] }],
    tasks: [{ id: "api-1", title: "Greet", stream: "api", description }]
  })

/** Runs one attempt of the aider backend in `worktree` with the stand-in run through `env VAR=… aider`. */
const attempt = (
  worktree: string,
  options: {
    readonly vars?: Record<string, string>
    readonly settings?: Partial<ConstructorParameters<typeof Aider.Settings>[0]>
    readonly description?: string
    readonly request?: Partial<Agent.AttemptRequest>
  } = {}
) =>
  Effect.gen(function*() {
    const plan = yield* planOf(options.description ?? "Write `greeting.txt` containing: hello from aider")
    const settings = new Aider.Settings({
      command: ["env", ...Object.entries(options.vars ?? {}).map(([k, v]) => `${k}=${v}`), standIn],
      ...options.settings
    })
    const agent = yield* Aider.make({ plan, settings })
    const request: Agent.AttemptRequest = {
      ...Prompt.preview(plan, "api-1")!,
      runId: "run-1",
      files: { ...Prompt.preview(plan, "api-1")!.files, _tag: "Worktree", dir: worktree },
      ...options.request
    }
    return yield* Effect.either(agent.attempt(request))
  }).pipe(Effect.provide(NodeContext.layer))

const logOf = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l))

describe("aider backend", () => {
  it.scopedLive("runs aider in the worktree: the file is written, tokens and cost are read from its text, nothing of aider's is left behind", () =>
    Effect.gen(function*() {
      const worktree = yield* tempDir("aider-tree")
      const logDir = yield* tempDir("aider-log")
      const log = path.join(logDir, "log.jsonl")
      fs.mkdirSync(path.join(worktree, "src"))
      fs.writeFileSync(path.join(worktree, "src/app.js"), "export {}\n")
      fs.writeFileSync(path.join(worktree, "src/routes.js"), "export {}\n")
      process.env.BRAID_TEST_NOT_PASSED = "leak"
      const result = yield* attempt(worktree, {
        vars: { AIDER_STANDIN_LOG: log },
        settings: { model: "openai/gpt-4.1", baseUrl: "http://127.0.0.1:9/v1", args: ["--map-tokens", "1024"] }
      }).pipe(Effect.ensuring(Effect.sync(() => delete process.env.BRAID_TEST_NOT_PASSED)))

      assert.isTrue(Either.isRight(result), String(Either.isLeft(result) && result.left.message))
      const output = Either.getOrThrow(result)
      assert.strictEqual(fs.readFileSync(path.join(worktree, "greeting.txt"), "utf8"), "hello from aider\n")
      assert.include(output.summary, "Applied edit to greeting.txt")
      assert.notInclude(output.summary, "Tokens:")
      assert.strictEqual(output.usage?.inputTokens, 1200)
      assert.strictEqual(output.usage?.outputTokens, 345)
      assert.strictEqual(output.usage?.costUsd, 0.0123)
      assert.strictEqual(output.model, "openai/gpt-4.1")

      const [call] = logOf(log)
      assert.strictEqual(call.cwd, worktree)
      assert.isTrue(call.stdinClosed)
      for (const option of Aider.FIXED_OPTIONS) assert.include(call.argv, option)
      assert.deepStrictEqual(call.argv.slice(call.argv.indexOf("--model"), call.argv.indexOf("--model") + 2), ["--model", "openai/gpt-4.1"])
      // Extra args, then the chat files: the scope's paths that are files (globs are not; an entry may list several).
      assert.deepStrictEqual(call.argv.slice(-4), ["--map-tokens", "1024", "src/app.js", "src/routes.js"])
      assert.strictEqual(call.openaiApiBase, "http://127.0.0.1:9/v1")
      assert.strictEqual(call.braidAgent, "run-1/api/api-1/1")
      assert.notInclude(call.envNames, "BRAID_TEST_NOT_PASSED")
      assert.include(call.message, "## Your task: api-1 — Greet")
      assert.include(call.message, "Do not run `git commit`")
      // The repo-map cache aider leaves is removed; the histories were never in the worktree.
      assert.deepStrictEqual(fs.readdirSync(worktree).sort(), ["greeting.txt", "src"])
    }))

  it.scopedLive("adds up the tokens of every reply and takes the session's cost", () =>
    Effect.gen(function*() {
      const worktree = yield* tempDir("aider-tree")
      const output = Either.getOrThrow(yield* attempt(worktree, { vars: { AIDER_STANDIN_MODE: "twice" } }))
      assert.strictEqual(output.usage?.inputTokens, 13_200)
      assert.strictEqual(output.usage?.outputTokens, 1_845)
      assert.strictEqual(output.usage?.costUsd, 0.0246)
      assert.strictEqual(output.turns, 2)
    }))

  it.scopedLive("exit 0 is not success: an attempt with no edit reports only what aider said", () =>
    Effect.gen(function*() {
      const worktree = yield* tempDir("aider-tree")
      const output = Either.getOrThrow(yield* attempt(worktree, { description: "Make it better." }))
      assert.include(output.summary, "The LLM did not conform to the edit format.")
      assert.notInclude(output.summary, "Applied edit")
      assert.deepStrictEqual(fs.readdirSync(worktree), [])
    }))

  it.scopedLive("a rate limit is ProviderBusy with the wait the provider asked for; overload counts against the model's provider", () =>
    Effect.gen(function*() {
      const worktree = yield* tempDir("aider-tree")
      const limited = yield* attempt(worktree, { vars: { AIDER_STANDIN_MODE: "ratelimit" } })
      assert.isTrue(Either.isLeft(limited))
      const busy = Either.getLeft(limited).pipe((o) => o._tag === "Some" ? o.value : undefined)!
      assert.strictEqual(busy._tag, "ProviderBusy")
      assert.strictEqual((busy as Agent.ProviderBusy).provider, "openai")
      assert.strictEqual((busy as Agent.ProviderBusy).retryAfterMs, 20_000)
      assert.include(busy.message, "RateLimitError")

      const overloaded = yield* attempt(worktree, {
        vars: { AIDER_STANDIN_MODE: "overloaded" },
        settings: { model: "anthropic/claude-sonnet-4-5" }
      })
      const error = Either.getLeft(overloaded).pipe((o) => o._tag === "Some" ? o.value : undefined)!
      assert.strictEqual(error._tag, "ProviderBusy")
      assert.strictEqual((error as Agent.ProviderBusy).provider, "anthropic")
    }))

  it.scopedLive("an authentication error fails as unavailable without the key; an exhausted quota stops the run", () =>
    Effect.gen(function*() {
      const worktree = yield* tempDir("aider-tree")
      const auth = yield* attempt(worktree, {
        vars: { AIDER_STANDIN_MODE: "auth", OPENAI_API_KEY: "sk-ant-test-PLANTED-0000" }
      })
      const failed = Either.getLeft(auth).pipe((o) => o._tag === "Some" ? o.value : undefined)!
      assert.strictEqual(failed._tag, "AgentFailed")
      assert.strictEqual((failed as Agent.AgentFailed).reason, "unavailable")
      assert.include(failed.message, "could not authenticate with openai")
      assert.notInclude(failed.message, "sk-ant-t")

      const quota = yield* attempt(worktree, { vars: { AIDER_STANDIN_MODE: "quota" } })
      const limit = Either.getLeft(quota).pipe((o) => o._tag === "Some" ? o.value : undefined)!
      assert.strictEqual(limit._tag, "UsageLimitReached")
    }))

  it.scopedLive("a crash fails the attempt with the end of aider's output; a hung aider is stopped at the timeout", () =>
    Effect.gen(function*() {
      const worktree = yield* tempDir("aider-tree")
      const crashed = Either.getLeft(yield* attempt(worktree, { vars: { AIDER_STANDIN_MODE: "crash" } }))
      assert.isTrue(crashed._tag === "Some")
      if (crashed._tag === "Some") {
        assert.strictEqual(crashed.value._tag, "AgentFailed")
        assert.include(crashed.value.message, "aider exited 1")
        assert.include(crashed.value.message, "KeyError: 'model'")
      }
      const hung = Either.getLeft(yield* attempt(worktree, { vars: { AIDER_STANDIN_MODE: "slow" }, settings: { timeoutSeconds: 1 } }))
      assert.isTrue(hung._tag === "Some" && hung.value._tag === "AgentFailed" && hung.value.reason === "timeout")
    }))

  it.effect("preflight: a missing executable and an in-memory workspace are problems; the stand-in passes", () =>
    Effect.gen(function*() {
      const plan = yield* planOf("x")
      const streams = [{ index: 0, stream: plan.streams[0]! }]
      const missing = yield* Aider.backend.preflight({
        plan,
        streams,
        settings: new Aider.Settings({ command: "/nonexistent/aider" }),
        path: "streams[0].agent",
        workspaceKind: "memory"
      })
      assert.deepStrictEqual(missing.map((p) => p.path), ["streams[0].agent", "agents.aider.command"])
      assert.include(missing[1]!.message, "aider not found")
      const ok = yield* Aider.backend.preflight({
        plan,
        streams,
        settings: new Aider.Settings({ command: standIn }),
        path: "agent",
        workspaceKind: "git"
      })
      assert.deepStrictEqual(ok, [])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("reads aider's token line in its forms", () =>
    Effect.sync(() => {
      const spend = Aider.parseSpend(
        "Tokens: 2.5k sent, 1.2k cache write, 3.1k cache hit, 345 received. Cost: $0.01 message, $0.01 session.\n" +
          "Tokens: 15k sent, 1.5M received.\n"
      )
      assert.deepStrictEqual(spend, {
        inputTokens: 17_500,
        outputTokens: 1_500_345,
        cacheReadTokens: 3_100,
        cacheWriteTokens: 1_200,
        costUsd: 0.01,
        replies: 2
      })
      assert.strictEqual(Aider.parseSpend("no tokens here").replies, 0)
    }))

  it.scopedLive("a whole run over git with agent: aider lands aider's edit and nothing of aider's own", () =>
    Effect.gen(function*() {
      const repo = yield* tempDir("aider-repo")
      const git = (...args: Array<string>) =>
        execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()
      git("init", "-q", "-b", "main")
      fs.writeFileSync(path.join(repo, "README.md"), "shop\n")
      git("add", "-A")
      git("commit", "-q", "-m", "base")
      const plan = yield* Plan.decode({
        agent: "aider",
        agents: { aider: { command: standIn, model: "gpt-4.1" } },
        checks: [["test", "-f", "greeting.txt"]],
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "api-1", title: "Greet", stream: "api", description: "Write `greeting.txt` containing: hello from aider" }]
      })
      const report = yield* Orchestrator.run(plan, { runId: "r1" }).pipe(
        Effect.provide(Layer.mergeAll(Registry.layer(plan).pipe(Layer.provideMerge(GitWorkspace.layer({ repo }))), Progress.layerSilent))
      )
      assert.strictEqual(report.status, "succeeded", RunReport.toMarkdown(report))
      assert.strictEqual(fs.readFileSync(path.join(repo, "greeting.txt"), "utf8"), "hello from aider\n")
      assert.deepStrictEqual(git("diff", "--name-only", "HEAD~1", "HEAD").split("\n").filter((f) => !f.startsWith(".braid")), ["greeting.txt"])
      const task = report.streamResults[0]!.results[0]!
      assert.strictEqual(task.attempts[0]!.costUsd, 0.0123)
    }).pipe(Effect.provide(NodeContext.layer)))
})
