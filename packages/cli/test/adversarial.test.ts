/**
 * Misbehaving agents beside honest ones, run by the built `braid` at maxParallel 8 so their
 * attempts overlap in time. With braid's defaults every bad attempt fails (or its deed is
 * undone and named), no honest attempt fails, nothing forged or foreign lands, and the report's
 * tasks match what landed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { braid, git } from "./support/Braid.js"

/** An honest agent: writes its task's own file after a pause (so the others overlap it). */
const honest = `
import * as fs from "node:fs"
await new Promise((r) => setTimeout(r, Number(process.env.PAUSE_MS ?? 300)))
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", process.env.BRAID_TASK_ID + " done\\n")
console.log("wrote " + process.env.BRAID_TASK_ID + ".txt")
`

/** Moves another stream's branch to a forged commit titled like braid's own, adding evil.txt; does its own task too. */
const forger = `
import * as fs from "node:fs"
import { execFileSync } from "node:child_process"
const run = process.env.BRAID_RUN_ID
const branch = "refs/heads/braid/" + run + "/" + process.argv[2]
const g = (args, input = "") => execFileSync("git", ["-c", "user.name=braid", "-c", "user.email=braid@localhost", ...args], { encoding: "utf8", input }).trim()
const tip = g(["rev-parse", branch])
const blob = g(["hash-object", "-w", "--stdin"], "evil\\n")
const entries = g(["ls-tree", tip]).split("\\n").filter(Boolean)
const tree = g(["mktree"], [...entries, "100644 blob " + blob + "\\tevil.txt"].join("\\n") + "\\n")
const forged = g(["commit-tree", tree, "-p", tip, "-m", "braid: victim-1 attempt 2 — forged"])
g(["update-ref", branch, forged])
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", "forger's own work\\n")
`

/** Deletes another stream's branch once its task has completed. */
const deleter = `
import * as fs from "node:fs"
import { execFileSync } from "node:child_process"
execFileSync("git", ["update-ref", "-d", "refs/heads/braid/" + process.env.BRAID_RUN_ID + "/" + process.argv[2]])
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", "deleter's own work\\n")
`

interface Fixture {
  readonly repo: string
  readonly plan: string
}

const fixture = (name: string, agents: Record<string, string>, lines: ReadonlyArray<string>): Fixture => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `braid-${name}-`)))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(repo)
  fs.writeFileSync(path.join(repo, "README.md"), "project\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const plans = path.join(dir, "plan")
  fs.mkdirSync(path.join(plans, "agents"), { recursive: true })
  for (const [file, text] of Object.entries(agents)) fs.writeFileSync(path.join(plans, "agents", file), text)
  const plan = path.join(plans, "plan.yaml")
  const text = [`projectName: ${name}`, "featureName: misbehaving agents", "maxParallel: 8", ...lines, ""].join("\n")
  fs.writeFileSync(plan, text.replaceAll("AGENTS/", `${path.join(plans, "agents")}/`))
  return { repo, plan }
}

const tasksOf = (report: any) => report.streamResults.flatMap((s: any) => s.results)
const onMain = (repo: string) => git(repo, "ls-tree", "-r", "--name-only", "main").split("\n").sort()
/** Every completed task's journaled commit is in main's history. */
const completedLanded = (repo: string, report: any) => {
  for (const t of tasksOf(report).filter((t: any) => t.status === "completed")) {
    const commit = t.attempts.at(-1).commit
    assert.isNotNull(commit, `${t.taskId} completed without a commit`)
    git(repo, "merge-base", "--is-ancestor", commit, "main")
  }
}

describe("misbehaving agents", () => {
  it("a forged branch tip and a deleted branch are put back from the journal: the journaled work lands, the forgery does not", async () => {
    const f = fixture("refs", { "honest.mjs": honest, "forger.mjs": forger, "deleter.mjs": deleter }, [
      "streams:",
      ...["victim", "ui", "forger", "deleter", "h1", "h2", "h3", "h4"].map((s) => `  - { name: ${s}, type: api }`),
      "tasks:",
      "  - { id: victim-1, title: Victim, stream: victim, run: { script: agents/honest.mjs } }",
      "  - { id: ui-1, title: UI, stream: ui, run: { script: agents/honest.mjs } }",
      "  - { id: forger-1, title: Forger, stream: forger, dependsOn: [victim-1], run: [node, AGENTS/forger.mjs, victim] }",
      "  - { id: deleter-1, title: Deleter, stream: deleter, dependsOn: [ui-1], run: [node, AGENTS/deleter.mjs, ui] }",
      ...["h1", "h2", "h3", "h4"].map((s) => `  - { id: ${s}-1, title: Honest ${s}, stream: ${s}, run: { script: agents/honest.mjs } }`)
    ])
    const out = await braid(["run", f.plan, "--repo", f.repo, "--json", "--quiet"])
    const report = JSON.parse(out.stdout)
    assert.strictEqual(out.code, 0, out.stderr)
    assert.strictEqual(report.status, "succeeded")
    const files = onMain(f.repo)
    assert.notInclude(files, "evil.txt", "the forged commit did not land")
    for (const t of ["victim-1", "ui-1", "h1-1", "h2-1", "h3-1", "h4-1"]) assert.include(files, `${t}.txt`)
    completedLanded(f.repo, report)
    const warnings: Array<string> = report.integrity
    assert.isTrue(warnings.some((w) => w.includes(`stream "victim"`) && w.includes("had been moved")), warnings.join("\n"))
    assert.isTrue(warnings.some((w) => w.includes(`stream "ui"`) && w.includes("had been deleted")), warnings.join("\n"))
    const markdown = await braid(["report", report.runId, "--repo", f.repo])
    assert.include(markdown.stdout, "Integrity warnings")
  }, 90_000)
})
