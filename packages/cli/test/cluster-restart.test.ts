/**
 * The cluster's database restarts in the middle of a run (`pg_ctl restart`, every connection
 * cut): the runners and the submitter reconnect, the journal appends that met the restart are
 * retried, and the run completes and lands as if nothing happened.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { braid, git } from "./support/Braid.js"
import { agentsOf, query, type Runner, seed, startRunner, writeWorkPlan } from "./support/Cluster.js"
import * as Postgres from "./support/Postgres.js"

describe.skipIf(Postgres.skipReason() !== undefined)("a Postgres restart in the middle of a run", () => {
  let server: Postgres.Server
  let url: string
  let dir: string
  const runners: Array<Runner> = []

  beforeAll(async () => {
    // A server of its own: the shared one is not restarted under other tests.
    server = await Postgres.own()
    url = server.database()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-cluster-restart-"))
    writeWorkPlan(path.join(dir, "plan"))
    for (const n of [1, 2]) runners.push(startRunner({ url, dir, name: `machine-${n}` }))
  }, 120_000)

  afterAll(() => {
    for (const r of runners) r.child.kill("SIGKILL")
    server?.stop()
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("the runners reconnect and the run lands", async () => {
    const { remote } = seed(dir, "project", undefined)
    const run = braid(["submit", path.join(dir, "plan", "plan.yaml"), "--database", url, "--remote", remote, "--id", "restarted", "--wait"])
    // Restart once the first agent is at work.
    for (let waited = 0; agentsOf(dir).length === 0 && waited < 60_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.isNotEmpty(agentsOf(dir), "no agent started")
    const before = agentsOf(dir).length
    server.restart()
    const outcome = await run
    assert.strictEqual(outcome.code, 0, `${outcome.stdout}\n${outcome.stderr}\n${runners.map((r) => r.log()).join("\n")}`)
    // Work went on after the restart: agents started after it, and every task settled.
    assert.isAbove(agentsOf(dir).length, before)
    const journal = query(url, "SELECT key, value FROM braid_journal WHERE run_id = 'restarted' ORDER BY seq")
    const settled = journal.filter((r) => r.value._tag === "Settled").map((r) => r.value.result.taskId).sort()
    assert.deepStrictEqual(settled, ["a-1", "a-2", "b-1", "b-2", "c-1"])
    assert.strictEqual(journal.at(-1).value._tag, "Finished")
    assert.strictEqual(journal.at(-1).value.status, "succeeded")
    for (const f of ["a/a-1.txt", "a/a-2.txt", "b/b-1.txt", "b/b-2.txt", "c/c-1.txt"]) assert.include(git(remote, "ls-tree", "-r", "--name-only", "main").split("\n"), f)
    // The runners are still there for the next run.
    for (const r of runners) assert.isNull(r.child.exitCode, `${r.name} exited:\n${r.log()}`)
  }, 90_000)
})
