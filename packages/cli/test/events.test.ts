import { Progress } from "@braid/core"
import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { spawnSync } from "node:child_process"
import * as path from "node:path"

// The built executable, as a user runs it (`npm test` builds first).
const bin = path.resolve(__dirname, "../dist/bin.js")
const seedPlan = path.resolve(__dirname, "../../../examples/seed-shape/plan.json")

const braid = (args: Array<string>) => {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe("braid run --events", () => {
  it("prints every event as one JSON line on stdout, each decoding as a RunEvent of version 1", () => {
    const { code, stderr, stdout } = braid(["run", "--workspace", "memory", "--agent", "mock", "--events", "-q", seedPlan])
    assert.strictEqual(code, 0, stderr)
    const lines = stdout.trim().split("\n")
    const events = lines.map((line) => JSON.parse(line) as { v: number; _tag: string })
    assert.isTrue(events.every((e) => e.v === Progress.EVENTS_VERSION))
    for (const { v: _, ...event } of events) {
      assert.isTrue(Either.isRight(Schema.decodeUnknownEither(Progress.RunEvent)(event)), JSON.stringify(event))
    }
    const tags = events.map((e) => e._tag)
    assert.strictEqual(tags.filter((t) => t === "TaskSettled").length, 7)
    assert.include(tags, "ReviewRecorded")
    assert.strictEqual(tags.at(-1), "RunFinished")
    // The summary stays on stderr: stdout is events only.
    assert.include(stderr, "SUCCEEDED")
  })

  it("refuses --events with --json (both write to stdout), exit 2", () => {
    const { code, stderr } = braid(["run", "--workspace", "memory", "--agent", "mock", "--events", "--json", seedPlan])
    assert.strictEqual(code, 2)
    assert.include(stderr, "--events and --json both write to stdout")
  })
})
