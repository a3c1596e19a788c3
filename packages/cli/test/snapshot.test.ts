/**
 * The command a user runs, bin/braid (what npm links as `braid`), starts `braid runs` and
 * `braid status` from the V8 start-up snapshot the build made (Snapshot.ts), and only when that
 * snapshot was made by the node it would run. Whichever way it starts, the user sees what the
 * ordinary command (bin/braid.js) prints: the same output, messages and exit code.
 *
 * `sh -x` shows the command bin/braid hands over to, so each case says which way it started.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"
import { bin, newRepo, root } from "./support/Braid.js"

const cli = path.join(root, "packages/cli")
const snapshot = path.join(cli, "dist/braid.snapshot")
let repo = ""
let runId = ""
const env = { ...process.env, NO_COLOR: "1", BRAID_DATABASE_URL: "", BRAID_NO_SNAPSHOT: "" }

interface Seen {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * A command's exit code and output, without blocking this worker: the cases here run dozens of
 * processes one after another, and a worker blocked for a minute misses vitest's own calls.
 */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, environment: NodeJS.ProcessEnv) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: environment, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => void (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => void (stderr += d))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

/** bin/braid (or a copy of it) under `sh -x`: what the user sees, and the command it handed over to. */
const braid = async (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string | undefined; readonly env?: Record<string, string> | undefined; readonly command?: string } = {}
) => {
  const r = await run("sh", ["-x", options.command ?? path.join(cli, "bin/braid"), ...args], options.cwd ?? repo, { ...env, ...options.env })
  const lines = r.stderr.split("\n")
  const handed = lines.filter((l) => l.startsWith("+ exec ")).join("\n")
  const seen: Seen = { code: r.status, stdout: r.stdout, stderr: lines.filter((l) => !l.startsWith("+ ")).join("\n") }
  return { seen, fromSnapshot: handed.includes("--snapshot-blob"), handed }
}

/** The ordinary command, as the tests of every other command run it. */
const ordinary = async (args: ReadonlyArray<string>, cwd = repo, extra: Record<string, string> = {}): Promise<Seen> => {
  const r = await run(process.execPath, [bin, ...args], cwd, { ...env, ...extra })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(async () => {
  repo = newRepo("braid-snapshot-")
  const plan = path.join(repo, ".git", "plan.yaml")
  fs.writeFileSync(plan, "agent: script\nstreams:\n  - {name: s, type: docs}\ntasks:\n  - {id: a, title: Write a, stream: s, run: [node, -e, \"require('fs').writeFileSync('a.txt', 'a')\"]}\n  - {id: b, title: Fail b, stream: s, dependsOn: [a], run: [node, -e, \"process.exit(3)\"]}\n")
  const ran = await ordinary(["run", plan, "-q"])
  assert.strictEqual(ran.code, 1, ran.stderr)
  runId = fs.readdirSync(path.join(repo, ".braid", "runs"))[0]!
})

afterAll(() => {
  fs.rmSync(repo, { recursive: true, force: true })
})

describe("bin/braid and the start-up snapshot", () => {
  it("was made by the build, for the node that made it", async () => {
    assert.isTrue(fs.existsSync(snapshot), `${snapshot} is missing: npm run build makes it`)
    assert.strictEqual(fs.readFileSync(`${snapshot}.node`, "utf8").trim(), fs.realpathSync(process.execPath))
  })

  it("answers runs and status from the snapshot with what the ordinary command prints", async () => {
    const cases: Array<[Array<string>, string?]> = [
      [["runs"]],
      [["runs", "--json"]],
      [["status"]],
      [["status", runId, "--json"]],
      [["status", "--repo", repo]],
      [["status", "no-such-run"]],
      [["runs"], path.join(repo, "src")],
      [["runs"], os.tmpdir()]
    ]
    for (const [args, cwd] of cases) {
      const { fromSnapshot, seen } = await braid(args, { cwd })
      assert.isTrue(fromSnapshot, `${args.join(" ")}: not from the snapshot`)
      assert.deepStrictEqual(seen, (await ordinary(args, cwd)), args.join(" "))
    }
    // What they print is about this repository's run, not the run the build warmed the snapshot on.
    const status = (await braid(["status", "--json"])).seen
    assert.strictEqual(status.code, 0)
    assert.strictEqual(JSON.parse(status.stdout).runId, runId)
    assert.match((await braid(["status"])).seen.stdout, /b: failed/)
    const outside = (await braid(["runs"], { cwd: os.tmpdir() })).seen
    assert.strictEqual(outside.code, 2)
    assert.match(outside.stderr, /^braid: .* is not inside a git repository/)
  })

  it("hands what the snapshot does not answer to the ordinary command, with the same result", async () => {
    const cases: Array<[Array<string>, Record<string, string>?]> = [
      [["runs", `--repo=${repo}`]],
      [["status", "--json", "true"]],
      [["status", "--help"]],
      [["runs", "--frob"]],
      [["runs", "--database", "not-a-url"]],
      [["runs"], { BRAID_DATABASE_URL: "not-a-url" }],
      [["plan", "--help"]]
    ]
    for (const [args, extra] of cases) {
      assert.deepStrictEqual((await braid(args, { env: extra })).seen, (await ordinary(args, repo, extra)), args.join(" "))
    }
    assert.strictEqual((await braid(["runs", "--database", "not-a-url"])).seen.code, 2)
    assert.isFalse((await braid(["runs"], { env: { BRAID_DATABASE_URL: "not-a-url" } })).fromSnapshot)
    assert.isFalse((await braid(["runs"], { env: { BRAID_NO_SNAPSHOT: "1" } })).fromSnapshot)
    assert.isFalse((await braid(["plan", "--help"])).fromSnapshot)
  })

  it("is not used when its record names another node, or the node changed since", async () => {
    // A copy of the command whose dist/ links to the built one's, but for the snapshot's record.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "braid-snapshot-copy-"))
    try {
      fs.mkdirSync(path.join(copy, "bin"))
      fs.mkdirSync(path.join(copy, "dist"))
      for (const f of ["braid", "braid.js"]) fs.copyFileSync(path.join(cli, "bin", f), path.join(copy, "bin", f))
      for (const f of fs.readdirSync(path.join(cli, "dist"))) {
        if (f !== "braid.snapshot.node") fs.symlinkSync(path.join(cli, "dist", f), path.join(copy, "dist", f))
      }
      const record = path.join(copy, "dist", "braid.snapshot.node")
      const command = path.join(copy, "bin", "braid")
      const node = fs.realpathSync(process.execPath)
      const { atime, mtime } = fs.statSync(node)
      const expected = await ordinary(["runs"])

      // The same node, as the build records it: used (the copy itself works).
      fs.writeFileSync(record, `${node}\n`)
      fs.utimesSync(record, atime, mtime)
      assert.isTrue((await braid(["runs"], { command })).fromSnapshot)

      // Another node's path.
      fs.writeFileSync(record, "/opt/other/bin/node\n")
      fs.utimesSync(record, atime, mtime)
      const other = await braid(["runs"], { command })
      assert.isFalse(other.fromSnapshot, other.handed)
      assert.deepStrictEqual(other.seen, expected)

      // This node's path, but the node's file is not the one the snapshot was made by.
      fs.writeFileSync(record, `${node}\n`)
      fs.utimesSync(record, atime, new Date(mtime.getTime() - 86_400_000))
      const changed = await braid(["runs"], { command })
      assert.isFalse(changed.fromSnapshot, changed.handed)
      assert.deepStrictEqual(changed.seen, expected)

      // No record: no snapshot.
      fs.rmSync(record)
      assert.isFalse((await braid(["runs"], { command })).fromSnapshot)
      assert.deepStrictEqual((await braid(["runs"], { command })).seen, expected)
    } finally {
      fs.rmSync(copy, { recursive: true, force: true })
    }
  })
})
