import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Process from "../src/system/Process.js"
import * as ProcessTree from "../src/system/ProcessTree.js"

/** Running, not merely an unreaped zombie. */
const alive = (pid: number) => ProcessTree.startTimeOf(pid) !== undefined

/** Waits (up to 10 s) until `file` holds a pid. */
const pidIn = (file: string) =>
  Effect.promise(async () => {
    for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 50))
    return Number(fs.readFileSync(file, "utf8"))
  })

/**
 * A program that starts \`sleep 1000\` in a process group of its own (as claude's Bash tool
 * does), writes the sleeper's pid to \`file\`, and then either waits or exits at once.
 */
const leavesASleeper = (file: string, then: "wait" | "exit") => [
  process.execPath,
  "-e",
  `const { spawn } = require("node:child_process")
const child = spawn("sleep", ["1000"], { detached: true, stdio: "ignore" })
child.unref()
require("node:fs").writeFileSync(${JSON.stringify(file)}, String(child.pid))
${then === "wait" ? "setInterval(() => {}, 1000)" : ""}`
]

const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "braid-proc-")), "pid")

describe("Process", () => {
  it.live("reads stdout, stderr and the exit code together, with stdin closed", () =>
    Effect.gen(function*() {
      const result = yield* Process.run([
        process.execPath,
        "-e",
        "process.stdin.resume(); process.stdin.on('end', () => { console.log('out'); console.error('err'); process.exit(3) })"
      ])
      assert.deepStrictEqual([result.exitCode, result.stdout, result.stderr, result.timedOut], [3, "out\n", "err\n", false])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("redact hides credentials in what is returned (known values and known shapes); without it output is as printed", () =>
    Effect.gen(function*() {
      const printed = "token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB and pass=hunter2-secret-value"
      const argv = [process.execPath, "-e", `console.log(${JSON.stringify(printed)}); console.error("err hunter2-secret-value")`]
      const redacted = yield* Process.run(argv, { redact: ["hunter2-secret-value"] })
      assert.notInclude(redacted.stdout, "ghp_0123456789")
      assert.notInclude(redacted.stdout, "hunter2-secret-value")
      assert.notInclude(redacted.stderr, "hunter2-secret-value")
      assert.include(redacted.stdout, "[redacted:")
      const plain = yield* Process.run(argv)
      assert.include(plain.stdout, printed)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("reads all the output of a program that is done before onStart is (a slow journal write)", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const r = yield* Process.run(["sh", "-c", "echo one; echo two >&2; echo three"], {
        onStart: () => Effect.sleep("300 millis"),
        onStdout: (text) => Effect.sync(() => lines.push(text))
      })
      assert.strictEqual(r.exitCode, 0)
      assert.strictEqual(r.stdout, "one\nthree\n")
      assert.strictEqual(r.stderr, "two\n")
      assert.strictEqual(lines.join(""), "one\nthree\n")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("kills a program that ignores SIGTERM once the grace period is over", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const result = yield* Process.run([
        process.execPath,
        "-e",
        "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"
      ], { timeoutMs: 300 })
      assert.isTrue(result.timedOut)
      assert.strictEqual(result.exitCode, 124)
      assert.isBelow(Date.now() - started, 20_000)
    }).pipe(Effect.provide(NodeContext.layer)), 30_000)

  it.live("a program that cannot start is a SpawnFailed naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Process.run(["definitely-not-a-program-braid"]))
      assert.strictEqual(error._tag, "SpawnFailed")
      assert.deepStrictEqual(error.argv, ["definitely-not-a-program-braid"])
    }).pipe(Effect.provide(NodeContext.layer)))

  describe.skipIf(process.platform !== "linux")("with a kill marker (Linux)", () => {
    it.live("a timeout ends the processes the program started in other process groups", () =>
      Effect.gen(function*() {
        const file = tempFile()
        const marker = `test-${process.pid}-${Date.now()}/s/t/1`
        const result = yield* Process.run(leavesASleeper(file, "wait"), {
          env: { BRAID_AGENT: marker },
          killMarker: marker,
          timeoutMs: 1500
        })
        assert.isTrue(result.timedOut)
        const sleeper = yield* pidIn(file)
        assert.isFalse(alive(sleeper), "the sleeper in its own process group still runs")
      }).pipe(Effect.provide(NodeContext.layer)), 30_000)

    it.live("a program that exits leaving a process behind has it ended", () =>
      Effect.gen(function*() {
        const file = tempFile()
        const marker = `test-${process.pid}-${Date.now()}/s/t/2`
        const result = yield* Process.run(leavesASleeper(file, "exit"), { env: { BRAID_AGENT: marker }, killMarker: marker })
        assert.strictEqual(result.exitCode, 0)
        assert.isFalse(alive(yield* pidIn(file)), "the leftover sleeper still runs")
      }).pipe(Effect.provide(NodeContext.layer)), 30_000)

    it.live("without a marker the leftover is not touched (what the marker adds)", () =>
      Effect.gen(function*() {
        const file = tempFile()
        const result = yield* Process.run(leavesASleeper(file, "exit"))
        assert.strictEqual(result.exitCode, 0)
        const sleeper = yield* pidIn(file)
        assert.isTrue(alive(sleeper))
        process.kill(sleeper, "SIGKILL")
      }).pipe(Effect.provide(NodeContext.layer)), 30_000)

    it.live("a process with the same marker that another live program holds is left alone", () =>
      Effect.gen(function*() {
        const file = tempFile()
        const marker = `test-${process.pid}-${Date.now()}/s/t/3`
        // Another "braid" (not a marked process itself) holds a marked child.
        const holder = spawn(process.execPath, [
          "-e",
          `const child = require("node:child_process").spawn("sleep", ["1000"], { stdio: "ignore", env: { ...process.env, BRAID_AGENT: ${
            JSON.stringify(marker)
          } } })
require("node:fs").writeFileSync(${JSON.stringify(file)}, String(child.pid))
setInterval(() => {}, 1000)`
        ], { stdio: "ignore" })
        const other = yield* pidIn(file)
        yield* Effect.addFinalizer(() => Effect.sync(() => {
          holder.kill("SIGKILL")
          try {
            process.kill(other, "SIGKILL")
          } catch {}
        }))
        const mine = `${file}.mine`
        yield* Process.run(leavesASleeper(mine, "exit"), { env: { BRAID_AGENT: marker }, killMarker: marker })
        assert.isFalse(alive(yield* pidIn(mine)))
        assert.isTrue(alive(other), "another program's marked process was ended")
      }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)), 30_000)
  })
})
