/**
 * Durable runs, tried as a user would: the built `braid` killed with SIGKILL after each kind
 * of record the bundled example's run writes (chosen by the journal, not by sleeping), resumed
 * after each crash until it lands; Ctrl-C; a second process on the same run.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bin, braid, exampleWithoutEnvironment, git, type JournalRecord, journalOf } from "./support/Braid.js"

/**
 * The bundled example without its checkout environment (whose crash and resume
 * environment.test.ts tries): what this file checks is the journal's, at each kind of record.
 */
const example = exampleWithoutEnvironment(fs.mkdtempSync(path.join(os.tmpdir(), "braid-resume-example-")))
const plan = path.join(example, "plan.yaml")

/** A fresh repository holding the example project. */
const freshRepo = () => {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), "braid-resume-"))
  fs.cpSync(path.join(example, "project"), repo, { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return repo
}

const agentRuns = (log: string) => fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter((l) => l !== "") : []

/** What must be the same between an uninterrupted run and a crashed-then-resumed one. */
const essence = (report: any) => ({
  status: report.status,
  tasks: report.streamResults.flatMap((s: any) =>
    s.results.map((r: any) => [r.taskId, r.status, r.quality?.score, r.attempts.length, r.attempts.map((a: any) => a.review?.score)])
  ),
  conflicts: report.conflictReport.conflicts.map((c: any) => [c.streams, c.paths, c.outcome]),
  verified: report.integrationResult.passed,
  landed: report.mergeResult.landed,
  merged: report.mergeResult.mergedStreams
})

/**
 * Where to kill: right after the first record of each kind the run writes, every kind but
 * the run's end — one step of each sort the run makes durable (a task started, an agent's
 * process noted, an attempt done, a review, a settled task, a retry's attempt done, a merge,
 * a resolution, the verification, the landing) — found in an uninterrupted run's journal.
 */
const KINDS = ["Started", "TaskStarted", "ProcessNoted", "AttemptDone", "Reviewed", "Settled", "AttemptDone of a retry", "Merged", "Resolved", "Verified", "Landed"] as const
type Kind = (typeof KINDS)[number]
const kindOf = (r: JournalRecord): string => (r.value._tag === "AttemptDone" && r.value.attempt > 1 ? "AttemptDone of a retry" : r.value._tag)

/**
 * The key a crash waits for (`BRAID_CRASH_AFTER_KEY`): the record's own (`<key>$`), or a prefix
 * where part of it differs from run to run (an agent's pid, a commit).
 */
const crashKeyOf = (key: string): string => {
  const varying = /^(.*\/(?:process|verify)\/)[^/]+$/.exec(key)?.[1] ?? (key.startsWith("land/") ? "land/" : undefined)
  return varying ?? `${key}$`
}
/** Whether a record's key is the one a crash waits for (as the hook in Session.ts matches it). */
const matches = (key: string, crashKey: string) => crashKey.endsWith("$") ? key === crashKey.slice(0, -1) : key.startsWith(crashKey)

/** An uninterrupted run of the plan: what the crashed-and-resumed run must end with, and where to kill it. */
const baselineOf = async () => {
  const baselineRepo = freshRepo()
  const baselineLog = path.join(baselineRepo, "..", `${path.basename(baselineRepo)}.agents.log`)
  const baseline = await braid(["run", plan, "--repo", baselineRepo, "--json", "--quiet"], { BRAID_AGENT_LOG: baselineLog })
  assert.strictEqual(baseline.code, 0, baseline.stderr)
  const expected = essence(JSON.parse(baseline.stdout))
  const expectedTree = git(baselineRepo, "rev-parse", "main^{tree}")
  const { records } = journalOf(baselineRepo)
  const points: Array<{ readonly kind: Kind; readonly key: string }> = []
  for (const kind of KINDS) {
    const first = records.find((r) => kindOf(r) === kind)
    assert.isDefined(first, `the example's run writes no ${kind} record`)
    points.push({ kind, key: crashKeyOf(first!.key) })
  }
  return { expected, expectedTree, points }
}

describe("braid resume after a crash", () => {
  let baseline: Awaited<ReturnType<typeof baselineOf>>
  beforeAll(async () => {
    baseline = await baselineOf()
  }, 120_000)

  /** One run, killed after a record of each of `kinds` in turn and resumed after each crash, then resumed to its end. */
  const chain = async (kinds: ReadonlyArray<Kind>) => {
    const { expected, expectedTree } = baseline
    const points = baseline.points.filter((p) => kinds.includes(p.kind))
    const repo = freshRepo()
    const log = path.join(repo, "..", `${path.basename(repo)}.agents.log`)
    const crashedAfter = new Set<Kind>()
    let started = false
    // One run, killed again and again: after each crash the next process (a resume) runs until
    // the next kind's record, so every sort of durable step is crashed after once, and every
    // resume starts from what several crashes left.
    for (const { kind, key } of points) {
      const before = started ? journalOf(repo).records : []
      // Written already (streams run side by side): that kind was crashed after in an earlier step, or comes later.
      if (before.some((r) => matches(r.key, key))) continue
      const settled = new Set(before.filter((r) => r.value._tag === "Settled").map((r) => r.value.result.taskId as string))
      const ran = agentRuns(log).length
      const env = { BRAID_CRASH_AFTER_KEY: key, BRAID_AGENT_LOG: log }
      const crashed = started
        ? await braid(["resume", "--repo", repo, "--quiet"], env)
        : await braid(["run", plan, "--repo", repo, "--quiet"], env)
      started = true
      assert.strictEqual(crashed.signal, "SIGKILL", `kill after ${kind} (${key}): ${crashed.stderr}`)
      const atCrash = journalOf(repo).records
      assert.isTrue(atCrash.some((r) => matches(r.key, key) && kindOf(r) === kind), `kill after ${kind}: no ${key} record on disk`)
      crashedAfter.add(kind)
      // No task settled before this process started ran its agent again.
      const again = agentRuns(log).slice(ran).map((l) => l.split(" ")[0]!)
      for (const task of again) assert.isFalse(settled.has(task), `after the crash before ${kind}: settled task ${task} ran again`)
    }
    assert.isAtLeast(crashedAfter.size, kinds.length - 1, `crashed after only ${[...crashedAfter].join(", ")}`)

    const settled = new Set(journalOf(repo).records.filter((r) => r.value._tag === "Settled").map((r) => r.value.result.taskId as string))
    const ran = agentRuns(log).length
    const resumed = await braid(["resume", "--repo", repo, "--json", "--quiet"], { BRAID_AGENT_LOG: log })
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.deepStrictEqual(essence(JSON.parse(resumed.stdout)), expected)
    assert.strictEqual(git(repo, "rev-parse", "main^{tree}"), expectedTree, "landed tree differs")
    for (const task of agentRuns(log).slice(ran).map((l) => l.split(" ")[0]!)) assert.isFalse(settled.has(task), `settled task ${task} ran again`)

    // The journal replays cleanly and no recorded commit was lost.
    const after = journalOf(repo)
    assert.deepStrictEqual(after.records.map((r) => r.seq), after.records.map((_, i) => i + 1))
    for (const r of after.records) {
      if (r.value._tag === "AttemptDone" && r.value.commit !== null) {
        const ok = spawnSync("git", ["cat-file", "-e", `${r.value.commit}^{commit}`], { cwd: repo }).status
        assert.strictEqual(ok, 0, `commit ${r.value.commit} lost`)
      }
    }
    const status = await braid(["status", after.runId, "--repo", repo])
    assert.strictEqual(status.code, 0, status.stderr)
    assert.include(status.stdout, "succeeded")
    fs.rmSync(repo, { recursive: true, force: true })
  }

  // Two runs, so that neither test comes near the time limit on a busy machine.
  const halves = [KINDS.slice(0, 6), KINDS.slice(6)]
  for (const kinds of halves) {
    it(`a run SIGKILLed right after a record of each kind in turn (${kinds.join(", ")}), resumed after each crash, lands the same tree and report, repeating no settled task's agent`, () =>
      chain(kinds), 90_000)
  }

  it("Ctrl-C leaves a resumable run and prints the resume command; resuming completes it", async () => {
    const repo = freshRepo()
    const child = spawn(process.execPath, [bin, "run", plan, "--repo", repo], { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    child.stderr.on("data", (d) => {
      stderr += d
      // Interrupt once the first attempt is under way.
      if (/attempt 1 started/.test(stderr) && !child.killed) child.kill("SIGINT")
    })
    const code = await closed
    assert.strictEqual(code, 130, stderr)
    const { records, runId } = journalOf(repo)
    assert.strictEqual(records.at(-1)!.value._tag, "Interrupted")
    assert.include(stderr, `resume it with: braid resume ${runId} --repo ${repo}`)
    // Nothing is left checked out: what was committed is on the run's branches, the rest runs again.
    assert.notInclude(git(repo, "worktree", "list"), runId)
    const runs = await braid(["runs", "--repo", repo])
    assert.match(runs.stdout, new RegExp(`${runId}\\tinterrupted`))
    const resumed = await braid(["resume", runId, "--repo", repo, "--quiet"])
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.match(resumed.stderr, /SUCCEEDED: 5\/5 tasks completed/)
    const report = await braid(["report", runId, "--repo", repo])
    assert.strictEqual(report.code, 0)
    assert.include(report.stdout, "**✅ succeeded**")
  }, 120_000)

  it("refuses a second process on a live run, and cleans a finished run's leftovers", async () => {
    const repo = freshRepo()
    const first = await braid(["run", plan, "--repo", repo, "--quiet", "--keep-worktrees"], { BRAID_CRASH_AFTER_RECORDS: "3" })
    assert.strictEqual(first.signal, "SIGKILL")
    const { runId } = journalOf(repo)
    const holder = spawn("sleep", ["30"])
    fs.writeFileSync(path.join(repo, ".braid", "runs", runId, "lock"), `${holder.pid}\n`)
    try {
      const refused = await braid(["resume", runId, "--repo", repo])
      assert.strictEqual(refused.code, 2)
      assert.include(refused.stderr, `run ${runId} is in use by another braid process (pid ${holder.pid})`)
      const clean = await braid(["clean", runId, "--repo", repo])
      assert.strictEqual(clean.code, 2)
      assert.include(clean.stderr, "is still running")
    } finally {
      holder.kill("SIGKILL")
    }
    // The holder is gone: its lock is stale and is taken over.
    const resumed = await braid(["resume", runId, "--repo", repo, "--quiet"])
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    const again = await braid(["resume", runId, "--repo", repo])
    assert.strictEqual(again.code, 2)
    assert.include(again.stderr, "already finished (succeeded)")
    const landed = git(repo, "rev-parse", "main")
    const clean = await braid(["clean", runId, "--repo", repo])
    assert.strictEqual(clean.code, 0, clean.stderr)
    assert.strictEqual(git(repo, "branch", "--list", "braid/*"), "")
    assert.strictEqual(git(repo, "rev-parse", "main"), landed)
    assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs", runId)))
  }, 120_000)
})
