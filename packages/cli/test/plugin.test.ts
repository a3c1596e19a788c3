/**
 * The Claude Code plugin in `plugin/` and the marketplace at the repository's root, checked by
 * the pinned `claude` itself: `claude plugin validate` passes both (the plugin provides the
 * `braid mcp` server and the `braid` skill), and `claude plugin install braid --marketplace
 * <repository>` — the command the README gives — installs it into a throwaway HOME, offline.
 */
import { assert, describe, it } from "vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { root } from "./support/Braid.js"

const claudeBin = path.join(root, "node_modules/.bin/claude")

/** The pinned claude with a throwaway HOME, no Anthropic or claude variable, no network traffic it can skip. */
const claude = (args: ReadonlyArray<string>, home: string) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(ANTHROPIC_|CLAUDE_)/.test(k)) env[k] = v
    const child = spawn(claudeBin, [...args], {
      cwd: home,
      env: { ...env, HOME: home, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_TELEMETRY: "1", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

describe.skipIf(process.platform !== "linux")("the Claude Code plugin", () => {
  it("passes claude plugin validate, provides braid mcp and the braid skill, and installs from the repository's marketplace", async () => {
    const home = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-plugin-")))
    try {
      const validated = await claude(["plugin", "validate", path.join(root, "plugin"), "--json"], home)
      assert.strictEqual(validated.code, 0, validated.stdout + validated.stderr)
      const report = JSON.parse(validated.stdout)
      assert.isTrue(report.success)
      assert.deepStrictEqual(report.manifest.errors, [])
      assert.deepStrictEqual(report.provides.mcpServers.map((s: { name: string; target: string; args: Array<string> }) => [s.name, s.target, s.args]), [["braid", "braid", ["mcp"]]])
      assert.deepStrictEqual(report.provides.skills, ["braid:braid"])

      const marketplace = await claude(["plugin", "validate", root], home)
      assert.strictEqual(marketplace.code, 0, marketplace.stdout + marketplace.stderr)
      assert.include(marketplace.stdout, "Validation passed")

      const installed = await claude(["plugin", "install", "braid", "--marketplace", root], home)
      assert.strictEqual(installed.code, 0, installed.stdout + installed.stderr)
      const listed = await claude(["plugin", "list", "--json"], home)
      assert.strictEqual(listed.code, 0, listed.stderr)
      const braid = JSON.parse(listed.stdout).find((p: { id: string }) => p.id === "braid@braid")
      assert.isDefined(braid, listed.stdout)
      assert.isTrue(braid.enabled)
      assert.deepStrictEqual(braid.mcpServers, { braid: { command: "braid", args: ["mcp"] } })
      assert.isTrue(fs.existsSync(path.join(braid.installPath, "skills", "braid", "SKILL.md")))
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  }, 60_000)
})
