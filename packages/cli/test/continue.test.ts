/**
 * Every run can be finished: the built `braid` driven through each way a run stops short of
 * landing — a conflict left for a person, a failed task, a failed verification, a landing
 * refused because the target moved, a `--no-land` run — and then continued to a landing with
 * `resume`, `retry` or `land`; and SIGKILLed inside `retry` and `land`, then resumed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { git, type Outcome, root, braid as run, worktreesOf } from "./support/Braid.js"

/**
 * The agent every task runs: it appends a line to its task's file and logs its run. A task
 * named in `FAIL_UNLESS_NOTE` fails until the person's note reaches it.
 */
const agent = `
import * as fs from "node:fs"
const task = process.env.BRAID_TASK_ID
fs.appendFileSync(process.env.AGENT_LOG, task + " " + process.env.BRAID_ATTEMPT + " " + JSON.stringify(process.env.BRAID_USER_NOTE ?? "") + "\\n")
const failing = (process.env.FAIL_UNLESS_NOTE ?? "").split(",")
if (failing.includes(task) && (process.env.BRAID_USER_NOTE ?? "") === "") {
  console.error("cannot do " + task + " without a hint")
  process.exit(3)
}
const file = process.env.WRITES ? JSON.parse(process.env.WRITES)[task] ?? task + ".txt" : task + ".txt"
fs.appendFileSync(file, task + " done" + (process.env.BRAID_USER_NOTE ? " (" + process.env.BRAID_USER_NOTE + ")" : "") + "\\n")
console.log(task + " written")
`

/** Verification: passes unless `broken.txt` is in the integration; moves the target once when asked. */
const verify = `
import * as fs from "node:fs"
import { execFileSync } from "node:child_process"
const move = process.env.MOVE_TARGET_IN
if (move && !fs.existsSync(move + "/moved.txt")) {
  fs.writeFileSync(move + "/moved.txt", "someone else's work\\n")
  execFileSync("git", ["-c", "user.name=o", "-c", "user.email=o@o", "add", "moved.txt"], { cwd: move })
  execFileSync("git", ["-c", "user.name=o", "-c", "user.email=o@o", "commit", "-q", "-m", "meanwhile on main"], { cwd: move })
}
if (fs.existsSync("broken.txt") && !fs.readFileSync("broken.txt", "utf8").includes("fixed")) {
  console.error("broken.txt is broken")
  process.exit(1)
}
`

interface Fixture {
  readonly repo: string
  readonly plan: string
  readonly log: string
  readonly env: Record<string, string>
}

/** A repository, a plan of three streams (c-1 depends on b-1) and the agents' log. */
const fixture = (options: { readonly conflictStrategy?: string; readonly env?: Record<string, string> } = {}): Fixture => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-continue-"))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(repo)
  fs.writeFileSync(path.join(repo, "README.md"), "project\n")
  fs.writeFileSync(path.join(repo, "shared.txt"), "base\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const plans = path.join(dir, "plan")
  fs.mkdirSync(path.join(plans, "agents"), { recursive: true })
  fs.writeFileSync(path.join(plans, "agents", "agent.mjs"), agent)
  fs.writeFileSync(path.join(plans, "verify.mjs"), verify)
  const plan = path.join(plans, "plan.yaml")
  fs.writeFileSync(
    plan,
    [
      "projectName: continue",
      "featureName: every run can be finished",
      "maxParallel: 2",
      `conflictStrategy: ${options.conflictStrategy ?? "manual"}`,
      `verify: [{ name: verify, command: [node, ${JSON.stringify(path.join(plans, "verify.mjs"))}] }]`,
      "streams:",
      "  - { name: a, type: api }",
      "  - { name: b, type: ui }",
      "  - { name: c, type: docs }",
      "tasks:",
      "  - { id: a-1, title: A one, stream: a, run: { script: agents/agent.mjs } }",
      "  - { id: b-1, title: B one, stream: b, run: { script: agents/agent.mjs } }",
      "  - { id: c-1, title: C one, stream: c, dependsOn: [b-1], run: { script: agents/agent.mjs } }",
      ""
    ].join("\n")
  )
  const log = path.join(dir, "agents.log")
  return { repo, plan, log, env: { AGENT_LOG: log, ...options.env } }
}

const runsOf = (f: Fixture) => fs.existsSync(f.log) ? fs.readFileSync(f.log, "utf8").split("\n").filter((l) => l !== "") : []
const runIdOf = (f: Fixture) => fs.readdirSync(path.join(f.repo, ".braid", "runs")).sort().at(-1)!
const integrationDir = (f: Fixture) => path.join(worktreesOf(f.repo, runIdOf(f)), "_integration")
const report = (o: Outcome) => JSON.parse(o.stdout)
const mainFile = (f: Fixture, file: string) => git(f.repo, "show", `main:${file}`)
const attemptCommits = (r: any, task: string) =>
  r.streamResults.flatMap((s: any) => s.results).find((t: any) => t.taskId === task).attempts.map((a: any) => a.commit)

describe("continuing a run that stopped", () => {
  it("a conflict left for a person: resume refuses while markers remain, then merges, verifies and lands", async () => {
    const f = fixture({ env: { WRITES: JSON.stringify({ "a-1": "shared.txt", "b-1": "shared.txt" }) } })
    const first = await run(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(first.code, 1, first.stderr)
    assert.strictEqual(report(first).status, "blocked")
    const status = await run(["status", "--repo", f.repo])
    assert.include(status.stdout, "integration stopped at b")
    assert.include(status.stdout, `continue with: resolve the conflict in shared.txt in ${integrationDir(f)}, commit the merge, then: braid resume`)

    // Not yet resolved: resume says what is left.
    const early = await run(["resume", "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(report(early).status, "blocked")
    assert.include(report(early).conflictReport.conflicts.at(-1).detail, "conflict markers remain in shared.txt")

    // The person resolves the conflict by hand and commits the merge.
    const dir = integrationDir(f)
    fs.writeFileSync(path.join(dir, "shared.txt"), "base\na-1 done\nb-1 done\n")
    git(dir, "add", "shared.txt")
    git(dir, "commit", "-q", "--no-edit")
    const before = runsOf(f).length
    const resumed = await run(["resume", "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    const r = report(resumed)
    assert.strictEqual(r.status, "succeeded")
    assert.isTrue(r.mergeResult.landed)
    assert.deepStrictEqual(r.mergeResult.mergedStreams, ["a", "b", "c"])
    assert.strictEqual(r.conflictReport.conflicts.at(-1).detail, "resolved by a person")
    assert.strictEqual(mainFile(f, "shared.txt"), "base\na-1 done\nb-1 done")
    assert.strictEqual(runsOf(f).length, before, "no agent ran again")
  }, 90_000)

  it("a failed task retried with a note lands, every other task's commits unchanged and its agent not run again", async () => {
    const f = fixture({ env: { FAIL_UNLESS_NOTE: "b-1" } })
    const first = await run(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(first.code, 1)
    const r1 = report(first)
    assert.strictEqual(r1.status, "failed")
    const status = await run(["status", "--repo", f.repo])
    assert.match(status.stdout, /b-1: failed \(.*cannot do b-1 without a hint/)
    assert.include(status.stdout, "c-1: skipped (not started: dependency b-1 failed)")
    assert.include(status.stdout, "continue with: braid retry")
    // b keeps its worktree for a person to look at; a, done, has none left.
    const worktrees = git(f.repo, "worktree", "list")
    assert.include(worktrees, `${path.join(worktreesOf(f.repo, runIdOf(f)), "b")} `)
    assert.notInclude(worktrees, `${path.join(worktreesOf(f.repo, runIdOf(f)), "a")} `)

    const retried = await run(["retry", "--repo", f.repo, "--feedback", "use the hint", "--json", "--quiet"], f.env)
    assert.strictEqual(retried.code, 0, retried.stderr)
    const r2 = report(retried)
    assert.strictEqual(r2.status, "succeeded")
    assert.isTrue(r2.mergeResult.landed)
    assert.deepStrictEqual(attemptCommits(r2, "a-1"), attemptCommits(r1, "a-1"))
    const runs = runsOf(f)
    assert.strictEqual(runs.filter((l) => l.startsWith("a-1 ")).length, 1, "a-1's agent ran once")
    assert.include(runs, `b-1 1 "use the hint"`)
    assert.include(runs, `c-1 1 "use the hint"`)
    assert.strictEqual(mainFile(f, "b-1.txt"), "b-1 done (use the hint)")
    assert.strictEqual(mainFile(f, "a-1.txt"), "a-1 done")
  }, 90_000)

  it("a failed verification fixed by a commit in the integration is verified again and lands", async () => {
    const f = fixture({ env: { WRITES: JSON.stringify({ "a-1": "broken.txt" }) } })
    const first = await run(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(first.code, 1)
    assert.strictEqual(report(first).mergeResult.reason, "integration verification failed")
    const status = await run(["status", "--repo", f.repo])
    assert.include(status.stdout, "verification failed")
    assert.include(status.stdout, `continue with: commit a fix in ${integrationDir(f)}, then: braid resume`)
    // The same commit is not verified again: resuming changes nothing.
    const same = await run(["resume", "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(report(same).mergeResult.reason, "integration verification failed")

    const dir = integrationDir(f)
    fs.writeFileSync(path.join(dir, "broken.txt"), "fixed by hand\n")
    git(dir, "commit", "-q", "-am", "fix the integration")
    const fixed = git(dir, "rev-parse", "HEAD")
    const resumed = await run(["resume", "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    const r = report(resumed)
    assert.strictEqual(r.integrationResult.commit, fixed)
    assert.isTrue(r.mergeResult.landed)
    assert.strictEqual(mainFile(f, "broken.txt"), "fixed by hand")
  }, 90_000)

  it("braid status names the integration's folder only while it is there", async () => {
    const f = fixture({ env: { WRITES: JSON.stringify({ "a-1": "broken.txt" }) } })
    const first = await run(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(report(first).mergeResult.reason, "integration verification failed")
    // Kept for the fix, then removed by the person.
    git(f.repo, "worktree", "remove", "--force", integrationDir(f))
    const status = await run(["status", "--repo", f.repo])
    assert.include(status.stdout, "continue with: commit a fix, then: braid resume")
    assert.notInclude(status.stdout, "_integration")
  }, 90_000)

  it("a landing refused because the target moved: braid land merges the target in, verifies again and lands", async () => {
    const f = fixture()
    const moved = await run(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], { ...f.env, MOVE_TARGET_IN: f.repo })
    assert.strictEqual(moved.code, 1, moved.stderr)
    assert.match(report(moved).mergeResult.reason, /^landing refused: .*moved since the run started/)
    // The integration's worktree went with the run; its branch, which the next step names, stays.
    assert.include(report(moved).nextSteps, `The integrated result is on branch braid/${runIdOf(f)}/integration.`)
    assert.notInclude(report(moved).nextSteps.join("\n"), "_integration")
    assert.isFalse(fs.existsSync(integrationDir(f)))
    const status = await run(["status", "--repo", f.repo])
    assert.include(status.stdout, "landing refused")
    assert.include(status.stdout, "continue with: braid land")

    const landed = await run(["land", "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(landed.code, 0, landed.stderr)
    const r = report(landed)
    assert.isTrue(r.mergeResult.landed)
    assert.strictEqual(mainFile(f, "moved.txt"), "someone else's work")
    assert.strictEqual(mainFile(f, "c-1.txt"), "c-1 done")
    // Verified again, on the commit that holds the moved target.
    assert.strictEqual(r.integrationResult.commit, r.mergeResult.commit)
  }, 90_000)

  it("a --no-land run lands later with braid land; then there is nothing left to continue", async () => {
    const f = fixture()
    const start = git(f.repo, "rev-parse", "main")
    const first = await run(["run", f.plan, "--repo", f.repo, "--no-land", "--json", "--quiet"], f.env)
    assert.strictEqual(first.code, 0, first.stderr)
    assert.isFalse(report(first).mergeResult.landed)
    assert.strictEqual(git(f.repo, "rev-parse", "main"), start)
    const before = runsOf(f).length
    const landed = await run(["land", runIdOf(f), "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(landed.code, 0, landed.stderr)
    assert.isTrue(report(landed).mergeResult.landed)
    assert.strictEqual(mainFile(f, "a-1.txt"), "a-1 done")
    assert.strictEqual(runsOf(f).length, before)
    const again = await run(["resume", "--repo", f.repo])
    assert.strictEqual(again.code, 2)
    assert.include(again.stderr, "already finished (succeeded)")
    assert.strictEqual(git(f.repo, "branch", "--list", "braid/*"), "")
  }, 90_000)
})

describe("crashes inside retry and land", () => {
  const tree = (f: Fixture) => git(f.repo, "rev-parse", "main^{tree}")

  // The tree a retry lands when nothing is killed: made once, compared by each kill point.
  let expected: Promise<string> | undefined
  const expectedTree = () =>
    expected ??= (async () => {
      const baseline = fixture({ env: { FAIL_UNLESS_NOTE: "b-1" } })
      await run(["run", baseline.plan, "--repo", baseline.repo, "--quiet"], baseline.env)
      const ok = await run(["retry", "--repo", baseline.repo, "--feedback", "hint", "--quiet"], baseline.env)
      assert.strictEqual(ok.code, 0, ok.stderr)
      return tree(baseline)
    })()

  // One retry, killed again and again: after 1 journal record, then each resume after a few
  // more, until one lands. Every kill point is met on top of the crashes before it.
  it("a retry SIGKILLed after journal record 1, and its resumes after 2 and 3 more, lands the same tree when resumed, running no settled task again", async () => {
    const f = fixture({ env: { FAIL_UNLESS_NOTE: "b-1" } })
    await run(["run", f.plan, "--repo", f.repo, "--quiet"], f.env)
    const crashed = await run(["retry", "--repo", f.repo, "--feedback", "hint", "--quiet"], { ...f.env, BRAID_CRASH_AFTER_RECORDS: "1" })
    assert.strictEqual(crashed.signal, "SIGKILL", crashed.stderr)
    for (const more of [2, 3]) {
      const again = await run(["resume", "--repo", f.repo, "--quiet"], { ...f.env, BRAID_CRASH_AFTER_RECORDS: String(more) })
      assert.strictEqual(again.signal, "SIGKILL", `a resume killed after ${more} records: ${again.stderr}`)
    }
    const resumed = await run(["resume", "--repo", f.repo, "--quiet"], f.env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.strictEqual(tree(f), await expectedTree())
    assert.strictEqual(runsOf(f).filter((l) => l.startsWith("a-1 ")).length, 1, "a-1 ran again")
  }, 90_000)

  it("a braid land SIGKILLed after its first journal record, and its resume after one more, lands when resumed", async () => {
    const f = fixture()
    const first = await run(["run", f.plan, "--repo", f.repo, "--no-land", "--json", "--quiet"], f.env)
    const integrated = report(first).integrationResult.commit
    const crashed = await run(["land", "--repo", f.repo, "--quiet"], { ...f.env, BRAID_CRASH_AFTER_RECORDS: "1" })
    assert.strictEqual(crashed.signal, "SIGKILL", crashed.stderr)
    const again = await run(["resume", "--repo", f.repo, "--quiet"], { ...f.env, BRAID_CRASH_AFTER_RECORDS: "1" })
    assert.strictEqual(again.signal, "SIGKILL", again.stderr)
    const resumed = await run(["resume", "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.isTrue(report(resumed).mergeResult.landed)
    assert.strictEqual(git(f.repo, "rev-parse", "main"), integrated)
  }, 90_000)
})
