/**
 * Interruption kills running agents' process groups; resume uses the journaled plan when
 * the file on disk changed.
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

const setup = (plan: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-int-"))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(repo)
  fs.writeFileSync(path.join(repo, "README.md"), "hi\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  fs.writeFileSync(path.join(dir, "plan.yaml"), plan)
  return { dir, repo, plan: path.join(dir, "plan.yaml") }
}

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

const braid = (args: Array<string>, env: Record<string, string> = {}, onStderr?: (text: string, child: ReturnType<typeof spawn>) => void) =>
  new Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...unconfined(args)], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    let stdout = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => {
      stderr += d
      onStderr?.(stderr, child)
    })
    child.on("close", (code, signal) => resolve({ code, signal, stderr, stdout }))
  })

describe("interruption", () => {
  it("Ctrl-C kills a running agent's whole process group and records the interruption", async () => {
    const { dir, plan, repo } = setup(`
streams: [{ name: s, type: api }]
tasks:
  - id: t1
    title: a long agent with a child of its own
    stream: s
    run: { script: agent.mjs }
`)
    // The agent starts a grandchild and records both pids, then waits for a minute.
    fs.writeFileSync(path.join(dir, "agent.mjs"), `
import { spawn } from "node:child_process"
import * as fs from "node:fs"
const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })
fs.writeFileSync(${JSON.stringify(path.join(dir, "pids"))}, process.pid + " " + child.pid)
setTimeout(() => {}, 60000)
`)
    const pidsFile = path.join(dir, "pids")
    let sent = false
    const result = await braid(["run", plan, "--repo", repo], {}, (_text, child) => {
      if (sent) return
      const poll = setInterval(() => {
        if (fs.existsSync(pidsFile) && !sent) {
          sent = true
          clearInterval(poll)
          child.kill("SIGINT")
        }
      }, 50)
    })
    assert.strictEqual(result.code, 130, result.stderr)
    assert.include(result.stderr, "resume it with: braid resume")
    const [agent, grandchild] = fs.readFileSync(pidsFile, "utf8").split(" ").map(Number)
    await new Promise((r) => setTimeout(r, 300))
    assert.isFalse(alive(agent!), "the agent still runs")
    assert.isFalse(alive(grandchild!), "the agent's child still runs")
    const runs = fs.readdirSync(path.join(repo, ".braid", "runs"))
    const journal = fs.readFileSync(path.join(repo, ".braid", "runs", runs[0]!, "journal.jsonl"), "utf8").trim().split("\n")
    assert.strictEqual(JSON.parse(journal.at(-1)!).value._tag, "Interrupted")
  }, 60_000)

  it("resume uses the journaled plan when the file changed, and says so", async () => {
    const { dir, plan, repo } = setup(`
streams: [{ name: s, type: api }]
tasks:
  - { id: t1, title: one, stream: s, run: { script: one.mjs } }
  - { id: t2, title: two, stream: s, run: { script: two.mjs } }
`)
    fs.writeFileSync(path.join(dir, "one.mjs"), `import * as fs from "node:fs"; fs.writeFileSync("one.txt", "1\\n")`)
    fs.writeFileSync(path.join(dir, "two.mjs"), `import * as fs from "node:fs"; fs.writeFileSync("two.txt", "2\\n")`)
    const crashed = await braid(["run", plan, "--repo", repo, "--quiet"], { BRAID_CRASH_AFTER_RECORDS: "4" })
    assert.strictEqual(crashed.signal, "SIGKILL")
    fs.writeFileSync(plan, fs.readFileSync(plan, "utf8").replace("title: two", "title: changed"))
    const resumed = await braid(["resume", "--repo", repo, "--json"])
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.match(resumed.stderr, /plan\.yaml changed since the run started; continuing with the journaled plan/)
    const report = JSON.parse(resumed.stdout)
    assert.deepStrictEqual(report.streamResults[0].results.map((r: any) => r.title), ["one", "two"])
    assert.strictEqual(fs.readFileSync(path.join(repo, "two.txt"), "utf8"), "2\n")
  }, 60_000)
})
