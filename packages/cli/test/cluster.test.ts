/**
 * Runs spread over machines, for real: three `braid runner` processes (each with a work
 * folder of its own, standing for three machines) on one Postgres, bare repositories as the
 * runs' remotes, three runs submitted with `braid submit --wait` — and one runner killed
 * with SIGKILL while an agent of it is at work. Every run still lands, with the tree the same
 * plan gives on one machine; no attempt the journal had settled ran again; the killed
 * runner's task was finished by another; no run ever had more agents at work than its
 * `maxParallel`.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "vitest"
import { braid, exampleWithoutEnvironment, git } from "./support/Braid.js"
import { type AgentLine, agentsOf, peak, query, seed, startRunner, useCluster } from "./support/Cluster.js"
import * as Postgres from "./support/Postgres.js"

describe.skipIf(Postgres.skipReason() !== undefined)("three runners, one killed in the middle of an agent", () => {
  const c = useCluster("braid-cluster-", { runners: ["machine-1", "machine-2", "machine-3"] })

  it("lands every run with the tree of a run on one machine, nothing settled run twice, the killed runner's task done by another", async () => {
    const example = exampleWithoutEnvironment(c.dir)
    const exampleRemote = seed(c.dir, "example", path.join(example, "project"))
    const runB = seed(c.dir, "b", undefined)
    const runC = seed(c.dir, "c", undefined)
    const submit = (plan: string, remote: string, id: string) =>
      braid(["submit", plan, "--database", c.url, "--remote", remote, "--id", id, "--wait"])
    const runs = [
      submit(path.join(example, "plan.yaml"), exampleRemote.remote, "example"),
      submit(path.join(c.dir, "plan", "plan.yaml"), runB.remote, "work-b"),
      submit(path.join(c.dir, "plan", "plan.yaml"), runC.remote, "work-c")
    ]

    // The same plans on one machine, run meanwhile: the trees the runs must land.
    const local = async (name: string, project: string | undefined, plan: string) => {
      const { work } = seed(c.dir, `${name}-local`, project)
      const o = await braid(["run", plan, "--repo", work, "-q"], { BRAID_TEST_SLEEP_MS: "0", BRAID_TEST_AGENTS: path.join(c.dir, "local.jsonl") })
      assert.strictEqual(o.code, 0, `${name} on one machine: ${o.stderr}`)
      return git(work, "rev-parse", "main^{tree}")
    }
    const trees = Promise.all([
      local("example", path.join(example, "project"), path.join(example, "plan.yaml")),
      local("work", undefined, path.join(c.dir, "plan", "plan.yaml"))
    ])
    trees.catch(() => {}) // awaited below; a failure before then is the test's own

    // Kill the runner of the first agent of ours seen at work (started, not ended).
    const agents = () => agentsOf(c.dir)
    let victim: { runner: (typeof c.runners)[number]; agent: AgentLine; at: number } | undefined
    for (let waited = 0; victim === undefined && waited < 60_000; waited += 100) {
      const lines = agents()
      const busy = lines.find((l) => l.phase === "start" && !lines.some((e) => e.phase !== "start" && e.pid === l.pid))
      const runner = busy === undefined ? undefined : c.runners.find((r) => busy.cwd.startsWith(r.workdir + path.sep))
      if (busy !== undefined && runner !== undefined) {
        runner.child.kill("SIGKILL")
        victim = { runner, agent: busy, at: Date.now() }
      } else await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.isDefined(victim, "no agent of ours was seen at work")
    const killed = victim!
    // The machine's runner comes back (a supervisor restarts it): it first ends the agent the killed one left at work.
    const back = startRunner({ url: c.url, dir: c.dir, name: `${killed.runner.name}-again`, workdir: killed.runner.workdir })
    c.runners.push(back)

    const outcomes = await Promise.all(runs)
    for (const [i, o] of outcomes.entries()) assert.strictEqual(o.code, 0, `run ${i}: ${o.stdout}\n${o.stderr}`)
    for (const o of outcomes) assert.notInclude(o.stdout + o.stderr, "test-secret", "the database password was printed")

    // The same plans on one machine gave the same trees.
    const [exampleTree, tree] = await trees
    assert.strictEqual(git(exampleRemote.remote, "rev-parse", "main^{tree}"), exampleTree)
    assert.strictEqual(git(runB.remote, "rev-parse", "main^{tree}"), tree)
    assert.strictEqual(git(runC.remote, "rev-parse", "main^{tree}"), tree)

    const journal = query(c.url, "SELECT run_id, key, value, (extract(epoch from at) * 1000)::bigint AS at FROM braid_journal ORDER BY seq")
    const ours = agents()
    // No attempt settled before the kill ran again: an attempt seen starting twice was the one cut off.
    for (const done of journal.filter((r) => r.value._tag === "AttemptDone")) {
      const starts = ours.filter((l) => l.run === done.run_id && l.task === done.value.taskId && l.attempt === done.value.attempt && l.phase === "start")
      if (done.run_id === "example") continue
      if (starts.length > 1) {
        assert.isAbove(Number(done.at), killed.at, `attempt ${done.value.attempt} of ${done.value.taskId} (${done.run_id}) was settled before the kill, yet ran ${starts.length} times`)
      } else assert.strictEqual(starts.length, 1, `attempt ${done.value.attempt} of ${done.value.taskId} (${done.run_id})`)
    }
    const exampleStarts = fs.readFileSync(path.join(c.dir, "example-agents.log"), "utf8").split("\n").filter((l) => l !== "")
    const exampleDone = journal.filter((r) => r.run_id === "example" && r.value._tag === "AttemptDone")
    for (const done of exampleDone) {
      const n = exampleStarts.filter((l) => l === `${done.value.taskId} ${done.value.attempt}`).length
      assert.isAtLeast(n, 1)
      if (n > 1) assert.isAbove(Number(done.at), killed.at, `example attempt ${done.value.attempt} of ${done.value.taskId} settled before the kill ran again`)
    }

    // The orphan was ended by the runner that came back, unless it had finished before.
    const orphan = ours.find((l) => l.phase !== "start" && l.pid === killed.agent.pid)
    assert.isDefined(orphan, "the killed runner's agent neither finished nor was ended")
    if (orphan!.phase === "killed") assert.match(back.log(), new RegExp(`ended process ${killed.agent.pid} \\(`))
    // The task cut off was taken again, by another runner, which reported it.
    const key = `stream/${killed.agent.task.split("-")[0]}/task/${killed.agent.task}`
    const taken = journal.filter((r) => r.run_id === killed.agent.run && r.key === `${key}/runner`).map((r) => r.value.runner)
    assert.include(taken, killed.runner.name)
    const done = journal.filter((r) => r.run_id === killed.agent.run && r.key === `${key}/done`)
    assert.lengthOf(done, 1)
    // Finished by another runner: not by the one killed (nor by its namesake that came back, a new process).
    assert.notStrictEqual(done[0].value.runner, killed.runner.name)

    // maxParallel held for each run, across the runners: from what the agents themselves logged…
    for (const run of ["work-b", "work-c"]) {
      const mine = ours.filter((l) => l.run === run)
      const intervals = mine.filter((l) => l.phase === "start").map((s) => [s.t, mine.find((e) => e.phase !== "start" && e.pid === s.pid)?.t ?? s.t + 60_000] as const)
      assert.isAtMost(peak(intervals), 2, `${run}: more agents at once than maxParallel 2`)
    }
    // …and for the example, from its journaled attempts (maxParallel 3).
    const exampleIntervals = exampleDone.map((r) => [Date.parse(r.value.startedAt), Date.parse(r.value.startedAt) + r.value.durationMs] as const)
    assert.isAtMost(peak(exampleIntervals), 3)

    // Each run's work was spread: more than one runner took its tasks.
    const takers = new Set(journal.filter((r) => r.key.endsWith("/runner")).map((r) => r.value.runner))
    assert.isAtLeast(takers.size, 2)

    // The runs, as braid runs and status show them from the database.
    const listed = await braid(["runs", "--database", c.url])
    assert.strictEqual(listed.code, 0, listed.stderr)
    for (const id of ["example", "work-b", "work-c"]) assert.match(listed.stdout, new RegExp(`^${id}\\tsucceeded`, "m"))
    const status = await braid(["status", "work-b", "--database", c.url])
    assert.match(status.stdout, /landed [0-9a-f]{10} on main of origin/)
    assert.notInclude(status.stdout + status.stderr, "test-secret")
  }, 90_000)

  it("continues the integration on another runner when the run's runner dies while verifying", async () => {
    const { remote } = seed(c.dir, "verify-kill", undefined)
    const run = braid(["submit", path.join(c.dir, "plan", "plan.yaml"), "--database", c.url, "--remote", remote, "--id", "verify-kill", "--wait"])
    const verifying = () => {
      try {
        return query(c.url, "SELECT seq FROM braid_events WHERE run_id = 'verify-kill' AND event->>'_tag' = 'VerificationStarted'").length > 0
      } catch {
        return false // the runners have not made the tables yet
      }
    }
    for (let waited = 0; !verifying() && waited < 60_000; waited += 200) await new Promise((resolve) => setTimeout(resolve, 200))
    assert.isTrue(verifying(), "verification never started")
    const holder = c.runners.find((r) => r.child.exitCode === null && r.log().includes("run verify-kill (submit) starts here"))
    assert.isDefined(holder)
    holder!.child.kill("SIGKILL")
    const outcome = await run
    assert.strictEqual(outcome.code, 0, `${outcome.stdout}\n${outcome.stderr}`)
    // Run again elsewhere, it verified the integration the dead runner had pushed — every stream merged.
    const other = c.runners.find((r) => r !== holder && r.log().includes("run verify-kill (submit) starts here"))
    assert.isDefined(other, "no other runner executed the run")
    for (const f of ["a/a-1.txt", "a/a-2.txt", "b/b-1.txt", "b/b-2.txt", "c/c-1.txt"]) assert.include(git(remote, "ls-tree", "-r", "--name-only", "main").split("\n"), f)
  }, 90_000)
})
