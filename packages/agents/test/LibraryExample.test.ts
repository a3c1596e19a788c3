import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { program } from "../../../examples/library/embed.js"

describe("examples/library", () => {
  it.effect("embeds the engine and gets a typed report", () =>
    Effect.gen(function*() {
      const { agentCalls, markdown, report } = yield* program
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(agentCalls, 3)
      assert.match(markdown, /\| 1 \| [^\n]*\| 70 \| below threshold → retried \|/)
      assert.include(markdown, "**Feedback that drove attempt 2**")
    }))
})
