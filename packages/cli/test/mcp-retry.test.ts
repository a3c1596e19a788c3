/**
 * `braid mcp`'s tools that continue a run, through the MCP SDK's `Client`: a run started with
 * `land: false` whose one task needs review (its script writes what the check refuses until the
 * person's note tells it better), `retry_task` with that note in the background, the client
 * closed at once and a new one following the retry to a verified run that is not landed; `land_run` refused without `confirm`, then with it the run
 * lands — the same run `braid status` shows.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { assert, describe, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, braid, git, newRepo } from "./support/Braid.js"

type Result = { readonly isError?: boolean; readonly content: Array<{ type: string; text?: string }>; readonly structuredContent?: any }

const textOf = (r: Result) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("\n")

describe("braid mcp: retry, land", () => {
  it("retries a task with the caller's feedback in the background, then lands the run only with confirm", async () => {
    const repo = newRepo("braid-mcp-retry-")
    const plan = path.join(repo, ".git", "plan.yaml")
    fs.writeFileSync(
      plan,
      JSON.stringify({
        agent: "script",
        streams: [{ name: "docs", type: "docs" }],
        tasks: [{
          id: "docs-1",
          title: "Say ok",
          stream: "docs",
          // Writes "ok" only once the person's note says so; something else (new each attempt) before.
          run: ["node", "-e", "require('fs').writeFileSync('src/said.txt', process.env.BRAID_USER_NOTE.includes('say ok') ? 'ok\\n' : 'attempt ' + process.env.BRAID_ATTEMPT + '\\n')"],
          checks: [["node", "-e", "if (require('fs').readFileSync('src/said.txt', 'utf8') !== 'ok\\n') { console.error('said.txt does not say ok'); process.exit(1) }"]]
        }]
      })
    )
    const base = git(repo, "rev-parse", "main")
    const connect = async () => {
      const c = new Client({ name: "braid-test", version: "0.0.0" })
      await c.connect(new StdioClientTransport({ command: process.execPath, args: [bin, "mcp", "--repo", repo], env: { ...process.env } as Record<string, string>, stderr: "pipe" }))
      return c
    }
    let client = await connect()
    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as Result
    const settle = async (runId: string, done: (status: any) => boolean) => {
      for (let i = 0; i < 240; i++) {
        const s = await call("run_status", { runId })
        assert.isNotTrue(s.isError, textOf(s))
        if (done(s.structuredContent)) return s.structuredContent
        await new Promise((r) => setTimeout(r, 250))
      }
      assert.fail(`run ${runId} did not settle`)
    }
    try {
      const started = await call("start_run", { plan, land: false, sandbox: "off" })
      assert.isNotTrue(started.isError, textOf(started))
      const runId: string = started.structuredContent.runId
      const first = await settle(runId, (s) => s.status !== "running")
      const task = first.streams[0].tasks[0]
      assert.strictEqual(task.status, "needs-review", JSON.stringify(first))
      assert.strictEqual(task.attempts, 3)
      assert.include(task.reason, "said.txt does not say ok")
      assert.match(first.next, /^braid retry /)

      const retried = await call("retry_task", { runId, taskId: "docs-1", feedback: "say ok, nothing else" })
      assert.isNotTrue(retried.isError, textOf(retried))
      assert.strictEqual(retried.structuredContent.runId, runId)
      // The client that started the retry goes away (its braid mcp with it); the retry goes on, and a new client follows it.
      await client.close()
      client = await connect()
      const second = await settle(runId, (s) => s.status !== "running" && s.streams[0].tasks[0].round === 1 && s.streams[0].tasks[0].status !== null)
      assert.strictEqual(second.streams[0].tasks[0].status, "completed", JSON.stringify(second))
      assert.strictEqual(second.status, "succeeded")
      assert.isNull(second.landed, "land: false: verified, not landed")
      assert.strictEqual(git(repo, "rev-parse", "main"), base)

      const unconfirmed = await call("land_run", { runId })
      assert.isTrue(unconfirmed.isError)
      assert.include(textOf(unconfirmed), "confirm: true")
      assert.strictEqual(git(repo, "rev-parse", "main"), base)

      const landing = await call("land_run", { runId, confirm: true })
      assert.isNotTrue(landing.isError, textOf(landing))
      const landed = await settle(runId, (s) => s.status !== "running" && s.landed !== null)
      assert.strictEqual(git(repo, "rev-parse", "main"), landed.landed)
      assert.strictEqual(git(repo, "show", "main:src/said.txt"), "ok")
      const status = await braid(["status", runId, "--repo", repo, "--json"])
      assert.strictEqual(JSON.parse(status.stdout).landed, landed.landed)
      assert.include(fs.readFileSync(started.structuredContent.log, "utf8"), "retrying in run")
    } finally {
      await client.close()
    }
  }, 90_000)
})
