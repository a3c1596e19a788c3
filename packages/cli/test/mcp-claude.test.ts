/**
 * The real `claude` binary as braid's MCP client: `claude -p --mcp-config` naming `braid mcp`,
 * offline against a scripted Anthropic server on 127.0.0.1 whose turns call braid's tools as a
 * model would — `mcp__braid__check_plan`, `mcp__braid__start_run`, `mcp__braid__run_status`
 * until the run is no longer running, `mcp__braid__run_report`. The run is the bundled example's
 * (its tasks are the bundled script agents: no model needed for them); it lands on the
 * repository's main, and `braid runs` lists it.
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, braid, git, root } from "./support/Braid.js"
import { exampleRepo } from "./support/Example.js"

const RUN_ID = /\b(\d{8}-\d{6}-[a-z0-9]+)\b/

/** A tool result as the model reads it: claude passes a tool's structured content (JSON) when it has some. */
const parsed = (text: string | undefined): Record<string, any> => {
  try {
    return JSON.parse(text ?? "") as Record<string, any>
  } catch {
    return {}
  }
}

/** The model: check the plan, start it, ask for its status until it is no longer running, read the report, say what landed. */
const model = (plan: string): ScriptedServer.Responder => (c) => {
  // Only the session's own turns are braid's; anything else claude asks gets a plain answer.
  if (!c.tools.includes("mcp__braid__start_run")) return { text: "ok" }
  const results = c.toolResults
  const last = parsed(results.at(-1))
  const runId = results.map((r) => parsed(r).log !== undefined ? parsed(r).runId as string : undefined).find((id) => id !== undefined)
  const use = (name: string, input: Record<string, unknown>, delayMs?: number): ScriptedServer.Turn => ({
    text: `Calling ${name}.`,
    toolCalls: [{ name: `mcp__braid__${name}`, input }],
    ...(delayMs !== undefined ? { delayMs } : {})
  })
  if (results.length === 0) return use("check_plan", { plan })
  if (results.length === 1) return last.ready === true ? use("start_run", { plan, sandbox: "off" }) : { text: `The plan is not ready: ${results.at(-1)}` }
  if (runId === undefined) return { text: `braid did not start the run: ${results.at(-1)}` }
  if (typeof last.markdown === "string") return { text: `braid finished run ${runId}: ${last.status}, landed ${last.landed}.` }
  if (last.log !== undefined || last.status === "running") return use("run_status", { runId }, 500)
  if (typeof last.status === "string") return use("run_report", { runId })
  return { text: `Unexpected: ${results.at(-1)}` }
}

/** claude's environment: no Anthropic, claude or braid variable of this one, a throwaway HOME, the scripted server. */
const envOf = (home: string, url: string): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(ANTHROPIC_|CLAUDE_|BRAID_)/.test(k)) env[k] = v
  return {
    ...env,
    HOME: home,
    PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${env.PATH ?? ""}`,
    ANTHROPIC_BASE_URL: url,
    ANTHROPIC_API_KEY: "sk-ant-test-mcp-0000",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    CLAUDE_CODE_MAX_RETRIES: "1",
    // MCP tools offered to the model as they are, not deferred behind claude's ToolSearch (which a
    // real model calls first to load them): the scripted model calls braid's tools by name.
    ENABLE_TOOL_SEARCH: "false",
    API_TIMEOUT_MS: "60000",
    NO_COLOR: "1"
  }
}

/** Runs claude, the prompt on stdin, without blocking this process's event loop (the scripted server answers from it). */
const claude = (args: ReadonlyArray<string>, prompt: string, cwd: string, env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(path.join(root, "node_modules/.bin/claude"), [...args], { cwd, env, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(prompt)
  })

describe.skipIf(process.platform !== "linux")("braid mcp with the real claude", () => {
  it("claude checks the bundled plan, starts it, follows it to its landing and reads the report through braid's tools", async () => {
    const { dir, plan, repo } = exampleRepo("braid-mcp-claude-")
    const home = path.join(dir, "home")
    fs.mkdirSync(home)
    const base = git(repo, "rev-parse", "main")
    const config = path.join(dir, "mcp.json")
    fs.writeFileSync(config, JSON.stringify({ mcpServers: { braid: { command: process.execPath, args: [bin, "mcp", "--repo", repo] } } }))
    const server = await ScriptedServer.listen(AnthropicServer.provider, model(plan))
    try {
      const out = await claude(
        [
          "-p",
          "--output-format",
          "stream-json",
          "--verbose",
          "--mcp-config",
          config,
          "--strict-mcp-config",
          "--allowedTools",
          "mcp__braid",
          "--max-turns",
          "200"
        ],
        "Build the checkout flow with braid: check plan.yaml, run it, and tell me how it went.",
        repo,
        envOf(home, server.url)
      )
      const lines = out.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
      const result = lines.find((l) => l.type === "result")
      assert.isDefined(result, `no result line:\n${out.stdout}\n${out.stderr}`)
      assert.strictEqual(out.code, 0, `${out.stderr}\n${JSON.stringify(result)}`)
      assert.isFalse(result.is_error, JSON.stringify(result))
      const init = lines.find((l) => l.type === "system" && l.subtype === "init")
      assert.strictEqual(init.mcp_servers.find((s: { name: string }) => s.name === "braid")?.status, "connected", JSON.stringify(init.mcp_servers))

      // The tools claude called, in order, and what braid answered.
      const calls = lines.filter((l) => l.type === "assistant").flatMap((l) => l.message.content.filter((b: { type: string }) => b.type === "tool_use").map((b: { name: string }) => b.name))
      assert.deepStrictEqual(calls.slice(0, 3), ["mcp__braid__check_plan", "mcp__braid__start_run", "mcp__braid__run_status"])
      assert.strictEqual(calls.at(-1), "mcp__braid__run_report")
      const errors = lines.filter((l) => l.type === "user").flatMap((l) => (Array.isArray(l.message.content) ? l.message.content : []).filter((b: { is_error?: boolean }) => b.is_error === true))
      assert.deepStrictEqual(errors, [], "a braid tool answered with an error")

      const runId = RUN_ID.exec(result.result)?.[1]
      assert.isDefined(runId, result.result)
      assert.strictEqual(result.result, `braid finished run ${runId}: succeeded, landed true.`)

      // The run landed on main, and the CLI lists it.
      const landed = git(repo, "rev-parse", "main")
      assert.notStrictEqual(landed, base)
      assert.include(git(repo, "ls-tree", "-r", "--name-only", "main"), "src/api/checkout.js")
      const runs = await braid(["runs", "--repo", repo])
      assert.strictEqual(runs.code, 0, runs.stderr)
      assert.match(runs.stdout, new RegExp(`${runId}\\s+succeeded`))
      const status = JSON.parse((await braid(["status", runId!, "--repo", repo, "--json"])).stdout)
      assert.strictEqual(status.landed, landed)
    } finally {
      await server.close()
    }
  }, 120_000)
})
