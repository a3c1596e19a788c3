/**
 * The claude-code backend on the real `claude` binary (2.1.331), offline: claude talks to a
 * scripted Anthropic server on 127.0.0.1, with a throwaway HOME and a planted fake key. Attempts
 * alone, and whole runs over real git repositories through `Orchestrator.run`.
 */
import { Agent, GitWorkspace, Orchestrator, Plan, Progress, type RunReport } from "@braid/core"
import { AnthropicServer, Harness, ScriptedServer } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as ClaudeCode from "../src/ClaudeCode.js"
import * as tool from "../src/internal/tool.js"
import * as Registry from "../src/Registry.js"
import * as Drivers from "./contract/Drivers.js"

const KEY = "sk-ant-test-PLANTED-0000"
const OAUTH = "sk-ant-oat01-test-PLANTED-0000"

// ---------------------------------------------------------------------------------------------
// Setup

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** The variables claude would see from braid's own environment, set for one test and restored after. */
const useEnv = (vars: Readonly<Record<string, string | undefined>>) => {
  const names = ["HOME", "CLAUDE_CONFIG_DIR", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL", ...Object.keys(vars)]
  return Effect.acquireRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]))
      for (const n of names) delete process.env[n]
      for (const [n, v] of Object.entries(vars)) if (v !== undefined) process.env[n] = v
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        for (const [n, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[n]
          else process.env[n] = v
        }
      })
  )
}

/** A throwaway HOME with an API key (or a subscription token) in the environment. */
const home = (auth: "key" | "oauth" = "key") =>
  Effect.flatMap(tempDir("braid-claude-home-"), (dir) =>
    Effect.as(useEnv({ HOME: dir, ...(auth === "key" ? { ANTHROPIC_API_KEY: KEY } : { CLAUDE_CODE_OAUTH_TOKEN: OAUTH }) }), dir))

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

const tempRepo = Effect.map(tempDir("braid-claude-repo-"), (repo) => {
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), "shop\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return repo
})

// ---------------------------------------------------------------------------------------------
// The scripted model

type Turn = ScriptedServer.Turn

/** The id of the tool call whose result a request ends with. */
const answeredToolId = (raw: unknown): string | undefined => {
  const last = (raw as { messages?: ReadonlyArray<{ role?: string; content?: unknown }> }).messages?.at(-1)
  if (last?.role !== "user" || !Array.isArray(last.content)) return undefined
  const result = (last.content as ReadonlyArray<{ type?: string; tool_use_id?: string }>).find((b) => b.type === "tool_result")
  return result?.tool_use_id
}

/**
 * A model that plays one flow of turns per attempt: `pick` chooses the flow from the prompt,
 * and each tool result moves it one turn on (tool call ids carry the flow and step).
 */
const flows = (pick: (prompt: string) => readonly [name: string, turns: ReadonlyArray<Turn>]): ScriptedServer.Responder => {
  // Each pick is its own run of the flow, so no tool call id repeats within a resumed session.
  const runs: Array<ReadonlyArray<Turn>> = []
  const step = (run: number, n: number): Turn => {
    const turn = runs[run]![n] ?? { text: "Done." }
    return turn.toolCalls === undefined ? turn : { ...turn, toolCalls: turn.toolCalls.map((c, k) => ({ ...c, id: `toolu_${run}_${n}_${k}` })) }
  }
  return (conversation) => {
    const answered = /^toolu_(\d+)_(\d+)_\d+$/.exec(answeredToolId(conversation.raw) ?? "")
    if (answered !== null && runs[Number(answered[1])] !== undefined) return step(Number(answered[1]), Number(answered[2]) + 1)
    runs.push(pick(conversation.lastUserText)[1])
    return step(runs.length - 1, 0)
  }
}

const write = (file_path: string, content: string): Turn => ({ toolCalls: [{ name: "Write", input: { file_path, content } }] })
const read = (file_path: string): Turn => ({ toolCalls: [{ name: "Read", input: { file_path } }] })

/** The model-turn requests that opened an attempt of `taskId` (the prompt, not a tool result). */
const promptsOf = (server: ScriptedServer.Server, taskId: string) =>
  server.requests.filter((r) =>
    r.conversation !== undefined && answeredToolId(r.body) === undefined && r.conversation.lastUserText.includes(`## Your task: ${taskId} `)
  )

const sessionHeader = (request: ScriptedServer.RecordedRequest) => String(request.headers["x-claude-code-session-id"] ?? "")

// ---------------------------------------------------------------------------------------------
// Runs

const planOf = (server: ScriptedServer.Server, input: Record<string, unknown>, settings: Record<string, unknown> = {}) =>
  Plan.decode({
    projectName: "shop",
    featureName: "checkout-flow",
    qualityThreshold: 80,
    maxParallel: 2,
    agent: "claude-code",
    agents: { "claude-code": { baseUrl: server.url, timeoutSeconds: 60, ...settings } },
    limits: { anthropic: { backoffSeconds: 0.1 } },
    ...input
  })

/** Runs a plan with the real registry over a real repository; every event is kept. */
const runPlan = (repo: string, plan: Plan.Plan) =>
  Effect.gen(function*() {
    const events: Array<Progress.RunEvent> = []
    const outcome = yield* Orchestrator.run(plan, { runId: "r1" }).pipe(
      Effect.provide(Layer.mergeAll(
        Registry.layer(plan).pipe(Layer.provideMerge(GitWorkspace.layer({ repo }))),
        Progress.layerCallback((e) => events.push(e))
      )),
      Effect.provide(NodeContext.layer),
      Effect.either
    )
    return { outcome, events }
  })

const reportOf = (outcome: Either.Either<RunReport.RunReport, unknown>) => {
  if (Either.isLeft(outcome)) assert.fail(`the run failed: ${String(outcome.left)}`)
  return (outcome as Either.Right<unknown, RunReport.RunReport>).right
}
const taskOf = (report: RunReport.RunReport, id: string) => report.streamResults.flatMap((s) => s.results).find((t) => t.taskId === id)!

/** One attempt of the first task, straight through the backend, in `worktree`. */
const attemptIn = (worktree: string, plan: Plan.Plan, overrides: Partial<Agent.AttemptRequest> = {}) =>
  Effect.gen(function*() {
    const built = yield* ClaudeCode.backend.make({ plan, settings: plan.agents["claude-code"]! })
    const { notes, request } = Harness.firstAttempt(plan, worktree, overrides)
    const outcome = yield* Effect.either(built.agent.attempt(request))
    return { outcome, notes, request }
  }).pipe(Effect.provide(NodeContext.layer))

/** A run folder's worktree path, as GitWorkspace lays it out. */
const worktreeIn = (repo: string, stream: string) => {
  const dir = path.join(repo, ".braid", "runs", "r1", "worktrees", stream)
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

const transcripts = (dir: string): Array<string> =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".jsonl")).map((f) => path.basename(f, ".jsonl")) : []

// ---------------------------------------------------------------------------------------------

describe("claude-code backend (real claude, scripted server)", () => {
  it.scopedLive("an attempt whose model calls Write leaves the file in the worktree and reports session, turns, tokens and cost", () =>
    Effect.gen(function*() {
      const homeDir = yield* home()
      const repo = yield* tempDir("braid-claude-one-")
      const server = yield* ScriptedServer.start(
        AnthropicServer.provider,
        flows(() => ["one", [write("src/api/checkout.js", "module.exports = 'v1'\n"), { text: "Added the checkout module." }]])
      )
      const plan = yield* planOf(server, {
        streams: [{ name: "api", type: "api", scope: "src/api/" }],
        tasks: [{ id: "api-1", title: "Checkout endpoint", stream: "api" }]
      })
      const worktree = worktreeIn(repo, "api")
      const { notes, outcome } = yield* attemptIn(worktree, plan)
      if (Either.isLeft(outcome)) return assert.fail(`attempt failed: ${outcome.left.message}`)
      const output = outcome.right
      assert.strictEqual(fs.readFileSync(path.join(worktree, "src/api/checkout.js"), "utf8"), "module.exports = 'v1'\n")
      assert.strictEqual(output.summary, "Added the checkout module.")
      assert.strictEqual(output.turns, 2)
      assert.deepStrictEqual([output.usage?.inputTokens, output.usage?.outputTokens], [200, 40])
      assert.isAbove(output.usage?.costUsd ?? 0, 0)
      assert.isString(output.model)
      // The session was journaled before claude started, and it is the one claude used.
      assert.deepStrictEqual(notes.filter((n) => n._tag === "Session").map((n) => (n as { sessionId: string }).sessionId), [output.sessionId])
      assert.isTrue(server.requests.filter((r) => r.conversation !== undefined).every((r) => sessionHeader(r) === output.sessionId))
      // The transcript lives in the stream's own claude home, not the user's.
      assert.deepStrictEqual(transcripts(path.join(repo, ".braid", "runs", "r1", "claude", "api", "projects")), [output.sessionId])
      assert.isFalse(fs.existsSync(path.join(homeDir, ".claude", "projects")))
      // The key went to the server and nowhere into what braid reports.
      assert.strictEqual(server.requests.find((r) => r.conversation !== undefined)?.headers["x-api-key"], KEY)
      assert.notInclude(JSON.stringify(output), KEY)
    }))

  it.scopedLive("a run over git: real writes committed, a failing check fixed in the same session, merged, verified and landed", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempRepo
      const server = yield* ScriptedServer.start(
        AnthropicServer.provider,
        flows((prompt) =>
          prompt.includes("## Your task: api-1 ")
            ? /attempt 2 of 3/i.test(prompt)
              ? ["api2", [read("src/api/checkout.js"), write("src/api/checkout.js", "module.exports = 'v2'\n"), { text: "Now v2." }]]
              : ["api1", [write("src/api/checkout.js", "module.exports = 'v1'\n"), { text: "Wrote v1." }]]
            : ["ui1", [write("src/ui/form.html", "<form>checkout</form>\n"), { text: "Added the form." }]]
        )
      )
      const check = (file: string, wanted: string) => [
        "node",
        "-e",
        `const t = require('fs').readFileSync('${file}', 'utf8'); if (!t.includes('${wanted}')) { console.error('${file} says ' + t.trim() + ', expected ${wanted}'); process.exit(1) }`
      ]
      const plan = yield* planOf(server, {
        streams: [{ name: "api", type: "api", scope: "src/api/", priority: 1 }, { name: "ui", type: "ui", scope: "src/ui/", priority: 2 }],
        tasks: [
          { id: "api-1", title: "POST /checkout endpoint", stream: "api", streamType: "api", acceptanceCriteria: ["exports v2"], checks: [check("src/api/checkout.js", "v2")] },
          { id: "ui-1", title: "Checkout form", stream: "ui", streamType: "ui", checks: [check("src/ui/form.html", "checkout")] }
        ],
        verify: [check("src/api/checkout.js", "v2"), check("src/ui/form.html", "<form>")]
      })
      const { outcome } = yield* runPlan(repo, plan)
      const report = reportOf(outcome)
      assert.strictEqual(report.status, "succeeded")
      assert.isTrue(report.mergeResult.landed)
      assert.strictEqual(fs.readFileSync(path.join(repo, "src/api/checkout.js"), "utf8"), "module.exports = 'v2'\n")
      assert.strictEqual(fs.readFileSync(path.join(repo, "src/ui/form.html"), "utf8"), "<form>checkout</form>\n")
      assert.strictEqual(git(repo, "status", "--porcelain"), "")

      const api = taskOf(report, "api-1")
      assert.deepStrictEqual(api.attempts.map((a) => a.review?.passes ?? null), [false, true])
      assert.deepStrictEqual(api.attempts.map((a) => a.changedFiles), [["src/api/checkout.js"], ["src/api/checkout.js"]])
      const [first, second] = api.attempts.map((a) => a.agent!)
      // The retry continued the first attempt's session: same id, and the model saw the first attempt's conversation.
      assert.isString(first!.sessionId)
      assert.strictEqual(second!.sessionId, first!.sessionId)
      const prompts = promptsOf(server, "api-1")
      assert.strictEqual(prompts.length, 2)
      assert.deepStrictEqual(prompts.map(sessionHeader), [first!.sessionId, first!.sessionId])
      const history = (prompts[1]!.body as { messages: ReadonlyArray<{ role: string }> }).messages
      assert.include(JSON.stringify(history.filter((m) => m.role === "assistant")), "Wrote v1.")
      // The retry's prompt carried the failing check's output.
      assert.include(prompts[1]!.conversation!.lastUserText, "src/api/checkout.js says module.exports = 'v1', expected v2")
      for (const attempt of [...api.attempts, ...taskOf(report, "ui-1").attempts]) {
        assert.isString(attempt.agent?.sessionId)
        assert.isAbove(attempt.agent?.turns ?? 0, 0)
        assert.isAbove(attempt.inputTokens, 0)
        assert.isAbove(attempt.agent?.costUsd ?? 0, 0)
        assert.strictEqual(attempt.agent?.backend, "claude-code")
      }
      // Each stream kept its transcripts in its own claude home.
      const homes = path.join(repo, ".braid", "runs", "r1", "claude")
      assert.deepStrictEqual(transcripts(path.join(homes, "api")), [first!.sessionId])
      assert.deepStrictEqual(transcripts(path.join(homes, "ui")), [taskOf(report, "ui-1").attempts[0]!.agent!.sessionId])
    }))

  it.scopedLive("429s are waited out by braid: the task passes on its first gate run", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempRepo
      const model = flows(() => ["t", [write("notes.txt", "ok\n"), { text: "Wrote notes." }]])
      // claude tries a request 1 + CLAUDE_CODE_MAX_RETRIES times itself before it gives up.
      const busy = ClaudeCode.MAX_RETRIES + 1
      const server = yield* ScriptedServer.start(AnthropicServer.provider, (c, i) =>
        i < busy ? { error: { status: 429, message: "Number of request tokens has exceeded your per-minute rate limit", retryAfterSeconds: 1 } } : model(c, i))
      const plan = yield* planOf(server, {
        streams: [{ name: "docs", type: "docs" }],
        tasks: [{ id: "docs-1", title: "Notes", stream: "docs", checks: [["node", "-e", "require('fs').accessSync('notes.txt')"]] }]
      })
      const { events, outcome } = yield* runPlan(repo, plan)
      const task = taskOf(reportOf(outcome), "docs-1")
      assert.strictEqual(task.status, "completed")
      assert.strictEqual(task.attempts.length, 1)
      assert.isTrue(task.attempts[0]!.review?.passes)
      assert.strictEqual(task.attempts[0]!.agent?.providerWaits, 1)
      const waited = events.filter((e) => e._tag === "ProviderWaited")
      assert.strictEqual(waited.length, 1)
      assert.match((waited[0] as { message: string }).message, /429/)
      assert.strictEqual(fs.readFileSync(path.join(repo, "notes.txt"), "utf8"), "ok\n")
    }))

  it.scopedLive("a provider that stays overloaded (529) fails the task after braid's bounded retries, using no gate run", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempRepo
      const server = yield* ScriptedServer.start(AnthropicServer.provider, () => ({ error: { status: 529, message: "Overloaded" } }))
      const plan = yield* planOf(server, {
        limits: { anthropic: { backoffSeconds: 0.1, retries: 1 } },
        streams: [{ name: "docs", type: "docs" }],
        tasks: [{ id: "docs-1", title: "Notes", stream: "docs", checks: [["node", "-e", "require('fs').accessSync('notes.txt')"]] }]
      })
      const { events, outcome } = yield* runPlan(repo, plan)
      const task = taskOf(reportOf(outcome), "docs-1")
      assert.strictEqual(task.status, "failed")
      assert.match(task.error!, /anthropic stayed busy after 2 tries/)
      assert.match(task.error!, /529/)
      assert.match(task.error!, /none used a gate run/)
      assert.deepStrictEqual(task.attempts.filter((a) => a.review !== null), [])
      assert.strictEqual(events.filter((e) => e._tag === "ProviderWaited").length, 1)
      // Two claude runs, each trying 1 + CLAUDE_CODE_MAX_RETRIES times: bounded on both sides.
      assert.strictEqual(server.requests.filter((r) => r.conversation !== undefined).length, 2 * (ClaudeCode.MAX_RETRIES + 1))
    }))

  it.scopedLive("a subscription's usage limit stops the run with UsageLimitReached saying when it resets", () =>
    Effect.gen(function*() {
      yield* home("oauth")
      const repo = yield* tempRepo
      const resetsAt = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3 * 3600 * 1000)
      const server = yield* ScriptedServer.start(AnthropicServer.provider, () => ({
        error: {
          status: 429,
          message: "Rate limited",
          headers: AnthropicServer.usageLimitHeaders("rejected", resetsAt)
        }
      }))
      const plan = yield* planOf(server, {
        streams: [{ name: "docs", type: "docs" }],
        tasks: [{ id: "docs-1", title: "Notes", stream: "docs" }]
      })
      const { outcome } = yield* runPlan(repo, plan)
      assert.isTrue(Either.isLeft(outcome), "the run stops")
      const error = (outcome as Either.Left<unknown, unknown>).left as Agent.UsageLimitReached
      assert.strictEqual(error._tag, "UsageLimitReached")
      assert.strictEqual(error.provider, "anthropic")
      assert.strictEqual(error.resetsAt, resetsAt.toISOString())
      assert.match(Agent.describeUsageLimit(error), new RegExp(`resets at ${resetsAt.toISOString()}`))
      assert.match(error.message, /limit/)
      assert.notInclude(Agent.describeUsageLimit(error), OAUTH)
      // Not retried: a usage limit is not a busy provider.
      assert.strictEqual(server.requests.filter((r) => r.conversation !== undefined).length, 1)
    }))

  it.scopedLive("a Write outside the worktree is refused; the denial is recorded and fed to the next attempt", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempRepo
      const outside = path.join(yield* tempDir("braid-claude-outside-"), "escape.txt")
      const server = yield* ScriptedServer.start(
        AnthropicServer.provider,
        flows((prompt) =>
          /attempt 2 of 3/i.test(prompt)
            ? ["second", [write("notes.txt", "inside\n"), { text: "Wrote notes inside." }]]
            : ["first", [write(outside, "escaped\n"), { text: "Wrote the notes." }]]
        )
      )
      const plan = yield* planOf(server, {
        streams: [{ name: "docs", type: "docs" }],
        tasks: [{ id: "docs-1", title: "Notes", stream: "docs", checks: [["node", "-e", "require('fs').accessSync('notes.txt')"]] }]
      })
      const { outcome } = yield* runPlan(repo, plan)
      const task = taskOf(reportOf(outcome), "docs-1")
      assert.isFalse(fs.existsSync(outside))
      assert.deepStrictEqual(task.attempts.map((a) => a.review?.passes), [false, true])
      assert.deepStrictEqual(task.attempts[0]!.agent?.permissionDenials, [`Write ${outside}`])
      const prompts = promptsOf(server, "docs-1")
      assert.strictEqual(prompts.length, 2)
      assert.include(prompts[1]!.conversation!.lastUserText, `- Write ${outside}`)
      assert.notInclude(prompts[0]!.conversation!.lastUserText, outside)
    }))

  it.scopedLive("a hanging server is cut off at the timeout, and nothing of the attempt is left running", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempDir("braid-claude-hang-")
      const server = yield* ScriptedServer.start(AnthropicServer.provider, () => ({ hang: true }))
      // Long enough for claude to reach the server, where it hangs (once more, longer, on a machine too busy for that).
      const { limit, outcome, request } = yield* Drivers.hangAtModel(
        10,
        (timeoutSeconds) =>
          Effect.flatMap(
            planOf(server, { streams: [{ name: "api", type: "api" }], tasks: [{ id: "api-1", title: "Checkout endpoint", stream: "api" }] }, { timeoutSeconds }),
            (plan) => attemptIn(worktreeIn(repo, "api"), plan)
          ),
        () => Drivers.hungAt(server)
      )
      assert.isTrue(Either.isLeft(outcome))
      const error = (outcome as Either.Left<Agent.AttemptError, unknown>).left as Agent.AgentFailed
      assert.strictEqual(error._tag, "AgentFailed")
      assert.strictEqual(error.reason, "timeout")
      assert.include(error.message, `${limit} s`)
      assert.strictEqual(server.inFlight().max, 1, `claude had reached the server within ${limit} s`)
      const marker = `BRAID_AGENT=${tool.agentMarker(request)}`
      const left = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/environ`, "latin1").split("\0").includes(marker)
        } catch {
          return false
        }
      })
      assert.deepStrictEqual(left, [])
    }))
})

describe("claude-code backend: invocation and reading", () => {
  it("argv: acceptEdits, the session, and one Bash rule per check, shell-quoted", () => {
    const settings = new ClaudeCode.Settings({ model: "claude-sonnet-4-5", maxTurns: 12 })
    const checks = [{ name: "test", argv: ["npm", "test"] as const, timeoutMs: 1 }, { name: "e", argv: ["node", "-e", "it's"] as const, timeoutMs: 1 }]
    assert.deepStrictEqual(ClaudeCode.argvOf(["claude"], settings, { _tag: "Resume", id: "s-1" }, checks as never), [
      "claude", "-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits",
      "--resume", "s-1", "--model", "claude-sonnet-4-5", "--max-turns", "12",
      "--allowedTools", "Bash(npm test)", "Bash(node -e 'it'\\''s')"
    ])
    const own = new ClaudeCode.Settings({ allowedTools: ["Read"], permissionMode: "plan" })
    const argv = ClaudeCode.argvOf(["claude"], own, { _tag: "Open", id: "u" }, checks as never)
    assert.deepStrictEqual(argv.slice(-2), ["--allowedTools", "Read"])
    assert.include(argv.join(" "), "--permission-mode plan --session-id u")
  })

  it("a stream's setup commands (environment.setup, shared folders' builds) are allowed like its checks: a task adding a dependency can install it", () => {
    const command = (name: string, ...argv: Array<string>) => ({ name, argv, timeoutMs: 1 })
    const stream = { environment: { setup: [command("migrate", "npm", "run", "migrate")], teardown: [], copy: [], share: [{ path: "node_modules", key: ["package-lock.json"], build: command("ci", "npm", "ci") }], ports: 0 } }
    const setup = ClaudeCode.setupCommandsOf(stream as never)
    assert.deepStrictEqual(setup.map((c) => c.name), ["ci", "migrate"])
    const argv = ClaudeCode.argvOf(["claude"], new ClaudeCode.Settings({}), { _tag: "Open", id: "u" }, [command("test", "npm", "test"), ...setup] as never)
    assert.deepStrictEqual(argv.slice(argv.indexOf("--allowedTools")), ["--allowedTools", "Bash(npm test)", "Bash(npm ci)", "Bash(npm run migrate)"])
    assert.deepStrictEqual(ClaudeCode.setupCommandsOf({}), [])
  })

  it("environment: only what claude needs, braid's bounds, the stream's home and the user's login store", () => {
    const env = ClaudeCode.environmentOf(
      { PATH: "/bin", HOME: "/h", ANTHROPIC_API_KEY: KEY, OPENAI_API_KEY: "sk-other", GITHUB_TOKEN: "gh", ANTHROPIC_BASE_URL: "https://x" },
      new ClaudeCode.Settings({ baseUrl: "http://127.0.0.1:1" }),
      { configDir: "/r/claude/api", timeoutMs: 60_000 }
    )
    assert.deepStrictEqual(env, {
      PATH: "/bin",
      HOME: "/h",
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: "http://127.0.0.1:1",
      CLAUDE_CONFIG_DIR: "/r/claude/api",
      CLAUDE_SECURESTORAGE_CONFIG_DIR: "",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      DISABLE_TELEMETRY: "1",
      DISABLE_AUTOUPDATER: "1",
      CLAUDE_CODE_MAX_RETRIES: "2",
      API_TIMEOUT_MS: "60000"
    })
    const mine = ClaudeCode.environmentOf({ HOME: "/h", CLAUDE_CONFIG_DIR: "/mine" }, new ClaudeCode.Settings({}), { configDir: "/s", timeoutMs: 3_600_000 })
    assert.strictEqual(mine.CLAUDE_SECURESTORAGE_CONFIG_DIR, "/mine")
    assert.strictEqual(mine.API_TIMEOUT_MS, String(ClaudeCode.MAX_REQUEST_TIMEOUT_MS))
  })

  it("a stream's claude home sits in the run's folder, wherever the checkout is (beside an old-layout checkout without one)", () => {
    assert.strictEqual(ClaudeCode.configDirOf("/cache/braid/worktrees/repo-0a1b/r1/api", "api", "/repo/.braid/runs/r1"), "/repo/.braid/runs/r1/claude/api")
    assert.strictEqual(ClaudeCode.configDirOf("/repo/.braid/runs/r1/worktrees/api", "api"), "/repo/.braid/runs/r1/claude/api")
  })

  const result = (fields: Record<string, unknown>) =>
    JSON.stringify({ uuid: "x", type: "result", is_error: true, subtype: "success", num_turns: 1, ...fields })
  const classify = (stdout: string, exitCode = 1, options: Partial<ClaudeCode.RunContext> = {}) =>
    ClaudeCode.outcomeOf({ exitCode, stdout, stderr: "", timedOut: false, durationMs: 5 }, ClaudeCode.transcriptOf(stdout), {
      taskId: "t",
      timeoutMs: 1000,
      sessionCostUsd: 0,
      resumed: undefined,
      opened: "s",
      maxTurns: undefined,
      prices: {},
      secrets: [KEY],
      ...options
    })
  const leftOf = (e: ReturnType<typeof classify>) => {
    assert.isTrue(Either.isLeft(e))
    return (e as Either.Left<{ _tag: string; message: string; reason?: string; resetsAt?: string }, unknown>).left
  }

  it("a resumed session's attempt costs what the session cost beyond its earlier attempts (claude counts from the session's start)", () => {
    const ok = result({ is_error: false, result: "done", session_id: "s", total_cost_usd: 0.0048, usage: { input_tokens: 100, output_tokens: 20 } })
    const resumed = classify(ok, 0, { resumed: "s", opened: undefined, sessionCostUsd: 0.0032 })
    assert.isTrue(Either.isRight(resumed))
    assert.closeTo((resumed as Either.Right<unknown, { usage?: { costUsd?: number } }>).right.usage!.costUsd!, 0.0016, 1e-9)
    const fresh = classify(ok, 0, { sessionCostUsd: 0.0032 })
    assert.closeTo((fresh as Either.Right<unknown, { usage?: { costUsd?: number } }>).right.usage!.costUsd!, 0.0048, 1e-9)
  })

  it("a failed run that reached a result still reports what it spent", () => {
    const failedRun = classify(result({ subtype: "error_max_turns", session_id: "s9", num_turns: 7, total_cost_usd: 0.02, usage: { input_tokens: 900, output_tokens: 80 } }), 1, { maxTurns: 7 })
    const error = leftOf(failedRun) as unknown as { _tag: string; spent?: { sessionId?: string; turns?: number; usage?: { inputTokens: number; costUsd?: number } } }
    assert.strictEqual(error._tag, "AgentFailed")
    assert.strictEqual(error.spent?.sessionId, "s9")
    assert.strictEqual(error.spent?.turns, 7)
    assert.strictEqual(error.spent?.usage?.inputTokens, 900)
    assert.closeTo(error.spent?.usage?.costUsd ?? 0, 0.02, 1e-9)
  })

  it("classifies claude's failures: login, busy, usage limit, turn limit, a refused request", () => {
    const notLoggedIn = leftOf(classify(result({ result: "Not logged in · Please run /login", terminal_reason: "api_error" })))
    assert.deepStrictEqual([notLoggedIn._tag, notLoggedIn.reason], ["AgentFailed", "unavailable"])
    const badKey = leftOf(classify(result({ result: `Invalid API key ${KEY}`, api_error_status: 401 })))
    assert.strictEqual(badKey.reason, "unavailable")
    assert.notInclude(badKey.message, KEY)
    assert.strictEqual(leftOf(classify(result({ result: "API Error: Repeated 529 Overloaded errors", api_error_status: 529, terminal_reason: "api_error" })))._tag, "ProviderBusy")
    assert.strictEqual(leftOf(classify(result({ result: "API Error: Connection refused (ECONNREFUSED)", terminal_reason: "api_error" })))._tag, "ProviderBusy")
    const account = leftOf(classify(result({
      result: "API Error: 400 You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC.",
      api_error_status: 400,
      terminal_reason: "api_error"
    })))
    assert.deepStrictEqual([account._tag, account.resetsAt], ["UsageLimitReached", "2026-12-01T00:00:00.000Z"])
    const event = JSON.stringify({ type: "rate_limit_event", rate_limit_info: { status: "rejected", resetsAt: 1_800_000_000, rateLimitType: "five_hour" } })
    const subscription = leftOf(classify(`${event}\n${result({ result: "You've hit your 5-hour limit · resets 4am (UTC)", api_error: "usage_limit_reached", api_error_status: 429 })}`))
    assert.deepStrictEqual([subscription._tag, subscription.resetsAt], ["UsageLimitReached", new Date(1_800_000_000_000).toISOString()])
    const turns = leftOf(classify(result({ subtype: "error_max_turns", errors: ["Reached maximum number of turns (3)"] }), 1, { maxTurns: 3 }))
    assert.match(turns.message, /turn limit.*maxTurns: 3.*Reached maximum number of turns/)
    const refused = leftOf(classify(result({ result: "API Error: 404 model not found", api_error_status: 404, terminal_reason: "api_error" })))
    assert.deepStrictEqual([refused._tag, refused.reason], ["AgentFailed", "failed"])
    // is_error wins over subtype "success", and exit 0 alone proves nothing.
    assert.strictEqual(leftOf(classify(result({ result: "odd" }), 0))._tag, "AgentFailed")
    const resumed = leftOf(ClaudeCode.outcomeOf(
      { exitCode: 1, stdout: result({ subtype: "error_during_execution", num_turns: 0 }), stderr: "No conversation found with session ID: abc", timedOut: false, durationMs: 1 },
      ClaudeCode.transcriptOf(""),
      { taskId: "t", timeoutMs: 1, resumed: "abc", opened: undefined, maxTurns: undefined, prices: {}, secrets: [], sessionCostUsd: 0 }
    ))
    assert.strictEqual(resumed._tag, "SessionNotFound")
  })

  it("reads a result whatever its field order and extra fields, with cache tokens and denials", () => {
    const stdout = [
      JSON.stringify({ type: "system", subtype: "init", session_id: "s1", model: "claude-x", tools: ["Write"], extra: { a: 1 } }),
      "not json",
      JSON.stringify({ type: "system", subtype: "hook_started", whatever: true }),
      JSON.stringify({
        permission_denials: [{ tool_name: "Bash", tool_use_id: "t", tool_input: { command: "rm -rf /" } }, { tool_name: "Edit", tool_input: { file_path: "/etc/hosts" } }],
        usage: { cache_read_input_tokens: 7, output_tokens: 20, input_tokens: 100, cache_creation_input_tokens: 3, server_tool_use: {} },
        modelUsage: { "claude-y": { costUSD: 0.5 } },
        total_cost_usd: 0.5,
        is_error: false,
        result: "done",
        subtype: "success",
        type: "result",
        num_turns: 4,
        session_id: "s1",
        duration_ms: 1234,
        api_error_status: null,
        brand_new_field: [1, 2]
      })
    ].join("\n")
    const output = classify(stdout, 0)
    assert.isTrue(Either.isRight(output))
    const o = (output as Either.Right<unknown, Agent.AttemptOutput>).right
    assert.deepStrictEqual(
      [o.summary, o.sessionId, o.turns, o.model, o.durationMs, o.permissionDenials],
      ["done", "s1", 4, "claude-y", 1234, ["Bash rm -rf /", "Edit /etc/hosts"]]
    )
    assert.deepStrictEqual(
      [o.usage?.inputTokens, o.usage?.outputTokens, o.usage?.cacheReadTokens, o.usage?.cacheWriteTokens, o.usage?.costUsd],
      [100, 20, 7, 3, 0.5]
    )
  })
})

describe("claude-code preflight", () => {
  const context = (plan: Plan.Plan, workspaceKind: "git" | "memory" = "git") => ({
    plan,
    streams: plan.streams.map((stream, index) => ({ index, stream })),
    settings: plan.agents["claude-code"] ?? new ClaudeCode.Settings({}),
    path: "agent",
    workspaceKind
  })
  const planWith = (settings: Record<string, unknown>) =>
    Plan.decode({ agent: "claude-code", agents: { "claude-code": settings }, streams: [{ name: "api", type: "api" }], tasks: [{ id: "a", title: "a", stream: "api" }] })

  it.scopedLive("refuses bypassPermissions, a missing executable, and no key or login; passes with a key or a stored login", () =>
    Effect.gen(function*() {
      const homeDir = yield* tempDir("braid-claude-pre-")
      const check = (settings: Record<string, unknown>, env: Record<string, string>) =>
        Effect.flatMap(planWith(settings), (plan) => ClaudeCode.preflight(context(plan), { PATH: process.env.PATH!, HOME: homeDir, ...env }))
      const bypass = yield* check({ permissionMode: "bypassPermissions" }, { ANTHROPIC_API_KEY: KEY })
      assert.deepStrictEqual(bypass.map((p) => p.path), ["agents.claude-code.permissionMode"])
      assert.match(bypass[0]!.message, /bypassPermissions is refused/)
      const skip = yield* check({ args: ["--dangerously-skip-permissions"] }, { ANTHROPIC_API_KEY: KEY })
      assert.deepStrictEqual(skip.map((p) => p.path), ["agents.claude-code.args"])
      const missing = yield* check({ command: "/nowhere/claude" }, { ANTHROPIC_API_KEY: KEY })
      assert.match(missing[0]!.message, /claude not found.*agents\.claude-code\.command/)
      const nothing = yield* check({}, {})
      assert.strictEqual(nothing.length, 1)
      assert.match(nothing[0]!.message, /no Anthropic key or login: set ANTHROPIC_API_KEY.*claude \/login/)
      assert.deepStrictEqual(yield* check({}, { ANTHROPIC_API_KEY: KEY }), [])
      // A login stored by `claude /login` counts.
      fs.mkdirSync(path.join(homeDir, ".claude"), { recursive: true })
      fs.writeFileSync(path.join(homeDir, ".claude", ".credentials.json"), JSON.stringify({ claudeAiOauth: { accessToken: OAUTH } }))
      assert.deepStrictEqual(yield* check({}, {}), [])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("the stream's home keeps the user's stored login: claude reads the user's credentials store", () =>
    Effect.gen(function*() {
      const homeDir = yield* tempDir("braid-claude-login-")
      yield* useEnv({ HOME: homeDir })
      const token = "sk-ant-oat01-test-STORED-0000"
      fs.mkdirSync(path.join(homeDir, ".claude"), { recursive: true })
      fs.writeFileSync(
        path.join(homeDir, ".claude", ".credentials.json"),
        JSON.stringify({ claudeAiOauth: { accessToken: token, refreshToken: "r", expiresAt: Date.now() + 3_600_000, scopes: ["user:inference"] } }),
        { mode: 0o600 }
      )
      fs.writeFileSync(path.join(homeDir, ".claude.json"), JSON.stringify({ hasCompletedOnboarding: true, projects: { "/elsewhere": {} } }))
      const repo = yield* tempDir("braid-claude-login-repo-")
      const server = yield* ScriptedServer.start(AnthropicServer.provider, () => ({ text: "Nothing to do." }))
      const plan = yield* planOf(server, { streams: [{ name: "api", type: "api" }], tasks: [{ id: "api-1", title: "t", stream: "api" }] })
      const { outcome } = yield* attemptIn(worktreeIn(repo, "api"), plan)
      assert.isTrue(Either.isRight(outcome))
      assert.strictEqual(server.requests.find((r) => r.conversation !== undefined)?.headers.authorization, `Bearer ${token}`)
      const seeded = JSON.parse(fs.readFileSync(path.join(repo, ".braid", "runs", "r1", "claude", "api", ".claude.json"), "utf8"))
      assert.isTrue(seeded.hasCompletedOnboarding)
      assert.notProperty(seeded.projects ?? {}, "/elsewhere")
    }))
})
