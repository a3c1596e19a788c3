/**
 * The cluster's database restarts in the middle of a run (`pg_ctl restart`, every connection
 * cut): the runners and the submitter reconnect, the journal appends that met the restart are
 * retried, and the run completes and lands as if nothing happened.
 */
import * as path from "node:path"
import { assert, describe, it } from "vitest"
import { braid, git } from "./support/Braid.js"
import { agentsOf, query, seed, useCluster } from "./support/Cluster.js"
import * as Postgres from "./support/Postgres.js"

describe.skipIf(Postgres.skipReason() !== undefined)("a Postgres restart in the middle of a run", () => {
  const c = useCluster("braid-cluster-restart-", { own: true, runners: ["machine-1", "machine-2"] })

  it("the runners reconnect and the run lands", async () => {
    const { remote } = seed(c.dir, "project", undefined)
    const run = braid(["submit", path.join(c.dir, "plan", "plan.yaml"), "--database", c.url, "--remote", remote, "--id", "restarted", "--wait"])
    // Restart once the first agent is at work.
    for (let waited = 0; agentsOf(c.dir).length === 0 && waited < 60_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.isNotEmpty(agentsOf(c.dir), "no agent started")
    const before = agentsOf(c.dir).length
    c.server.restart()
    const outcome = await run
    assert.strictEqual(outcome.code, 0, `${outcome.stdout}\n${outcome.stderr}\n${c.runners.map((r) => r.log()).join("\n")}`)
    // Work went on after the restart: agents started after it, and every task settled.
    assert.isAbove(agentsOf(c.dir).length, before)
    const journal = query(c.url, "SELECT key, value FROM braid_journal WHERE run_id = 'restarted' ORDER BY seq")
    const settled = journal.filter((r) => r.value._tag === "Settled").map((r) => r.value.result.taskId).sort()
    assert.deepStrictEqual(settled, ["a-1", "a-2", "b-1", "b-2", "c-1"])
    assert.strictEqual(journal.at(-1).value._tag, "Finished")
    assert.strictEqual(journal.at(-1).value.status, "succeeded")
    for (const f of ["a/a-1.txt", "a/a-2.txt", "b/b-1.txt", "b/b-2.txt", "c/c-1.txt"]) assert.include(git(remote, "ls-tree", "-r", "--name-only", "main").split("\n"), f)
    // The runners are still there for the next run.
    for (const r of c.runners) assert.isNull(r.child.exitCode, `${r.name} exited:\n${r.log()}`)
  }, 90_000)
})
