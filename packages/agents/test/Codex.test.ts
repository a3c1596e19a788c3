/**
 * The codex backend on the real `codex` binary (0.169.0), offline: codex talks to a scripted
 * OpenAI Responses server on 127.0.0.1 through braid's model provider, with a throwaway HOME
 * and a planted fake key. Attempts alone, and a whole run over a real git repository.
 */
import { Agent, GitWorkspace, Orchestrator, Plan, Process, Progress, type RunReport } from "@braid/core"
import { Harness, OpenAiServer, ScriptedServer } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Codex from "../src/Codex.js"
import * as Registry from "../src/Registry.js"
import * as Drivers from "./contract/Drivers.js"

const KEY = "sk-test-PLANTED-0000"
const MODEL = "gpt-braid-test"

// ---------------------------------------------------------------------------------------------
// Setup

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** The variables codex would see from braid's own environment, set for one test and restored after. */
const useEnv = (vars: Readonly<Record<string, string | undefined>>) => {
  const names = ["HOME", "CODEX_HOME", "OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL", ...Object.keys(vars)]
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

/** A throwaway HOME, with the key in the environment and (when asked) a codex login in `~/.codex`. */
const home = (options: { readonly key?: boolean; readonly login?: boolean } = {}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("braid-codex-home-")
    if (options.login === true) {
      fs.mkdirSync(path.join(dir, ".codex"))
      fs.writeFileSync(path.join(dir, ".codex", "auth.json"), JSON.stringify({ OPENAI_API_KEY: "sk-test-PLANTED-0001" }))
    }
    yield* useEnv({ HOME: dir, OPENAI_API_KEY: options.key === false ? undefined : KEY })
    return dir
  })

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

const tempRepo = Effect.map(tempDir("braid-codex-repo-"), (repo) => {
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), "shop\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return repo
})

// ---------------------------------------------------------------------------------------------
// The scripted model

type Turn = ScriptedServer.Turn
type InputItem = { readonly type?: string; readonly role?: string; readonly call_id?: string }

const inputOf = (raw: unknown): ReadonlyArray<InputItem> => (raw as { input?: ReadonlyArray<InputItem> }).input ?? []

/** The id of the tool call whose output a request ends with. */
const answeredCallId = (raw: unknown): string | undefined => {
  const last = inputOf(raw).at(-1)
  return last?.type === "function_call_output" ? last.call_id : undefined
}

/**
 * A model that plays one flow of turns per prompt: `pick` chooses the flow from the prompt,
 * and each tool output moves it one turn on (call ids carry the flow and step).
 */
const flows = (pick: (prompt: string) => readonly [name: string, turns: ReadonlyArray<Turn>]): ScriptedServer.Responder => {
  const chosen = new Map<string, ReadonlyArray<Turn>>()
  const step = (flow: string, n: number): Turn => {
    const turn = chosen.get(flow)![n] ?? { text: "Done." }
    return turn.toolCalls === undefined ? turn : { ...turn, toolCalls: turn.toolCalls.map((c, k) => ({ ...c, id: `call_${flow}_${n}_${k}` })) }
  }
  return (conversation) => {
    const answered = /^call_([A-Za-z0-9]+)_(\d+)_\d+$/.exec(answeredCallId(conversation.raw) ?? "")
    if (answered !== null && chosen.has(answered[1]!)) return step(answered[1]!, Number(answered[2]) + 1)
    const [name, turns] = pick(conversation.lastUserText)
    chosen.set(name, turns)
    return step(name, 0)
  }
}

/** A shell command through codex's `exec_command` tool. */
const shell = (cmd: string, usage?: Turn["usage"]): Turn => ({ toolCalls: [{ name: "exec_command", input: { cmd } }], ...(usage ? { usage } : {}) })

/** The model-turn requests that opened an attempt of `taskId` (the prompt, not a tool output). */
const promptsOf = (server: ScriptedServer.Server, taskId: string) =>
  server.requests.filter((r) =>
    r.conversation !== undefined && answeredCallId(r.body) === undefined && r.conversation.lastUserText.includes(`## Your task: ${taskId} `)
  )

const turnsOf = (server: ScriptedServer.Server) => server.requests.filter((r) => r.conversation !== undefined)

// ---------------------------------------------------------------------------------------------
// Runs

const planOf = (server: ScriptedServer.Server, input: Record<string, unknown>, settings: Record<string, unknown> = {}) =>
  Plan.decode({
    projectName: "shop",
    featureName: "checkout-flow",
    qualityThreshold: 80,
    maxParallel: 2,
    agent: "codex",
    agents: { codex: { baseUrl: server.url, model: MODEL, timeoutSeconds: 60, ...settings } },
    prices: { [MODEL]: { input: 1, output: 2, cacheRead: 0.5 } },
    limits: { openai: { backoffSeconds: 0.1 } },
    ...input
  })

const onePlan = (server: ScriptedServer.Server, settings: Record<string, unknown> = {}) =>
  planOf(server, {
    streams: [{ name: "api", type: "api", scope: "src/api/" }],
    tasks: [{ id: "api-1", title: "Checkout endpoint", stream: "api" }]
  }, settings)

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
    const agent = yield* Codex.make({ plan, settings: plan.agents.codex! })
    const { notes, request } = Harness.firstAttempt(plan, worktree, overrides)
    const outcome = yield* Effect.either(agent.attempt(request))
    return { outcome, notes, request }
  }).pipe(Effect.provide(NodeContext.layer))

/** A run folder's worktree (a real git repository), as GitWorkspace lays it out. */
const worktreeIn = (repo: string, stream: string) => {
  const dir = path.join(repo, ".braid", "runs", "r1", "worktrees", stream)
  fs.mkdirSync(dir, { recursive: true })
  git(dir, "init", "-q")
  return dir
}

const sessionsOf = (notes: ReadonlyArray<Agent.AttemptNote>) =>
  notes.flatMap((n) => (n._tag === "Session" ? [n.sessionId] : []))

const errorOf = (outcome: Either.Either<Agent.AttemptOutput, Agent.AttemptError>): Agent.AttemptError => {
  if (Either.isRight(outcome)) return assert.fail(`the attempt succeeded: ${outcome.right.summary}`)
  return outcome.left
}

const outputOf = (outcome: Either.Either<Agent.AttemptOutput, Agent.AttemptError>): Agent.AttemptOutput => {
  if (Either.isLeft(outcome)) return assert.fail(`the attempt failed: ${outcome.left._tag}: ${outcome.left.message}`)
  return outcome.right
}

// ---------------------------------------------------------------------------------------------

describe("codex backend (real codex, scripted server)", () => {
  it.scopedLive("an attempt whose model runs a shell command leaves the file in the worktree and reports thread, turns, tokens and cost", () =>
    Effect.gen(function*() {
      const homeDir = yield* home({ login: true })
      const repo = yield* tempDir("braid-codex-one-")
      const usage = { inputTokens: 70, cacheReadTokens: 30, outputTokens: 20 }
      const server = yield* ScriptedServer.start(
        OpenAiServer.provider,
        flows(() => ["one", [shell("mkdir -p src/api && printf 'export const v = 1\\n' > src/api/checkout.js", usage), { text: "Added the checkout module.", usage }]])
      )
      const plan = yield* onePlan(server)
      const worktree = worktreeIn(repo, "api")
      const { notes, outcome } = yield* attemptIn(worktree, plan)
      const output = outputOf(outcome)
      assert.strictEqual(fs.readFileSync(path.join(worktree, "src/api/checkout.js"), "utf8"), "export const v = 1\n")
      assert.strictEqual(output.summary, "Added the checkout module.")
      assert.strictEqual(output.turns, 1)
      assert.strictEqual(output.model, MODEL)
      // Two model requests of 100 prompt tokens (30 cached) and 20 output tokens each.
      assert.deepStrictEqual(
        [output.usage?.inputTokens, output.usage?.cacheReadTokens, output.usage?.outputTokens],
        [140, 60, 40]
      )
      assert.closeTo(output.usage?.costUsd ?? 0, (140 * 1 + 60 * 0.5 + 40 * 2) / 1e6, 1e-12)
      // The thread codex opened was journaled as it started, and it is the attempt's session.
      assert.match(output.sessionId ?? "", /^[0-9a-f-]{36}$/)
      assert.deepStrictEqual(sessionsOf(notes), [output.sessionId])
      assert.isTrue(notes.some((n) => n._tag === "Process"))
      // The prompt reached the model whole; codex offered its shell tool.
      const first = turnsOf(server)[0]!
      assert.include(first.conversation!.lastUserText, "## Your task: api-1 — Checkout endpoint")
      assert.include(first.conversation!.tools, "exec_command")
      assert.strictEqual(first.conversation!.model, MODEL)
      // The stream's own codex home, beside the worktrees: the session is there, the user's login linked in.
      const codexHome = path.join(repo, ".braid", "runs", "r1", "codex", "api")
      assert.isTrue(
        (fs.readdirSync(path.join(codexHome, "sessions"), { recursive: true, encoding: "utf8" })).some((f) => f.endsWith(`${output.sessionId}.jsonl`))
      )
      assert.strictEqual(fs.readlinkSync(path.join(codexHome, "auth.json")), path.join(homeDir, ".codex", "auth.json"))
      assert.isFalse(fs.existsSync(path.join(homeDir, ".codex", "sessions")))
      // The key went to the server and nowhere into what braid reports.
      assert.strictEqual(first.headers.authorization, `Bearer ${KEY}`)
      assert.notInclude(JSON.stringify(output), KEY)
    }))

  it.scopedLive("a 429 or an unreachable server is ProviderBusy at once (codex's own retries are off); a refused key is unavailable; a usage limit says when it resets", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempDir("braid-codex-busy-")
      const worktree = worktreeIn(repo, "api")
      const resetsAt = new Date(Math.ceil(Date.now() / 60_000) * 60_000 + 3 * 3600 * 1000)
      let answer: Turn = { error: { status: 429, message: "Rate limit reached for requests", retryAfterSeconds: 7 } }
      const server = yield* ScriptedServer.start(OpenAiServer.provider, () => answer)
      const plan = yield* onePlan(server)

      const busy = errorOf((yield* attemptIn(worktree, plan)).outcome)
      assert.strictEqual(busy._tag, "ProviderBusy")
      assert.strictEqual((busy as Agent.ProviderBusy).provider, "openai")
      assert.match(busy.message, /429/)
      assert.strictEqual(turnsOf(server).length, 1)

      answer = { error: { status: 401, message: `Incorrect API key provided: ${KEY}.` } }
      const refused = errorOf((yield* attemptIn(worktree, plan)).outcome)
      assert.strictEqual(refused._tag, "AgentFailed")
      assert.strictEqual((refused as Agent.AgentFailed).reason, "unavailable")
      assert.match(refused.message, /OPENAI_API_KEY/)
      assert.notInclude(refused.message, KEY)

      answer = {
        error: {
          status: 429,
          type: "usage_limit_reached",
          message: "The usage limit has been reached",
          body: { plan_type: "plus", resets_at: resetsAt.getTime() / 1000 }
        }
      }
      const limited = errorOf((yield* attemptIn(worktree, plan)).outcome)
      assert.strictEqual(limited._tag, "UsageLimitReached")
      assert.strictEqual((limited as Agent.UsageLimitReached).resetsAt, resetsAt.toISOString())

      // Nothing listening: codex gives up at once (no endless reconnecting), and braid backs off.
      const unreachable = errorOf((yield* attemptIn(worktree, yield* onePlan(server, { baseUrl: "http://127.0.0.1:1" }))).outcome)
      assert.strictEqual(unreachable._tag, "ProviderBusy")
      assert.match(unreachable.message, /Connection failed/)
    }))

  it.scopedLive("a failed turn is a failure: the request refused (400), the response broken off, or turn.failed at exit 0", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempDir("braid-codex-failed-")
      const worktree = worktreeIn(repo, "api")
      let answer: Turn = { error: { status: 400, message: "Unsupported parameter: 'reasoning.summary'" } }
      const server = yield* ScriptedServer.start(OpenAiServer.provider, () => answer)
      const plan = yield* onePlan(server)

      const refused = errorOf((yield* attemptIn(worktree, plan)).outcome)
      assert.strictEqual(refused._tag, "AgentFailed")
      assert.strictEqual((refused as Agent.AgentFailed).reason, "failed")
      assert.include(refused.message, "Unsupported parameter: 'reasoning.summary'")

      // HTTP 200, then `response.failed`: codex reports the stream broken off, which braid retries.
      answer = { error: { status: 200, type: "server_error", message: "the model broke off" } }
      const broken = errorOf((yield* attemptIn(worktree, plan)).outcome)
      assert.strictEqual(broken._tag, "ProviderBusy")
      assert.include(broken.message, "the model broke off")

      // codex has been seen ending a failed turn with exit 0: still a failure.
      const stdout = [
        { type: "thread.started", thread_id: "t-1" },
        { type: "turn.started" },
        { type: "item.completed", item: { id: "i", type: "agent_message", text: "Half done." } },
        { type: "turn.failed", error: { message: "the model produced an invalid tool call" } }
      ].map((l) => JSON.stringify(l)).join("\n")
      const run: Process.Result = { exitCode: 0, stdout, stderr: "", timedOut: false, durationMs: 5 }
      const outcome = Codex.outcomeOf(run, Codex.transcriptOf(stdout), {
        taskId: "api-1",
        timeoutMs: 1000,
        resumed: undefined,
        baseline: { input: 0, cached: 0, output: 0 },
        model: MODEL,
        prices: {},
        secrets: []
      })
      assert.isTrue(Either.isLeft(outcome))
      const failed = (outcome as Either.Left<Agent.AgentFailed, unknown>).left
      assert.strictEqual(failed._tag, "AgentFailed")
      assert.include(failed.message, "the model produced an invalid tool call")
    }))

  it.scopedLive("a retry with a session resumes codex's thread (the model sees the earlier conversation); an unknown thread starts afresh", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempDir("braid-codex-resume-")
      const worktree = worktreeIn(repo, "api")
      const server = yield* ScriptedServer.start(
        OpenAiServer.provider,
        flows((prompt) =>
          prompt.includes("FIRST")
            ? ["first", [shell("printf 'v1\\n' > notes.txt"), { text: "Wrote v1." }]]
            : ["again", [shell("printf 'v2\\n' > notes.txt"), { text: "Now v2." }]]
        )
      )
      const plan = yield* onePlan(server)
      const task = plan.streams[0]!.tasks[0]!
      const first = outputOf((yield* attemptIn(worktree, plan, { userNote: "FIRST" })).outcome)
      const thread = first.sessionId!

      const { notes, outcome, request } = yield* attemptIn(worktree, plan, { attempt: 2, session: thread })
      const second = outputOf(outcome)
      assert.strictEqual(second.sessionId, thread)
      assert.deepStrictEqual(sessionsOf(notes), [thread])
      assert.strictEqual(fs.readFileSync(path.join(worktree, "notes.txt"), "utf8"), "v2\n")
      // The second attempt's first request carried the first attempt's conversation.
      const opened = promptsOf(server, task.id)
      assert.strictEqual(opened.length, 2)
      const history = JSON.stringify(inputOf(opened[1]!.body))
      assert.include(history, "Wrote v1.")
      assert.include(history, "call_first_0_0")
      // It counts its own tokens only: two requests of 100 in and 20 out, not the thread's total.
      assert.deepStrictEqual([second.usage?.inputTokens, second.usage?.outputTokens], [200, 40])
      assert.strictEqual(request.attempt, 2)

      // A thread this codex home never had: a fresh one, journaled.
      const fresh = yield* attemptIn(worktree, plan, { attempt: 3, session: "01a210b3-0000-7000-8000-000000000000" })
      const third = outputOf(fresh.outcome)
      assert.notStrictEqual(third.sessionId, thread)
      assert.deepStrictEqual(sessionsOf(fresh.notes), [third.sessionId])
    }))

  it.scopedLive("a run over git: the check fails once, the retry continues the thread, and the work is merged and landed", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempRepo
      const server = yield* ScriptedServer.start(
        OpenAiServer.provider,
        flows((prompt) =>
          prompt.includes("This is attempt 2 of 3")
            ? ["two", [shell("printf 'v2\\n' > notes.txt"), { text: "Now v2." }]]
            : ["one", [shell("printf 'v1\\n' > notes.txt"), { text: "Wrote v1." }]]
        )
      )
      const plan = yield* planOf(server, {
        streams: [{ name: "docs", type: "docs" }],
        tasks: [{
          id: "docs-1",
          title: "Notes",
          stream: "docs",
          checks: [["node", "-e", "if (require('fs').readFileSync('notes.txt', 'utf8') !== 'v2\\n') { console.error('notes.txt is not v2'); process.exit(1) }"]]
        }]
      })
      const { outcome } = yield* runPlan(repo, plan)
      const report = reportOf(outcome)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(fs.readFileSync(path.join(repo, "notes.txt"), "utf8"), "v2\n")
      const task = taskOf(report, "docs-1")
      assert.deepStrictEqual(task.attempts.map((a) => a.review?.passes), [false, true])
      const [one, two] = task.attempts.map((a) => a.agent!)
      assert.isString(one!.sessionId)
      assert.strictEqual(two!.sessionId, one!.sessionId)
      assert.isAbove(task.attempts[1]!.agent?.costUsd ?? 0, 0)
      const opened = promptsOf(server, "docs-1")
      assert.strictEqual(opened.length, 2)
      assert.include(JSON.stringify(inputOf(opened[1]!.body)), "Wrote v1.")
      assert.include(opened[1]!.conversation!.lastUserText, "notes.txt is not v2")
      // The stream's codex home sits in the run folder, which git does not see.
      assert.isTrue(fs.existsSync(path.join(repo, ".braid", "runs", "r1", "codex", "docs", "sessions")))
      assert.strictEqual(git(repo, "status", "--porcelain"), "")
    }))

  it.scopedLive("a write outside the worktree is stopped by codex's sandbox and recorded as a denial; a hanging server is cut off at the timeout", () =>
    Effect.gen(function*() {
      yield* home()
      const repo = yield* tempDir("braid-codex-sandbox-")
      // Outside the worktree, in the main checkout (under /tmp here, which codex's own default would let it write).
      const outside = path.join(repo, "escape.txt")
      let hang = false
      const model = flows(() => ["esc", [shell(`printf 'escaped\\n' > ${outside}`), { text: "Wrote the notes." }]])
      const server = yield* ScriptedServer.start(OpenAiServer.provider, (c, i) => (hang ? { hang: true } : model(c, i)))
      const worktree = worktreeIn(repo, "api")

      const output = outputOf((yield* attemptIn(worktree, yield* onePlan(server))).outcome)
      assert.isFalse(fs.existsSync(outside))
      assert.deepStrictEqual(output.permissionDenials, [`printf 'escaped\\n' > ${outside}`])

      hang = true
      // Long enough for codex to reach the server, where it hangs (once more, longer, on a machine too busy for that).
      const { limit, outcome, request } = yield* Drivers.hangAtModel(
        8,
        (timeoutSeconds) => Effect.flatMap(onePlan(server, { timeoutSeconds }), (plan) => attemptIn(worktree, plan)),
        () => Drivers.hungAt(server)
      )
      const error = errorOf(outcome)
      assert.strictEqual(error._tag, "AgentFailed")
      assert.strictEqual((error as Agent.AgentFailed).reason, "timeout")
      assert.include(error.message, `${limit} s`)
      assert.isTrue(Drivers.hungAt(server), `codex had reached the server within ${limit} s`)
      const marker = `BRAID_AGENT=${request.runId}/${request.stream.name}/${request.task.id}/${request.attempt}`
      const left = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/environ`, "latin1").split("\0").includes(marker)
        } catch {
          return false
        }
      })
      assert.deepStrictEqual(left, [])
    }))

  it("a stream's codex home sits in the run's folder, wherever the checkout is (beside an old-layout checkout without one)", () => {
    const stream = { name: "api" } as Agent.AttemptRequest["stream"]
    const outside = { ...Harness.directoryFiles("/cache/braid/worktrees/repo-0a1b/r1/api"), runDir: "/repo/.braid/runs/r1" }
    assert.strictEqual(Codex.codexHomeOf({ runId: "r1", stream, files: outside }), "/repo/.braid/runs/r1/codex/api")
    const old = Harness.directoryFiles("/repo/.braid/runs/r1/worktrees/api")
    assert.strictEqual(Codex.codexHomeOf({ runId: "r1", stream, files: old }), "/repo/.braid/runs/r1/codex/api")
  })

  it("the argv: a new or resumed thread, the prompt after `--` (or on stdin when long), braid's provider for a custom base, never a sandbox braid refuses", () => {
    const settings = new Codex.Settings({ model: "m1", permissionMode: "danger-full-access" })
    const base = Codex.baseUrlOf(new Codex.Settings({}), { OPENAI_BASE_URL: "http://127.0.0.1:9/" })
    assert.strictEqual(base, "http://127.0.0.1:9/v1")
    const fresh = Codex.argvOf(["codex"], settings, { worktree: "/w", thread: { _tag: "New" }, prompt: "-starts with a dash", baseUrl: base, keyInEnv: true })
    assert.deepStrictEqual(fresh.argv.slice(0, 8), ["codex", "exec", "--json", "-s", "workspace-write", "-C", "/w", "--skip-git-repo-check"])
    assert.deepStrictEqual(fresh.argv.slice(-2), ["--", "-starts with a dash"])
    assert.isUndefined(fresh.stdin)
    const config = fresh.argv.join(" ")
    assert.include(config, "model_provider=braid")
    assert.include(config, `base_url="http://127.0.0.1:9/v1"`)
    assert.include(config, `env_key="OPENAI_API_KEY"`)
    assert.include(config, "request_max_retries=0")
    assert.include(config, "stream_max_retries=0")
    assert.include(config, "features.unbounded_connection_retries=false")
    assert.notInclude(config, "danger-full-access")

    const long = "x".repeat(Codex.PROMPT_ARG_LIMIT + 1)
    const resumed = Codex.argvOf(["codex"], settings, { worktree: "/w", thread: { _tag: "Resume", id: "t-1" }, prompt: long, baseUrl: undefined, keyInEnv: false })
    assert.deepStrictEqual(resumed.argv.slice(-3), ["resume", "t-1", "-"])
    assert.strictEqual(resumed.stdin, long)
    assert.notInclude(resumed.argv.join(" "), "model_provider")
  })

  it("a refused command reads as the model wrote it, not as codex's shell line", () => {
    assert.strictEqual(Codex.describeCommand(`/bin/bash -lc "printf 'a\\\\n' > \\"x y\\""`), `printf 'a\\n' > "x y"`)
    assert.strictEqual(Codex.describeCommand(`/bin/bash -lc 'echo '\\''hi'\\'' > /etc/x'`), `echo 'hi' > /etc/x`)
    assert.strictEqual(Codex.describeCommand("touch /etc/x"), "touch /etc/x")
  })

  it("a usage limit's reset time as codex words it", () => {
    const now = new Date(2026, 10, 25, 3, 13)
    assert.strictEqual(Codex.resetsAtOf("…or try again at 4:01 AM.", now), new Date(2026, 10, 25, 4, 1).toISOString())
    assert.strictEqual(Codex.resetsAtOf("…or try again at 2:05 AM.", now), new Date(2026, 10, 26, 2, 5).toISOString())
    assert.strictEqual(Codex.resetsAtOf("…or try again at Nov 29th, 2026 6:20 PM.", now), new Date(2026, 10, 29, 18, 20).toISOString())
    assert.isUndefined(Codex.resetsAtOf("You've hit your usage limit. Try again later.", now))
  })

  it.scopedLive("preflight: codex found and running, a key or a login, no sandbox switched off", () =>
    Effect.gen(function*() {
      const homeDir = yield* home({ key: false })
      const server = yield* ScriptedServer.start(OpenAiServer.provider, () => ({ text: "hi" }))
      const check = (settings: Record<string, unknown> = {}) =>
        Effect.gen(function*() {
          const plan = yield* onePlan(server, settings)
          return yield* Codex.preflight({
            plan,
            streams: plan.streams.map((stream, index) => ({ index, stream })),
            settings: plan.agents.codex!,
            path: "agent",
            workspaceKind: "git"
          })
        }).pipe(Effect.provide(NodeContext.layer))

      const noLogin = yield* check()
      assert.strictEqual(noLogin.length, 1)
      assert.match(noLogin[0]!.message, /no OpenAI key or login/)

      fs.mkdirSync(path.join(homeDir, ".codex"))
      fs.writeFileSync(path.join(homeDir, ".codex", "auth.json"), "{}")
      assert.deepStrictEqual(yield* check(), [])

      const refused = yield* check({ permissionMode: "danger-full-access", args: ["--dangerously-bypass-approvals-and-sandbox"] })
      assert.deepStrictEqual(refused.map((p) => p.path), ["agents.codex.permissionMode", "agents.codex.args"])

      const missing = yield* check({ command: "/nonexistent/codex" })
      assert.deepStrictEqual(missing.map((p) => p.path), ["agents.codex.command"])
    }))
})
