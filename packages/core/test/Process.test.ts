import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Process from "../src/Process.js"

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
})
