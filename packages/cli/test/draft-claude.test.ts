/**
 * `braid draft` on the real `claude` binary (node_modules/@anthropic-ai/claude-code), offline
 * against a scripted Anthropic server on 127.0.0.1, with a throwaway HOME and confined where
 * bubblewrap is available: the first draft (a misspelled field, a cycle) goes back with both
 * problems' paths in the resumed session and the second passes; the repository is unchanged.
 * On claude too: GitHub issues filed once (draft-claude-github.test.ts), a draft that never
 * passes (draft-claude-rejected.test.ts).
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import { braid } from "./support/Braid.js"
import { architectPrompts, BAD, claudeSetUp, fenced, GOOD, stateOf } from "./support/Draft.js"

describe.skipIf(process.platform !== "linux")("braid draft on the real claude", () => {
  it("a bad first draft goes back with its problems in the same session, the fix passes; the repository is unchanged", async () => {
    const { dir, out, repo, envWith } = claudeSetUp()
    const server = await ScriptedServer.listen(AnthropicServer.provider, (c) =>
      !c.lastUserText.includes("You are the architect of")
        ? { text: "ok" }
        : { text: fenced(!c.lastUserText.includes("Your previous draft") ? BAD : GOOD) })
    try {
      const before = stateOf(repo)
      const run = await braid(["draft", "Add a checkout flow: POST /checkout with the order total", "--repo", repo, "--out", out], envWith({ ANTHROPIC_BASE_URL: server.url }))
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(stateOf(repo), before)
      const prompts = architectPrompts(server)
      assert.strictEqual(prompts.length, 2)
      assert.include(prompts[0]!.text, "Add a checkout flow: POST /checkout")
      assert.include(prompts[1]!.text, "tasks[0].titel: unknown field \"titel\"")
      assert.include(prompts[1]!.text, "tasks: dependency cycle")
      // The second round continued the first's session (claude --resume).
      assert.strictEqual(new Set(prompts.map((p) => p.session)).size, 1)
      assert.strictEqual(fs.readFileSync(out, "utf8"), GOOD)
      assert.include(run.stdout, "checkout-flow (checkout-service): 3 tasks in 3 streams")
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 58_000)
})
