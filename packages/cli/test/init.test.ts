/**
 * `braid init` as a new user tries it: in a fresh repository, init, then `braid plan` on what it
 * wrote is ready, and `braid run` lands it; init never overwrites (exit 2, the file named,
 * nothing written).
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const bin = path.resolve(__dirname, "../dist/bin.js")
const braid = (cwd: string, args: Array<string>) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}
const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" })

const freshRepo = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-init-"))
  git(dir, "init", "-q", "-b", "main")
  git(dir, "commit", "-q", "--allow-empty", "-m", "start")
  return dir
}

describe("braid init", () => {
  it("writes a commented starter plan and braid.config.yaml that braid plan accepts and braid run lands", () => {
    const dir = freshRepo()
    try {
      const init = braid(dir, ["init"])
      assert.strictEqual(init.code, 0, init.stderr)
      assert.include(init.stdout, "wrote plan.yaml")
      const plan = fs.readFileSync(path.join(dir, "plan.yaml"), "utf8")
      // The seed's fields, each explained.
      for (const field of ["projectName", "featureName", "qualityThreshold", "maxParallel", "githubRepo", "streams", "tasks", "streamType", "acceptanceCriteria", "dependsOn", "checks", "verify"]) {
        assert.match(plan, new RegExp(`${field}`), field)
      }
      assert.isAbove(plan.split("\n").filter((l) => l.trim().startsWith("#")).length, 25)
      assert.match(fs.readFileSync(path.join(dir, "braid.config.yaml"), "utf8"), /^agent: script$/m)
      const checked = braid(dir, ["plan", "plan.yaml", "--json"])
      assert.strictEqual(checked.code, 0, checked.stderr)
      const result = JSON.parse(checked.stdout) as { ready: boolean; problems: Array<unknown>; warnings: Array<unknown>; streams: Array<{ name: string; agent: string }> }
      assert.isTrue(result.ready)
      assert.deepStrictEqual(result.problems, [])
      assert.deepStrictEqual(result.warnings, [])
      assert.deepStrictEqual(result.streams.map((s) => `${s.name}:${s.agent}`), ["api:script", "docs:script"])
      git(dir, "add", "-A")
      git(dir, "commit", "-q", "-m", "plan")
      const run = braid(dir, ["run", "plan.yaml"])
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(git(dir, "show", "main:src/greeting.js"), "Hello, ${name}!")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it("detects the project's package managers and writes a matching environment that braid plan accepts", () => {
    const dir = freshRepo()
    try {
      fs.writeFileSync(path.join(dir, "package.json"), "{}\n")
      fs.writeFileSync(path.join(dir, "package-lock.json"), "{\"lockfileVersion\": 3, \"packages\": {}}\n")
      fs.writeFileSync(path.join(dir, "requirements.txt"), "pytest\n")
      fs.writeFileSync(path.join(dir, ".gitignore"), ".env\n")
      fs.writeFileSync(path.join(dir, ".env"), "KEY=local\n")
      const init = braid(dir, ["init"])
      assert.strictEqual(init.code, 0, init.stderr)
      assert.include(init.stdout, "an environment for npm, Python")
      const plan = fs.readFileSync(path.join(dir, "plan.yaml"), "utf8")
      assert.include(plan, "# Found here: npm (package-lock.json), Python (requirements.txt), .env.")
      assert.include(plan, "  copy: [.env]")
      assert.include(plan, "    - { path: node_modules, key: [package-lock.json], build: [npm, ci] }")
      assert.include(plan, "    - { path: .venv, key: [requirements.txt], build: [sh, -c, \"python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\"] }")
      assert.include(plan, `sandbox: { network: ["registry.npmjs.org:443", "pypi.org:443"] }`)
      const checked = braid(dir, ["plan", "plan.yaml", "--json", "--no-land"])
      assert.strictEqual(checked.code, 0, checked.stderr)
      const api = JSON.parse(checked.stdout).streams.find((s: { name: string }) => s.name === "api")
      assert.deepStrictEqual(api.environment.share.map((s: { path: string }) => s.path), ["node_modules", ".venv"])
      assert.deepStrictEqual(api.environment.copy, [".env"])
      // Without any: the section is there, commented out, for the user to fill in.
      const bare = freshRepo()
      assert.strictEqual(braid(bare, ["init"]).code, 0)
      assert.include(fs.readFileSync(path.join(bare, "plan.yaml"), "utf8"), "# environment:\n#   copy: [.env]")
      fs.rmSync(bare, { recursive: true, force: true })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it("names the backend given with --agent, and refuses an unknown one", () => {
    const dir = freshRepo()
    try {
      assert.strictEqual(braid(dir, ["init", "--agent", "claude-code"]).code, 0)
      assert.match(fs.readFileSync(path.join(dir, "braid.config.yaml"), "utf8"), /^agent: claude-code$/m)
      const other = fs.mkdtempSync(path.join(os.tmpdir(), "braid-init-"))
      const bad = braid(other, ["init", "--agent", "nope"])
      assert.strictEqual(bad.code, 2)
      assert.include(bad.stderr, 'unknown agent "nope"')
      assert.deepStrictEqual(fs.readdirSync(other), [])
      fs.rmSync(other, { recursive: true })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("refuses to overwrite: exit 2, the existing file named, nothing written", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-init-"))
    try {
      fs.writeFileSync(path.join(dir, "braid.config.yaml"), "agent: codex\n")
      const r = braid(dir, ["init"])
      assert.strictEqual(r.code, 2)
      assert.include(r.stderr, "braid.config.yaml already exists")
      assert.notInclude(r.stderr, "plan.yaml and")
      assert.deepStrictEqual(fs.readdirSync(dir), ["braid.config.yaml"])
      assert.strictEqual(fs.readFileSync(path.join(dir, "braid.config.yaml"), "utf8"), "agent: codex\n")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
