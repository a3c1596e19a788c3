/**
 * What a killed braid leaves running: an agent's child in a process group of its own
 * survives a SIGKILL of braid; `braid resume` ends it (and the agent) before the cut-off
 * attempt runs again, says so, and the run completes.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { unconfined } from "./support/Braid.js"

const root = path.resolve(__dirname, "../../..")
const bin = path.join(root, "packages/cli/dist/bin.js")

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

/** Running, not merely an unreaped zombie (a killed orphan may linger as one). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, "utf8") : ""
  return !/^\d+ \(.*\) Z/.test(stat)
}

const braid = (args: Array<string>, onStderr?: (child: ReturnType<typeof spawn>) => void) =>
  new Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...unconfined(args)], { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    let stdout = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    onStderr?.(child)
    child.on("close", (code, signal) => resolve({ code, signal, stderr, stdout }))
  })

describe.skipIf(process.platform !== "linux")("orphans of a killed braid", () => {
  it("braid resume ends the agent's child in another process group before the attempt runs again", async () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-orphans-")))
    const repo = path.join(dir, "repo")
    fs.mkdirSync(repo)
    fs.writeFileSync(path.join(repo, "README.md"), "hi\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    const plan = path.join(dir, "plan.yaml")
    fs.writeFileSync(
      plan,
      `
streams: [{ name: s, type: api }]
tasks:
  - id: t1
    title: an agent whose tool starts a long-lived process
    stream: s
    run: { script: agent.mjs }
`
    )
    const pidsFile = path.join(dir, "pids")
    const seenFile = path.join(dir, "seen-by-second-attempt.json")
    // First run: start \`sleep\` in a process group of its own (as claude's Bash tool does),
    // record both pids and wait to be killed. Run again: record whether they were still there.
    fs.writeFileSync(
      path.join(dir, "agent.mjs"),
      `
import { spawn } from "node:child_process"
import * as fs from "node:fs"
const pidsFile = ${JSON.stringify(pidsFile)}
const alive = (pid) => {
  try { process.kill(pid, 0) } catch { return false }
  const stat = fs.existsSync("/proc/" + pid + "/stat") ? fs.readFileSync("/proc/" + pid + "/stat", "utf8") : ""
  return !/^\\d+ \\(.*\\) Z/.test(stat)
}
if (!fs.existsSync(pidsFile)) {
  const child = spawn("sleep", ["1000"], { detached: true, stdio: "ignore" })
  child.unref()
  fs.writeFileSync(pidsFile, process.pid + " " + child.pid)
  setInterval(() => {}, 1000)
} else {
  const [agent, sleeper] = fs.readFileSync(pidsFile, "utf8").split(" ").map(Number)
  fs.writeFileSync(${JSON.stringify(seenFile)}, JSON.stringify({ agent: alive(agent), sleeper: alive(sleeper) }))
  fs.writeFileSync("done.txt", "done\\n")
  console.log("done")
}
`
    )
    let pids: Array<number> = []
    try {
      const killed = await braid(["run", plan, "--repo", repo], (child) => {
        const poll = setInterval(() => {
          if (!fs.existsSync(pidsFile)) return
          clearInterval(poll)
          child.kill("SIGKILL")
        }, 50)
      })
      assert.strictEqual(killed.signal, "SIGKILL", killed.stderr)
      pids = fs.readFileSync(pidsFile, "utf8").split(" ").map(Number)
      const [agent, sleeper] = pids as [number, number]
      assert.isTrue(alive(sleeper), "the agent's child did not outlive braid: nothing to test")
      assert.isTrue(alive(agent), "the agent did not outlive braid: nothing to test")

      const resumed = await braid(["resume", "--repo", repo])
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      assert.match(resumed.stderr, new RegExp(`braid: ended process ${sleeper} \\(sleep\\) left running by task t1 attempt 1`))
      assert.match(resumed.stderr, new RegExp(`braid: ended process ${agent} \\(.+\\) left running by task t1 attempt 1`))
      // Gone before the attempt ran again, and still gone.
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(seenFile, "utf8")), { agent: false, sleeper: false })
      assert.isFalse(alive(sleeper))
      assert.isFalse(alive(agent))
      // The run completed and landed.
      assert.strictEqual(fs.readFileSync(path.join(repo, "done.txt"), "utf8"), "done\n")
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {}
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
