/**
 * Budgets on the built `braid`: a run stopped by its budget exits 75, resumable; `braid resume
 * --budget` continues it with a raised budget, completes it without repeating settled work, and
 * the report's totals equal the sum of the attempts (measured by the tool, or priced from the
 * table). A task over its own budget fails with the reason.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { git, root, braid as run } from "./support/Braid.js"


/**
 * The agent (the `command` backend): writes `<task>.txt`, logs its run to the counter file, and
 * reports its usage — 1000 input and 200 output tokens, $0.50 measured; a task named in
 * `priced` reports no cost but a model, so braid prices it from its table.
 */
const agent = `
const fs = require("node:fs")
const [counter, pricedList, task] = process.argv.slice(2)
fs.appendFileSync(counter, task + "\\n")
fs.writeFileSync(task + ".txt", task + " done\\n")
const priced = pricedList.split(",").includes(task)
console.log(JSON.stringify({
  summary: task + " written",
  model: "claude-sonnet-4",
  usage: { inputTokens: 1000, outputTokens: 200, ...(priced ? {} : { costUsd: 0.5 }) }
}))
`

const setup = (plan: (dir: string) => Record<string, unknown>, priced: Array<string> = []) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-budget-")))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(repo)
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), "shop\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const program = path.join(dir, "agent.cjs")
  fs.writeFileSync(program, agent)
  const counter = path.join(dir, "runs.log")
  const planFile = path.join(dir, "plan.json")
  fs.writeFileSync(
    planFile,
    JSON.stringify({
      projectName: "shop",
      featureName: "budget",
      agent: "command",
      agents: { command: { command: [process.execPath, program, counter, priced.join(",")], args: ["{taskId}"], timeoutSeconds: 30 } },
      ...plan(dir)
    })
  )
  const runs = () => fs.existsSync(counter) ? fs.readFileSync(counter, "utf8").split("\n").filter((l) => l !== "") : []
  return { dir, repo, planFile, runs, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

const journalOf = (repo: string) => {
  const runsDir = path.join(repo, ".braid", "runs")
  const [runId] = fs.readdirSync(runsDir)
  return fs.readFileSync(path.join(runsDir, runId!, "journal.jsonl"), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { key: string; value: { _tag: string } })
}

describe("budgets", () => {
  it("a run stopped by its budget exits 75; resume --budget completes it without repeating settled work; the totals are the attempts' sum", async () => {
    const f = setup(() => ({
      maxParallel: 1,
      budget: { usd: 1 },
      streams: [{ name: "api", type: "api", priority: 1 }, { name: "ui", type: "ui", priority: 2 }],
      tasks: [
        { id: "api-1", title: "one", stream: "api" },
        { id: "api-2", title: "two", stream: "api" },
        { id: "ui-1", title: "three", stream: "ui" },
        { id: "ui-2", title: "four", stream: "ui" }
      ]
    }), ["ui-1"])
    try {
      const paused = await run(["run", f.planFile, "--repo", f.repo])
      assert.strictEqual(paused.code, 75, paused.stderr)
      // api-1 ($0.50), ui-1 (priced: $0.006), api-2 ($0.50): the budget is reached, no fourth starts.
      assert.match(paused.stderr, /budget is reached \(\$1\.0060 spent of \$1\.00\)/)
      assert.include(paused.stderr, "--budget")
      assert.deepStrictEqual(f.runs(), ["api-1", "ui-1", "api-2"])
      const journal = journalOf(f.repo)
      assert.isTrue(journal.some((e) => e.key === "run/interrupted" && e.value._tag === "Interrupted"))
      assert.strictEqual(journal.filter((e) => e.value._tag === "Settled").length, 3)
      assert.isFalse(journal.some((e) => e.key === "run/finished"))

      const status = await run(["status", "--repo", f.repo])
      assert.match(status.stdout, /continue with: braid resume \S+ --repo \S+ --budget/)
      // Resuming without more budget pauses again at once, starting nothing.
      const again = await run(["resume", "--repo", f.repo])
      assert.strictEqual(again.code, 75, again.stderr)
      assert.strictEqual(f.runs().length, 3)

      const resumed = await run(["resume", "--repo", f.repo, "--budget", "10usd", "--json"])
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      // Every task ran exactly once over the three invocations.
      assert.deepStrictEqual([...f.runs()].sort(), ["api-1", "api-2", "ui-1", "ui-2"])
      const report = JSON.parse(resumed.stdout)
      assert.isTrue(report.mergeResult.landed)
      const attempts = report.streamResults.flatMap((s: any) => s.results.flatMap((t: any) => t.attempts))
      assert.strictEqual(attempts.length, 4)
      const sum = (xs: Array<number>) => xs.reduce((a, b) => a + b, 0)
      const priced = 1000 * 3 / 1e6 + 200 * 15 / 1e6 // claude-sonnet-4 in braid's table
      assert.closeTo(report.usage.costUsd, sum(attempts.map((a: any) => a.costUsd)), 1e-9)
      assert.closeTo(report.usage.costUsd, 1.5 + priced, 1e-9)
      assert.strictEqual(report.usage.inputTokens, sum(attempts.map((a: any) => a.inputTokens)))
      assert.strictEqual(report.usage.outputTokens, 800)
      assert.closeTo(report.usage.measuredCostUsd, 1.5, 1e-9)
      assert.closeTo(report.usage.pricedCostUsd, priced, 1e-9)
      for (const s of report.streamResults) {
        assert.closeTo(s.usage.costUsd, sum(s.results.map((t: any) => t.usage.costUsd)), 1e-9)
        for (const t of s.results) assert.closeTo(t.usage.costUsd, sum(t.attempts.map((a: any) => a.costUsd)), 1e-9)
      }
      const ui1 = report.streamResults[1].results[0].attempts[0].agent
      assert.strictEqual(ui1.costSource, "table")
      assert.strictEqual(report.streamResults[0].results[0].attempts[0].agent.costSource, "tool")
      assert.deepInclude(report.budget, { usd: 10, tokens: null, onExceeded: "finish" })
      assert.closeTo(report.budget.spentUsd, 1.5 + priced, 1e-9)
      assert.strictEqual(report.budget.spentTokens, 4800)
      // The Markdown report says what was measured and what was priced.
      const md = await run(["report", JSON.parse(resumed.stdout).runId, "--repo", f.repo])
      assert.include(md.stdout, "$1.5000 measured by the agents' tools")
      assert.include(md.stdout, "priced from braid's table")
      assert.include(md.stdout, "| budget | $10.00 (onExceeded: finish)")
    } finally {
      f.cleanup()
    }
  }, 90_000)

  it("a budget under a cent is shown as it is, not as $0.00", async () => {
    const f = setup(() => ({
      maxParallel: 1,
      budget: { usd: 0.004 },
      streams: [{ name: "api", type: "api" }],
      tasks: [{ id: "api-1", title: "one", stream: "api" }, { id: "api-2", title: "two", stream: "api" }]
    }), ["api-1", "api-2"])
    try {
      // api-1 is priced from the table at $0.006: over the budget, api-2 does not start.
      const paused = await run(["run", f.planFile, "--repo", f.repo])
      assert.strictEqual(paused.code, 75, paused.stderr)
      assert.include(paused.stderr, "budget is reached ($0.0060 spent of $0.004)")
      assert.notInclude(paused.stderr, "$0.00)")
      assert.deepStrictEqual(f.runs(), ["api-1"])
    } finally {
      f.cleanup()
    }
  }, 60_000)

  it("a task over its own budget fails with the reason; a --budget that is no amount is refused", async () => {
    const f = setup(() => ({
      streams: [{ name: "api", type: "api" }],
      tasks: [{ id: "api-1", title: "one", stream: "api", budget: { tokens: 1000 } }]
    }))
    try {
      const bad = await run(["run", f.planFile, "--repo", f.repo, "--budget", "five"])
      assert.strictEqual(bad.code, 2, bad.stderr)
      assert.include(bad.stderr, "--budget: expected an amount in USD or tokens")
      const out = await run(["run", f.planFile, "--repo", f.repo, "--json"])
      assert.strictEqual(out.code, 1, out.stderr)
      const task = JSON.parse(out.stdout).streamResults[0].results[0]
      assert.strictEqual(task.status, "failed")
      assert.strictEqual(task.error, "task api-1 is over its budget (1200 tokens spent of 1000)")
      assert.strictEqual(f.runs().length, 1)
    } finally {
      f.cleanup()
    }
  }, 60_000)
})
