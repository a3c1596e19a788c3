/**
 * `braid draft --issue N --github` with the `llm` backend against a scripted Anthropic server and
 * a fake GitHub on 127.0.0.1: the issue's title, body and comments are the feature; one issue
 * per task, a sub-issue of N (or a line of a task list in N's body where sub-issues answer 404),
 * created once — a second run finds them by their markers — and their numbers in the plan.
 */
import { AnthropicServer, FakeGitHub, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import { braid } from "./support/Braid.js"
import { envOf, fenced, GOOD, setUp, turnsOf } from "./support/Draft.js"

describe("braid draft --github", () => {
  it("--issue N --github: the issue is the feature; one sub-issue per task, created once, their numbers in the plan; a task list where sub-issues are unavailable", async () => {
    const { dir, out, repo } = setUp()
    const TOKEN = "ghp_braidTESTdraftPLANTED"
    const server = await ScriptedServer.listen(AnthropicServer.provider, () => ({ text: fenced(GOOD) }))
    const github = await FakeGitHub.start({
      repo: "acme/shop",
      token: TOKEN,
      issues: [{ number: 7, title: "Checkout flow", body: "Shoppers pay for their cart.", comments: ["Totals in the shop's CURRENCY, please."] }]
    })
    try {
      const env = envOf({ ANTHROPIC_BASE_URL: server.url, GITHUB_API_URL: github.url, GITHUB_TOKEN: TOKEN })
      const args = ["draft", "--issue", "7", "--github", "--github-repo", "acme/shop", "--repo", repo, "--out", out]
      const first = await braid(args, env)
      assert.strictEqual(first.code, 0, first.stderr)
      const prompt = turnsOf(server)[0]!.conversation!.lastUserText
      assert.include(prompt, "Checkout flow (issue #7)")
      assert.include(prompt, "Shoppers pay for their cart.")
      assert.include(prompt, "Totals in the shop's CURRENCY, please.")
      const parent = github.state.issues.get(7)!
      assert.strictEqual(parent.subIssues.length, 3)
      const byTitle = new Map([...github.state.issues.values()].map((i) => [i.title, i.number]))
      const text = fs.readFileSync(out, "utf8")
      assert.include(text, "githubRepo: acme/shop")
      assert.include(text, "githubIssueNumber: 7")
      for (const [id, title] of [["api-1", "POST /checkout computes the order total"], ["test-1", "Tests for POST /checkout"], ["docs-1", "Document POST /checkout"]] as const) {
        const n = byTitle.get(title)!
        assert.include(parent.subIssues, n)
        assert.match(text, new RegExp(`- id: ${id}\\n(    .*\\n)*?    githubIssueNumber: ${n}\\n`))
        assert.include(github.state.issues.get(n)!.body, `<!-- braid:draft issue=7 task=${id} -->`)
      }
      assert.include(first.stderr, "github: 3 issues created")
      const checked = await braid(["plan", out, "--repo", repo, "--json", "--no-github"], envOf({}))
      assert.strictEqual(JSON.parse(checked.stdout).streams.length, 3, checked.stderr)

      // Again: every task's issue is found by its marker; nothing new is created or linked.
      const creates = () => github.state.requests.filter((r) => r.method === "POST" && (r.path === "/issues" || r.path.endsWith("/sub_issues"))).length
      const before = creates()
      const second = await braid([...args, "--force"], env)
      assert.strictEqual(second.code, 0, second.stderr)
      assert.strictEqual(creates(), before)
      assert.strictEqual(github.state.issues.size, 4)
      assert.strictEqual(fs.readFileSync(out, "utf8"), text)
      assert.include(second.stderr, "github: 0 issues created, 3 found again")

      // Where sub-issues are unavailable (404): a task list in the parent's body, once.
      github.state.subIssues = false
      github.state.issues.set(8, { number: 8, id: 500_008, title: "Refunds", body: "Refund an order.", subIssues: [], state: "open", labels: new Set(), comments: [] })
      const listed = [...args.slice(0, 2), "8", ...args.slice(3), "--force"]
      assert.strictEqual((await braid(listed, env)).code, 0)
      assert.strictEqual((await braid(listed, env)).code, 0)
      const body = github.state.issues.get(8)!.body
      assert.strictEqual(body.match(/^- \[ \] #\d+ /gm)?.length, 3)
      assert.include(body, "Refund an order.")
      assert.strictEqual(github.state.issues.size, 7)
      assert.notInclude(first.stdout + first.stderr + second.stderr + text, TOKEN)
    } finally {
      await server.close()
      await github.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 55_000)
})
