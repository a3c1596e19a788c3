import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { program } from "../../../examples/library/embed.js"

describe("examples/library", () => {
  it.effect("embeds the engine and gets a typed report", () =>
    Effect.gen(function*() {
      const { agentCalls, markdown, report } = yield* program
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(agentCalls, 3)
      assert.include(markdown, "api-1 attempt 1: score 70")
    }))
})
