/**
 * `braid runs` and `braid status` start without the command-line parser when `Help.early`'s
 * reading of the arguments is the parser's too (Main.direct). Whichever way they start, a user
 * sees the same thing: the same output, messages and exit code as through the parser.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"
import * as Help from "../src/Help.js"
import { bin, newRepo } from "./support/Braid.js"

let repo = ""
let runId = ""
const report = path.join(os.tmpdir(), `braid-startpath-${process.pid}.md`)

/** The built command in `cwd`, as a user runs it. */
const braid = (args: ReadonlyArray<string>, cwd = repo) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", BRAID_DATABASE_URL: "" } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(() => {
  repo = newRepo("braid-startpath-")
  const plan = path.join(repo, "plan.yaml")
  fs.writeFileSync(plan, "agent: script\nstreams:\n  - {name: s, type: docs}\ntasks:\n  - {id: a, title: Write a, stream: s, run: [node, -e, \"require('fs').writeFileSync('a.txt', 'a')\"]}\n")
  fs.appendFileSync(path.join(repo, ".git", "info", "exclude"), "plan.yaml\n")
  const ran = braid(["run", plan, "--report", report])
  assert.strictEqual(ran.code, 0, ran.stderr)
  runId = fs.readdirSync(path.join(repo, ".braid", "runs"))[0]!
})

afterAll(() => {
  fs.rmSync(repo, { recursive: true, force: true })
  fs.rmSync(report, { force: true })
})

describe("Help.early's reading of runs and status", () => {
  const read = (...args: Array<string>) => {
    const e = Help.early(args, { color: false })
    assert.strictEqual(e._tag, "Parse")
    return e as Help.Parse
  }

  it("is plain for options given once with their values as separate words", () => {
    const e = read("status", "r1", "--repo", "/x", "--json")
    assert.isTrue(e.plain)
    assert.strictEqual(e.command, "status")
    assert.deepStrictEqual(e.positionals, ["r1"])
    assert.deepStrictEqual([...e.values], [["repo", "/x"], ["json", true]])
  })

  it("is not plain wherever the parser might read the words otherwise", () => {
    for (const args of [
      ["runs", "--repo=/x"],
      ["runs", "--json", "false"],
      ["runs", "--repo", "/x", "--repo", "/y"],
      ["status", "--", "r1"],
      ["status", "-5"]
    ]) assert.isFalse(read(...args).plain, args.join(" "))
  })
})

describe("braid runs and braid status, with and without the parser", () => {
  it("print the same whichever way the arguments are written", () => {
    const pairs: Array<[Array<string>, Array<string>]> = [
      [["runs", "--repo", repo], ["runs", `--repo=${repo}`]],
      [["runs", "--json", "--repo", repo], ["runs", "--json", "true", "--repo", repo]],
      [["status", runId, "--repo", repo, "--json"], ["status", runId, `--repo=${repo}`, "--json"]],
      [["status", "--repo", repo], ["status", `--repo=${repo}`]],
      [["status", "no-such-run", "--repo", repo], ["status", "no-such-run", `--repo=${repo}`]]
    ]
    for (const [direct, parsed] of pairs) {
      const a = braid(direct)
      const b = braid(parsed)
      assert.deepStrictEqual(a, b, direct.join(" "))
    }
    const listed = braid(["runs", "--json", "--repo", repo])
    assert.strictEqual(listed.code, 0)
    assert.deepStrictEqual(JSON.parse(listed.stdout).map((r: { runId: string; status: string }) => [r.runId, r.status]), [[runId, "succeeded"]])
    const missing = braid(["status", "no-such-run", "--repo", repo])
    assert.strictEqual(missing.code, 2)
    assert.match(missing.stderr, /^braid: .*no-such-run/)
  })

  it("find the repository from a nested folder, and refuse a folder outside any repository", () => {
    const fromTop = braid(["status", "--json"])
    const nested = braid(["status", "--json"], path.join(repo, "src"))
    assert.strictEqual(nested.code, 0, nested.stderr)
    assert.strictEqual(nested.stdout, fromTop.stdout)
    assert.strictEqual(JSON.parse(nested.stdout).runId, runId)
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "braid-startpath-none-"))
    try {
      const refused = braid(["runs"], outside)
      assert.strictEqual(refused.code, 2)
      assert.match(refused.stderr, /not inside a git repository/)
      assert.notMatch(refused.stderr, /at .*\.js:\d+/)
    } finally {
      fs.rmSync(outside, { recursive: true, force: true })
    }
  })
})
