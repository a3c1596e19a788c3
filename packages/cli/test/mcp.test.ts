/**
 * `braid mcp` driven as an agent drives it: the MCP SDK's own `Client` over
 * `StdioClientTransport` against the built `braid mcp`. The bundled example's plan is checked,
 * started in the background and followed with run_status until it landed; its report read, the
 * run listed by list_runs, by `braid runs` and by a second client; its journal read from a cursor;
 * the run as a resource. Mistakes — a plan that is not there, a run id that is not, arguments
 * the tool's Schema refuses, land_run without confirm — are tool errors with the CLI's message,
 * never a stack trace.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, assert, describe, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, braid, git } from "./support/Braid.js"
import { exampleRepo } from "./support/Example.js"

const clients: Array<Client> = []

/** A client of a new `braid mcp` process serving `repo`. */
const connect = async (repo: string) => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bin, "mcp", "--repo", repo],
    env: { ...process.env, NO_COLOR: "1" } as Record<string, string>,
    stderr: "pipe"
  })
  const client = new Client({ name: "braid-test", version: "0.0.0" })
  await client.connect(transport)
  clients.push(client)
  return client
}

type Result = { readonly isError?: boolean; readonly content: Array<{ type: string; text?: string }>; readonly structuredContent?: any }

const call = async (client: Client, name: string, args: Record<string, unknown>): Promise<Result> =>
  (await client.callTool({ name, arguments: args })) as Result

const textOf = (r: Result) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("\n")

/** A tool error: isError, one clear message containing `wanted`, no stack trace. */
const refused = (r: Result, wanted: string | RegExp) => {
  const text = textOf(r)
  assert.isTrue(r.isError, `expected a tool error, got: ${text}`)
  if (typeof wanted === "string") assert.include(text, wanted)
  else assert.match(text, wanted)
  assert.notMatch(text, /\n\s+at |Error: |internal error/, `a stack trace or an internal error: ${text}`)
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
})

describe("braid mcp", () => {
  it("checks the bundled plan, starts it in the background, follows it until it landed, and reads its report; a second client and braid runs see the run", async () => {
    const { plan, repo } = exampleRepo("braid-mcp-")
    const base = git(repo, "rev-parse", "main")
    const client = await connect(repo)

    const { tools } = await client.listTools()
    assert.deepStrictEqual(
      tools.map((t) => t.name).sort(),
      ["check_plan", "land_run", "list_runs", "resume_run", "retry_task", "run_events", "run_report", "run_status", "start_run"]
    )
    for (const t of tools) {
      assert.strictEqual(t.inputSchema.type, "object", t.name)
      assert.strictEqual((t.outputSchema as { type?: string } | undefined)?.type, "object", t.name)
      assert.isAbove(t.description?.length ?? 0, 20, t.name)
    }
    assert.includeMembers((tools.find((t) => t.name === "start_run")!.inputSchema.required ?? []) as Array<string>, ["plan"])

    // check_plan: what braid plan says, as data.
    const checked = await call(client, "check_plan", { plan })
    assert.isNotTrue(checked.isError, textOf(checked))
    const c = checked.structuredContent
    assert.isTrue(c.ready)
    assert.deepStrictEqual(c.streams.map((s: { name: string }) => s.name).sort(), ["api", "database", "docs", "testing", "ui"])
    assert.deepStrictEqual(c.streams.find((s: { name: string }) => s.name === "api").tasks[0].waitsFor, ["db-1"])
    assert.deepStrictEqual(c.waves.flat().sort(), ["api", "database", "docs", "testing", "ui"])
    assert.isAbove(c.waves.length, 1, "the api stream waits on the database stream")
    assert.deepStrictEqual(c.problems, [])
    assert.include(textOf(checked), "ready: braid run would start")
    // The conflict forecast, as braid plan gives it: api and ui both register a route in src/routes.js.
    const routes = c.forecast.find((f: { paths: Array<string> }) => f.paths.includes("src/routes.js"))
    assert.isDefined(routes, JSON.stringify(c.forecast))
    assert.deepStrictEqual([...routes.streams].sort(), ["api", "ui"])
    assert.include(textOf(checked), "conflict forecast:")

    // Mistakes are tool errors with the CLI's words.
    refused(await call(client, "check_plan", { plan: path.join(repo, "no-such-plan.yaml") }), "file not found")
    refused(await call(client, "start_run", { plan: "no-such-plan.yaml" }), "file not found")
    refused(await call(client, "check_plan", {}), /plan: is missing/)
    refused(await call(client, "check_plan", { plan, maxParallel: 0 }), /maxParallel/)
    refused(await call(client, "run_status", { runId: "20990101-000000-none" }), "no run \"20990101-000000-none\"")
    refused(await call(client, "run_report", { runId: "20990101-000000-none" }), "no run \"20990101-000000-none\"")
    refused(await call(client, "run_events", { runId: "20990101-000000-none" }), "no run \"20990101-000000-none\"")
    refused(await call(client, "retry_task", { runId: "20990101-000000-none", taskId: "api-1" }), "no run \"20990101-000000-none\"")
    refused(await call(client, "run_status", {}), "no run \"(latest)\"")
    assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs")) && fs.readdirSync(path.join(repo, ".braid", "runs")).length > 0, "a refused start left a run behind")

    // start_run returns the run id at once; the run goes on in its own process.
    const started = await call(client, "start_run", { plan, sandbox: "off" })
    assert.isNotTrue(started.isError, textOf(started))
    const runId: string = started.structuredContent.runId
    assert.match(runId, /^\d{8}-\d{6}-[a-z0-9]+$/)
    assert.strictEqual(started.structuredContent.log, path.join(repo, ".braid", "runs", runId, "braid.log"))

    // Not finished yet: no report, and landing is refused without confirm whatever its state.
    refused(await call(client, "land_run", { runId }), "confirm: true")
    refused(await call(client, "land_run", { runId, confirm: false }), "confirm: true")

    // A second client sees the run while (or after) it works.
    const second = await connect(repo)
    const seen = await call(second, "list_runs", {})
    assert.deepStrictEqual(seen.structuredContent.runs.map((r: { runId: string }) => r.runId), [runId])

    let status: any
    let events: Array<{ seq: number; key: string }> = []
    let cursor = 0
    for (let i = 0; i < 600; i++) {
      const s = await call(client, "run_status", { runId })
      assert.isNotTrue(s.isError, textOf(s))
      status = s.structuredContent
      const e = await call(client, "run_events", { runId, cursor })
      assert.isNotTrue(e.isError, textOf(e))
      events = [...events, ...e.structuredContent.events]
      assert.isAtLeast(e.structuredContent.next, cursor)
      cursor = e.structuredContent.next
      if (status.status !== "running") break
      await new Promise((r) => setTimeout(r, 500))
    }
    assert.strictEqual(status.status, "succeeded", JSON.stringify(status))
    assert.strictEqual(status.settledTasks, 5)
    assert.isNotNull(status.landed)
    assert.deepStrictEqual(status.cost, { usd: 0, tokens: 0 })
    const api = status.streams.find((s: { stream: string }) => s.stream === "api").tasks[0]
    assert.deepInclude(api, { taskId: "api-1", status: "completed", attempts: 2, score: 100, waitsFor: [] })
    // The events read piecemeal are the journal, each once, in order.
    const journal = fs.readFileSync(path.join(repo, ".braid", "runs", runId, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    const rest = await call(client, "run_events", { runId, cursor })
    events = [...events, ...rest.structuredContent.events]
    assert.deepStrictEqual(events.map((e) => e.key), journal.map((r: { key: string }) => r.key))
    assert.strictEqual(rest.structuredContent.finished, "succeeded")

    // Landed on main: the streams' work is there.
    assert.notStrictEqual(git(repo, "rev-parse", "main"), base)
    assert.strictEqual(git(repo, "rev-parse", "main"), status.landed)
    assert.include(git(repo, "ls-tree", "-r", "--name-only", "main"), "src/api/checkout.js")

    const report = await call(client, "run_report", { runId })
    assert.isNotTrue(report.isError, textOf(report))
    assert.include(textOf(report), `# braid run ${runId}`)
    assert.include(textOf(report), "succeeded")
    assert.strictEqual(report.structuredContent.markdown, textOf(report))
    assert.isTrue(report.structuredContent.landed)

    const listed = await call(client, "list_runs", {})
    assert.deepInclude(listed.structuredContent.runs[0], { runId, status: "succeeded", settledTasks: 5, totalTasks: 5 })

    // The CLI sees the same run; braid run --run-id refuses an id already recorded, or one git
    // cannot use in a branch name, before anything runs; a landed run is not landed, resumed or
    // retried again (the CLI's refusals, said as tool errors). All at once: each is a process.
    const [runs, cliStatus, taken, spaced, landAgain, resumeAgain] = await Promise.all([
      braid(["runs", "--repo", repo]),
      braid(["status", runId, "--repo", repo, "--json"]),
      braid(["run", plan, "--repo", repo, "--run-id", runId]),
      braid(["run", plan, "--repo", repo, "--run-id", "a b"]),
      call(client, "land_run", { runId, confirm: true }),
      call(second, "resume_run", { runId })
    ])
    assert.strictEqual(runs.code, 0, runs.stderr)
    assert.match(runs.stdout, new RegExp(`${runId}\\s+succeeded`))
    assert.strictEqual(JSON.parse(cliStatus.stdout).landed, status.landed)
    assert.strictEqual(taken.code, 2, taken.stderr)
    assert.include(taken.stderr, `--run-id: run ${runId} is already recorded`)
    assert.strictEqual(spaced.code, 2, spaced.stderr)
    assert.include(spaced.stdout + spaced.stderr, "--run-id: it contains a space")
    refused(landAgain, "already landed")
    refused(resumeAgain, "already finished")
    refused(await call(client, "retry_task", { runId, taskId: "no-such-task" }), "has no task \"no-such-task\"")

    // The second client: its status, and the run as resources.
    const other = await call(second, "run_status", {})
    assert.strictEqual(other.structuredContent.runId, runId)
    assert.strictEqual(other.structuredContent.status, "succeeded")
    const { resources } = await second.listResources()
    assert.includeMembers(resources.map((r) => r.uri), [`braid://runs/${runId}`, `braid://runs/${runId}/report`])
    const resource = await second.readResource({ uri: `braid://runs/${runId}` })
    assert.strictEqual(JSON.parse((resource.contents[0] as { text: string }).text).status, "succeeded")
    const reportResource = await second.readResource({ uri: `braid://runs/${runId}/report` })
    assert.include((reportResource.contents[0] as { text: string }).text, `# braid run ${runId}`)

    assert.strictEqual(git(repo, "rev-parse", "main"), status.landed, "a refused tool changed the target")
  }, 120_000)
})
