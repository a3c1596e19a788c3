/**
 * Misbehaving agents beside honest ones, run by the built `braid` at maxParallel 8 so their
 * attempts overlap in time, unconfined (`--sandbox off`): what braid's checks after the fact
 * catch when the operating system does not confine the agents (confined: `sandbox.test.ts`).
 * Every bad attempt fails (or its deed is undone and named), no honest attempt fails, nothing
 * forged or foreign lands, and the report's tasks match what landed.
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

/** Waits until a file exists (the agents' handshakes: who is at work when). */
const waitFor = `
const waitFor = async (file) => { while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 20)) }
`

/** An honest agent at work during another's deed: says it started, waits for the deed, then does its own task. */
const witness = `
import * as fs from "node:fs"
import * as path from "node:path"
${waitFor}
const flags = process.argv[2]
fs.writeFileSync(path.join(flags, "witness-at-work"), "")
await waitFor(path.join(flags, "deed-done"))
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", "own work\\n")
`

/**
 * On its first attempt, once the witness is at work: writes into the main checkout, or into
 * the worktree of the stream named in argv[3], then pauses (so an innocent that starts after
 * the deed finishes first). Honest on its next attempt.
 */
const writer = `
import * as fs from "node:fs"
import * as path from "node:path"
import { execFileSync } from "node:child_process"
${waitFor}
const [flags, sibling] = process.argv.slice(2)
if (process.env.BRAID_ATTEMPT === "1") {
  await waitFor(path.join(flags, "witness-at-work"))
  const common = execFileSync("git", ["rev-parse", "--path-format=absolute", "--git-common-dir"], { encoding: "utf8" }).trim()
  if (sibling === undefined) fs.writeFileSync(path.join(path.dirname(common), "main-intrusion.txt"), "not yours\\n")
  else fs.writeFileSync(path.join(process.cwd(), "..", sibling, "intruder-was-here.txt"), "not yours\\n")
  fs.writeFileSync(path.join(flags, "deed-done"), "")
  await new Promise((r) => setTimeout(r, 2500))
}
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", "own work\\n")
`

/** Plants an fsmonitor script, an alias and a hook in the repository's .git on its first attempt. */
const gitWriter = `
import * as fs from "node:fs"
import * as path from "node:path"
import { execFileSync } from "node:child_process"
if (process.env.BRAID_ATTEMPT === "1") {
  const common = execFileSync("git", ["rev-parse", "--path-format=absolute", "--git-common-dir"], { encoding: "utf8" }).trim()
  const marker = process.argv[2]
  const script = path.join(path.dirname(marker), "fsmonitor.sh")
  fs.writeFileSync(script, "#!/bin/sh\\necho ran >> " + marker + "\\n")
  fs.chmodSync(script, 0o755)
  fs.appendFileSync(path.join(common, "config"), "[core]\\n\\tfsmonitor = " + script + "\\n[alias]\\n\\tstatus = !" + script + "\\n")
  fs.writeFileSync(path.join(common, "hooks", "post-commit"), "#!/bin/sh\\necho hook >> " + marker + "\\n", { mode: 0o755 })
}
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", "own work\\n")
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
/** What each task did, for a failure's message. */
const summaryOf = (report: any) =>
  tasksOf(report).map((t: any) => `\n${t.taskId} ${t.status}: ${t.attempts.map((a: any) => a.summary).join(" | ")}`).join("") +
  `\n${report.mergeResult?.reason ?? ""}`
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
    const out = await braid(["run", f.plan, "--repo", f.repo, "--sandbox", "off", "--json", "--quiet"])
    const report = JSON.parse(out.stdout)
    assert.strictEqual(out.code, 0, `${out.stderr}${summaryOf(report)}`)
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

  it("a write into the main checkout fails the attempts at work when it appeared (their tasks go on), never one that started after it; none of it lands", async () => {
    const flags = fs.mkdtempSync(path.join(os.tmpdir(), "braid-flags-"))
    const f = fixture("main", { "honest.mjs": honest, "writer.mjs": writer, "witness.mjs": witness }, [
      "streams:",
      ...["writer", "witness", "late", "h1", "h2"].map((s) => `  - { name: ${s}, type: api }`),
      "tasks:",
      `  - { id: writer-1, title: Writer, stream: writer, run: [node, AGENTS/writer.mjs, ${flags}] }`,
      `  - { id: witness-1, title: Witness, stream: witness, run: [node, AGENTS/witness.mjs, ${flags}] }`,
      // Starts once the witness has settled, after the write, and finishes while the writer still pauses.
      "  - { id: late-1, title: Late, stream: late, dependsOn: [witness-1], run: { script: agents/honest.mjs } }",
      ...["h1", "h2"].map((s) => `  - { id: ${s}-1, title: Honest ${s}, stream: ${s}, dependsOn: [late-1], run: { script: agents/honest.mjs } }`)
    ])
    const out = await braid(["run", f.plan, "--repo", f.repo, "--sandbox", "off", "--json", "--quiet"], { PAUSE_MS: "100" })
    const report = JSON.parse(out.stdout)
    assert.strictEqual(out.code, 0, `${out.stderr}${summaryOf(report)}`)
    const tasks = tasksOf(report)
    const task = (id: string) => tasks.find((t: any) => t.taskId === id)
    // The two agents at work when the file appeared: each attempt fails naming it and the other.
    assert.match(task("writer-1").attempts[0].summary, /main checkout: main-intrusion\.txt \(the agents of stream witness were at work too/)
    assert.match(task("witness-1").attempts[0].summary, /main checkout: main-intrusion\.txt \(the agents of stream writer were at work too/)
    // It finished before the writer's attempt ended, but started after the write: not told.
    assert.strictEqual(task("late-1").attempts.length, 1)
    for (const t of tasks) assert.strictEqual(t.status, "completed", t.taskId)
    assert.notInclude(git(f.repo, "log", "--all", "--name-only", "--format="), "main-intrusion.txt")
    assert.isTrue(fs.existsSync(path.join(f.repo, "main-intrusion.txt")), "left in the main checkout for the user to see")
    completedLanded(f.repo, report)
  }, 90_000)

  it("a write into an idle stream's worktree is dropped there and never committed as that stream's work", async () => {
    const flags = fs.mkdtempSync(path.join(os.tmpdir(), "braid-flags-"))
    const f = fixture("sibling", { "honest.mjs": honest, "writer.mjs": writer, "witness.mjs": witness }, [
      "streams:",
      ...["victim", "intruder", "witness"].map((s) => `  - { name: ${s}, type: api }`),
      "tasks:",
      "  - { id: victim-1, title: Victim one, stream: victim, run: { script: agents/honest.mjs } }",
      // The victim's checkout waits, idle, for the witness while the intruder writes into it.
      `  - { id: witness-1, title: Witness, stream: witness, dependsOn: [victim-1], run: [node, AGENTS/witness.mjs, ${flags}] }`,
      "  - { id: victim-2, title: Victim two, stream: victim, dependsOn: [witness-1], run: { script: agents/honest.mjs } }",
      `  - { id: intruder-1, title: Intruder, stream: intruder, dependsOn: [victim-1], run: [node, AGENTS/writer.mjs, ${flags}, victim] }`
    ])
    const out = await braid(["run", f.plan, "--repo", f.repo, "--sandbox", "off", "--json", "--quiet"], { PAUSE_MS: "100" })
    const report = JSON.parse(out.stdout)
    assert.strictEqual(out.code, 0, `${out.stderr}${summaryOf(report)}`)
    const tasks = tasksOf(report)
    const task = (id: string) => tasks.find((t: any) => t.taskId === id)
    assert.match(task("intruder-1").attempts[0].summary, /worktree of stream victim: intruder-was-here\.txt/)
    assert.strictEqual(task("victim-1").attempts.length, 1)
    assert.strictEqual(task("victim-2").attempts.length, 1)
    for (const t of tasks) assert.strictEqual(t.status, "completed", t.taskId)
    assert.notInclude(git(f.repo, "log", "--all", "--name-only", "--format="), "intruder-was-here.txt")
    completedLanded(f.repo, report)
  }, 90_000)

  it("an agent planting code in the repository's .git fails its attempt, named, as do the attempts at work beside it (their tasks go on); nothing planted ever runs and the user's .git/config is as it was", async () => {
    const f = fixture("dotgit", { "honest.mjs": honest, "git-writer.mjs": gitWriter }, [
      "streams:",
      ...["planter", "h1", "h2"].map((s) => `  - { name: ${s}, type: api }`),
      "tasks:",
      "  - { id: planter-1, title: Planter, stream: planter, run: [node, AGENTS/git-writer.mjs, MARKER] }",
      ...["h1", "h2"].map((s) => `  - { id: ${s}-1, title: Honest ${s}, stream: ${s}, run: { script: agents/honest.mjs } }`)
    ])
    const marker = path.join(path.dirname(f.repo), "ran.txt")
    fs.writeFileSync(f.plan, fs.readFileSync(f.plan, "utf8").replace("MARKER", JSON.stringify(marker)))
    const config = fs.readFileSync(path.join(f.repo, ".git", "config"), "utf8")
    const main = git(f.repo, "rev-parse", "main")
    // The honest agents pause long enough to still be at work: they are told too, and go on.
    const out = await braid(["run", f.plan, "--repo", f.repo, "--sandbox", "off", "--json", "--quiet"], { PAUSE_MS: "1500" })
    const report = JSON.parse(out.stdout)
    const tasks = tasksOf(report)
    const planter = tasks.find((t: any) => t.taskId === "planter-1")
    assert.match(planter.attempts[0].summary, /repository's \.git: config, hooks\/post-commit/, summaryOf(report))
    assert.match(planter.attempts[0].summary, /put config, hooks\/post-commit back/)
    assert.isFalse(fs.existsSync(marker), "nothing planted ran")
    assert.strictEqual(fs.readFileSync(path.join(f.repo, ".git", "config"), "utf8"), config)
    assert.isFalse(fs.existsSync(path.join(f.repo, ".git", "hooks", "post-commit")))
    // The user's own git, after the run, runs nothing planted either.
    git(f.repo, "status")
    assert.isFalse(fs.existsSync(marker))
    for (const t of tasks) assert.strictEqual(t.status, "completed", `${t.taskId}${summaryOf(report)}`)
    assert.strictEqual(out.code, 0, out.stderr)
    assert.notStrictEqual(git(f.repo, "rev-parse", "main"), main)
    completedLanded(f.repo, report)
  }, 90_000)
})
