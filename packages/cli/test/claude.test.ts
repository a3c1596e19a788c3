/**
 * The "done when" items for claude-code, tried as a user would: the built `braid`
 * (a child process) runs plans whose streams say `agent: claude-code` on the real `claude`
 * binary, which talks to a scripted Anthropic server on 127.0.0.1 run by this test process,
 * with a throwaway HOME and a planted fake key.
 *
 * A hanging server cut off at `agents.claude-code.timeoutSeconds` is not repeated here: the
 * agents package's ClaudeCode test drives the same backend attempt and `runAttempt` (the code
 * that times out and ends the attempt's processes) and checks no process with the attempt's
 * marker is left.
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { worktreesOf } from "./support/Braid.js"

const root = path.resolve(__dirname, "../../..")
const bin = path.join(root, "packages/cli/dist/bin.js")

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8", maxBuffer: 64 << 20 }).trim()

interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * The built CLI as a child, asynchronously: the scripted server answers from this process's
 * event loop, so it must stay free while braid runs.
 */
const braid = (args: ReadonlyArray<string>, env: Record<string, string>, started?: (child: ReturnType<typeof spawn>) => void) =>
  new Promise<Outcome>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    started?.(child)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

/** braid's environment: this one without any Anthropic, claude or braid variable, a throwaway HOME, claude on PATH. */
const envOf = (home: string, vars: Record<string, string>): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(ANTHROPIC_|CLAUDE_|BRAID_)/.test(k)) env[k] = v
  return { ...env, HOME: home, PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${env.PATH ?? ""}`, ...vars }
}

/** A temp folder with a one-commit repository and an empty HOME. */
const setup = () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-cli-claude-")))
  const repo = path.join(dir, "repo")
  const home = path.join(dir, "home")
  fs.mkdirSync(repo)
  fs.mkdirSync(home)
  fs.writeFileSync(path.join(repo, "README.md"), "shop\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return { dir, repo, home, plan: path.join(dir, "plan.yaml") }
}

/** A plan in the seed's shape with claude-code for every stream (JSON is YAML). */
const writePlan = (file: string, input: Record<string, unknown>, settings: Record<string, unknown> = {}) =>
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        projectName: "shop",
        featureName: "checkout-flow",
        qualityThreshold: 80,
        maxParallel: 2,
        agent: "claude-code",
        agents: { "claude-code": { timeoutSeconds: 60, ...settings } },
        limits: { anthropic: { backoffSeconds: 0.1 } },
        ...input
      },
      null,
      2
    )
  )

const runIdOf = (repo: string) => fs.readdirSync(path.join(repo, ".braid", "runs")).sort().at(-1)!

/** Running, not merely an unreaped zombie. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, "utf8") : ""
  return !/^\d+ \(.*\) Z/.test(stat)
}

/** Processes whose `BRAID_AGENT` marker belongs to the run. */
const markedBy = (runId: string): Array<{ pid: number; marker: string; command: string }> =>
  fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      const marker = fs.readFileSync(`/proc/${p}/environ`, "latin1").split("\0").find((v) => v.startsWith(`BRAID_AGENT=${runId}/`))
      if (marker === undefined || !alive(Number(p))) return []
      const command = fs.readFileSync(`/proc/${p}/cmdline`, "latin1").split("\0").join(" ").trim()
      return [{ pid: Number(p), marker: marker.slice("BRAID_AGENT=".length), command }]
    } catch {
      return []
    }
  })

const killAll = (pids: ReadonlyArray<number>) => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {}
  }
}

const until = async (what: string, ok: () => boolean, timeoutMs = 45_000) => {
  const end = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

// ---------------------------------------------------------------------------------------------
// The scripted model

type Turn = ScriptedServer.Turn

type Block = { type?: string; tool_use_id?: string; is_error?: boolean; content?: unknown; id?: string; name?: string }
const lastUserBlocks = (raw: unknown): ReadonlyArray<Block> => {
  const last = (raw as { messages?: ReadonlyArray<{ role?: string; content?: unknown }> }).messages?.at(-1)
  return last?.role === "user" && Array.isArray(last.content) ? last.content as ReadonlyArray<Block> : []
}

/** The id of the tool call whose result a request ends with. */
const answeredToolId = (raw: unknown): string | undefined => lastUserBlocks(raw).find((b) => b.type === "tool_result")?.tool_use_id

/** Every tool result the server was sent for the call `id`. */
const resultsOf = (server: ScriptedServer.Server, id: string): Array<Block> =>
  server.requests.flatMap((r) => r.conversation === undefined ? [] : lastUserBlocks(r.body).filter((b) => b.type === "tool_result" && b.tool_use_id === id))

/**
 * A model that plays one flow of turns per attempt: `pick` chooses the flow from the prompt,
 * each tool result moves it one turn on; tool call ids are `toolu_<run>_<step>_<n>`, so none
 * repeats within a resumed session.
 */
const flows = (pick: (prompt: string) => ReadonlyArray<Turn>): ScriptedServer.Responder => {
  const runs: Array<ReadonlyArray<Turn>> = []
  const step = (run: number, n: number): Turn => {
    const turn = runs[run]![n] ?? { text: "Done." }
    return turn.toolCalls === undefined ? turn : { ...turn, toolCalls: turn.toolCalls.map((c, k) => ({ ...c, id: `toolu_${run}_${n}_${k}` })) }
  }
  return (conversation) => {
    const answered = /^toolu_(\d+)_(\d+)_\d+$/.exec(answeredToolId(conversation.raw) ?? "")
    if (answered !== null && runs[Number(answered[1])] !== undefined) return step(Number(answered[1]), Number(answered[2]) + 1)
    runs.push(pick(conversation.lastUserText))
    return step(runs.length - 1, 0)
  }
}

const write = (file_path: string, content: string): Turn => ({ toolCalls: [{ name: "Write", input: { file_path, content } }] })
const read = (file_path: string): Turn => ({ toolCalls: [{ name: "Read", input: { file_path } }] })
const bash = (command: string): Turn => ({ toolCalls: [{ name: "Bash", input: { command, description: "Run a command" } }] })

/** Model-turn requests that opened an attempt of `taskId` (its prompt, not a tool result). */
const promptsOf = (server: ScriptedServer.Server, taskId: string) =>
  server.requests.filter((r) =>
    r.conversation !== undefined && answeredToolId(r.body) === undefined && r.conversation.lastUserText.includes(`## Your task: ${taskId} `)
  )

const turnRequests = (server: ScriptedServer.Server) => server.requests.filter((r) => r.conversation !== undefined)

/** A check that fails with a readable line unless `file` contains `wanted`. */
const contains = (file: string, wanted: string) => [
  "node",
  "-e",
  `const t = require('fs').readFileSync('${file}', 'utf8'); if (!t.includes('${wanted}')) { console.error('${file} says ' + t.trim() + ', expected ${wanted}'); process.exit(1) }`
]

/** Every regular file under `dir`, recursively (symlinks not followed). */
const filesUnder = (dir: string): Array<string> =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).map((f) => path.join(dir, f)).filter((f) => fs.lstatSync(f).isFile())
    : []

// ---------------------------------------------------------------------------------------------

describe.skipIf(process.platform !== "linux")("braid on the real claude", () => {
  it("a seed-shaped plan runs end to end; a failed check is fixed in the same session; the planted key is found nowhere", async () => {
    const { dir, home, plan, repo } = setup()
    const secret = randomBytes(8).toString("hex")
    const KEY = `sk-ant-test-PLANTED-${secret}`
    const model = flows((prompt) =>
      prompt.includes("## Your task: api-1 ")
        ? /attempt 2 of 3/i.test(prompt)
          ? [read("src/api/checkout.js"), write("src/api/checkout.js", "module.exports = 'v2'\n"), { text: "Now it exports v2." }]
          : [write("src/api/checkout.js", "module.exports = 'v1'\n"), { text: "Wrote v1." }]
        : [write("src/ui/form.html", "<form>checkout</form>\n"), { text: "Added the form." }]
    )
    // A stream's worktree is removed once the stream is done: its files are read while claude works.
    const inWorktrees = new Map<string, string>()
    const server = await ScriptedServer.listen(AnthropicServer.provider, (conversation, index) => {
      const runs = path.join(repo, ".braid", "runs")
      for (const run of fs.existsSync(runs) ? fs.readdirSync(runs) : []) {
        for (const file of filesUnder(worktreesOf(repo, run))) inWorktrees.set(file, fs.readFileSync(file, "latin1"))
      }
      return model(conversation, index)
    })
    try {
      writePlan(plan, {
        streams: [
          { name: "api", type: "api", scope: "src/api/", priority: 1 },
          { name: "ui", type: "ui", scope: "src/ui/", priority: 2 }
        ],
        tasks: [
          {
            id: "api-1",
            title: "POST /checkout endpoint",
            stream: "api",
            streamType: "api",
            acceptanceCriteria: ["src/api/checkout.js exports v2"],
            checks: [contains("src/api/checkout.js", "v2")]
          },
          {
            id: "ui-1",
            title: "Checkout form page",
            stream: "ui",
            streamType: "ui",
            acceptanceCriteria: ["a form in src/ui/form.html"],
            checks: [contains("src/ui/form.html", "checkout")]
          }
        ],
        verify: [{ name: "both parts", command: ["node", "-e", "require('fs').accessSync('src/api/checkout.js'); require('fs').accessSync('src/ui/form.html')"] }]
      })
      const reportFile = path.join(dir, "r.md")
      const env = envOf(home, { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: server.url })
      const run = await braid(["run", plan, "--repo", repo, "--report", reportFile, "--json", "--keep-worktrees"], env)
      assert.strictEqual(run.code, 0, run.stderr)
      const report = JSON.parse(run.stdout)
      assert.strictEqual(report.status, "succeeded")
      assert.isTrue(report.mergeResult.landed)

      // The files claude's real Write calls made, committed by braid and landed on main.
      assert.strictEqual(git(repo, "show", "main:src/api/checkout.js"), "module.exports = 'v2'")
      assert.strictEqual(git(repo, "show", "main:src/ui/form.html"), "<form>checkout</form>")
      const writes = turnRequests(server).flatMap((r) => lastUserBlocks(r.body)).filter((b) => b.type === "tool_result")
      assert.isAtLeast(writes.length, 4, "claude ran the Write and Read calls and sent their results")
      assert.isTrue(writes.every((b) => b.is_error !== true), JSON.stringify(writes))
      const tasks = report.streamResults.flatMap((s: any) => s.results)
      const api = tasks.find((t: any) => t.taskId === "api-1")
      const ui = tasks.find((t: any) => t.taskId === "ui-1")
      assert.deepStrictEqual(api.attempts.map((a: any) => a.review?.passes), [false, true])
      assert.deepStrictEqual(api.attempts.map((a: any) => a.changedFiles), [["src/api/checkout.js"], ["src/api/checkout.js"]])
      assert.deepStrictEqual(ui.attempts.map((a: any) => a.changedFiles), [["src/ui/form.html"]])
      for (const a of [...api.attempts, ...ui.attempts]) {
        assert.match(git(repo, "cat-file", "-t", a.commit), /^commit$/)
      }
      assert.strictEqual(git(repo, "show", `${api.attempts[0].commit}:src/api/checkout.js`), "module.exports = 'v1'")

      // Attempt 2 continued attempt 1's session, and its prompt carried the failing check's output.
      const [first, second] = api.attempts.map((a: any) => a.agent)
      assert.isString(first.sessionId)
      assert.strictEqual(second.sessionId, first.sessionId)
      const prompts = promptsOf(server, "api-1")
      assert.strictEqual(prompts.length, 2)
      assert.deepStrictEqual(prompts.map((r) => r.headers["x-claude-code-session-id"]), [first.sessionId, first.sessionId])
      assert.include(prompts[1]!.conversation!.lastUserText, "src/api/checkout.js says module.exports = 'v1', expected v2")
      assert.notInclude(prompts[0]!.conversation!.lastUserText, "says module.exports")

      // Session, turns, tokens and cost per attempt; totals per task, stream and run.
      for (const a of [...api.attempts, ...ui.attempts]) {
        assert.strictEqual(a.agent.backend, "claude-code")
        assert.isString(a.agent.sessionId)
        assert.isAbove(a.agent.turns, 0)
        assert.isAbove(a.agent.inputTokens, 0)
        assert.isAbove(a.agent.outputTokens, 0)
        assert.isAbove(a.agent.costUsd, 0)
      }
      const sum = (xs: ReadonlyArray<any>, field: string) => xs.reduce((n: number, x: any) => n + x[field], 0)
      for (const t of tasks) {
        assert.strictEqual(t.usage.turns, sum(t.attempts.map((a: any) => a.agent), "turns"))
        assert.strictEqual(t.usage.inputTokens, sum(t.attempts, "inputTokens"))
        assert.closeTo(t.usage.costUsd, sum(t.attempts, "costUsd"), 1e-9)
      }
      for (const s of report.streamResults) {
        for (const field of ["turns", "inputTokens", "outputTokens", "costUsd"]) {
          assert.closeTo(s.usage[field], sum(s.results.map((t: any) => t.usage), field), 1e-9)
        }
      }
      for (const field of ["turns", "inputTokens", "outputTokens", "costUsd"]) {
        assert.closeTo(report.usage[field], sum(report.streamResults.map((s: any) => s.usage), field), 1e-9)
      }
      assert.isAbove(report.usage.turns, 0)
      const markdown = fs.readFileSync(reportFile, "utf8")
      assert.include(markdown, `session ${first.sessionId}`)
      assert.match(markdown, /\n\| 2 \| [^\n]*\| \d+ \| passes \|/)
      assert.match(markdown, /\| agent usage \| .*turns, \$\d/)

      // The key reached the server in its auth header, and nowhere else.
      assert.strictEqual(turnRequests(server)[0]!.headers["x-api-key"], KEY)
      const places: Array<[string, string]> = [["stdout", run.stdout], ["stderr", run.stderr], [reportFile, markdown]]
      const braidDir = path.join(repo, ".braid")
      const stored = filesUnder(braidDir)
      assert.isTrue(stored.some((f) => f.endsWith("journal.jsonl")))
      assert.isTrue(stored.some((f) => f.endsWith("report.json")))
      assert.isTrue(stored.some((f) => f.includes(`${path.sep}claude${path.sep}api${path.sep}`)), "the stream's claude home is searched")
      // The run's checkouts are outside the repository (kept: --keep-worktrees).
      const checkouts = worktreesOf(repo, runIdOf(repo))
      const kept = filesUnder(checkouts)
      assert.isTrue(kept.some((f) => f.startsWith(`${path.join(checkouts, "_integration", "src")}${path.sep}`)), "the integration worktree is searched")
      for (const file of [...filesUnder(dir), ...filesUnder(home), ...kept]) places.push([file, fs.readFileSync(file, "latin1")])
      const seen = [...inWorktrees.keys()].map((f) => path.relative(checkouts, f))
      assert.isTrue(seen.some((f) => f === path.join("api", "src", "api", "checkout.js")), seen.join(", "))
      for (const [file, text] of inWorktrees) places.push([`${file} (while claude worked)`, text])
      places.push(["git history", git(repo, "log", "--all", "-p")])
      server.requests.forEach((r, i) => {
        const { authorization: _a, "x-api-key": _k, ...headers } = r.headers
        places.push([`request ${i} (${r.path})`, JSON.stringify([r.body, headers])])
      })
      const leaks = places.filter(([, text]) => text.includes(secret)).map(([where]) => where)
      assert.deepStrictEqual(leaks, [], "the planted key (or its tail) was found")
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it("a usage limit pauses the run (exit 75) with its reset time and the resume command; braid resume completes it", async () => {
    const { dir, home, plan, repo } = setup()
    const TOKEN = `sk-ant-oat01-test-PLANTED-${randomBytes(8).toString("hex")}`
    const resetsAt = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3 * 3600 * 1000)
    let limited = true
    const model = flows((prompt) =>
      prompt.includes("## Your task: docs-1 ") ? [write("docs/notes.md", "notes\n"), { text: "Wrote notes." }] : [write("docs/faq.md", "faq\n"), { text: "Wrote the FAQ." }]
    )
    const server = await ScriptedServer.listen(AnthropicServer.provider, (conversation, index) => {
      if (!limited) return model(conversation, index)
      return { error: { status: 429, message: "Rate limited", headers: AnthropicServer.usageLimitHeaders("rejected", resetsAt) } }
    })
    try {
      writePlan(plan, {
        streams: [{ name: "docs", type: "docs", scope: "docs/", priority: 1 }],
        tasks: [
          { id: "docs-1", title: "Notes", stream: "docs", streamType: "docs", acceptanceCriteria: ["docs/notes.md"], checks: [["node", "-e", "require('fs').accessSync('docs/notes.md')"]] },
          { id: "docs-2", title: "FAQ", stream: "docs", streamType: "docs", acceptanceCriteria: ["docs/faq.md"], checks: [["node", "-e", "require('fs').accessSync('docs/faq.md')"]] }
        ]
      })
      const env = envOf(home, { CLAUDE_CODE_OAUTH_TOKEN: TOKEN, ANTHROPIC_BASE_URL: server.url })
      const paused = await braid(["run", plan, "--repo", repo, "--json"], env)
      assert.strictEqual(paused.code, 75, paused.stderr)
      const runId = runIdOf(repo)
      assert.match(paused.stderr, new RegExp(`run ${runId} paused: anthropic usage limit reached .*resets at ${resetsAt.toISOString()}`))
      assert.include(paused.stderr, `with: braid resume ${runId} --repo ${repo}`)
      assert.notInclude(paused.stdout + paused.stderr, TOKEN)
      // One request: a usage limit is not retried as a busy provider.
      assert.strictEqual(turnRequests(server).length, 1)
      assert.strictEqual(turnRequests(server)[0]!.headers.authorization, `Bearer ${TOKEN}`)

      // Nothing is marked failed: the run is paused, not finished.
      const status = await braid(["status", runId, "--repo", repo, "--json"], env)
      assert.strictEqual(status.code, 0, status.stderr)
      const state = JSON.parse(status.stdout)
      assert.notStrictEqual(state.status, "failed")
      assert.deepStrictEqual(state.streams[0].tasks.map((t: any) => t.status), [null, null])
      assert.strictEqual(state.next, `braid resume ${runId} --repo ${repo}`)

      limited = false
      const resumed = await braid(["resume", runId, "--repo", repo, "--json"], env)
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      const report = JSON.parse(resumed.stdout)
      assert.strictEqual(report.status, "succeeded")
      assert.isTrue(report.mergeResult.landed)
      assert.strictEqual(git(repo, "show", "main:docs/notes.md"), "notes")
      assert.strictEqual(git(repo, "show", "main:docs/faq.md"), "faq")
      // The limited request used no gate run: docs-1 passed on its one and only attempt 1.
      const first = report.streamResults[0].results.find((t: any) => t.taskId === "docs-1")
      assert.deepStrictEqual(first.attempts.map((a: any) => [a.attempt, a.review?.passes]), [[1, true]])
      assert.strictEqual(first.status, "completed")
      assert.notInclude(resumed.stdout + resumed.stderr, TOKEN)
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  /** A docs task whose claude first writes `stray.txt` into the main checkout with Bash, then its own notes. */
  const strayWriter = async () => {
    const rig = setup()
    const stray = path.join(rig.repo, "stray.txt")
    const server = await ScriptedServer.listen(
      AnthropicServer.provider,
      flows(() => [
        bash(`node -e "require('fs').writeFileSync('${stray}', 'x')"`),
        write("notes.txt", "inside\n"),
        { text: "Wrote the notes." }
      ])
    )
    writePlan(
      rig.plan,
      {
        streams: [{ name: "docs", type: "docs", scope: "docs/", priority: 1 }],
        tasks: [{ id: "docs-1", title: "Notes", stream: "docs", streamType: "docs", acceptanceCriteria: ["notes.txt"], checks: [["node", "-e", "require('fs').accessSync('notes.txt')"]] }]
      },
      { allowedTools: ["Bash(node:*)"] }
    )
    return { ...rig, server, stray }
  }

  it("unconfined (--sandbox off), a Bash write into the main checkout fails the attempt naming the file; nothing lands", async () => {
    const { dir, home, plan, repo, server, stray } = await strayWriter()
    try {
      const before = git(repo, "rev-parse", "main")
      const reportFile = path.join(dir, "r.md")
      const env = envOf(home, { ANTHROPIC_API_KEY: "sk-ant-test-PLANTED-0000", ANTHROPIC_BASE_URL: server.url })
      const run = await braid(["run", plan, "--repo", repo, "--sandbox", "off", "--json", "--report", reportFile], env)
      // claude did run the command (its Bash tool reported no error) and the file is there.
      const bashCall = turnRequests(server).flatMap((r) => lastUserBlocks(r.body)).find((b) => b.type === "tool_result")
      assert.isDefined(bashCall, "claude sent the Bash result back")
      assert.notStrictEqual(bashCall!.is_error, true, JSON.stringify(bashCall))
      assert.strictEqual(fs.readFileSync(stray, "utf8"), "x")

      assert.strictEqual(run.code, 1, run.stderr)
      const report = JSON.parse(run.stdout)
      assert.isFalse(report.mergeResult.landed)
      assert.strictEqual(git(repo, "rev-parse", "main"), before, "the target branch is unchanged")
      assert.notInclude(git(repo, "ls-tree", "-r", "--name-only", "main"), "notes.txt")
      const task = report.streamResults[0].results[0]
      assert.strictEqual(task.status, "failed")
      assert.match(task.error, /attempt 1 of task docs-1 changed files outside stream "docs"'s worktree: main checkout: stray\.txt/)
      // Nothing of the attempt was committed anywhere: not the stray, not what it wrote inside.
      const committed = git(repo, "log", "--all", "--format=", "--name-only").split("\n")
      assert.notInclude(committed, "stray.txt")
      assert.notInclude(committed, "notes.txt")
      const markdown = fs.readFileSync(reportFile, "utf8")
      assert.match(markdown, /docs-1[\s\S]*\*\*Error:\*\* [^\n]*main checkout: stray\.txt/)
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it("confined, the same Bash write is refused by the system and recorded as a denial; the task's own work lands", async () => {
    const { dir, home, plan, repo, server, stray } = await strayWriter()
    try {
      const env = envOf(home, { ANTHROPIC_API_KEY: "sk-ant-test-PLANTED-0000", ANTHROPIC_BASE_URL: server.url })
      const run = await braid(["run", plan, "--repo", repo, "--sandbox", "required", "--json"], env)
      // claude's Bash tool got the refusal back from the system, and told the model.
      const bashCall = turnRequests(server).flatMap((r) => lastUserBlocks(r.body)).find((b) => b.type === "tool_result")
      assert.strictEqual(bashCall?.is_error, true, JSON.stringify(bashCall))
      assert.include(JSON.stringify(bashCall), "EROFS")
      assert.isFalse(fs.existsSync(stray))
      assert.strictEqual(run.code, 0, run.stderr)
      const report = JSON.parse(run.stdout)
      assert.isTrue(report.mergeResult.landed)
      assert.strictEqual(git(repo, "show", "main:notes.txt"), "inside")
      const attempt = report.streamResults[0].results[0].attempts[0]
      assert.isTrue(attempt.agent.confined)
      assert.isTrue(attempt.agent.permissionDenials.some((d: string) => d.includes("stray.txt") && d.includes("refused")), JSON.stringify(attempt.agent.permissionDenials))
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it("confined, kill -9 of braid while claude waits on the model takes claude with it (no orphan to end)", async () => {
    const { dir, home, plan, repo } = setup()
    const server = await ScriptedServer.listen(AnthropicServer.provider, () => ({ hang: true }))
    try {
      writePlan(plan, {
        streams: [{ name: "docs", type: "docs", priority: 1 }],
        tasks: [{ id: "docs-1", title: "Notes", stream: "docs", streamType: "docs", checks: [["node", "-e", "require('fs').accessSync('notes.txt')"]] }]
      })
      const env = envOf(home, { ANTHROPIC_API_KEY: "sk-ant-test-PLANTED-0000", ANTHROPIC_BASE_URL: server.url })
      let claude: Array<{ pid: number; marker: string; command: string }> = []
      await braid(["run", plan, "--repo", repo, "--sandbox", "required"], env, (child) => {
        void until("claude's request to reach the server", () => server.inFlight().now > 0).then(() => {
          claude = markedBy(runIdOf(repo))
          child.kill("SIGKILL")
        }, () => child.kill("SIGKILL"))
      })
      assert.isAbove(claude.length, 0, "no process carried the run's BRAID_AGENT marker")
      await until("the confined claude to end with braid", () => claude.every((p) => !alive(p.pid)), 10_000)
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it("kill -9 of braid while claude waits on the model; braid resume ends the orphaned claude before its attempt runs again", async () => {
    const { dir, home, plan, repo } = setup()
    let hanging = true
    let orphans: Array<number> = []
    /** Whether each orphan was still running when the resumed attempt's claude first asked the model. */
    let seenAtResume: Array<boolean> | undefined
    const model = flows(() => [write("notes.txt", "done\n"), { text: "Wrote the notes." }])
    const server = await ScriptedServer.listen(AnthropicServer.provider, (conversation, index) => {
      if (hanging) return { hang: true }
      seenAtResume ??= orphans.map(alive)
      return model(conversation, index)
    })
    try {
      writePlan(plan, {
        streams: [{ name: "docs", type: "docs", priority: 1 }],
        tasks: [{ id: "docs-1", title: "Notes", stream: "docs", streamType: "docs", checks: [["node", "-e", "require('fs').accessSync('notes.txt')"]] }]
      })
      const env = envOf(home, { ANTHROPIC_API_KEY: "sk-ant-test-PLANTED-0000", ANTHROPIC_BASE_URL: server.url })
      let runId = ""
      let claude: Array<{ pid: number; marker: string; command: string }> = []
      // Unconfined: confined, claude dies with braid (its own process namespace; see the next test).
      const killed = await braid(["run", plan, "--repo", repo, "--sandbox", "off"], env, (child) => {
        void until("claude's request to reach the server", () => server.inFlight().now > 0).then(() => {
          runId = runIdOf(repo)
          claude = markedBy(runId)
          child.kill("SIGKILL") // braid alone: claude runs in a process group of its own
        }, () => child.kill("SIGKILL"))
      })
      assert.strictEqual(killed.signal, "SIGKILL", killed.stderr)
      orphans = claude.map((p) => p.pid)
      assert.isAbove(claude.length, 0, "no process carried the run's BRAID_AGENT marker")
      // claude itself, not the short-lived children it starts (git, a shell), whose paths may
      // hold "claude" too (this test's folder does).
      const isClaude = (p: { command: string }) => /(^|[\s/])claude(\s|$)/.test(p.command)
      assert.isTrue(claude.some(isClaude), JSON.stringify(claude))
      assert.isTrue(claude.every((p) => p.marker === `${runId}/docs/docs-1/1`))
      assert.isTrue(claude.filter(isClaude).every((p) => alive(p.pid)), "claude did not outlive braid: nothing to test")

      hanging = false
      const resumed = await braid(["resume", "--repo", repo, "--json"], env)
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      const claudePid = claude.find(isClaude)!.pid
      assert.match(resumed.stderr, new RegExp(`braid: ended process ${claudePid} \\(.*claude.*\\) left running by task docs-1 attempt 1`))
      // Gone before the resumed attempt's claude reached the model, and still gone.
      assert.isDefined(seenAtResume, "the resumed attempt never reached the model")
      assert.deepStrictEqual(seenAtResume, orphans.map(() => false))
      assert.deepStrictEqual(orphans.filter(alive), [])
      assert.deepStrictEqual(markedBy(runId), [])
      const report = JSON.parse(resumed.stdout)
      assert.strictEqual(report.status, "succeeded")
      assert.isTrue(report.mergeResult.landed)
      assert.strictEqual(git(repo, "show", "main:notes.txt"), "done")
    } finally {
      killAll(orphans)
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)
})
