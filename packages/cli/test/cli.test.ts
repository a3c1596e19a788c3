import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { worktreesOf } from "./support/Braid.js"

// The built executable, as a user runs it (`npm test` builds first).
const bin = path.resolve(__dirname, "../dist/bin.js")
const seedPlan = path.resolve(__dirname, "../../../examples/seed-shape/plan.json")

const braid = (args: Array<string>, cwd = os.tmpdir()) => {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "braid-cli-"))

describe("braid plan", () => {
  it("prints the execution plan of a seed-shaped plan", () => {
    const { code, stdout } = braid(["plan", seedPlan, "--agent", "mock", "--workspace", "memory"])
    assert.strictEqual(code, 0)
    assert.include(stdout, "7 tasks in 5 streams")
    assert.match(stdout, /streams in dependency order[^\n]*\n  database \(database, priority 1, agent mock\)/)
    assert.notInclude(stdout, "batch")
    assert.include(stdout, "integration order: database → ui → api → testing → docs")
  })

  it("exits 2 and lists every problem of an invalid plan, with no stack trace", () => {
    const dir = tmp()
    const file = path.join(dir, "bad.yaml")
    fs.writeFileSync(file, "qualityThreshold: 101\ntasks:\n  - {id: a, title: A, stream: s, dependsOn: [zz]}\n  - {id: a, title: B, stream: s}\nstreams:\n  - {name: s, type: api}\n")
    const { code, stderr } = braid(["plan", file])
    assert.strictEqual(code, 2)
    assert.include(stderr, "bad.yaml: invalid plan (3 problems)")
    assert.include(stderr, "qualityThreshold: must be between 0 and 100, got 101")
    assert.include(stderr, `tasks[0].dependsOn[0]: task "a" depends on unknown task "zz"`)
    assert.include(stderr, `tasks[1].id: duplicate task id "a"`)
    assert.notInclude(stderr, "    at ")
  })

  it("refuses a misspelled plan with a suggestion (exit 2) and changes nothing in the repository; other unknown fields only warn", () => {
    const repo = tmp()
    const git = (...args: Array<string>) => spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" })
    git("init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, "README.md"), "x\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    const file = path.join(repo, "plan.yaml")
    fs.writeFileSync(file, "verfy: [[node, -e, '0']]\nowner: team\nstreams:\n  - {name: s, type: api}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, '0']}\n")
    const run = braid(["run", file, "--repo", repo])
    assert.strictEqual(run.code, 2)
    assert.include(run.stderr, `verfy: unknown field "verfy" — did you mean "verify"?`)
    assert.notInclude(run.stderr, "owner")
    assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs")) && fs.readdirSync(path.join(repo, ".braid", "runs")).length > 0)
    assert.strictEqual(git("status", "--porcelain").stdout, "?? plan.yaml\n")
    assert.strictEqual(git("branch", "--list").stdout.trim(), "* main")

    fs.writeFileSync(file, "owner: team\nstreams:\n  - {name: s, type: api}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, '0']}\n")
    const plan = braid(["plan", file])
    assert.strictEqual(plan.code, 0, plan.stderr)
    assert.include(plan.stderr, `warning: ${file}: owner: unknown field "owner" is ignored`)
  })

  it("exits 2 on a usage error and 0 on --help", () => {
    assert.strictEqual(braid(["run", "--max-parallel", "many", seedPlan]).code, 2)
    assert.strictEqual(braid(["frobnicate"]).code, 2)
    const help = braid(["run", "--help"])
    assert.strictEqual(help.code, 0)
    assert.include(help.stdout, "--quality-threshold")
  })
})

describe("braid run with the scripted agents", () => {
  it("runs a seed-shaped plan to success: exit 0, JSON report on stdout, Markdown report written", () => {
    const dir = tmp()
    const report = path.join(dir, "report.md")
    const { code, stdout, stderr } = braid(["run", "--workspace", "memory", "--agent", "mock", "--json", "--report", report, seedPlan])
    assert.strictEqual(code, 0, stderr)
    const json = JSON.parse(stdout)
    assert.strictEqual(json.success, true)
    assert.strictEqual(json.summary.completedTasks, 7)
    const api2 = json.streamResults.find((s: any) => s.streamName === "api").results.find((r: any) => r.taskId === "api-2")
    assert.strictEqual(api2.status, "completed")
    assert.strictEqual(api2.quality.score, 88)
    assert.strictEqual(api2.attempts.length, 2)
    assert.include(stderr, "api · api-2 · review 65 below threshold")
    const markdown = fs.readFileSync(report, "utf8")
    assert.include(markdown, "**✅ succeeded**")
  })

  it("keeps what --keep-worktrees says it keeps — each worktree with its branch — and without it removes both once landed", () => {
    const repo = tmp()
    const git = (cwd: string, ...args: Array<string>) =>
      spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd, encoding: "utf8" }).stdout
    git(repo, "init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, ".gitignore"), "plan.yaml\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    const file = path.join(repo, "plan.yaml")
    const plan = (suffix: string) =>
      fs.writeFileSync(file, [
        "checks: [[node, -e, '0']]",
        "streams:",
        "  - {name: api, type: api}",
        "  - {name: web, type: ui}",
        "tasks:",
        `  - {id: a1, title: A1, stream: api, run: [node, -e, "require('fs').writeFileSync('a${suffix}.txt','x')"]}`,
        `  - {id: w1, title: W1, stream: web, run: [node, -e, "require('fs').writeFileSync('w${suffix}.txt','x')"]}`,
        ""
      ].join("\n"))
    const branches = () => git(repo, "branch", "--list", "braid/*", "--format=%(refname:short)").split("\n").filter((l) => l !== "")
    const worktrees = () => git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree ")).length

    const help = braid(["run", "--help"]).stdout.replace(/\s+/g, " ")
    assert.include(help, "Keep every worktree (each stream's and the integration's) and its braid/<run>/… branch")

    plan("1")
    const kept = braid(["run", file, "--repo", repo, "--quiet", "--keep-worktrees"])
    assert.strictEqual(kept.code, 0, kept.stderr)
    const [run] = fs.readdirSync(path.join(repo, ".braid", "runs"))
    assert.deepStrictEqual(branches(), [`braid/${run}/api`, `braid/${run}/integration`, `braid/${run}/web`])
    assert.strictEqual(worktrees(), 4)
    for (const stream of ["api", "web"]) {
      const dir = path.join(worktreesOf(repo, run!), stream)
      // A kept worktree is usable: on its branch, nothing pending.
      assert.strictEqual(git(dir, "symbolic-ref", "--short", "HEAD").trim(), `braid/${run}/${stream}`)
      assert.strictEqual(git(dir, "status", "--porcelain"), "")
    }

    plan("2")
    const plain = braid(["run", file, "--repo", repo, "--quiet"])
    assert.strictEqual(plain.code, 0, plain.stderr)
    // The second run's worktrees and branches are gone (its work is on main); the first run's stay.
    assert.deepStrictEqual(branches().filter((b) => !b.startsWith(`braid/${run}/`)), [])
    assert.strictEqual(worktrees(), 4)
    assert.includeMembers(git(repo, "ls-tree", "--name-only", "main").split("\n"), ["a2.txt", "w2.txt"])
  })

  it("a --no-land run's next step names the integration's branch, which stays, not a worktree that is gone", () => {
    const repo = tmp()
    const git = (...args: Array<string>) =>
      spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).stdout
    git("init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, ".gitignore"), "plan.yaml\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    const file = path.join(repo, "plan.yaml")
    fs.writeFileSync(file, [
      "checks: [[node, -e, '0']]",
      "streams:",
      "  - {name: api, type: api}",
      "tasks:",
      `  - {id: a1, title: A1, stream: api, run: [node, -e, "require('fs').writeFileSync('a.txt','x')"]}`,
      ""
    ].join("\n"))
    const result = braid(["run", file, "--repo", repo, "--no-land"])
    assert.strictEqual(result.code, 0, result.stderr)
    const [run] = fs.readdirSync(path.join(repo, ".braid", "runs"))
    const next = (result.stdout + result.stderr).split("\n").filter((l) => l.includes("next:"))
    assert.include(next.join("\n"), `The integrated result is on branch braid/${run}/integration.`)
    assert.notInclude(next.join("\n"), "_integration")
    assert.strictEqual(git("branch", "--list", `braid/${run}/integration`).trim(), `braid/${run}/integration`)
    // Every folder the output names exists.
    for (const folder of (result.stdout + result.stderr).match(/\/\S*\.braid\/runs\/\S+/g) ?? []) {
      assert.isTrue(fs.existsSync(folder.replace(/[.,:;)]+$/, "")), `${folder} is named but does not exist`)
    }
  })

  it("braid status says why a task needs review: what its last review found", () => {
    const repo = tmp()
    const git = (...args: Array<string>) => spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" })
    git("init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, ".gitignore"), "plan.yaml\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    const file = path.join(repo, "plan.yaml")
    // An agent that reports success and changes nothing.
    fs.writeFileSync(file, "checks: [[node, -e, '0']]\nstreams:\n  - {name: api, type: api}\ntasks:\n  - {id: a1, title: A1, stream: api, run: [node, -e, '0']}\n")
    const run = braid(["run", file, "--repo", repo, "--quiet"])
    assert.strictEqual(run.code, 1, run.stderr)
    const status = braid(["status", "--repo", repo])
    assert.strictEqual(status.code, 0, status.stderr)
    assert.include(status.stdout, "a1: needs-review (last review: the attempt changed no files), 3 attempt(s), score 0")
    const json = JSON.parse(braid(["status", "--repo", repo, "--json"]).stdout)
    assert.strictEqual(json.streams[0].tasks[0].reason, "last review: the attempt changed no files")
  })

  it("exits 1 when the run finishes with a task needing review", () => {
    const { code, stdout } = braid([
      "run", "--workspace", "memory", "--agent", "mock", "--json", "--quality-threshold", "90", "--quiet", seedPlan
    ])
    assert.strictEqual(code, 1)
    const json = JSON.parse(stdout)
    assert.strictEqual(json.status, "needs-review")
    assert.isFalse(json.mergeResult.landed)
  })
})
