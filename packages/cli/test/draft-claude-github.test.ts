/**
 * `braid draft --issue N --github` on the real `claude` binary, offline against a scripted
 * Anthropic server and a fake GitHub on 127.0.0.1: the issue is the feature, the tasks become
 * sub-issues of N with their numbers in the plan, and a second run creates none.
 */
import { AnthropicServer, FakeGitHub, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import { braid } from "./support/Braid.js"
import { architectPrompts, claudeSetUp, fenced, GOOD, stateOf } from "./support/Draft.js"

describe.skipIf(process.platform !== "linux")("braid draft --github on the real claude", () => {
  it("files the tasks as sub-issues once, their numbers in the plan; the repository is unchanged", async () => {
    const { dir, out, repo, envWith } = claudeSetUp()
    const server = await ScriptedServer.listen(AnthropicServer.provider, (c) => ({ text: c.lastUserText.includes("You are the architect of") ? fenced(GOOD) : "ok" }))
    const TOKEN = "ghp_braidTESTdraftClaude"
    const github = await FakeGitHub.start({ repo: "acme/shop", token: TOKEN, issues: [{ number: 3, title: "Checkout flow", body: "Shoppers pay." }] })
    try {
      const env = envWith({ ANTHROPIC_BASE_URL: server.url, GITHUB_API_URL: github.url, GITHUB_TOKEN: TOKEN })
      const before = stateOf(repo)
      const args = ["draft", "--issue", "3", "--github", "--github-repo", "acme/shop", "--repo", repo, "--out", out]
      const run = await braid(args, env)
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(architectPrompts(server)[0]!.text, "Checkout flow (issue #3)")
      const text = fs.readFileSync(out, "utf8")
      assert.include(text, "githubIssueNumber: 3")
      assert.strictEqual(github.state.issues.get(3)!.subIssues.length, 3)
      for (const n of github.state.issues.get(3)!.subIssues) assert.include(text, `githubIssueNumber: ${n}`)

      const again = await braid([...args, "--force"], env)
      assert.strictEqual(again.code, 0, again.stderr)
      assert.strictEqual(github.state.issues.size, 4)
      assert.strictEqual(github.state.issues.get(3)!.subIssues.length, 3)
      assert.strictEqual(fs.readFileSync(out, "utf8"), text)
      assert.strictEqual(stateOf(repo), before)
      assert.notInclude(run.stdout + run.stderr + again.stderr + text, TOKEN)
    } finally {
      await server.close()
      await github.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 58_000)
})
