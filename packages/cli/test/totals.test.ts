/**
 * A run's totals over retries and a landing, on the built `braid`: a task that needs review is
 * retried twice and the run landed later; every report counts every attempt the journal holds
 * once (tokens and cost, per task and per run), shows a retried task's earlier rounds, and
 * times the run from its first start. `braid status` of a run whose verification did not run
 * says so.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { braid, journalOf, newRepo } from "./support/Braid.js"

/**
 * The agent (the `command` backend): appends to `<task>.txt` — "done well" once the person's
 * note in its prompt says "use the hint" — and reports usage that differs on every run of it
 * (the n-th run: 1000 + n input, 100 + n output tokens, $0.001·n measured).
 */
const agent = `
const fs = require("node:fs")
const [counter, task, promptFile] = process.argv.slice(2)
fs.appendFileSync(counter, task + "\\n")
const n = fs.readFileSync(counter, "utf8").split("\\n").filter((l) => l !== "").length
const hinted = fs.readFileSync(promptFile, "utf8").includes("use the hint")
fs.appendFileSync(task + ".txt", task + (hinted ? " done well " : " done ") + n + "\\n")
console.log(JSON.stringify({ summary: task + " written", model: "claude-sonnet-4", usage: { inputTokens: 1000 + n, outputTokens: 100 + n, costUsd: 0.001 * n } }))
`

/** The check of ui-1: its file must say "done well". */
const check = `
const fs = require("node:fs")
if (!fs.readFileSync(process.argv[2], "utf8").includes("done well")) {
  console.error(process.argv[2] + " is not done well")
  process.exit(1)
}
`

const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

describe("totals over retries and a landing", () => {
  it("every report counts each journaled attempt once, shows the earlier rounds, and times the run from its first start; status says verification did not run", async () => {
    const repo = newRepo("braid-totals-")
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(path.dirname(repo), "braid-totals-plan-")))
    try {
      const program = path.join(dir, "agent.cjs")
      const checker = path.join(dir, "check.cjs")
      const counter = path.join(dir, "runs.log")
      fs.writeFileSync(program, agent)
      fs.writeFileSync(checker, check)
      const planFile = path.join(dir, "plan.json")
      fs.writeFileSync(
        planFile,
        JSON.stringify({
          projectName: "shop",
          featureName: "totals",
          agent: "command",
          agents: { command: { command: [process.execPath, program, counter], args: ["{taskId}", "{promptFile}"], timeoutSeconds: 30 } },
          maxParallel: 2,
          // No verify commands: verification does not run.
          streams: [{ name: "api", type: "api" }, { name: "ui", type: "ui" }],
          tasks: [
            { id: "api-1", title: "one", stream: "api" },
            { id: "ui-1", title: "two", stream: "ui", checks: [{ name: "done well", command: [process.execPath, checker, "ui-1.txt"] }] }
          ]
        })
      )

      /** The journal's attempts: (round, task, attempt) once each, with what each spent. */
      const journaled = () => {
        const done = journalOf(repo).records.filter((r) => r.value._tag === "AttemptDone").map((r) => r.value)
        return {
          ids: done.map((a) => `${a.round}/${a.taskId}/${a.attempt}`).sort(),
          of: (task?: string) => done.filter((a) => task === undefined || a.taskId === task)
        }
      }
      /** A report's totals against the journal: per run and per task, and every attempt once. */
      const countsEveryAttempt = (report: any) => {
        const j = journaled()
        const all = j.of()
        assert.strictEqual(report.usage.inputTokens, sum(all.map((a) => a.inputTokens)))
        assert.strictEqual(report.usage.outputTokens, sum(all.map((a) => a.outputTokens)))
        assert.closeTo(report.usage.costUsd, sum(all.map((a) => a.costUsd)), 1e-9)
        const tasks = report.streamResults.flatMap((s: any) => s.results)
        for (const t of tasks) {
          const mine = j.of(t.taskId)
          assert.strictEqual(t.usage.inputTokens, sum(mine.map((a) => a.inputTokens)), t.taskId)
          assert.strictEqual(t.usage.outputTokens, sum(mine.map((a) => a.outputTokens)), t.taskId)
          assert.closeTo(t.usage.costUsd, sum(mine.map((a) => a.costUsd)), 1e-9, t.taskId)
        }
        const shown = tasks.flatMap((t: any) =>
          [...(t.earlierAttempts ?? []), ...t.attempts].map((a: any) => `${a.round ?? 0}/${t.taskId}/${a.attempt}`)
        ).sort()
        assert.deepStrictEqual(shown, j.ids)
      }

      const firstStart = Date.now()
      const first = await braid(["run", planFile, "--repo", repo, "--no-land", "--json", "--quiet"])
      const firstEnd = Date.now()
      assert.strictEqual(first.code, 1, first.stderr)
      assert.strictEqual(JSON.parse(first.stdout).status, "needs-review")
      countsEveryAttempt(JSON.parse(first.stdout))

      const once = await braid(["retry", "--repo", repo, "--feedback", "try again", "--json", "--quiet"])
      assert.strictEqual(once.code, 1, once.stderr)
      const r1 = JSON.parse(once.stdout)
      assert.strictEqual(r1.status, "needs-review")
      countsEveryAttempt(r1)

      const twice = await braid(["retry", "--repo", repo, "--feedback", "use the hint", "--json", "--quiet"])
      assert.strictEqual(twice.code, 0, twice.stderr)
      const r2 = JSON.parse(twice.stdout)
      assert.isFalse(r2.mergeResult.landed)
      countsEveryAttempt(r2)

      // Verification was journaled as not run (no verify commands): status does not call it passed.
      const status = await braid(["status", "--repo", repo])
      assert.strictEqual(status.code, 0, status.stderr)
      assert.include(status.stdout, "verification did not run: the plan has no verify commands")
      assert.notInclude(status.stdout, "verification passed")
      const statusJson = JSON.parse((await braid(["status", "--repo", repo, "--json"])).stdout)
      assert.strictEqual(statusJson.verification.ran, false)

      const landStart = Date.now()
      const landed = await braid(["land", "--repo", repo, "--json", "--quiet"])
      const landEnd = Date.now()
      assert.strictEqual(landed.code, 0, landed.stderr)
      const report = JSON.parse(landed.stdout)
      assert.strictEqual(report.status, "succeeded")
      assert.isTrue(report.mergeResult.landed)
      countsEveryAttempt(report)

      // api-1 passed at once; ui-1 made three attempts in the first run, three in retry 1, one in retry 2.
      assert.deepStrictEqual(journaled().ids, ["0/api-1/1", "0/ui-1/1", "0/ui-1/2", "0/ui-1/3", "1/ui-1/1", "1/ui-1/2", "1/ui-1/3", "2/ui-1/1"])
      const ui1 = report.streamResults.flatMap((s: any) => s.results).find((t: any) => t.taskId === "ui-1")
      assert.deepStrictEqual(ui1.attempts.map((a: any) => [a.round, a.attempt]), [[2, 1]])
      assert.deepStrictEqual(ui1.earlierAttempts.map((a: any) => [a.round ?? 0, a.attempt]), [[0, 1], [0, 2], [0, 3], [1, 1], [1, 2], [1, 3]])
      assert.strictEqual(ui1.status, "completed")

      // The run's duration: from its first start to the landing's end, whatever process made the report.
      const started = journalOf(repo).records.find((r) => r.key === "run")!.value
      assert.strictEqual(report.startedAt, started.at)
      assert.strictEqual(report.durationMs, Date.parse(report.finishedAt) - Date.parse(report.startedAt))
      assert.isAtLeast(report.durationMs, landStart - firstEnd)
      assert.isAtMost(report.durationMs, landEnd - firstStart)

      // The Markdown report lists every attempt once, each with its round.
      const md = await braid(["report", report.runId, "--repo", repo])
      assert.strictEqual(md.code, 0, md.stderr)
      assert.include(md.stdout, "| round | attempt | started |")
      const rows = md.stdout.split("\n").filter((l) => /^\| (first run|retry \d+) \| \d \|/.test(l))
      assert.deepStrictEqual(rows.map((l) => l.split("|").slice(1, 3).map((c) => c.trim()).join(" ")), [
        "first run 1",
        "first run 2",
        "first run 3",
        "retry 1 1",
        "retry 1 2",
        "retry 1 3",
        "retry 2 1"
      ])
      assert.include(md.stdout, "1/3 (+6 before retry)")
      assert.include(md.stdout, "The last review of the first run")
    } finally {
      fs.rmSync(repo, { recursive: true, force: true })
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)

  it("a conflict the integration resolved before a retry stays in the report, and so does what resolving it cost", async () => {
    const repo = newRepo("braid-totals-conflict-")
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(path.dirname(repo), "braid-totals-plan-")))
    try {
      // The resolver (the `command` backend): keeps both routes and reports what it spent.
      fs.writeFileSync(
        path.join(dir, "resolver.cjs"),
        `require("node:fs").writeFileSync("src/routes.js", "module.exports = ['home', 'checkout', 'cart']\\n")\n` +
          `console.log(JSON.stringify({ summary: "kept both routes", usage: { inputTokens: 500, outputTokens: 50, costUsd: 0.02 } }))\n`
      )
      const writes = (content: string) => [process.execPath, "-e", `require('fs').writeFileSync('src/routes.js', ${JSON.stringify(content)})`]
      const planFile = path.join(dir, "plan.json")
      fs.writeFileSync(
        planFile,
        JSON.stringify({
          projectName: "shop",
          featureName: "totals",
          streams: [{ name: "api", type: "api", priority: 1 }, { name: "ui", type: "ui", priority: 2 }, { name: "docs", type: "docs", priority: 3 }],
          resolver: { agent: "command" },
          agents: { command: { command: [process.execPath, path.join(dir, "resolver.cjs")], timeoutSeconds: 30 } },
          tasks: [
            { id: "api-1", title: "checkout route", stream: "api", run: writes("module.exports = ['home', 'checkout']\n") },
            { id: "ui-1", title: "cart route", stream: "ui", run: writes("module.exports = ['home', 'cart']\n") },
            {
              id: "docs-1",
              title: "docs",
              stream: "docs",
              run: [process.execPath, "-e", "require('fs').appendFileSync('docs.txt', 'docs ' + process.env.BRAID_USER_NOTE + ' ' + process.env.BRAID_ATTEMPT + '\\n')"],
              checks: [{ name: "hinted", command: [process.execPath, "-e", "if (!require('fs').readFileSync('docs.txt', 'utf8').includes('hint')) process.exit(1)"] }]
            }
          ]
        })
      )
      const first = await braid(["run", planFile, "--repo", repo, "--json", "--quiet"])
      assert.strictEqual(first.code, 1, first.stderr)
      const r0 = JSON.parse(first.stdout)
      assert.strictEqual(r0.status, "needs-review")
      assert.strictEqual(r0.conflictReport.conflicts.length, 1)
      assert.strictEqual(r0.usage.inputTokens, 500)

      const retried = await braid(["retry", "--repo", repo, "--feedback", "use the hint", "--json", "--quiet"])
      assert.strictEqual(retried.code, 0, retried.stderr)
      const r1 = JSON.parse(retried.stdout)
      assert.isTrue(r1.mergeResult.landed)
      // The new integration goes on from the old one and meets the conflict no more: it is still the run's.
      assert.strictEqual(journalOf(repo).records.find((r) => r.key === "integration/1/merge/ui")?.value.conflict, null)
      assert.isTrue(r1.conflictsFound)
      assert.strictEqual(r1.conflictReport.conflicts.length, 1)
      assert.deepInclude(r1.conflictReport.conflicts[0], { outcome: "resolved", resolver: "command", said: "kept both routes" })
      const resolved = journalOf(repo).records.filter((r) => r.value._tag === "Resolved").map((r) => r.value.agent)
      assert.strictEqual(resolved.length, 1)
      assert.strictEqual(r1.usage.inputTokens, resolved[0].inputTokens)
      assert.strictEqual(r1.usage.outputTokens, resolved[0].outputTokens)
      assert.closeTo(r1.usage.costUsd, resolved[0].costUsd, 1e-9)
    } finally {
      fs.rmSync(repo, { recursive: true, force: true })
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
