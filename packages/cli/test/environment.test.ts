/**
 * Checkout environments (`environment:`) with the built `braid` on real repositories: files
 * copied from the user's checkout (`copy`, `.worktreeinclude`), a shared `node_modules` built
 * once by `npm ci` from a `file:` tarball (offline) and copied into later checkouts, a task that
 * adds a dependency changing neither the cache nor another stream's copy, disjoint port blocks,
 * and a failing setup that stops the run before any gate run and resumes after the fix.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bin, braid, git } from "./support/Braid.js"

const npm = process.platform === "win32" ? "npm.cmd" : "npm"

/** A package tarball in `dir` (`npm pack`, offline): its file name. */
const pack = (dir: string, name: string, value: string) => {
  const src = path.join(dir, `src-${name}`)
  fs.mkdirSync(src, { recursive: true })
  fs.writeFileSync(path.join(src, "package.json"), JSON.stringify({ name, version: "1.0.0", main: "index.js" }))
  fs.writeFileSync(path.join(src, "index.js"), `module.exports = ${JSON.stringify(value)}\n`)
  execFileSync(npm, ["pack", "--silent", "--pack-destination", dir], { cwd: src, stdio: "ignore" })
  fs.rmSync(src, { recursive: true })
  return `${name}-1.0.0.tgz`
}

/** What each script agent writes: the dependency it loads, the copied files, its ports. */
const probe = `
import * as fs from "node:fs"
import { createRequire } from "node:module"
const require = createRequire(process.cwd() + "/")
const read = (f) => { try { return fs.readFileSync(f, "utf8").trim() } catch { return "missing" } }
if (process.env.WAIT_FOR !== undefined) {
  fs.writeFileSync(process.env.WAIT_FOR + ".started", "")
  while (!fs.existsSync(process.env.WAIT_FOR)) await new Promise((r) => setTimeout(r, 100))
}
let dep
try { dep = require("leftpad-local") } catch (e) { dep = "cannot load: " + e.code }
if (process.env.ADD_DEPENDENCY === process.env.BRAID_TASK_ID) {
  const { execFileSync } = await import("node:child_process")
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--silent", process.env.EXTRA_TARBALL], { stdio: "ignore" })
}
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", [
  "dep=" + dep, "env=" + read(".env"), "local=" + read("config/local.json"), "ports=" + process.env.BRAID_PORTS
].join("\\n") + "\\n")
`

const fixture = (streams: ReadonlyArray<string>, environment: string, extra: ReadonlyArray<string> = []) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-env-")))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(path.join(repo, "vendor"), { recursive: true })
  const tarball = pack(path.join(repo, "vendor"), "leftpad-local", "padded")
  const extraTarball = pack(dir, "extra-local", "extra")
  fs.writeFileSync(path.join(repo, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", dependencies: { "leftpad-local": `file:vendor/${tarball}` } }, null, 2))
  execFileSync(npm, ["install", "--offline", "--no-audit", "--no-fund", "--silent", "--package-lock-only"], { cwd: repo, stdio: "ignore" })
  fs.writeFileSync(path.join(repo, ".gitignore"), "node_modules\n.env\nconfig/local.json\n")
  fs.writeFileSync(path.join(repo, ".worktreeinclude"), "# Claude Code's convention\nconfig/local.json\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  // The user's own ignored files: never committed, wanted in every checkout.
  fs.writeFileSync(path.join(repo, ".env"), "SECRET=from-main")
  fs.mkdirSync(path.join(repo, "config"))
  fs.writeFileSync(path.join(repo, "config", "local.json"), "{\"local\":true}")
  const agents = path.join(dir, "plan")
  fs.mkdirSync(agents)
  fs.writeFileSync(path.join(agents, "probe.mjs"), probe)
  const log = path.join(dir, "setup.log")
  const plan = path.join(agents, "plan.yaml")
  fs.writeFileSync(
    plan,
    [
      "projectName: env",
      "featureName: environments",
      ...extra,
      environment.replaceAll("LOG", log),
      "streams:",
      ...streams.map((s) => `  - { name: ${s}, type: api }`),
      "tasks:",
      ...streams.map((s) => `  - { id: ${s}-1, title: Probe ${s}, stream: ${s}, run: { script: probe.mjs } }`),
      ""
    ].join("\n")
  )
  const cache = path.join(dir, "cache")
  return { dir, repo, plan, log, cache, env: { XDG_CACHE_HOME: cache, EXTRA_TARBALL: path.join(dir, extraTarball) } }
}

const landed = (repo: string, file: string) => Object.fromEntries(git(repo, "show", `main:${file}`).split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]))

const setupLines = (log: string) => fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").filter((l) => l !== "") : []

describe("checkout environments", () => {
  it("copies the user's ignored files, builds node_modules once and copies it into later checkouts; a task adding a dependency changes neither the cache nor another stream's copy", async () => {
    const f = fixture(["a", "b", "c"], [
      "environment:",
      "  copy: [.env]",
      "  share: [{ path: node_modules, key: [package-lock.json], build: npm ci --offline --no-audit --no-fund }]",
      `  setup: [[node, -e, "require('fs').appendFileSync('LOG', process.cwd() + '\\\\n')"]]`
    ].join("\n"), ["maxParallel: 1"])
    const out = await braid(["run", f.plan, "--repo", f.repo, "--json", "--quiet", "--keep-worktrees"], { ...f.env, ADD_DEPENDENCY: "c-1" })
    assert.strictEqual(out.code, 0, out.stderr)
    const report = JSON.parse(out.stdout)
    assert.strictEqual(report.status, "succeeded")
    for (const s of ["a", "b", "c"]) {
      const seen = landed(f.repo, `${s}-1.txt`)
      assert.strictEqual(seen.dep, "padded", `${s}: ${JSON.stringify(seen)}`)
      assert.strictEqual(seen.env, "SECRET=from-main")
      assert.strictEqual(seen.local, "{\"local\":true}", "the .worktreeinclude file was copied")
    }
    // Never committed: copied and shared files are the checkout's, not the task's work.
    const files = git(f.repo, "ls-tree", "-r", "--name-only", "main")
    assert.notInclude(files, ".env")
    assert.notInclude(files, "node_modules")
    // One setup per checkout (the integration's too, before verify); the first built node_modules,
    // the later ones copied it from the cache; the integration, with c's new dependency in its
    // lock file, built its own.
    assert.strictEqual(setupLines(f.log).length, 4)
    const envs: Array<any> = report.environments
    assert.deepStrictEqual(envs.map((e) => `${e.stream}:${e.shared.map((s: any) => s.from).join(",")}`), ["a:built", "b:cache", "c:cache", "null:built"])
    assert.isTrue(envs.find((e) => e.stream === "a").setup.some((c: any) => c.argv.includes("ci")), "npm ci ran in the first checkout")
    assert.isFalse(envs.find((e) => e.stream === "b").setup.some((c: any) => c.argv.includes("ci")), "npm ci did not run in the second")
    // Stream c added a dependency in its own copy: the cache and stream a's checkout do not have it.
    assert.include(git(f.repo, "show", "main:package.json"), "extra-local")
    const cached = fs.readdirSync(path.join(f.cache, "braid", "share")).filter((n) => !n.startsWith("."))
    assert.strictEqual(cached.length, 2, "the base's build and the integration's")
    const cacheTree = path.join(f.cache, "braid", "share", cached.find((n) => !fs.existsSync(path.join(f.cache, "braid", "share", n, "tree", "extra-local")))!, "tree")
    assert.isFalse(fs.existsSync(path.join(cacheTree, "extra-local")))
    assert.notInclude(fs.readFileSync(path.join(cacheTree, ".package-lock.json"), "utf8"), "extra-local")
    const checkouts = git(f.repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree ")).map((l) => l.slice(9))
    const of = (s: string) => checkouts.find((c) => path.basename(c) === s)!
    assert.isTrue(fs.existsSync(path.join(of("c"), "node_modules", "extra-local")))
    assert.isFalse(fs.existsSync(path.join(of("a"), "node_modules", "extra-local")))
    assert.notInclude(fs.readFileSync(path.join(of("a"), "node_modules", ".package-lock.json"), "utf8"), "extra-local")
    // The report shows it.
    const md = await braid(["report", report.runId, "--repo", f.repo], f.env)
    assert.include(md.stdout, "## Environments")
    assert.match(md.stdout, /node\\?_modules from the cache/)
  }, 90_000)

  it("five parallel streams get disjoint port blocks, in their setup and their agent alike", async () => {
    const streams = ["s1", "s2", "s3", "s4", "s5"]
    const f = fixture(streams, [
      "environment:",
      "  ports: 4",
      `  setup: [[node, -e, "require('fs').appendFileSync('LOG', process.env.BRAID_PORTS + '\\\\n')"]]`
    ].join("\n"), ["maxParallel: 5"])
    const out = await braid(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(out.code, 0, out.stderr)
    const blocks = streams.map((s) => landed(f.repo, `${s}-1.txt`).ports!)
    const ports = blocks.flatMap((b) => {
      const [first, last] = b.split("-").map(Number)
      assert.strictEqual(last! - first! + 1, 4, b)
      return [first!, first! + 1, first! + 2, last!]
    })
    assert.strictEqual(new Set(ports).size, 20, `overlapping blocks: ${blocks.join(" ")}`)
    // The integration's checkout is set up too, before verify: a sixth block (given back ones are used again).
    const lines = setupLines(f.log)
    assert.strictEqual(lines.length, 6, lines.join("\n"))
    assert.includeMembers(lines, blocks)
  }, 90_000)

  it("a failing setup stops the run before any gate run, naming the command and its output; resume sets it up after the fix, and not again where it had succeeded", async () => {
    const f = fixture(["a", "b"], [
      "environment:",
      `  setup: [[node, -e, "require('fs').appendFileSync('LOG', process.cwd() + '\\\\n')"]]`,
      "streams_placeholder"
    ].join("\n"), ["maxParallel: 1"])
    // Stream b's setup needs a file that is not there yet.
    const need = path.join(f.dir, "fixed")
    const plan = fs.readFileSync(f.plan, "utf8").replace("streams_placeholder\n", "").replace(
      "  - { name: b, type: api }",
      `  - { name: b, type: api, environment: { setup: [[node, -e, "require('fs').appendFileSync('${f.log}', process.cwd() + '\\\\n'); if (!require('fs').existsSync('${need}')) { console.error('database not ready'); process.exit(3) }"]] } }`
    )
    fs.writeFileSync(f.plan, plan)
    const first = await braid(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.notStrictEqual(first.code, 0)
    assert.include(first.stderr, `the environment's setup failed in stream "b"'s checkout`)
    assert.include(first.stderr, "exited 3")
    assert.include(first.stderr, "database not ready")
    assert.include(first.stderr, "braid resume")
    assert.notInclude(first.stderr, "    at ")
    const runId = /braid resume (\S+)/.exec(first.stderr)![1]!
    // No attempt of b's task ran: no gate run used.
    const journal = fs.readFileSync(path.join(f.repo, ".braid", "runs", runId, "journal.jsonl"), "utf8")
    assert.notInclude(journal, "stream/b/task/b-1/attempt/1")
    assert.strictEqual(setupLines(f.log).length, 2)
    fs.writeFileSync(need, "")
    const resumed = await braid(["resume", runId, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.strictEqual(JSON.parse(resumed.stdout).status, "succeeded")
    // b was set up again (its setup failed); a, whose checkout was set up before, was not.
    const lines = setupLines(f.log)
    assert.deepStrictEqual(lines.map((l) => path.basename(l)), ["a", "b", "b", "_integration"])
  }, 90_000)
})

describe("checkout environments as checkouts come and go", () => {
  it("a checkout closed to make room is torn down, and set up again when its stream opens it anew", async () => {
    const f = fixture(["a", "b"], [
      "environment:",
      `  setup: [[node, -e, "require('fs').appendFileSync('LOG', 'setup ' + require('path').basename(process.cwd()) + '\\\\n')"]]`,
      `  teardown: [[node, -e, "require('fs').appendFileSync('LOG', 'teardown ' + require('path').basename(process.cwd()) + '\\\\n')"]]`
    ].join("\n"), ["maxParallel: 1"])
    // a-2 waits for b-1: stream a's checkout is closed for b's, then opened again.
    fs.writeFileSync(f.plan, fs.readFileSync(f.plan, "utf8").replace(
      "  - { id: b-1,",
      "  - { id: a-2, title: Probe a again, stream: a, dependsOn: [b-1], run: { script: probe.mjs } }\n  - { id: b-1,"
    ))
    const out = await braid(["run", f.plan, "--repo", f.repo, "--json", "--quiet"], f.env)
    assert.strictEqual(out.code, 0, out.stderr)
    const lines = setupLines(f.log)
    assert.deepStrictEqual(lines.slice(0, 5), ["setup a", "teardown a", "setup b", "teardown b", "setup a"], lines.join("\n"))
    assert.include(lines, "setup _integration")
    assert.strictEqual(landed(f.repo, "a-2.txt").local, "{\"local\":true}", "the copied file is there again")
  }, 90_000)
})

describe("sparse checkouts", () => {
  it("a sparse stream's checkout holds only its scope, its listed folders and the top's files; it commits there; the integration is complete", async () => {
    const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-sparse-")))
    for (const [file, text] of Object.entries({ "README.md": "top\n", "src/api/a.js": "api\n", "src/ui/u.js": "ui\n", "docs/d.md": "docs\n", "shared/s.js": "shared\n" })) {
      fs.mkdirSync(path.dirname(path.join(repo, file)), { recursive: true })
      fs.writeFileSync(path.join(repo, file), text)
    }
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    const look = `const fs = require("fs"); fs.mkdirSync("src/api", { recursive: true }); fs.writeFileSync("src/api/seen.txt", ["README.md", "src/api/a.js", "src/ui/u.js", "docs/d.md", "shared/s.js"].map((f) => f + "=" + fs.existsSync(f)).join("\\n") + "\\n")`
    const plan = path.join(repo, "..", `${path.basename(repo)}-plan.yaml`)
    fs.writeFileSync(plan, [
      "projectName: sparse",
      "featureName: sparse",
      "streams:",
      "  - { name: api, type: api, scope: src/api/, environment: { sparse: [shared] } }",
      "  - { name: ui, type: ui, scope: src/ui/ }",
      "tasks:",
      `  - { id: api-1, title: Look, stream: api, run: [node, -e, ${JSON.stringify(look)}] }`,
      `  - { id: ui-1, title: Touch, stream: ui, run: [node, -e, "require('fs').writeFileSync('src/ui/v.js', 'v')"] }`,
      `verify: [[node, -e, "for (const f of ['src/api/seen.txt', 'src/ui/v.js', 'docs/d.md', 'shared/s.js']) require('fs').accessSync(f)"]]`,
      ""
    ].join("\n"))
    const shown = await braid(["plan", plan, "--repo", repo])
    assert.include(shown.stdout, "api: sparse: shared, src/api (and the files at the top)")
    const out = await braid(["run", plan, "--repo", repo, "--json", "--quiet"])
    assert.strictEqual(out.code, 0, out.stderr)
    assert.strictEqual(JSON.parse(out.stdout).integrationResult.passed, true)
    assert.deepStrictEqual(git(repo, "show", "main:src/api/seen.txt").split("\n"), [
      "README.md=true", "src/api/a.js=true", "src/ui/u.js=false", "docs/d.md=false", "shared/s.js=true"
    ])
    // What the sparse checkout did not hold is still in the result: nothing was deleted.
    assert.strictEqual(git(repo, "show", "main:docs/d.md"), "docs")
    assert.strictEqual(git(repo, "show", "main:src/ui/u.js"), "ui")
  }, 90_000)
})

describe("checkout environments across a crash", () => {
  it("braid killed while an agent works: resume finds the checkout still there and does not set it up again", async () => {
    const f = fixture(["a"], [
      "environment:",
      "  copy: [.env]",
      `  setup: [[node, -e, "require('fs').appendFileSync('LOG', process.cwd() + '\\\\n')"]]`
    ].join("\n"))
    const go = path.join(f.dir, "go")
    const child = spawn(process.execPath, [bin, "run", f.plan, "--repo", f.repo, "--quiet", "--sandbox", "off"], {
      env: { ...process.env, NO_COLOR: "1", ...f.env, WAIT_FOR: go },
      stdio: "ignore"
    })
    try {
      for (let i = 0; i < 300 && !fs.existsSync(`${go}.started`); i++) await new Promise((r) => setTimeout(r, 100))
      assert.isTrue(fs.existsSync(`${go}.started`), "the agent never started")
    } finally {
      child.kill("SIGKILL")
    }
    await new Promise((r) => child.once("exit", r))
    assert.deepStrictEqual(setupLines(f.log).map((l) => path.basename(l)), ["a"])
    fs.writeFileSync(go, "")
    const resumed = await braid(["resume", "--repo", f.repo, "--json", "--quiet"], { ...f.env, WAIT_FOR: go })
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.strictEqual(landed(f.repo, "a-1.txt").env, "SECRET=from-main")
    // The checkout was set up once; the integration's before verify.
    assert.deepStrictEqual(setupLines(f.log).map((l) => path.basename(l)), ["a", "_integration"])
  }, 90_000)
})

const bwrap = execFileSync("sh", ["-c", "command -v bwrap || true"], { encoding: "utf8" }).trim() !== ""

describe.skipIf(!bwrap)("checkout environments, confined", () => {
  it("setup runs confined as the stream's agent: npm ci works (its downloads in braid's cache), a write into the main checkout is refused", async () => {
    const f = fixture(["a"], [
      "environment:",
      "  share: [{ path: node_modules, key: [package-lock.json], build: npm ci --offline --no-audit --no-fund }]",
      `  setup: [[node, -e, "try { require('fs').writeFileSync('${"MAIN"}/planted', 'x') } catch (e) { console.error('refused ' + e.code) }"]]`
    ].join("\n"))
    fs.writeFileSync(f.plan, fs.readFileSync(f.plan, "utf8").replace("MAIN", f.repo))
    const out = await braid(["run", f.plan, "--repo", f.repo, "--json", "--quiet", "--sandbox", "required"], f.env)
    assert.strictEqual(out.code, 0, out.stderr)
    const report = JSON.parse(out.stdout)
    assert.strictEqual(landed(f.repo, "a-1.txt").dep, "padded")
    assert.isFalse(fs.existsSync(path.join(f.repo, "planted")))
    assert.include(report.environments[0].setup.at(-1).outputTail, "refused EROFS")
  }, 90_000)
})
