/**
 * The gemini backend with the real Gemini CLI (`@google/gemini-cli`, pinned) against a
 * scripted Gemini API server on 127.0.0.1: it writes files through its tools, reports tokens,
 * model and session, continues a session on a retry, and turns the provider's refusals into
 * the errors the engine acts on (busy → back off, quota → stop resumable, bad key → unavailable).
 * A throwaway HOME and a fake key; nothing leaves the machine.
 */
import { type Agent, GitWorkspace, Orchestrator, Plan, type Process, Progress } from "@braid/core"
import { GeminiServer, Harness, ScriptedServer } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Gemini from "../src/Gemini.js"
import * as Registry from "../src/Registry.js"

const KEY = "gemini-test-PLANTED-0000"

/** A fresh directory, removed after the test. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-gemini-")))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const plan = Plan.decode({
  projectName: "Shop",
  featureName: "Greeting",
  streams: [{ name: "api", type: "api" }],
  tasks: [{ id: "t1", title: "Write hello.txt", stream: "api", description: "Create hello.txt saying hello." }]
})

/** A repository folder laid out as a git run leaves it: the stream's worktree under `.braid/runs/<run>/worktrees`. */
const layout = Effect.map(tempDir, (root) => {
  const home = path.join(root, "home")
  const worktree = path.join(root, "repo", ".braid", "runs", "run-1", "worktrees", "api")
  fs.mkdirSync(home, { recursive: true })
  fs.mkdirSync(worktree, { recursive: true })
  return { root, home, worktree, configHome: path.join(root, "repo", ".braid", "runs", "run-1", "gemini", "api") }
})

/** The engine's request for the first attempt of t1, with the notes it journals collected. */
const requestOf = (p: Plan.Plan, worktree: string, notes: Array<Agent.AttemptNote>, extra: Partial<Agent.AttemptRequest> = {}): Agent.AttemptRequest =>
  Harness.firstAttempt(p, worktree, { runId: "run-1", note: (note) => Effect.sync(() => void notes.push(note)), ...extra }).request

/** One attempt of the gemini agent pointed at `server`, with a throwaway HOME and the fake key. */
const attempt = (
  server: ScriptedServer.Server,
  dirs: { readonly home: string; readonly worktree: string },
  options: { readonly env?: Record<string, string | undefined>; readonly extra?: Partial<Agent.AttemptRequest>; readonly notes?: Array<Agent.AttemptNote> } = {}
) =>
  Effect.gen(function*() {
    const p = yield* plan
    const settings = new Gemini.Settings({ model: "gemini-2.5-pro", baseUrl: server.url, timeoutSeconds: 60 })
    const env = { PATH: process.env.PATH, HOME: dirs.home, GEMINI_API_KEY: KEY, ...options.env }
    const { agent } = yield* Gemini.make({ plan: p, settings }, { env })
    return yield* agent.attempt(requestOf(p, dirs.worktree, options.notes ?? [], options.extra)).pipe(Effect.either)
  }).pipe(Effect.provide(NodeContext.layer))

const modelTurns = (server: ScriptedServer.Server) => server.requests.filter((r) => r.conversation !== undefined)

describe("Gemini (the real gemini CLI against a scripted server)", () => {
  it.scopedLive("writes a file through its tools and reports tokens, cost, model and session", () =>
    Effect.gen(function*() {
      const dirs = yield* layout
      // The user's own settings survive into the stream's config home.
      fs.mkdirSync(path.join(dirs.home, ".gemini"))
      fs.writeFileSync(path.join(dirs.home, ".gemini", "settings.json"), JSON.stringify({ ui: { theme: "GitHub" } }))
      const server = yield* ScriptedServer.start(GeminiServer.provider, (c) =>
        c.toolResults.length === 0
          ? { text: "I'll write it.", toolCalls: [{ name: "write_file", input: { file_path: "hello.txt", content: "hello\n" } }], usage: { inputTokens: 1200, outputTokens: 40 } }
          : { text: "Wrote hello.txt.", usage: { inputTokens: 300, outputTokens: 10, cacheReadTokens: 1000 } })
      const notes: Array<Agent.AttemptNote> = []

      const result = yield* attempt(server, dirs, { notes })

      assert.isTrue(Either.isRight(result), Either.isLeft(result) ? result.left.message : "")
      const output = Either.getOrThrow(result)
      assert.strictEqual(fs.readFileSync(path.join(dirs.worktree, "hello.txt"), "utf8"), "hello\n")
      assert.strictEqual(output.summary, "Wrote hello.txt.")
      assert.strictEqual(output.model, "gemini-2.5-pro")
      assert.deepStrictEqual(
        { input: output.usage?.inputTokens, output: output.usage?.outputTokens, cached: output.usage?.cacheReadTokens },
        { input: 1500, output: 50, cached: 1000 }
      )
      assert.isAbove(output.usage?.costUsd ?? 0, 0)
      // The session was journaled before the CLI started, and the CLI used it.
      assert.deepStrictEqual(notes.filter((n) => n._tag === "Session").map((n) => n.sessionId), [output.sessionId])
      assert.isTrue(notes.some((n) => n._tag === "Process"))
      // The prompt reached the model; the key went only in its header.
      const first = modelTurns(server)[0]!
      assert.include(first.conversation!.lastUserText, "Write hello.txt")
      assert.strictEqual(first.headers["x-goog-api-key"], KEY)
      assert.notInclude(JSON.stringify(first.body), KEY)
      // The stream's own config home: API-key auth, one try per request, the user's theme kept.
      const settings = JSON.parse(fs.readFileSync(path.join(dirs.configHome, ".gemini", "settings.json"), "utf8"))
      assert.strictEqual(settings.security.auth.selectedType, "gemini-api-key")
      assert.strictEqual(settings.general.maxAttempts, 1)
      assert.strictEqual(settings.ui.theme, "GitHub")
    }), { timeout: 60_000 })

  it.scopedLive("a retry continues the task's session: the model sees the earlier turns", () =>
    Effect.gen(function*() {
      const dirs = yield* layout
      const server = yield* ScriptedServer.start(GeminiServer.provider, (c, index) =>
        index === 0
          ? { toolCalls: [{ name: "write_file", input: { file_path: "a.txt", content: "one\n" } }] }
          : index === 1
          ? { text: "Wrote a.txt." }
          : { text: c.toolResults.length > 0 ? "I remember writing a.txt." : "What file?" })

      const first = Either.getOrThrow(yield* attempt(server, dirs))
      const second = yield* attempt(server, dirs, { extra: { attempt: 2, session: first.sessionId } })

      assert.isTrue(Either.isRight(second), Either.isLeft(second) ? second.left.message : "")
      assert.strictEqual(Either.getOrThrow(second).summary, "I remember writing a.txt.")
      assert.strictEqual(Either.getOrThrow(second).sessionId, first.sessionId)

      // A session the CLI cannot resume (not in this config home) starts afresh under a new, journaled id.
      const notes: Array<Agent.AttemptNote> = []
      const lost = "00000000-0000-4000-8000-000000000000"
      const fresh = yield* attempt(server, dirs, { extra: { attempt: 3, session: lost }, notes })
      assert.isTrue(Either.isRight(fresh), Either.isLeft(fresh) ? fresh.left.message : "")
      assert.strictEqual(Either.getOrThrow(fresh).summary, "What file?")
      assert.notStrictEqual(Either.getOrThrow(fresh).sessionId, lost)
      assert.deepStrictEqual(notes.flatMap((n) => n._tag === "Session" ? [n.sessionId] : []), [Either.getOrThrow(fresh).sessionId])
    }), { timeout: 60_000 })

  it.scopedLive("a prompt too long for one argument reaches the model through stdin", () =>
    Effect.gen(function*() {
      const dirs = yield* layout
      const server = yield* ScriptedServer.start(GeminiServer.provider, () => ({ text: "Read it all." }))
      const p = yield* plan
      const long = `${"Keep every handler small. ".repeat(6000)}THE-END-MARKER`
      const task = new Plan.Task({ ...p.file.tasks[0]!, description: long })

      const result = yield* attempt(server, dirs, { extra: { task } })

      assert.strictEqual(Either.isRight(result) && result.right.summary, "Read it all.")
      assert.include(modelTurns(server)[0]!.conversation!.lastUserText, "THE-END-MARKER")
    }), { timeout: 60_000 })

  it.scopedLive("a 429 is ProviderBusy after one request, with the delay the provider asked for", () =>
    Effect.gen(function*() {
      const dirs = yield* layout
      const server = yield* ScriptedServer.start(GeminiServer.provider, () => ({ error: { status: 429, retryAfterSeconds: 7 } }))

      const result = yield* attempt(server, dirs)

      assert.isTrue(Either.isLeft(result))
      const error = Either.getLeft(result).pipe((o) => o._tag === "Some" ? o.value : undefined)!
      assert.strictEqual(error._tag, "ProviderBusy")
      assert.strictEqual((error as Agent.ProviderBusy).provider, "google")
      assert.strictEqual((error as Agent.ProviderBusy).retryAfterMs, 7000)
      assert.notInclude(error.message, KEY)
      // braid owns the backoff: the CLI did not retry on its own.
      assert.strictEqual(modelTurns(server).length, 1)
    }), { timeout: 60_000 })

  it.scopedLive("a daily quota is UsageLimitReached; a 503 is ProviderBusy", () =>
    Effect.gen(function*() {
      const dirs = yield* layout
      const quota = yield* ScriptedServer.start(GeminiServer.provider, () => ({ error: { status: 429, type: GeminiServer.USAGE_LIMIT } }))
      const overloaded = yield* ScriptedServer.start(GeminiServer.provider, () => ({ error: { status: 503 } }))

      const limited = yield* attempt(quota, dirs)
      const busy = yield* attempt(overloaded, dirs)

      assert.strictEqual(Either.isLeft(limited) && limited.left._tag, "UsageLimitReached")
      assert.strictEqual(Either.isLeft(busy) && busy.left._tag, "ProviderBusy")
      assert.include(Either.isLeft(busy) ? busy.left.message : "", "503")
    }), { timeout: 60_000 })

  it.scopedLive("a refused key, and no key at all, are AgentFailed \"unavailable\" without the key in the message", () =>
    Effect.gen(function*() {
      const dirs = yield* layout
      const server = yield* ScriptedServer.start(GeminiServer.provider, () => ({ error: { status: 401 } }))

      const refused = yield* attempt(server, dirs)
      const none = yield* attempt(server, dirs, { env: { GEMINI_API_KEY: undefined } })

      for (const result of [refused, none]) {
        assert.isTrue(Either.isLeft(result))
        const error = Either.isLeft(result) ? result.left : undefined
        assert.strictEqual(error?._tag, "AgentFailed")
        assert.strictEqual((error as Agent.AgentFailed).reason, "unavailable")
        assert.notInclude(error!.message, KEY)
      }
      assert.include(Either.isLeft(none) ? none.left.message : "", "exited 41")
      // Without a key the CLI stopped before asking the model anything.
      assert.strictEqual(modelTurns(server).length, 1)
    }), { timeout: 60_000 })
})

/** braid's own environment for one test (the registry's backend reads it), restored after. */
const useEnv = (vars: Readonly<Record<string, string | undefined>>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(vars).map((n) => [n, process.env[n]]))
      for (const [n, v] of Object.entries(vars)) {
        if (v === undefined) delete process.env[n]
        else process.env[n] = v
      }
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

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

describe("a run with the gemini agent over git", () => {
  it.scopedLive("the file gemini wrote passes the check and lands; its config home stays out of the repository", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const repo = path.join(root, "repo")
      fs.mkdirSync(path.join(root, "home"))
      fs.mkdirSync(repo)
      git(repo, "init", "-q", "-b", "main")
      fs.writeFileSync(path.join(repo, "README.md"), "shop\n")
      git(repo, "add", "-A")
      git(repo, "commit", "-q", "-m", "base")
      const base = git(repo, "rev-parse", "main")
      yield* useEnv({ HOME: path.join(root, "home"), GEMINI_API_KEY: KEY, GOOGLE_API_KEY: undefined, GEMINI_CLI_HOME: undefined })
      const server = yield* ScriptedServer.start(GeminiServer.provider, (c) =>
        c.toolResults.length === 0
          ? { toolCalls: [{ name: "write_file", input: { file_path: "hello.txt", content: "hello\n" } }] }
          : { text: "Wrote hello.txt." })
      const p = yield* Plan.decode({
        projectName: "shop",
        featureName: "greeting",
        agent: "gemini",
        agents: { gemini: { baseUrl: server.url, model: "gemini-2.5-flash", timeoutSeconds: 60 } },
        checks: [["node", "-e", "process.exit(require('fs').readFileSync('hello.txt', 'utf8') === 'hello\\n' ? 0 : 1)"]],
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "t1", title: "Write hello.txt", stream: "api" }]
      })

      const report = yield* Orchestrator.run(p, { runId: "r1" }).pipe(
        Effect.provide(Layer.mergeAll(Registry.layer(p).pipe(Layer.provideMerge(GitWorkspace.layer({ repo }))), Progress.layerSilent)),
        Effect.provide(NodeContext.layer)
      )

      assert.strictEqual(report.status, "succeeded", JSON.stringify(report.streamResults, null, 1).slice(0, 3000))
      assert.strictEqual(fs.readFileSync(path.join(repo, "hello.txt"), "utf8"), "hello\n")
      assert.deepStrictEqual(git(repo, "diff", "--name-only", base, "main").split("\n"), ["hello.txt"])
      assert.isTrue(fs.existsSync(path.join(repo, ".braid", "runs", "r1", "gemini", "api", ".gemini", "settings.json")))
      assert.strictEqual(git(repo, "status", "--porcelain"), "")
    }), { timeout: 80_000 })
})

describe("Gemini preflight", () => {
  const context = (p: Plan.Plan, settings = new Gemini.Settings({})) => ({
    plan: p,
    streams: [{ index: 0, stream: p.streams[0]! }],
    settings,
    path: "agent",
    workspaceKind: "git" as const
  })

  it.scopedLive("finds the pinned CLI and a key; says what is missing when there is no key or login", () =>
    Effect.gen(function*() {
      const dirs = yield* layout
      const p = yield* plan
      const env = { PATH: process.env.PATH, HOME: dirs.home }
      const ok = yield* Gemini.preflight(context(p), { env: { ...env, GEMINI_API_KEY: KEY } })
      const noKey = yield* Gemini.preflight(context(p), { env })
      fs.mkdirSync(path.join(dirs.home, ".gemini"), { recursive: true })
      fs.writeFileSync(path.join(dirs.home, ".gemini", "oauth_creds.json"), "{}")
      const loggedIn = yield* Gemini.preflight(context(p), { env })
      const missing = yield* Gemini.preflight(context(p, new Gemini.Settings({ command: "no-such-gemini" })), { env: { ...env, GEMINI_API_KEY: KEY } })

      assert.deepStrictEqual(ok, [])
      assert.strictEqual(noKey.length, 1)
      assert.include(noKey[0]!.message, "GEMINI_API_KEY")
      assert.deepStrictEqual(loggedIn, [])
      assert.include(missing.map((m) => m.message).join("\n"), "cannot find `no-such-gemini`")
    }).pipe(Effect.provide(NodeContext.layer)), { timeout: 60_000 })
})

describe("Gemini outcomes (exit codes and reported errors)", () => {
  const run = (exitCode: number, stdout: string, stderr = "", timedOut = false): Process.Result => ({ exitCode, stdout, stderr, timedOut, durationMs: 10 })
  const errorLine = (message: string) => JSON.stringify({ type: "result", status: "error", error: { type: "unknown", message }, stats: {} })
  const outcome = (r: Process.Result) =>
    Gemini.outcomeOf(r, { taskId: "t1", prices: {}, model: undefined, secrets: [KEY] })
  const tagOf = (r: Process.Result) => Either.match(outcome(r), { onLeft: (e) => e._tag === "AgentFailed" ? `AgentFailed/${e.reason}` : e._tag, onRight: () => "ok" })

  it("a stream's gemini home sits in the run's folder, wherever the checkout is (beside an old-layout checkout without one)", () => {
    const stream = { name: "api" } as Agent.AttemptRequest["stream"]
    const outside = { ...Harness.directoryFiles("/cache/braid/worktrees/repo-0a1b/r1/api"), runDir: "/repo/.braid/runs/r1" }
    assert.strictEqual(Gemini.configHomeOf({ runId: "r1", stream, files: outside }), "/repo/.braid/runs/r1/gemini/api")
    const old = Harness.directoryFiles("/repo/.braid/runs/r1/worktrees/api")
    assert.strictEqual(Gemini.configHomeOf({ runId: "r1", stream, files: old }), "/repo/.braid/runs/r1/gemini/api")
  })

  it("maps the CLI's exit codes and API errors to the errors the engine acts on", () => {
    assert.strictEqual(tagOf(run(247, errorLine("[API Error: The model is overloaded.]"))), "ProviderBusy")
    assert.strictEqual(tagOf(run(244, "")), "ProviderBusy")
    assert.strictEqual(tagOf(run(1, errorLine("[API Error: exception TypeError: fetch failed sending request]"))), "ProviderBusy")
    assert.strictEqual(tagOf(run(173, errorLine("[API Error: You have exhausted your daily quota on this model.]"))), "UsageLimitReached")
    assert.strictEqual(
      tagOf(run(144, errorLine(`[API Error: {"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}]`))),
      "AgentFailed/unavailable"
    )
    assert.strictEqual(tagOf(run(144, errorLine(`[API Error: {"error":{"code":400,"message":"Bad schema","status":"INVALID_ARGUMENT"}}]`))), "AgentFailed/failed")
    assert.strictEqual(tagOf(run(41, "", "Invalid auth method selected.")), "AgentFailed/unavailable")
    assert.strictEqual(tagOf(run(53, "")), "AgentFailed/failed")
    assert.strictEqual(tagOf(run(130, "")), "AgentFailed/interrupted")
    assert.strictEqual(tagOf(run(124, "", "timed out after 60000 ms", true)), "AgentFailed/timeout")
    assert.strictEqual(tagOf(run(0, "", "no result line")), "AgentFailed/failed")
  })

  it("keeps the key out of messages and reads the delay the provider asked for", () => {
    const busy = outcome(run(173, errorLine(`[API Error: Quota exceeded for key ${KEY}. Please retry in 7.5s.]`)))
    assert.isTrue(Either.isLeft(busy))
    const error = Either.isLeft(busy) ? busy.left as Agent.ProviderBusy : undefined
    assert.notInclude(error!.message, KEY)
    assert.strictEqual(error!.retryAfterMs, 7500)
  })

  it("reads refused tool calls and the closing message from the stream", () => {
    const lines = [
      { type: "init", session_id: "s-1", model: "auto" },
      { type: "message", role: "assistant", content: "Let me ", delta: true },
      { type: "message", role: "assistant", content: "try.", delta: true },
      { type: "tool_use", tool_name: "run_shell_command", tool_id: "c1", parameters: { command: "rm -rf /" } },
      { type: "tool_result", tool_id: "c1", status: "error", error: { type: "policy_violation", message: "Tool execution denied by policy." } },
      { type: "message", role: "assistant", content: "Done", delta: true },
      { type: "message", role: "assistant", content: " here.", delta: true },
      { type: "result", status: "success", stats: { input_tokens: 10, output_tokens: 2, cached: 4, input: 6, models: { "gemini-2.5-flash": { total_tokens: 12, input_tokens: 10, output_tokens: 2, cached: 4, input: 6 } } } }
    ]
    const output = Either.getOrThrow(outcome(run(0, lines.map((l) => JSON.stringify(l)).join("\n"))))
    assert.strictEqual(output.summary, "Done here.")
    assert.strictEqual(output.sessionId, "s-1")
    assert.strictEqual(output.model, "gemini-2.5-flash")
    assert.deepStrictEqual(output.permissionDenials, ["run_shell_command rm -rf /: Tool execution denied by policy."])
    assert.deepStrictEqual([output.usage?.inputTokens, output.usage?.outputTokens, output.usage?.cacheReadTokens], [6, 2, 4])
  })
})
