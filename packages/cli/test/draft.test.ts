/**
 * `braid draft` as a user meets it, with braid's own `llm` backend against a scripted Anthropic
 * server on 127.0.0.1: a feature becomes a plan file `braid plan` accepts; a draft with a
 * misspelled field and a cycle goes back to the model with both problems and the fix passes;
 * a draft that never passes is kept beside the plan with its problems (exit 2); the repository
 * is unchanged by drafting; `--print-prompt` and a replaced template; bad input.
 * GitHub issues per task: draft-github.test.ts; the real claude: draft-claude.test.ts.
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { braid } from "./support/Braid.js"
import { BAD, envOf, fenced, GOOD, setUp, stateOf, turnsOf } from "./support/Draft.js"

describe("braid draft", () => {
  it("a feature becomes a plan braid plan accepts; a misspelled field and a cycle go back to the model with their paths, the fix passes; the repository is unchanged", async () => {
    const { dir, out, plans, repo } = setUp()
    const server = await ScriptedServer.listen(AnthropicServer.provider, ScriptedServer.sequence({ text: fenced(BAD) }, { text: fenced(GOOD) }))
    try {
      const before = stateOf(repo)
      const run = await braid(["draft", "Add a checkout flow: POST /checkout with the order total", "--repo", repo, "--out", out], envOf({ ANTHROPIC_BASE_URL: server.url }))
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(stateOf(repo), before)
      // Nothing of the read-only checkout is left.
      assert.deepStrictEqual(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("braid-draft-") && fs.existsSync(path.join(os.tmpdir(), f, "checkout"))), [])
      const turns = turnsOf(server)
      assert.strictEqual(turns.length, 2)
      const first = turns[0]!.conversation!.lastUserText
      assert.include(first, "Add a checkout flow: POST /checkout")
      assert.include(first, "src/routes.js")
      assert.include(first, "\"test\": \"node --test\"")
      assert.include(first, "share:")
      const second = turns[1]!.conversation!.lastUserText
      assert.include(second, "tasks[0].titel: unknown field \"titel\"")
      assert.include(second, "tasks: dependency cycle")
      assert.include(run.stderr, "round 1: 2 problems, sent back to the agent")
      assert.include(run.stderr, "round 2: the draft passes")
      // The written plan is what braid plan accepts, and its streams, tasks and waves were shown.
      assert.strictEqual(fs.readFileSync(out, "utf8"), GOOD)
      assert.include(run.stdout, "checkout-flow (checkout-service): 3 tasks in 3 streams")
      assert.include(run.stdout, "api-1")
      assert.include(run.stdout, `wrote ${path.relative(process.cwd(), out)}`)
      const checked = await braid(["plan", out, "--repo", repo, "--json"], envOf({}))
      assert.strictEqual(JSON.parse(checked.stdout).streams.length, 3, checked.stderr)
      assert.notInclude(run.stdout + run.stderr + fs.readFileSync(out, "utf8"), "PLANTED")

      // An existing plan is not replaced without --force.
      const again = await braid(["draft", "Add a checkout flow", "--repo", repo, "--out", out], envOf({ ANTHROPIC_BASE_URL: server.url }))
      assert.strictEqual(again.code, 2)
      assert.strictEqual(again.stderr.trim(), `braid: ${out}: already exists; braid draft writes nothing over a plan (pass --force to replace it, or --out another file)`)
      assert.strictEqual(turnsOf(server).length, 2)
      assert.isTrue(fs.existsSync(path.join(plans, "braid.config.yaml")))
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 50_000)

  it("a draft that never passes: exit 2, its problems listed, the draft kept beside the plan with them", async () => {
    const { dir, out, repo } = setUp()
    const server = await ScriptedServer.listen(AnthropicServer.provider, () => ({ text: fenced(BAD) }))
    try {
      const before = stateOf(repo)
      const run = await braid(["draft", "Add a checkout flow", "--repo", repo, "--out", out], envOf({ ANTHROPIC_BASE_URL: server.url }))
      assert.strictEqual(run.code, 2, run.stderr)
      assert.strictEqual(turnsOf(server).length, 4)
      assert.isFalse(fs.existsSync(out))
      const kept = path.join(path.dirname(out), "plan.draft.yaml")
      const text = fs.readFileSync(kept, "utf8")
      assert.match(text, /^# braid draft: this draft still fails braid plan after 4 rounds/)
      assert.include(text, "#   - tasks[0].titel: unknown field \"titel\"")
      assert.include(text, "#   - tasks: dependency cycle")
      assert.include(text, BAD)
      assert.include(run.stderr, "the draft still has 2 problems after 4 rounds; kept in")
      assert.include(run.stderr, "  - tasks[0].titel: unknown field")
      assert.strictEqual(stateOf(repo), before)
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 50_000)

  it("--print-prompt prints the prompt and calls no agent; a replaced template is used; bad input is one clear error", async () => {
    const { dir, out, plans, repo } = setUp()
    try {
      const printed = await braid(["draft", "Add a checkout flow", "--repo", repo, "--out", out, "--print-prompt"], envOf({ ANTHROPIC_BASE_URL: "http://127.0.0.1:9" }))
      assert.strictEqual(printed.code, 0, printed.stderr)
      assert.include(printed.stdout, "## The feature\nAdd a checkout flow")
      assert.include(printed.stdout, "src/routes.js")
      assert.include(printed.stdout, "## The plan's shape")
      assert.include(printed.stdout, "## Rules")
      assert.isFalse(fs.existsSync(out))
      const template = path.join(plans, "architect.md")
      fs.writeFileSync(template, "Plan {{feature}} for {{projectName}}.\n")
      const prd = path.join(plans, "refunds.md")
      fs.writeFileSync(prd, "# Refunds\n\nRefund an order.\n")
      const own = await braid(["draft", "--from", prd, "--repo", repo, "--out", out, "--print-prompt", "--prompt", template], envOf({}))
      assert.strictEqual(own.code, 0, own.stderr)
      assert.match(own.stdout, /^Plan # Refunds\n\nRefund an order\. for repo\.\n\n## Rules\n- Change nothing/)
      fs.writeFileSync(template, "Plan {{feture}}.\n")
      const unknown = await braid(["draft", "x", "--repo", repo, "--out", out, "--print-prompt", "--prompt", template], envOf({}))
      assert.strictEqual(unknown.code, 2)
      assert.include(unknown.stderr, `${template}: unknown placeholder {{feture}} on line 1`)

      const none = await braid(["draft", "--repo", repo, "--out", out], envOf({}))
      assert.strictEqual(none.code, 2)
      assert.strictEqual(none.stderr.trim(), "braid: braid draft: no feature to plan: describe it (braid draft \"Add a checkout flow\"), or pass --from FILE or --issue N")
      const missing = await braid(["draft", "--from", path.join(dir, "nope.md"), "--repo", repo, "--out", out], envOf({}))
      assert.strictEqual(missing.code, 2)
      assert.strictEqual(missing.stderr.trim(), `braid: --from ${path.join(dir, "nope.md")}: no such file`)
      const noModel = await braid(["draft", "x", "--repo", repo, "--out", path.join(dir, "plan.yaml"), "--agent", "llm"], envOf({}))
      assert.strictEqual(noModel.code, 2)
      assert.include(noModel.stderr, "braid: the llm agent cannot draft a plan: agents.llm.model: the llm agent needs a model")
      const notTty = await braid(["draft", "x", "--repo", repo, "--out", out, "--run"], envOf({}))
      assert.strictEqual(notTty.code, 2)
      assert.include(notTty.stderr, "--run: no terminal to confirm on")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 50_000)
})
