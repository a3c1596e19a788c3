import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"

// Installs `braid` the way the README's "Install" tells a user to — `npm run pack`, then
// `npm install -g` of the tarball — into a temporary prefix (offline: the npm cache from
// `npm ci` holds everything, and the tarball carries its dependencies), then uses it in a git
// repository outside this one, with a HOME outside it too.
const repoRoot = path.resolve(__dirname, "../../..")
const version: string = JSON.parse(fs.readFileSync(path.join(repoRoot, "packages/cli/package.json"), "utf8")).version
const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-install-")))
const prefix = path.join(work, "prefix")
const home = path.join(work, "home")
const installed = path.join(prefix, "lib", "node_modules", "@braid", "cli")

const run = (command: string, args: Array<string>, cwd: string, env: NodeJS.ProcessEnv = process.env) => {
  const result = spawnSync(command, args, { cwd, env, encoding: "utf8", maxBuffer: 1 << 28 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

/**
 * `run` without blocking this worker: packing and installing take a minute or more on a busy
 * machine, and a worker whose event loop is blocked that long misses vitest's own calls.
 */
const runInBackground = (command: string, args: Array<string>, cwd: string) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => void (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => void (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

/** A user's shell: the prefix's bin first on PATH, nothing of this repository or of vitest. */
const userEnv: NodeJS.ProcessEnv = {
  PATH: [path.join(prefix, "bin"), path.dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(path.delimiter),
  HOME: home,
  NO_COLOR: "1",
  LANG: "C.UTF-8"
}
const braid = (args: Array<string>, cwd: string) => run(path.join(prefix, "bin", "braid"), args, cwd, userEnv)

let tarball = ""

beforeAll(async () => {
  fs.mkdirSync(home)
  // `npm run pack` is the build (done: `npm test` built first) and then this script.
  const packed = await runInBackground(process.execPath, [path.join(repoRoot, "scripts/pack-cli.mjs"), "--out", work], repoRoot)
  assert.strictEqual(packed.code, 0, packed.stderr)
  tarball = packed.stdout.trim().split("\n").at(-1)!
  assert.strictEqual(tarball, path.join(work, `braid-cli-${version}.tgz`))
  const install = await runInBackground("npm", ["install", "--offline", "--no-audit", "--no-fund", "--prefix", prefix, "-g", tarball], work)
  assert.strictEqual(install.code, 0, install.stderr)
  // Packing and installing 10,000 files take about 80 s alone, and longer beside other test files.
}, 300_000)

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true })
})

describe("braid installed from the packed tarball", () => {
  it("is one self-contained tarball: the workspace packages inside, the agent CLIs not", () => {
    const require = createRequire(path.join(installed, "dist", "bin.js"))
    for (const name of ["@braid/core", "@braid/agents", "effect", "@effect/platform-node", "yaml"]) {
      const resolved = require.resolve(name)
      assert.isTrue(resolved.startsWith(installed + path.sep), `${name} resolves to ${resolved}, outside the installed package`)
    }
    const agentsJson = JSON.parse(fs.readFileSync(path.join(installed, "node_modules/@braid/agents/package.json"), "utf8"))
    assert.isUndefined(agentsJson.devDependencies)
    for (const cli of ["@anthropic-ai/claude-code", "@openai/codex", "@google/gemini-cli"]) {
      assert.isFalse(fs.existsSync(path.join(installed, "node_modules", cli)), `${cli} was bundled`)
    }
  })

  it("answers --version and --help from outside the repository", () => {
    const versionOut = braid(["--version"], home)
    assert.strictEqual(versionOut.code, 0, versionOut.stderr)
    assert.strictEqual(versionOut.stdout.trim(), version)
    const help = braid(["--help"], home)
    assert.strictEqual(help.code, 0, help.stderr)
    assert.include(help.stdout, "braid run")
    assert.notMatch(help.stdout, /\u001b\[/)
  })

  it("runs a plan with the script agent in a fresh repository and lands it; runs and status start from a snapshot it makes", async () => {
    const repo = path.join(work, "project")
    fs.mkdirSync(repo)
    const git = (...args: Array<string>) => run("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], repo, userEnv)
    git("init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, "README.md"), "a project\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    const plan = path.join(work, "plan.yaml")
    fs.writeFileSync(plan, [
      "agent: script",
      `verify: [[node, -e, "require('fs').accessSync('hello.txt')"]]`,
      "streams:",
      "  - {name: docs, type: docs}",
      "tasks:",
      `  - {id: hello, title: Write hello, stream: docs, run: [node, -e, "require('fs').writeFileSync('hello.txt', 'hello\\\\n')"], checks: [[node, -e, "require('fs').accessSync('hello.txt')"]]}`,
      ""
    ].join("\n"))
    const result = braid(["run", plan, "--json"], repo)
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(JSON.parse(result.stdout).success, true)
    assert.strictEqual(git("show", "main:hello.txt").stdout, "hello\n")
    assert.strictEqual(git("status", "--porcelain").stdout, "")
    // braid runs and status answer about it through the installed bin/braid. The tarball carries
    // no start-up snapshot (it is for the node that makes it): the first call starts the ordinary
    // command and makes one in the background, into the user's cache folder; later calls start
    // from it. `sh -x` shows the command bin/braid hands over to.
    assert.isFalse(fs.existsSync(path.join(installed, "dist", "braid.snapshot")))
    const traced = (args: Array<string>) => {
      const r = run("sh", ["-x", path.join(prefix, "bin", "braid"), ...args], repo, userEnv)
      const lines = r.stderr.split("\n")
      return {
        code: r.code,
        stdout: r.stdout,
        stderr: lines.filter((l) => !l.startsWith("+")).join("\n"),
        fromSnapshot: lines.some((l) => l.startsWith("+ exec ") && l.includes("--snapshot-blob"))
      }
    }
    const first = traced(["runs"])
    assert.strictEqual(first.code, 0, first.stderr)
    assert.match(first.stdout, /\tsucceeded\t/)
    assert.isFalse(first.fromSnapshot)
    const id = fs.readFileSync(path.join(installed, "dist", "braid.snapshot.js.id"), "utf8").trim()
    const made = path.join(home, ".cache", "braid", "snapshot", id, "braid.snapshot")
    const until = Date.now() + 80_000
    // Waited for without blocking this worker (vitest's own calls need its event loop).
    while (!fs.existsSync(`${made}.node`) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 500))
    assert.isTrue(fs.existsSync(`${made}.node`), `no start-up snapshot was made at ${made}`)
    assert.strictEqual(fs.readFileSync(`${made}.node`, "utf8").trim(), fs.realpathSync(process.execPath))
    for (const args of [["runs"], ["status", "--json"]]) {
      const fast = traced(args)
      assert.isTrue(fast.fromSnapshot, `${args.join(" ")}: not from the snapshot made at ${made}`)
      assert.strictEqual(fast.code, 0, fast.stderr)
      if (args[0] === "runs") assert.strictEqual(fast.stdout, first.stdout)
      else assert.strictEqual(JSON.parse(fast.stdout).runId, JSON.parse(result.stdout).runId)
    }
  }, 120_000)
})
