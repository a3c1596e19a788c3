/**
 * `braid prompt` through the built executable: it prints exactly what the task's agent would
 * be told (the same `Prompt` path the backends use), a retry with a review file, a plan's
 * template, and one clear line with exit 2 for an unknown task, a bad review file or a broken
 * template. Also `run --agent` refusing an unknown backend by listing the known ones.
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Plan } from "@braid/core"
import { Prompt } from "@braid/agents"

const bin = path.resolve(__dirname, "../dist/bin.js")

const braid = (args: Array<string>, cwd = os.tmpdir()) => {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const PLAN = `projectName: Shop
featureName: Checkout
checks: ["npm test"]
streams:
  - {name: data, type: database, scope: [db/migrations]}
  - {name: api, type: api, scope: [src/api]}
tasks:
  - {id: orders-table, title: Orders table, stream: data}
  - {id: checkout-route, title: POST /checkout, stream: api, description: "Create an order from the cart.", acceptanceCriteria: ["an empty cart is a 400"], checks: ["npm run lint"]}
  - {id: checkout-errors, title: Checkout errors, stream: api, dependsOn: [orders-table]}
`

/** A directory with `plan.yaml` (and any other files), removed after the test. */
const planDir = (files: Record<string, string> = {}, plan = PLAN) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-prompt-cli-")))
  fs.writeFileSync(path.join(dir, "plan.yaml"), plan)
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
  return { dir, plan: path.join(dir, "plan.yaml"), done: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

describe("braid prompt", () => {
  it.effect("prints exactly what the backends would send for a first attempt", () =>
    Effect.gen(function*() {
      const p = planDir()
      const { code, stderr, stdout } = braid(["prompt", p.plan, "checkout-errors"])
      assert.strictEqual(code, 0, stderr)
      const plan = yield* Plan.load(p.plan)
      const prompts = yield* Prompt.make(plan)
      assert.strictEqual(stdout, prompts.render(Prompt.preview(plan, "checkout-errors")!))
      assert.include(stdout, "You are the API developer of the api stream, working on Checkout in Shop.")
      assert.include(stdout, "API contract")
      assert.include(stdout, "- src/api")
      assert.include(stdout, "## Your task: checkout-errors — Checkout errors")
      assert.include(stdout, "- checkout-route — POST /checkout (not yet run)")
      assert.include(stdout, "- orders-table — Orders table (stream data): not yet run")
      assert.include(stdout, "- `npm test`")
      assert.include(stdout, "Do not run `git commit`")
      assert.notInclude(stdout, "previous attempt")
      p.done()
    }).pipe(Effect.provide(NodeContext.layer)))

  it("a retry shows the review file in full and the user's note", () => {
    const review = {
      score: 20,
      issues: ["npm test exited 1\nFAIL test/checkout.test.ts\n  expected 400, got 500"],
      suggestions: ["return 400 for an empty cart"]
    }
    const p = planDir({ "review.json": JSON.stringify(review) })
    const { code, stderr, stdout } = braid([
      "prompt", p.plan, "checkout-route", "--attempt", "2", "--feedback", path.join(p.dir, "review.json"), "--note", "Keep the route name."
    ])
    assert.strictEqual(code, 0, stderr)
    assert.include(stdout, "## Your task: checkout-route — POST /checkout\n\nCreate an order from the cart.\n\nAcceptance criteria:\n- an empty cart is a 400")
    assert.include(stdout, "- `npm run lint`\n- `npm test`")
    assert.include(stdout, "This is attempt 2 of 3. The previous attempt did not pass.")
    assert.include(stdout, "Review score: 20 out of 100")
    assert.include(stdout, "- npm test exited 1\n    FAIL test/checkout.test.ts\n      expected 400, got 500")
    assert.include(stdout, "- return 400 for an empty cart")
    assert.include(stdout, "A note from the person running braid:\nKeep the route name.")
    p.done()
  })

  it("a plan's template is filled; an unknown placeholder exits 2 naming the file and the placeholder", () => {
    const p = planDir(
      { "agent.md": "# {{taskId}} for {{role}}\n{{description}}\nChecks:\n{{checks}}\n{{rules}}\n", "bad.md": "{{taskId}} {{stream_name}}\n" },
      `prompt: agent.md\n${PLAN}`
    )
    const good = braid(["prompt", p.plan, "checkout-route"])
    assert.strictEqual(good.code, 0, good.stderr)
    assert.isTrue(good.stdout.startsWith("# checkout-route for api-developer\nCreate an order from the cart.\nChecks:\n- `npm run lint`\n- `npm test`\n- Work only"))

    fs.writeFileSync(p.plan, `prompt: bad.md\n${PLAN}`)
    const bad = braid(["prompt", p.plan, "checkout-route"])
    assert.strictEqual(bad.code, 2)
    assert.include(bad.stderr, `prompt template ${path.join(p.dir, "bad.md")}: unknown placeholder {{stream_name}} on line 1`)
    assert.notInclude(bad.stderr, "    at ")
    p.done()
  })

  it("an unknown task exits 2 naming it and the close ids", () => {
    const p = planDir()
    const { code, stderr, stdout } = braid(["prompt", p.plan, "checkout-rout"])
    assert.strictEqual(code, 2)
    assert.strictEqual(stdout, "")
    assert.include(stderr, `no task "checkout-rout"; did you mean: checkout-route`)
    p.done()
  })

  it("a bad review file exits 2 naming the file and each wrong field", () => {
    const p = planDir({ "review.json": JSON.stringify({ score: 140, issues: "tests fail" }), "broken.json": "{score:" })
    const bad = braid(["prompt", p.plan, "checkout-route", "--attempt", "2", "--feedback", path.join(p.dir, "review.json")])
    assert.strictEqual(bad.code, 2)
    assert.include(bad.stderr, `${path.join(p.dir, "review.json")}: not a review {score, issues, suggestions}`)
    assert.include(bad.stderr, "- score: ")
    assert.include(bad.stderr, "- issues: ")
    assert.include(bad.stderr, "- suggestions: is missing")
    const broken = braid(["prompt", p.plan, "checkout-route", "--feedback", path.join(p.dir, "broken.json")])
    assert.strictEqual(broken.code, 2)
    assert.include(broken.stderr, `${path.join(p.dir, "broken.json")}: the feedback file is not JSON`)
    p.done()
  })
})

describe("braid run --agent", () => {
  it("refuses an unknown backend, listing the known ones", () => {
    const p = planDir()
    const { code, stderr, stdout } = braid(["run", "--agent", "gpt-coder", "--workspace", "memory", p.plan])
    assert.strictEqual(code, 2)
    assert.include(`${stdout}${stderr}`, `unknown agent "gpt-coder" (known: script, mock, aider, command`)
    const help = braid(["run", "--help"])
    assert.include(help.stdout, "--agent")
    assert.include(help.stdout.replace(/\s+/g, " "), "below the plan and braid.config.yaml")
    p.done()
  })
})
