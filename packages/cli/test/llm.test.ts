/**
 * The bundled example run as a user would with braid's own `llm` backend and the composite
 * reviewer: the built `braid` (a child process) against the demo's scripted model
 * (examples/checkout-flow/model.mjs) on 127.0.0.1, answering both the agents' tool loops and
 * the judge, through the real `@effect/ai` Anthropic client. And `braid plan` refusing a
 * judge without a key.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(__dirname, "../../..")
const bin = path.join(root, "packages/cli/dist/bin.js")
const plan = path.join(root, "examples/checkout-flow/plan.yaml")

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

const braid = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

const envOf = (vars: Record<string, string>): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(ANTHROPIC_|OPENAI_|CLAUDE_|BRAID_)/.test(k)) env[k] = v
  return { ...env, ...vars }
}

const exampleRepo = () => {
  const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-cli-llm-")))
  fs.cpSync(path.join(root, "examples/checkout-flow/project"), repo, { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "start")
  return repo
}

describe("braid run --agent llm --reviewer composite", () => {
  it("the bundled example lands, and the report shows each attempt's judge review with its issues", async () => {
    const repo = exampleRepo()
    const model = await (await import(path.join(root, "examples/checkout-flow/model.mjs"))).startLlm(repo) as {
      url: string
      requests: ReadonlyArray<{ body: unknown }>
      close: () => Promise<void>
    }
    try {
      const report = path.join(repo, "..", `${path.basename(repo)}-report.md`)
      const run = await braid(
        ["run", plan, "--repo", repo, "--agent", "llm", "--reviewer", "composite", "--report", report, "--json", "-q"],
        envOf({ ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: "sk-ant-test-PLANTED-5555" })
      )
      assert.strictEqual(run.code, 0, run.stderr)
      const json = JSON.parse(run.stdout) as {
        status: string
        mergeResult: { landed: boolean }
        streamResults: ReadonlyArray<{
          agent: string
          results: ReadonlyArray<{ taskId: string; attempts: ReadonlyArray<{ review: { reviewer: string; score: number; passes: boolean; samples: ReadonlyArray<{ score: number }>; findings: ReadonlyArray<{ severity: string; file: string | null; message: string }> } }> }>
        }>
      }
      assert.strictEqual(json.status, "succeeded")
      assert.isTrue(json.mergeResult.landed)
      const attempts = json.streamResults.flatMap((s) => s.results.flatMap((t) => t.attempts.map((a) => ({ taskId: t.taskId, ...a.review }))))
      assert.strictEqual(attempts.length, 6)
      for (const a of attempts) {
        assert.strictEqual(a.reviewer, "composite")
        assert.deepStrictEqual(a.samples.map((s) => s.score), [92])
        assert.strictEqual(a.findings[0]!.severity, "minor")
        assert.include(a.findings[0]!.message, a.taskId)
      }
      // api-1's first attempt fails its check: the judge's 92 does not pass it.
      const api = attempts.filter((a) => a.taskId === "api-1")
      assert.deepStrictEqual(api.map((a) => a.passes), [false, true])
      assert.isTrue(json.streamResults.every((s) => s.agent === "llm"))
      // The landed code is the agents' work, made through braid's confined tools.
      assert.include(git(repo, "show", "main:src/api/checkout.js"), "checkout")
      const markdown = fs.readFileSync(report, "utf8")
      assert.match(markdown, /\n\| 1 \| [^\n]*\| 0 \| below threshold → retried \|/)
      assert.include(markdown, "**Attempt 1** judge: score 92 · claude-sonnet-4-5")
      assert.include(markdown, "- [minor] src/api/checkout.js: api-1: a comment on why this is done this way would help the next reader")
      assert.include(markdown, "- attempt 1: llm · claude-sonnet-4-5 · session")
      // Agents and judges both went to the scripted model; the key never reached the report.
      assert.isAbove(model.requests.filter((r) => (r.body as { tool_choice?: { type?: string } }).tool_choice?.type === "tool").length, 5)
      assert.notInclude(markdown + run.stdout + run.stderr, "PLANTED")
    } finally {
      await model.close()
      fs.rmSync(repo, { recursive: true, force: true })
    }
  }, 90_000)

  it("braid plan refuses a judge with no key and an llm agent with no model, naming where", async () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-cli-llm-plan-")))
    try {
      const file = path.join(dir, "plan.yaml")
      fs.writeFileSync(file, JSON.stringify({
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "a", title: "a", stream: "api" }],
        judge: { provider: "openai", model: "gpt-5" }
      }))
      const out = await braid(["plan", file, "--agent", "llm", "--reviewer", "judge"], envOf({ ANTHROPIC_API_KEY: "sk-ant-test-PLANTED-6666" }))
      assert.strictEqual(out.code, 2)
      assert.include(out.stderr, "agents.llm.model: the llm agent needs a model")
      assert.include(out.stderr, "judge: the judge has no openai key: set OPENAI_API_KEY")
      const bad = await braid(["plan", file, "--reviewer", "llm"], envOf({}))
      assert.strictEqual(bad.code, 2)
      assert.include(bad.stderr, "checks, judge, composite")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
