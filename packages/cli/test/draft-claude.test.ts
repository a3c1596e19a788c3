/**
 * `braid draft` on the real `claude` binary (node_modules/@anthropic-ai/claude-code), offline
 * against a scripted Anthropic server on 127.0.0.1, with a throwaway HOME and confined where
 * bubblewrap is available: the first draft (a misspelled field, a cycle) goes back with both
 * problems' paths in the resumed session and the second passes; the tasks are filed once as
 * sub-issues of the fake GitHub's issue, and a second run creates none; the repository is
 * unchanged. A draft that never passes on claude: draft-claude-rejected.test.ts.
 */
import { AnthropicServer, FakeGitHub, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { braid, root } from "./support/Braid.js"
import { BAD, envOf, fenced, GOOD, setUp, stateOf } from "./support/Draft.js"

/** The architect's prompts the server was sent (not claude's side requests), in order. */
const promptsOf = (server: ScriptedServer.Server) =>
  server.requests.flatMap((r) => r.conversation !== undefined && r.conversation.lastUserText.includes("You are the architect of") ? [r.conversation.lastUserText] : [])

describe.skipIf(process.platform !== "linux")("braid draft on the real claude", () => {
  it("a bad first draft goes back with its problems, the fix passes and is filed as sub-issues once; the repository is unchanged", async () => {
    const { dir, out, plans, repo } = setUp()
    const home = path.join(dir, "home")
    fs.mkdirSync(home)
    fs.writeFileSync(path.join(plans, "braid.config.yaml"), "agent: claude-code\nagents:\n  claude-code: { timeoutSeconds: 60 }\nlimits:\n  anthropic: { backoffSeconds: 0.1 }\n")
    const server = await ScriptedServer.listen(AnthropicServer.provider, (c) =>
      !c.lastUserText.includes("You are the architect of")
        ? { text: "ok" }
        : { text: fenced(!c.lastUserText.includes("Your previous draft") ? BAD : GOOD) })
    const TOKEN = "ghp_braidTESTdraftClaude"
    const github = await FakeGitHub.start({ repo: "acme/shop", token: TOKEN, issues: [{ number: 3, title: "Checkout flow", body: "Shoppers pay." }] })
    try {
      const env = envOf({
        HOME: home,
        PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${process.env.PATH ?? ""}`,
        ANTHROPIC_BASE_URL: server.url,
        GITHUB_API_URL: github.url,
        GITHUB_TOKEN: TOKEN
      })
      const before = stateOf(repo)
      const args = ["draft", "--issue", "3", "--github", "--github-repo", "acme/shop", "--repo", repo, "--out", out]
      const run = await braid(args, env)
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(stateOf(repo), before)
      const prompts = promptsOf(server)
      assert.strictEqual(prompts.length, 2)
      assert.include(prompts[0], "Checkout flow (issue #3)")
      assert.include(prompts[1], "tasks[0].titel: unknown field \"titel\"")
      assert.include(prompts[1], "tasks: dependency cycle")
      // The second round continued the first's session (claude --resume).
      const sessions = new Set(server.requests.filter((r) => r.conversation?.lastUserText.includes("You are the architect of") === true).map((r) => String(r.headers["x-claude-code-session-id"])))
      assert.strictEqual(sessions.size, 1)
      const text = fs.readFileSync(out, "utf8")
      assert.include(text, "githubIssueNumber: 3")
      assert.strictEqual(github.state.issues.get(3)!.subIssues.length, 3)
      for (const n of github.state.issues.get(3)!.subIssues) assert.include(text, `githubIssueNumber: ${n}`)

      const again = await braid([...args, "--force"], env)
      assert.strictEqual(again.code, 0, again.stderr)
      assert.strictEqual(github.state.issues.size, 4)
      assert.strictEqual(fs.readFileSync(out, "utf8"), text)

      assert.notInclude(run.stdout + run.stderr + text, TOKEN)
    } finally {
      await server.close()
      await github.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 58_000)
})
