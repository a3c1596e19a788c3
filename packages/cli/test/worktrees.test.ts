/**
 * Where a run's checkouts live, through the built `braid`: outside the repository by default
 * (under `$XDG_CACHE_HOME/braid/worktrees`, a folder of this test file's own: vitest.setup.ts),
 * so the repository's own tools never see them; `--worktrees-dir`, the plan's and the config's
 * `worktreesDir` put them elsewhere; a run of the old layout (checkouts in
 * `.braid/runs/<run>/worktrees`, no record) still resumes and cleans.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { braid, git, journalOf, newRepo, worktreesOf } from "./support/Braid.js"

let plans = 0

/** A plan of two streams, each writing a file of its own (new with every plan), in `dir`, outside the repository. */
const planIn = (dir: string, extra: ReadonlyArray<string> = []) => {
  const n = ++plans
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, "plan.yaml")
  fs.writeFileSync(
    file,
    [
      ...extra,
      "checks: [[node, -e, '0']]",
      "streams:",
      "  - {name: api, type: api}",
      "  - {name: web, type: ui}",
      "tasks:",
      `  - {id: a1, title: A1, stream: api, run: [node, -e, "require('fs').writeFileSync('src/a${n}.txt','a')"]}`,
      `  - {id: w1, title: W1, stream: web, run: [node, -e, "require('fs').writeFileSync('src/w${n}.txt','w')"]}`,
      ""
    ].join("\n")
  )
  return file
}

const temp = (prefix: string) => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))

/** The checkouts git lists for `repo`, but the main one. */
const checkouts = (repo: string) =>
  git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree ")).map((l) => l.slice(9)).filter((p) => p !== repo)

const isInside = (root: string, p: string) => !path.relative(root, p).startsWith("..")

describe("a run's checkouts", () => {
  it("are outside the repository by default: node --test at its root finds its own test file once, kept checkouts or not; braid status names them", async () => {
    const repo = newRepo("braid-outside-")
    fs.mkdirSync(path.join(repo, "test"))
    fs.writeFileSync(path.join(repo, "test", "a.test.mjs"), `import test from "node:test"\ntest("a", () => {})\n`)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a test")
    const plan = planIn(temp("braid-outside-plan-"))

    const ran = await braid(["run", plan, "--repo", repo, "--quiet", "--keep-worktrees"])
    assert.strictEqual(ran.code, 0, ran.stderr)
    const { runId } = journalOf(repo)
    const folder = worktreesOf(repo, runId)
    const cache = path.join(process.env.XDG_CACHE_HOME!, "braid", "worktrees")
    assert.match(path.relative(cache, folder), new RegExp(`^${path.basename(repo)}-[0-9a-f]{12}/${runId}$`))
    assert.sameMembers(checkouts(repo), ["api", "web", "_integration"].map((s) => path.join(folder, s)))
    for (const dir of checkouts(repo)) {
      assert.isFalse(isInside(repo, dir), `${dir} is inside the repository`)
      assert.isTrue(fs.existsSync(path.join(dir, "test", "a.test.mjs")))
    }
    assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs", runId, "worktrees")))

    // The repository's own test runner sees the repository's test file, not the checkouts' copies.
    const tests = spawnSync(process.execPath, ["--test", "--test-reporter=tap"], { cwd: repo, encoding: "utf8" })
    assert.strictEqual(tests.status, 0, tests.stdout + tests.stderr)
    assert.match(tests.stdout, /^# tests 1$/m)

    // Where to look at a kept checkout.
    const status = await braid(["status", runId, "--repo", repo])
    assert.strictEqual(status.code, 0, status.stderr)
    assert.include(status.stdout, `  checkout of api: ${path.join(folder, "api")}\n`)
    assert.include(status.stdout, `  checkout of web: ${path.join(folder, "web")}\n`)
    const json = JSON.parse((await braid(["status", runId, "--repo", repo, "--json"])).stdout)
    assert.strictEqual(json.worktreesDir, folder)

    // braid clean removes them, wherever they are.
    const clean = await braid(["clean", runId, "--repo", repo])
    assert.strictEqual(clean.code, 0, clean.stderr)
    assert.include(clean.stdout, "3 worktree(s)")
    assert.deepStrictEqual(checkouts(repo), [])
    assert.isFalse(fs.existsSync(folder))
  }, 90_000)

  it("go where --worktrees-dir says, over the plan's worktreesDir, over braid.config.yaml's (each relative to its own folder)", async () => {
    const repo = newRepo("braid-where-")
    const planDir = temp("braid-where-plan-")
    fs.writeFileSync(path.join(planDir, "braid.config.yaml"), "worktreesDir: from-config\n")
    const runOnce = async (plan: string, args: ReadonlyArray<string> = []) => {
      const ran = await braid(["run", plan, "--repo", repo, "--quiet", "--keep-worktrees", ...args])
      assert.strictEqual(ran.code, 0, ran.stderr)
      const { runId } = journalOf(repo)
      return { runId, folder: worktreesOf(repo, runId) }
    }

    const byConfig = await runOnce(planIn(planDir))
    assert.strictEqual(byConfig.folder, path.join(planDir, "from-config", byConfig.runId))
    assert.isTrue(fs.existsSync(path.join(byConfig.folder, "api", "src", `a${plans}.txt`)))

    const byPlan = await runOnce(planIn(planDir, ["worktreesDir: from-plan"]))
    assert.strictEqual(byPlan.folder, path.join(planDir, "from-plan", byPlan.runId))

    const chosen = temp("braid-where-flag-")
    const byFlag = await runOnce(planIn(planDir, ["worktreesDir: from-plan"]), ["--worktrees-dir", chosen])
    assert.strictEqual(byFlag.folder, path.join(chosen, byFlag.runId))
    assert.sameMembers(checkouts(repo).filter((p) => isInside(chosen, p)), ["api", "web", "_integration"].map((s) => path.join(byFlag.folder, s)))

    // A folder braid cannot make is found before anything starts, naming the way out.
    const blocker = path.join(chosen, "a-file")
    fs.writeFileSync(blocker, "")
    const unmakeable = await braid(["run", planIn(planDir), "--repo", repo, "--quiet", "--worktrees-dir", path.join(blocker, "sub")])
    assert.strictEqual(unmakeable.code, 2, unmakeable.stderr)
    assert.include(unmakeable.stderr, `braid makes the run's checkouts in ${path.join(blocker, "sub")}; make it writable, or choose another folder with --worktrees-dir`)

    // A folder inside the repository is refused, naming it.
    const inside = await braid(["run", planIn(planDir), "--repo", repo, "--quiet", "--worktrees-dir", path.join(repo, "checkouts")])
    assert.strictEqual(inside.code, 2, inside.stderr)
    assert.include(inside.stderr, `is inside the repository ${repo}`)
  }, 120_000)

  it("of a run of the old layout (in .braid/runs/<run>/worktrees, no record) are used by resume and removed by clean", async () => {
    const repo = newRepo("braid-old-layout-")
    const plan = planIn(temp("braid-old-layout-plan-"))
    // Stopped after its first records, as a crash leaves a run; its checkouts kept.
    const first = await braid(["run", plan, "--repo", repo, "--quiet", "--keep-worktrees"], { BRAID_CRASH_AFTER_RECORDS: "4" })
    assert.strictEqual(first.signal, "SIGKILL", first.stderr)
    const { runId } = journalOf(repo)
    // Made as braid made runs before the record: the checkouts in the run folder, no record.
    const legacy = path.join(repo, ".braid", "runs", runId, "worktrees")
    fs.mkdirSync(legacy)
    const moved = checkouts(repo)
    assert.isAbove(moved.length, 0, "the crashed run left no checkout to move")
    for (const dir of moved) git(repo, "worktree", "move", dir, path.join(legacy, path.basename(dir)))
    fs.rmSync(path.join(repo, ".braid", "runs", runId, "worktrees-dir"))

    const resumed = await braid(["resume", runId, "--repo", repo, "--quiet"])
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.match(resumed.stderr, /SUCCEEDED: 2\/2 tasks completed/)
    assert.includeMembers(git(repo, "ls-tree", "-r", "--name-only", "main").split("\n"), [`src/a${plans}.txt`, `src/w${plans}.txt`])
    // Every checkout of the run is in the old folder (kept: --keep-worktrees), none elsewhere.
    const kept = checkouts(repo)
    assert.sameMembers(kept, ["api", "web", "_integration"].map((s) => path.join(legacy, s)))
    assert.strictEqual(worktreesOf(repo, runId), legacy)

    // Without the record again, clean still finds them.
    fs.rmSync(path.join(repo, ".braid", "runs", runId, "worktrees-dir"), { force: true })
    const clean = await braid(["clean", runId, "--repo", repo])
    assert.strictEqual(clean.code, 0, clean.stderr)
    assert.include(clean.stdout, `removed run ${runId}: 3 worktree(s)`)
    assert.deepStrictEqual(checkouts(repo), [])
    assert.strictEqual(git(repo, "branch", "--list", "braid/*"), "")
    assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs", runId)))
  }, 120_000)
})
