/**
 * A run's own state damaged, tried as a user meets it with the built `braid`: the journal
 * deleted by an agent during the run, a corrupt last record and a corrupt middle one (with
 * `braid doctor` and `--repair`), a journal missing afterwards, a read-only and a full
 * `.braid`, a full disk mid-run and at the end (a fault injected with `BRAID_STORE_FAULT`), a
 * git lock left behind, and a second run on the same target. Each case checks the message and
 * the exit code the user sees, and that the run can go on where it can.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { braid, git, journalOf, latestRun } from "./support/Braid.js"

/**
 * The agent of every task: writes `<task>.txt`. The task named in `DELETE_JOURNAL` first
 * deletes its run's journal (once: a marker beside the repository), as a misbehaving agent
 * would; the one named in `WAIT_FOR` waits until that file exists.
 */
const agent = `
import * as fs from "node:fs"
import * as path from "node:path"
const task = process.env.BRAID_TASK_ID
if (process.env.DELETE_JOURNAL === task && !fs.existsSync(process.env.MARKER)) {
  fs.writeFileSync(process.env.MARKER, "")
  // The journal is in the repository's run folder; the worktree is elsewhere (the cache folder).
  fs.rmSync(path.join(process.env.REPO, ".braid", "runs", process.env.BRAID_RUN_ID, "journal.jsonl"))
}
if (process.env.WAIT_FOR_TASK === task) {
  while (!fs.existsSync(process.env.WAIT_FOR)) await new Promise((resolve) => setTimeout(resolve, 100))
}
fs.writeFileSync(task + ".txt", task + " done\\n")
`

/** A repository and a plan of two streams (a-2 after a-1), every task checked for its file. */
const fixture = () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-damage-")))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(repo)
  fs.writeFileSync(path.join(repo, "README.md"), "project\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  fs.writeFileSync(path.join(dir, "agent.mjs"), agent)
  const check = (task: string) => `[node, -e, "require('fs').accessSync('${task}.txt')"]`
  const plan = path.join(dir, "plan.yaml")
  fs.writeFileSync(
    plan,
    [
      "maxParallel: 2",
      "streams: [{ name: a, type: api }, { name: b, type: ui }]",
      "tasks:",
      `  - { id: a-1, title: A one, stream: a, run: { script: agent.mjs }, checks: [${check("a-1")}] }`,
      `  - { id: a-2, title: A two, stream: a, dependsOn: [a-1], run: { script: agent.mjs }, checks: [${check("a-2")}] }`,
      `  - { id: b-1, title: B one, stream: b, run: { script: agent.mjs }, checks: [${check("b-1")}] }`,
      ""
    ].join("\n")
  )
  return { dir, repo, plan, env: { MARKER: path.join(dir, "deleted-once"), REPO: repo } }
}

/** What landed on main: the tasks' files. */
const landed = (repo: string) => git(repo, "ls-tree", "--name-only", "main").split("\n").filter((f) => f.endsWith(".txt")).sort()

/** Files a failed write could leave in a run's folder. */
const leftovers = (runDir: string) => fs.readdirSync(runDir).filter((n) => n.includes(".tmp-"))

/** Whether this process may mount a file system (root, with mount allowed): the read-only and full `.braid` cases need one. */
const canMount = (() => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), "braid-mount-"))
  const ok = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]).status === 0
  if (ok) spawnSync("umount", [probe])
  fs.rmSync(probe, { recursive: true, force: true })
  return ok
})()

/** A tmpfs mounted on `<repo>/.braid` for `use`, then unmounted. */
const withTmpfs = async (repo: string, options: string, use: (dir: string) => Promise<void>) => {
  const dir = path.join(repo, ".braid")
  fs.mkdirSync(dir, { recursive: true })
  assert.strictEqual(spawnSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir]).status, 0)
  try {
    await use(dir)
  } finally {
    spawnSync("umount", [dir])
  }
}

describe("a deleted or damaged journal", () => {
  it("an agent deleting the journal stops the run at the next write, which writes it back; the run resumes", async () => {
    const { env, plan, repo } = fixture()
    const ran = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, DELETE_JOURNAL: "a-1" })
    const { dir, runId } = latestRun(repo)
    const file = path.join(dir, "journal.jsonl")
    assert.strictEqual(ran.code, 1, ran.stderr)
    assert.match(
      ran.stderr,
      new RegExp(
        `braid: run ${runId} stopped: its journal ${file} was deleted while the run was working \\(by an agent\\?\\); ` +
          `braid wrote the \\d+ records it holds back to ${file}\\. Find what touched it, then: braid resume ${runId}\\n`
      )
    )
    assert.notInclude(ran.stderr, "internal error")
    // Written back whole: every record the run held, in order.
    const { records } = journalOf(repo)
    assert.strictEqual(records[0]!.key, "run")
    assert.deepStrictEqual(records.map((r) => r.seq), records.map((_, i) => i + 1))
    const runs = await braid(["runs", "--repo", repo])
    assert.strictEqual(runs.code, 0, runs.stderr)
    assert.match(runs.stdout, new RegExp(`${runId}\\tstopped`))
    const status = await braid(["status", runId, "--repo", repo])
    assert.strictEqual(status.code, 0, status.stderr)
    assert.include(status.stdout, `continue with: braid resume ${runId}`)
    const resumed = await braid(["resume", runId, "--repo", repo, "--quiet"], env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.include(resumed.stderr, "SUCCEEDED: 3/3 tasks completed")
    assert.deepStrictEqual(landed(repo), ["a-1.txt", "a-2.txt", "b-1.txt"])
  }, 120_000)

  it("a corrupt last record that ends in a newline is dropped with a warning: doctor says so first, resume re-does its step", async () => {
    const { env, plan, repo } = fixture()
    const crashed = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, BRAID_CRASH_AFTER_RECORDS: "6" })
    assert.strictEqual(crashed.signal, "SIGKILL", crashed.stderr)
    const { dir, runId } = latestRun(repo)
    const file = path.join(dir, "journal.jsonl")
    const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "")
    const last = JSON.parse(lines.at(-1)!) as { key: string }
    // The last record's value cut short, its line still ending in a newline.
    lines[lines.length - 1] = lines.at(-1)!.slice(0, lines.at(-1)!.indexOf("\"value\"") + 12)
    const damaged = `${lines.join("\n")}\n`
    fs.writeFileSync(file, damaged)
    const warning = `braid: warning: ${file}:${lines.length}: ignored a corrupt last record (not valid JSON); step ${last.key} runs again\n`

    const status = await braid(["status", runId, "--repo", repo])
    assert.strictEqual(status.code, 0, status.stderr)
    assert.strictEqual(status.stderr, warning)
    const doctor = await braid(["doctor", runId, "--repo", repo])
    assert.strictEqual(doctor.code, 0, doctor.stderr)
    assert.include(doctor.stdout, `  - ${file}:${lines.length}: ignored a corrupt last record (not valid JSON); step ${last.key} runs again\n`)
    assert.include(doctor.stdout, `    a repair would drop line ${lines.length} (step ${last.key} runs again when the run is continued)\n`)
    assert.strictEqual(fs.readFileSync(file, "utf8"), damaged, "doctor without --repair changes nothing")

    const resumed = await braid(["resume", runId, "--repo", repo, "--quiet"], env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.include(resumed.stderr, warning)
    assert.include(resumed.stderr, "SUCCEEDED: 3/3 tasks completed")
    // A copy of the journal as it was is kept.
    const copies = fs.readdirSync(dir).filter((n) => n.startsWith("journal.jsonl.bak-"))
    assert.lengthOf(copies, 1)
    assert.strictEqual(fs.readFileSync(path.join(dir, copies[0]!), "utf8"), damaged)
    assert.deepStrictEqual(landed(repo), ["a-1.txt", "a-2.txt", "b-1.txt"])
  }, 120_000)

  it("a corrupt record in the middle is refused naming the line and the repair; runs names the run; doctor --repair drops it, keeping a copy", async () => {
    const { env, plan, repo } = fixture()
    const crashed = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, BRAID_CRASH_AFTER_RECORDS: "7" })
    assert.strictEqual(crashed.signal, "SIGKILL", crashed.stderr)
    const { dir, runId } = latestRun(repo)
    const file = path.join(dir, "journal.jsonl")
    const lines = fs.readFileSync(file, "utf8").split("\n")
    lines[2] = "{ not a record"
    const damaged = lines.join("\n")
    fs.writeFileSync(file, damaged)
    const refusal = `braid: ${file}:3: corrupt journal record (not valid JSON); braid doctor ${runId} shows what a repair drops, ` +
      `braid doctor ${runId} --repair drops it (keeping a copy of the journal)\n`

    const commands = ["status", "resume", "retry", "land"]
    const [runs, ...refused] = await Promise.all([braid(["runs", "--repo", repo]), ...commands.map((c) => braid([c, runId, "--repo", repo]))])
    refused.forEach((r, i) => {
      assert.strictEqual(r.code, 2, `${commands[i]}: ${r.stderr}`)
      assert.strictEqual(r.stderr, refusal, commands[i])
    })
    assert.strictEqual(runs.code, 0, runs.stderr)
    assert.match(runs.stdout, new RegExp(`${runId}\\tunreadable`))
    assert.strictEqual(runs.stderr, refusal.replace("braid: ", "braid: warning: "))

    const doctor = await braid(["doctor", "--repo", repo])
    assert.strictEqual(doctor.code, 2)
    assert.include(doctor.stdout, `  - ${file}:3: corrupt record (not valid JSON)\n    a repair would drop line 3\n`)
    assert.include(doctor.stderr, `braid: run ${runId} cannot be continued as it is: see above; braid doctor ${runId} --repair drops what is listed`)
    const repaired = await braid(["doctor", runId, "--repo", repo, "--repair"])
    assert.strictEqual(repaired.code, 0, repaired.stderr)
    assert.include(repaired.stdout, `  repaired: dropped ${file}:3\n`)
    const copy = /the journal as it was is kept in (\S+)/.exec(repaired.stdout)![1]!
    assert.strictEqual(fs.readFileSync(copy, "utf8"), damaged)
    const again = await braid(["doctor", runId, "--repo", repo])
    assert.strictEqual(again.code, 0, again.stderr)

    const resumed = await braid(["resume", runId, "--repo", repo, "--quiet"], env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.include(resumed.stderr, "SUCCEEDED: 3/3 tasks completed")
    assert.deepStrictEqual(landed(repo), ["a-1.txt", "a-2.txt", "b-1.txt"])
  }, 120_000)

  it("a journal missing after the run: runs lists the others and names it, status refuses clearly, clean removes it", async () => {
    const { env, plan, repo } = fixture()
    const first = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, BRAID_CRASH_AFTER_RECORDS: "3" })
    assert.strictEqual(first.signal, "SIGKILL")
    const kept = latestRun(repo)
    const crashed = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, BRAID_CRASH_AFTER_RECORDS: "3" })
    assert.strictEqual(crashed.signal, "SIGKILL")
    const { dir, runId } = latestRun(repo)
    const file = path.join(dir, "journal.jsonl")
    fs.rmSync(file)
    const unreadable = `run ${runId} cannot be read: ${file} is missing (deleted?) (braid doctor ${runId} says what can be done)`

    const runs = await braid(["runs", "--repo", repo])
    assert.strictEqual(runs.code, 0, runs.stderr)
    assert.match(runs.stdout, new RegExp(`${kept.runId}\\tstopped`))
    assert.match(runs.stdout, new RegExp(`${runId}\\tunreadable`))
    assert.strictEqual(runs.stderr, `braid: warning: ${unreadable}\n`)
    const json = await braid(["runs", "--repo", repo, "--json"])
    assert.deepStrictEqual(JSON.parse(json.stdout).map((r: any) => r.status), ["stopped (crashed?)", "unreadable"])
    for (const refused of await Promise.all(["status", "resume"].map((c) => braid([c, runId, "--repo", repo])))) {
      assert.strictEqual(refused.code, 2, refused.stderr)
      assert.strictEqual(refused.stderr, `braid: ${unreadable}\n`)
    }
    const doctor = await braid(["doctor", runId, "--repo", repo, "--repair"])
    assert.strictEqual(doctor.code, 2)
    assert.include(doctor.stdout, `  - ${file} is missing (deleted?): the run cannot be continued (braid clean ${runId} removes its worktrees, branches and record)\n    braid cannot repair this\n`)
    const clean = await braid(["clean", runId, "--repo", repo])
    assert.strictEqual(clean.code, 0, clean.stderr)
    assert.isFalse(fs.existsSync(dir))
  }, 120_000)
})

describe("a disk that cannot be written", () => {
  it("a full disk mid-run stops it with one line naming the file and the way on, leaves no temporary file, and the run resumes", async () => {
    const { env, plan, repo } = fixture()
    const ran = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, BRAID_STORE_FAULT: "ENOSPC:journal.jsonl:5" })
    const { dir, runId } = latestRun(repo)
    assert.strictEqual(ran.code, 1, ran.stderr)
    assert.strictEqual(ran.stderr, `braid: no space left on device writing ${dir}/journal.jsonl; free space, then braid resume ${runId}\n`)
    assert.deepStrictEqual(leftovers(dir), [])
    const resumed = await braid(["resume", runId, "--repo", repo, "--quiet"], env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.include(resumed.stderr, "SUCCEEDED: 3/3 tasks completed")
    assert.deepStrictEqual(landed(repo), ["a-1.txt", "a-2.txt", "b-1.txt"])
  }, 120_000)

  it("a read-only disk mid-run says so, and what to make writable", async () => {
    const { env, plan, repo } = fixture()
    const ran = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, BRAID_STORE_FAULT: "EROFS:journal.jsonl:3" })
    const { dir, runId } = latestRun(repo)
    assert.strictEqual(ran.code, 1, ran.stderr)
    assert.strictEqual(ran.stderr, `braid: read-only file system writing ${dir}/journal.jsonl; make ${dir} writable, then braid resume ${runId}\n`)
  }, 60_000)

  it("a full disk when the report is written shows the run's outcome with a warning, and leaves no temporary file", async () => {
    const { env, plan, repo } = fixture()
    const ran = await braid(["run", plan, "--repo", repo, "--quiet"], { ...env, BRAID_STORE_FAULT: "ENOSPC:report.json" })
    const { dir, runId } = latestRun(repo)
    assert.strictEqual(ran.code, 0, ran.stderr)
    assert.include(
      ran.stderr,
      `braid: warning: no space left on device writing ${dir}/report.json: run ${runId} finished, but its report is not kept (braid status ${runId} shows the run)\n`
    )
    assert.include(ran.stderr, "SUCCEEDED: 3/3 tasks completed")
    assert.deepStrictEqual(leftovers(dir), [])
    const report = await braid(["report", runId, "--repo", repo])
    assert.strictEqual(report.code, 2)
    assert.strictEqual(
      report.stderr,
      `braid: run ${runId} finished, but its report was not kept (writing it failed when the run ended); braid status ${runId} shows the run\n`
    )
  }, 60_000)

  it.skipIf(!canMount)("a read-only .braid is found before anything starts (exit 2, naming it)", async () => {
    const { env, plan, repo } = fixture()
    await withTmpfs(repo, "ro,size=64k", async (dir) => {
      const ran = await braid(["run", plan, "--repo", repo, "--quiet"], env)
      assert.strictEqual(ran.code, 2, ran.stderr)
      assert.strictEqual(
        ran.stderr,
        `braid: ${dir} is on a read-only file system: braid keeps its runs' journals in ${dir}; make it writable (or mount it read-write), then run again\n`
      )
      const checked = await braid(["plan", plan, "--repo", repo])
      assert.strictEqual(checked.code, 2)
      assert.include(checked.stderr, `  - repository: ${dir} is on a read-only file system`)
    })
    assert.strictEqual(git(repo, "branch", "--list", "braid/*"), "")
  }, 60_000)

  it.skipIf(!canMount)("a full .braid is found before anything starts (exit 2, naming the space needed)", async () => {
    const { env, plan, repo } = fixture()
    await withTmpfs(repo, "size=64k", async (dir) => {
      spawnSync("dd", ["if=/dev/zero", `of=${path.join(dir, "filler")}`, "bs=4k", "count=64"])
      const ran = await braid(["run", plan, "--repo", repo, "--quiet"], env)
      assert.strictEqual(ran.code, 2, ran.stderr)
      assert.strictEqual(
        ran.stderr,
        `braid: no space left on the device of ${dir} (0 KB free; a run needs at least 8 MB for its journal): free space, then run again\n`
      )
      assert.deepStrictEqual(fs.readdirSync(dir), ["filler"])
    })
  }, 60_000)
})

describe("a repository busy or locked", () => {
  it("a git index.lock left behind is found before anything starts, with the fix; one a process holds names it", async () => {
    const { env, plan, repo } = fixture()
    const lock = path.join(repo, ".git", "index.lock")
    fs.writeFileSync(lock, "")
    const ran = await braid(["run", plan, "--repo", repo, "--quiet"], env)
    assert.strictEqual(ran.code, 2, ran.stderr)
    assert.strictEqual(
      ran.stderr,
      `braid: ${lock} exists and no git process holds it: a git command stopped without removing it, and every git command that changes the repository fails until it is gone. Remove it (rm ${lock}), then run again\n`
    )
    assert.isFalse(fs.existsSync(path.join(repo, ".braid")))
    assert.strictEqual(git(repo, "branch", "--list", "braid/*"), "")
    if (process.platform === "linux") {
      // A process holding it open is waited for a moment, then named.
      const holder = spawn(process.execPath, ["-e", `require("fs").openSync(${JSON.stringify(lock)}, "r"); setTimeout(() => {}, 30000)`])
      try {
        await new Promise((resolve) => setTimeout(resolve, 300))
        const held = await braid(["run", plan, "--repo", repo, "--quiet"], env)
        assert.strictEqual(held.code, 2, held.stderr)
        assert.match(held.stderr, new RegExp(`^braid: ${lock} is held open by process ${holder.pid} \\(.*node.*\\), a git command at work: wait for it to finish, then run again\\n$`))
      } finally {
        holder.kill("SIGKILL")
      }
    }
    fs.rmSync(lock)
    const after = await braid(["run", plan, "--repo", repo, "--quiet"], env)
    assert.strictEqual(after.code, 0, after.stderr)
  }, 120_000)

  it("a second run on the same repository and target is refused before it starts, naming the run at work", async () => {
    const { dir, env, plan, repo } = fixture()
    const go = path.join(dir, "go")
    const first = braid(["run", plan, "--repo", repo, "--quiet"], { ...env, WAIT_FOR_TASK: "b-1", WAIT_FOR: go })
    const active = path.join(repo, ".braid", "active", "main")
    while (!fs.existsSync(active)) await new Promise((resolve) => setTimeout(resolve, 100))
    const { runId } = latestRun(repo)
    const pid = fs.readFileSync(active, "utf8").split(" ")[0]
    const refusal = `braid: run ${runId} (braid process ${pid}) is already working on main in this repository, and a second run would only fail when it lands: ` +
      `wait for it (braid status ${runId}), or stop it first\n`
    try {
      const second = await braid(["run", plan, "--repo", repo, "--quiet"], env)
      assert.strictEqual(second.code, 2, second.stderr)
      assert.strictEqual(second.stderr, refusal)
      assert.deepStrictEqual(fs.readdirSync(path.join(repo, ".braid", "runs")), [runId])
      // braid plan names it too.
      const checked = await braid(["plan", plan, "--repo", repo, "--target", "main"])
      assert.include(checked.stderr, `  - repository: ${refusal.slice("braid: ".length, -1)}`)
    } finally {
      fs.writeFileSync(go, "")
    }
    const done = await first
    assert.strictEqual(done.code, 0, done.stderr)
    assert.isFalse(fs.existsSync(active))
  }, 120_000)
})
