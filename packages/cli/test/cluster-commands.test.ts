/**
 * The cluster's commands as a user meets them: a bad or unreachable database and a remote
 * that cannot be read are one clear line and exit 2, the password never shown; submitting
 * the same run twice runs it once; a run of a group is worked on by that group's runners
 * only; a runner stopped with Ctrl-C hands its task over and the run lands.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "vitest"
import { braid, git } from "./support/Braid.js"
import { type AgentLine, agentsOf, query, type Runner, seed, startRunner, useCluster, writeWorkPlan } from "./support/Cluster.js"
import * as Postgres from "./support/Postgres.js"

describe.skipIf(Postgres.skipReason() !== undefined)("cluster commands", () => {
  const c = useCluster("braid-cluster-commands-", {})

  it("refuses a bad database URL, an unreachable database and an unreadable remote in one line, exit 2", async () => {
    const plan = path.join(c.dir, "plan", "plan.yaml")
    const bad = await braid(["submit", plan, "--database", "mysql://u:hunter2@h/db", "--remote", "/nowhere"])
    assert.strictEqual(bad.code, 2)
    assert.strictEqual(bad.stderr.trim(), "braid: --database: expected a postgres:// URL, got mysql://…")
    const down = await braid(["runs"], { BRAID_DATABASE_URL: "postgres://braid:hunter2@127.0.0.1:1/x" })
    assert.strictEqual(down.code, 2)
    assert.strictEqual(down.stderr.trim(), "braid: cannot reach the database postgres://braid:***@127.0.0.1:1/x: connect ECONNREFUSED 127.0.0.1:1")
    const remote = await braid(["submit", plan, "--database", c.url, "--remote", path.join(c.dir, "nowhere.git")])
    assert.strictEqual(remote.code, 2)
    assert.match(remote.stderr, /^braid: --remote .*nowhere\.git: cannot be read \(fatal: .*\)\n$/)
    for (const o of [bad, down, remote]) assert.notInclude(o.stdout + o.stderr, "hunter2")
    for (const o of [bad, down, remote]) assert.notInclude(o.stderr, "    at ")
  })

  it("runs a group's run on that group's runners only; a runner stopped with Ctrl-C hands its task over", async () => {
    // c-1 takes longer than a runner's lease on a task (10 s): the lease is renewed while it works.
    c.runners.push(startRunner({ url: c.url, dir: c.dir, name: "special-1", group: "special", slow: "c-1:13000" }))
    c.runners.push(startRunner({ url: c.url, dir: c.dir, name: "special-2", group: "special", slow: "c-1:13000" }))
    c.runners.push(startRunner({ url: c.url, dir: c.dir, name: "plain", group: "default" }))
    // A second runner on a live runner's work folder is refused (once that runner holds it).
    for (let waited = 0; !c.runners[0]!.log().includes("Listening on") && waited < 60_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100))
    const twin = await braid(["runner", "--database", c.url, "--workdir", c.runners[0]!.workdir, "--address", "127.0.0.1"])
    assert.strictEqual(twin.code, 2)
    assert.match(twin.stderr, /--workdir .* is in use by another runner \(pid \d+\); give each runner a work folder of its own/)
    const { remote } = seed(c.dir, "grouped", undefined)
    const run = braid(["submit", path.join(c.dir, "plan", "plan.yaml"), "--database", c.url, "--remote", remote, "--group", "special", "--id", "grouped", "--wait"])
    // Stop the runner of the first agent seen at work, as Ctrl-C does.
    let stopped: Runner | undefined
    let busy: AgentLine | undefined
    for (let waited = 0; stopped === undefined && waited < 60_000; waited += 100) {
      busy = agentsOf(c.dir).find((l) => l.run === "grouped" && l.phase === "start")
      stopped = busy === undefined ? undefined : c.runners.find((r) => busy!.cwd.startsWith(r.workdir + path.sep))
      if (stopped === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.isDefined(stopped)
    stopped!.child.kill("SIGINT")
    const outcome = await run
    assert.strictEqual(outcome.code, 0, `${outcome.stdout}\n${outcome.stderr}\n${c.runners.map((r) => r.log()).join("\n")}`)
    await new Promise<void>((resolve) => stopped!.child.exitCode !== null ? resolve() : stopped!.child.once("exit", () => resolve()))
    assert.match(stopped!.log(), /stopped; its runs and tasks are handed to the other runners/)
    const journal = query(c.url, "SELECT key, value FROM braid_journal WHERE run_id = 'grouped' ORDER BY seq")
    const takers = new Set(journal.filter((r) => r.key.endsWith("/runner")).map((r) => r.value.runner))
    assert.notInclude([...takers], "plain", "a runner outside the run's group took one of its tasks")
    assert.include([...takers], "special-1")
    assert.strictEqual(journal.at(-1).value.status, "succeeded")
    // The task it was at work on was handed over: taken again, and finished, by the other runner of the group.
    const key = `stream/${busy!.task[0]}/task/${busy!.task}`
    const other = stopped!.name === "special-1" ? "special-2" : "special-1"
    assert.deepStrictEqual(journal.filter((r) => r.key === `${key}/runner`).map((r) => r.value.runner), [stopped!.name, other])
    assert.strictEqual(journal.find((r) => r.key === `${key}/done`)?.value.runner, other)
    assert.include(git(remote, "ls-tree", "-r", "--name-only", "main").split("\n"), "c/c-1.txt")
  }, 90_000)

  it("runs a run submitted twice once, and refuses the same id for a different plan", async () => {
    const { remote } = seed(c.dir, "twice", undefined)
    const plan = path.join(c.dir, "plan", "plan.yaml")
    const first = await braid(["submit", plan, "--database", c.url, "--remote", remote, "--id", "twice", "--group", "special", "--wait"])
    assert.strictEqual(first.code, 0, first.stderr)
    const ran = agentsOf(c.dir).filter((l) => l.run === "twice").length
    const again = await braid(["submit", plan, "--database", c.url, "--remote", remote, "--id", "twice", "--group", "special", "--wait"])
    assert.strictEqual(again.code, 0, again.stderr)
    assert.match(again.stderr, /run twice was submitted already; not starting it again/)
    assert.strictEqual(agentsOf(c.dir).filter((l) => l.run === "twice").length, ran, "the second submit ran agents again")
    assert.strictEqual(query(c.url, "SELECT key FROM braid_journal WHERE run_id = 'twice' AND key = 'run/finished'").length, 1)
    // Each task was taken once and done once — the 13 s one too, though it outlasted a lease.
    const facts = query(c.url, "SELECT key FROM braid_journal WHERE run_id = 'twice' AND (key LIKE '%/runner' OR key LIKE '%/done')").map((r) => r.key).sort()
    assert.deepStrictEqual(facts, ["a-1", "a-2", "b-1", "b-2", "c-1"].flatMap((t) => [`stream/${t[0]}/task/${t}/done`, `stream/${t[0]}/task/${t}/runner`]).sort())
    writeWorkPlan(path.join(c.dir, "other"))
    const other = path.join(c.dir, "other", "plan.yaml")
    fs.writeFileSync(other, fs.readFileSync(plan, "utf8").replace("maxParallel: 2", "maxParallel: 1"))
    const taken = await braid(["submit", other, "--database", c.url, "--remote", remote, "--id", "twice", "--group", "special"])
    assert.strictEqual(taken.code, 2)
    assert.match(taken.stderr, /run twice was already submitted with a different plan or options; choose another --id/)
  }, 90_000)
})
