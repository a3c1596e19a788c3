/**
 * A conflict resolution is a durable step: the built `braid`, SIGKILLed right after it
 * journaled an agent's resolution (before the merge was concluded), resumes and lands without
 * asking the agent again.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { git, root, braid as run } from "./support/Braid.js"


const BOTH = "module.exports = ['home', 'checkout', 'cart']\n"

/** The resolver (the `command` backend in the architect role): logs each call, writes both routes. */
const resolver = `
const fs = require("node:fs")
const [counter] = process.argv.slice(2)
fs.appendFileSync(counter, "resolved\\n")
fs.writeFileSync("src/routes.js", ${JSON.stringify(BOTH)})
console.log(JSON.stringify({ summary: "kept both routes" }))
`

const writes = (content: string) => [process.execPath, "-e", `require('fs').writeFileSync('src/routes.js', ${JSON.stringify(content)})`]

const setup = (dir: string, name: string) => {
  const repo = path.join(dir, name)
  fs.mkdirSync(path.join(repo, "src"), { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "src", "routes.js"), "module.exports = ['home']\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const counter = path.join(dir, `${name}.resolutions`)
  const planFile = path.join(dir, `${name}.plan.json`)
  fs.writeFileSync(
    planFile,
    JSON.stringify({
      streams: [{ name: "api", type: "api", priority: 1 }, { name: "ui", type: "ui", priority: 2 }],
      resolver: { agent: "command" },
      agents: { command: { command: [process.execPath, path.join(dir, "resolver.cjs"), counter], timeoutSeconds: 30 } },
      tasks: [
        { id: "api-1", title: "checkout route", stream: "api", run: writes("module.exports = ['home', 'checkout']\n") },
        { id: "ui-1", title: "cart route", stream: "ui", run: writes("module.exports = ['home', 'cart']\n") }
      ],
      verify: [[process.execPath, "-e", "const t = require('fs').readFileSync('src/routes.js', 'utf8'); if (!t.includes('checkout') || !t.includes('cart')) process.exit(1)"]]
    })
  )
  const calls = () => fs.existsSync(counter) ? fs.readFileSync(counter, "utf8").split("\n").filter((l) => l !== "").length : 0
  const journal = () => {
    const runs = path.join(repo, ".braid", "runs")
    const [runId] = fs.readdirSync(runs)
    return fs.readFileSync(path.join(runs, runId!, "journal.jsonl"), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { key: string })
  }
  return { repo, planFile, calls, journal }
}

describe("a resolution is a durable step", () => {
  it("SIGKILLed right after the resolution was journaled, braid resume concludes the merge from the journal without asking the agent again", async () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-resolution-")))
    try {
      fs.writeFileSync(path.join(dir, "resolver.cjs"), resolver)
      // Where the resolution falls in the journal: found on a run that is not cut off.
      const whole = setup(dir, "whole")
      const full = await run(["run", whole.planFile, "--repo", whole.repo, "-q"])
      assert.strictEqual(full.code, 0, full.stderr)
      const at = whole.journal().findIndex((e) => e.key === "integration/0/merge/ui/resolve")
      assert.isAbove(at, 0)

      const cut = setup(dir, "cut")
      const killed = await run(["run", cut.planFile, "--repo", cut.repo, "-q"], { BRAID_CRASH_AFTER_RECORDS: String(at + 1) })
      assert.strictEqual(killed.signal, "SIGKILL", killed.stderr)
      assert.strictEqual(cut.calls(), 1)
      assert.strictEqual(cut.journal().at(-1)?.key, "integration/0/merge/ui/resolve")

      const resumed = await run(["resume", "--repo", cut.repo, "--json"])
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      assert.strictEqual(cut.calls(), 1)
      const report = JSON.parse(resumed.stdout)
      assert.isTrue(report.mergeResult.landed)
      assert.deepInclude(report.conflictReport.conflicts[0], { outcome: "resolved", resolver: "command", said: "kept both routes" })
      assert.strictEqual(fs.readFileSync(path.join(cut.repo, "src", "routes.js"), "utf8"), BOTH)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
