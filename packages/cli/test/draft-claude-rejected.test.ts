/**
 * `braid draft` on the real `claude` binary, offline against a scripted Anthropic server whose
 * drafts never pass: four rounds, then exit 2 with the problems listed and the last draft kept
 * beside the plan file; the repository is unchanged.
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { braid } from "./support/Braid.js"
import { architectPrompts, BAD, claudeSetUp, fenced, stateOf } from "./support/Draft.js"

describe.skipIf(process.platform !== "linux")("braid draft on the real claude, never passing", () => {
  it("four rounds, exit 2, the draft kept with its problems, the repository unchanged", async () => {
    const { dir, plans, repo, envWith } = claudeSetUp()
    const server = await ScriptedServer.listen(AnthropicServer.provider, (c) => c.lastUserText.includes("You are the architect of") ? { text: fenced(BAD) } : { text: "ok" })
    try {
      const env = envWith({ ANTHROPIC_BASE_URL: server.url })
      const before = stateOf(repo)
      const rejected = await braid(["draft", "Add a checkout flow", "--repo", repo, "--out", path.join(plans, "never.yaml")], env)
      assert.strictEqual(rejected.code, 2, rejected.stderr)
      assert.include(rejected.stderr, "the draft still has 2 problems after 4 rounds")
      assert.include(fs.readFileSync(path.join(plans, "never.draft.yaml"), "utf8"), "#   - tasks[0].titel: unknown field")
      assert.isFalse(fs.existsSync(path.join(plans, "never.yaml")))
      assert.strictEqual(stateOf(repo), before)
      assert.strictEqual(architectPrompts(server).length, 4)
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 58_000)
})
