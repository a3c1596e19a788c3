/**
 * The cluster's commands as a user meets them: a bad or unreachable database and a remote
 * that cannot be read are one clear line and exit 2, the password never shown; submitting
 * the same run twice runs it once; a run of a group is worked on by that group's runners
 * only; a runner stopped with Ctrl-C hands its task over and the run lands.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { braid, git } from "./support/Braid.js"
import { agentsOf, query, type Runner, seed, startRunner, writeWorkPlan } from "./support/Cluster.js"
import * as Postgres from "./support/Postgres.js"

describe.skipIf(Postgres.skipReason() !== undefined)("cluster commands", () => {
  let server: Postgres.Server
  let url: string
  let dir: string
  const runners: Array<Runner> = []

  beforeAll(async () => {
    server = await Postgres.shared()
    url = server.database()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-cluster-commands-"))
    writeWorkPlan(path.join(dir, "plan"))
  }, 120_000)

  afterAll(() => {
    for (const r of runners) r.child.kill("SIGKILL")
    server?.stop()
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("refuses a bad database URL, an unreachable database and an unreadable remote in one line, exit 2", async () => {
    const plan = path.join(dir, "plan", "plan.yaml")
    const bad = await braid(["submit", plan, "--database", "mysql://u:hunter2@h/db", "--remote", "/nowhere"])
    assert.strictEqual(bad.code, 2)
    assert.strictEqual(bad.stderr.trim(), "braid: --database: expected a postgres:// URL, got mysql://…")
    const down = await braid(["runs"], { BRAID_DATABASE_URL: "postgres://braid:hunter2@127.0.0.1:1/x" })
    assert.strictEqual(down.code, 2)
    assert.strictEqual(down.stderr.trim(), "braid: cannot reach the database postgres://braid:***@127.0.0.1:1/x: connect ECONNREFUSED 127.0.0.1:1")
    const remote = await braid(["submit", plan, "--database", url, "--remote", path.join(dir, "nowhere.git")])
    assert.strictEqual(remote.code, 2)
    assert.match(remote.stderr, /^braid: --remote .*nowhere\.git: cannot be read \(fatal: .*\)\n$/)
    for (const o of [bad, down, remote]) assert.notInclude(o.stdout + o.stderr, "hunter2")
    for (const o of [bad, down, remote]) assert.notInclude(o.stderr, "    at ")
  })

  it("runs a group's run on that group's runners only; a runner stopped with Ctrl-C hands its task over", async () => {
    runners.push(startRunner({ url, dir, name: "special-1", group: "special" }))
    runners.push(startRunner({ url, dir, name: "special-2", group: "special" }))
    runners.push(startRunner({ url, dir, name: "plain", group: "default" }))
    const { remote } = seed(dir, "grouped", undefined)
    const run = braid(["submit", path.join(dir, "plan", "plan.yaml"), "--database", url, "--remote", remote, "--group", "special", "--id", "grouped", "--wait"])
    // Stop the runner of the first agent seen at work, as Ctrl-C does.
    let stopped: Runner | undefined
    for (let waited = 0; stopped === undefined && waited < 60_000; waited += 100) {
      const busy = agentsOf(dir).find((l) => l.run === "grouped" && l.phase === "start")
      stopped = busy === undefined ? undefined : runners.find((r) => busy.cwd.startsWith(r.workdir + path.sep))
      if (stopped === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.isDefined(stopped)
    // A second runner on a live runner's work folder is refused.
    const twin = await braid(["runner", "--database", url, "--workdir", runners[0]!.workdir, "--address", "127.0.0.1"])
    assert.strictEqual(twin.code, 2)
    assert.match(twin.stderr, /--workdir .* is in use by another runner \(pid \d+\); give each runner a work folder of its own/)
    const stoppedAt = Date.now()
    stopped!.child.kill("SIGINT")
    const outcome = await run
    assert.strictEqual(outcome.code, 0, `${outcome.stdout}\n${outcome.stderr}\n${runners.map((r) => r.log()).join("\n")}`)
    await new Promise<void>((resolve) => stopped!.child.exitCode !== null ? resolve() : stopped!.child.once("exit", () => resolve()))
    assert.match(stopped!.log(), /stopped; its runs and tasks are handed to the other runners/)
    const journal = query(url, "SELECT key, value FROM braid_journal WHERE run_id = 'grouped' ORDER BY seq")
    const takers = new Set(journal.filter((r) => r.key.endsWith("/runner")).map((r) => r.value.runner))
    assert.notInclude([...takers], "plain", "a runner outside the run's group took one of its tasks")
    assert.include([...takers], "special-1")
    // Handed over at once, not after a lease ran out: the whole run took less than the 10 s a dead runner's lease lasts, plus its work.
    assert.strictEqual(journal.at(-1).value.status, "succeeded")
    assert.isBelow(Date.now() - stoppedAt, 30_000)
    assert.include(git(remote, "ls-tree", "-r", "--name-only", "main").split("\n"), "c/c-1.txt")
  }, 90_000)

  it("runs a run submitted twice once, and refuses the same id for a different plan", async () => {
    const { remote } = seed(dir, "twice", undefined)
    const plan = path.join(dir, "plan", "plan.yaml")
    const first = await braid(["submit", plan, "--database", url, "--remote", remote, "--id", "twice", "--group", "special", "--wait"])
    assert.strictEqual(first.code, 0, first.stderr)
    const ran = agentsOf(dir).filter((l) => l.run === "twice").length
    const again = await braid(["submit", plan, "--database", url, "--remote", remote, "--id", "twice", "--group", "special", "--wait"])
    assert.strictEqual(again.code, 0, again.stderr)
    assert.match(again.stderr, /run twice was submitted already; not starting it again/)
    assert.strictEqual(agentsOf(dir).filter((l) => l.run === "twice").length, ran, "the second submit ran agents again")
    assert.strictEqual(query(url, "SELECT key FROM braid_journal WHERE run_id = 'twice' AND key = 'run/finished'").length, 1)
    writeWorkPlan(path.join(dir, "other"))
    const other = path.join(dir, "other", "plan.yaml")
    fs.writeFileSync(other, fs.readFileSync(plan, "utf8").replace("maxParallel: 2", "maxParallel: 1"))
    const taken = await braid(["submit", other, "--database", url, "--remote", remote, "--id", "twice", "--group", "special"])
    assert.strictEqual(taken.code, 2)
    assert.match(taken.stderr, /run twice was already submitted with a different plan or options; choose another --id/)
  }, 90_000)
})
