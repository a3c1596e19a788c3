/**
 * What an agent is told: each role's prompt carries its identity, the scope, the task, the
 * earlier and brought-in work, the checks, the retry's review in full and the rules; a plan's
 * or stream's template replaces it, filled the same way, and a broken template is a plan problem.
 */
import { Agent, CommandSpec, Plan, RunState } from "@braid/core"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Prompt from "../src/Prompt.js"
import * as Roles from "../src/Roles.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-prompt-")))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const types = ["database", "api", "ui", "testing", "docs", "infrastructure"] as const

/** One stream of each type, two tasks each; the second task of each depends on the database's first. */
const planOf = (extra: Record<string, unknown> = {}, baseDir?: string, streamExtra: Record<string, unknown> = {}) =>
  Plan.decode(
    {
      projectName: "Shop",
      featureName: "Checkout",
      checks: ["npm test"],
      streams: types.map((type) => ({ name: `${type}-stream`, type, scope: [`src/${type}/**`], ...streamExtra })),
      tasks: types.flatMap((type) => [
        {
          id: `${type}-1`,
          title: `First ${type} task`,
          stream: `${type}-stream`,
          description: `Build the ${type} part.`,
          acceptanceCriteria: [`the ${type} part works`, "nothing else breaks"],
          checks: [`npm run lint:${type}`]
        },
        {
          id: `${type}-2`,
          title: `Second ${type} task`,
          stream: `${type}-stream`,
          description: `Build more of the ${type} part.`,
          acceptanceCriteria: `the ${type} part is complete`,
          ...(type === "database" ? {} : { dependsOn: ["database-1"] })
        }
      ]),
      ...extra
    },
    "plan.yaml",
    baseDir
  )

/** The request the engine would send for the second task of a stream, after its first ran. */
const secondTask = (plan: Plan.Plan, type: (typeof types)[number], extra: Partial<Agent.AttemptRequest> = {}): Agent.AttemptRequest => {
  const base = Prompt.preview(plan, `${type}-2`)!
  return {
    ...base,
    earlier: [{
      taskId: `${type}-1`,
      title: `First ${type} task`,
      status: "completed",
      summary: `Added the ${type} module.`,
      changedFiles: [`src/${type}/index.ts`, `src/${type}/index.test.ts`]
    }],
    broughtIn: type === "database" ? [] : [{
      taskId: "database-1",
      title: "First database task",
      stream: "database-stream",
      summary: "Created the orders table.",
      changedFiles: ["migrations/001_orders.sql"]
    }],
    ...extra
  }
}

const failingReview = new RunState.ReviewRecord({
  score: 24,
  passes: false,
  issues: [
    "npm test exited 1\nFAIL src/api/orders.test.ts\n  ✕ rejects an empty cart (12 ms)\n    Expected: 400\n    Received: 500",
    "the error body has no message"
  ],
  suggestions: ["make `npm test` pass", "return { error } with a message"],
  reviewer: "checks"
})

describe("role prompts", () => {
  for (const type of types) {
    const role = Agent.roles[type]
    it.effect(`${role}: identity, scope, task, earlier work with its files, brought-in work, checks and rules`, () =>
      Effect.gen(function*() {
        const plan = yield* planOf()
        const text = Prompt.render(secondTask(plan, type))
        assert.include(text, `You are the ${Roles.titleOf(role)} of the ${type}-stream stream, working on Checkout in Shop.`)
        assert.include(text, Roles.all[role]!.identity)
        assert.isAbove(Roles.all[role]!.identity.length, 300, "a real paragraph")
        assert.include(text, `- src/${type}/**`)
        assert.include(text, `## Your task: ${type}-2 — Second ${type} task`)
        assert.include(text, `Build more of the ${type} part.`)
        assert.include(text, `Acceptance criteria:\n- the ${type} part is complete`)
        assert.include(text, `- ${type}-1 — First ${type} task (completed): Added the ${type} module.`)
        assert.include(text, `changed: src/${type}/index.ts, src/${type}/index.test.ts`)
        if (type !== "database") {
          assert.include(text, "Work brought in from other streams")
          assert.include(text, "database-1 — First database task (stream database-stream): Created the orders table.")
          assert.include(text, "changed: migrations/001_orders.sql")
        }
        assert.include(text, "`npm test`")
        assert.include(text, "## Rules")
        assert.include(text, "Work only inside the current directory")
        assert.include(text, "Do not run `git commit`, `git push`")
        assert.notInclude(text, "previous attempt")
      }))
  }

  it.effect("the roles' identities say what each specialist cares about", () =>
    Effect.sync(() => {
      assert.match(Roles.all["database-engineer"]!.identity, /reversed|reversible/)
      assert.match(Roles.all["api-developer"]!.identity, /contract/)
      assert.match(Roles.all["ui-developer"]!.identity, /accessible/)
      assert.match(Roles.all["test-engineer"]!.identity, /fails for the right reason/)
      assert.match(Roles.all["documentation-writer"]!.identity, /match the code/)
      assert.match(Roles.all["architect"]!.identity, /reproducible/)
    }))

  it.effect("a retry carries the review in full: the failing check's output, issues, suggestions, refused calls and the user's note", () =>
    Effect.gen(function*() {
      const plan = yield* planOf()
      const text = Prompt.render(secondTask(plan, "api", {
        attempt: 2,
        feedback: failingReview,
        denied: ["Write /etc/hosts", "Bash(curl https://example.com)"],
        userNote: "Use the existing Cart type."
      }))
      assert.include(text, "## Feedback on your previous attempt\nThis is attempt 2 of 3. The previous attempt did not pass.")
      assert.include(text, "Review score: 24 out of 100 (by checks).")
      assert.include(text, "- npm test exited 1\n    FAIL src/api/orders.test.ts\n      ✕ rejects an empty cart (12 ms)\n        Expected: 400")
      assert.include(text, "- the error body has no message")
      assert.include(text, "- return { error } with a message")
      assert.include(text, "These tool calls were refused last time")
      assert.include(text, "- Write /etc/hosts")
      assert.include(text, "- Bash(curl https://example.com)")
      assert.include(text, "A note from the person running braid:\nUse the existing Cart type.")
      assert.isBelow(text.indexOf("## Feedback on your previous attempt"), text.indexOf("## Rules"), "the rules close the prompt")
    }))

  it.effect("a first attempt with the user's note claims no previous attempt", () =>
    Effect.gen(function*() {
      const plan = yield* planOf()
      const text = Prompt.render({ ...Prompt.preview(plan, "api-1")!, userNote: "Use the existing Cart type." })
      assert.include(text, "## Notes\nA note from the person running braid:\nUse the existing Cart type.")
      assert.notInclude(text, "previous attempt")
    }))

  it.effect("the preview of a first task shows earlier and brought-in tasks as not yet run, and the checks the gate would run", () =>
    Effect.gen(function*() {
      const plan = yield* planOf()
      const request = Prompt.preview(plan, "ui-2")!
      assert.deepStrictEqual(request.earlier.map((e) => [e.taskId, e.status]), [["ui-1", "not yet run"]])
      assert.deepStrictEqual(request.broughtIn.map((b) => b.taskId), ["database-1"])
      assert.deepStrictEqual(Prompt.preview(plan, "ui-1")!.checks.map((c) => c.argv.join(" ")), ["npm run lint:ui", "npm test"])
      assert.isUndefined(Prompt.preview(plan, "nope"))
      assert.instanceOf(request.checks[0], CommandSpec.Command)
    }))
})

describe("prompt templates", () => {
  it.scoped("a plan's template is filled with every placeholder; a stream's own wins; rules are appended when left out", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.writeFileSync(
        path.join(dir, "all.md"),
        Prompt.placeholderNames.map((p) => `${p}=[{{${p}}}]`).join("\n") + "\n"
      )
      fs.writeFileSync(path.join(dir, "docs.md"), "Docs for {{ taskId }}: {{title}}\n")
      const plan = yield* planOf({ prompt: "all.md" }, dir).pipe(
        Effect.map((p) => ({
          ...p,
          streams: p.streams.map((s) => s.type === "docs" ? { ...s, prompt: path.join(dir, "docs.md") } : s)
        }))
      )
      const prompts = yield* Prompt.make(plan)
      assert.deepStrictEqual(prompts.problems, [])
      const text = prompts.render(secondTask(plan, "api", { attempt: 2, feedback: failingReview }))
      assert.include(text, "role=[api-developer]")
      assert.include(text, `roleDescription=[${Roles.all["api-developer"]!.identity}]`)
      assert.include(text, "stream=[api-stream]")
      assert.include(text, "scope=[- src/api/**]")
      assert.include(text, "taskId=[api-2]")
      assert.include(text, "title=[Second api task]")
      assert.include(text, "description=[Build more of the api part.]")
      assert.include(text, "acceptanceCriteria=[- the api part is complete]")
      assert.include(text, "earlier=[- api-1 — First api task (completed): Added the api module.")
      assert.include(text, "broughtIn=[- database-1 — First database task (stream database-stream)")
      assert.include(text, "checks=[- `npm test`]")
      assert.include(text, "feedback=[This is attempt 2 of 3.")
      assert.include(text, "npm test exited 1\n    FAIL src/api/orders.test.ts")
      assert.include(text, "attempt=[2]")
      assert.include(text, "rules=[- Work only inside the current directory")
      assert.include(text, "projectName=[Shop]")
      assert.include(text, "featureName=[Checkout]")
      assert.notInclude(text, "{{")
      assert.notInclude(text, "You are the", "the template replaces the role prompt")

      const docs = prompts.render(secondTask(plan, "docs", { attempt: 2, feedback: failingReview }))
      assert.isTrue(docs.startsWith("Docs for docs-2: Second docs task\n"))
      assert.include(docs, "## Feedback on your previous attempt\nThis is attempt 2 of 3.", "a template without {{feedback}} still gets the review on a retry")
      assert.include(docs, "## Rules\n- Work only inside the current directory", "a template without {{rules}} still gets the rules")
      // The convenience path reads the same template.
      assert.strictEqual(Prompt.render(secondTask(plan, "docs")), prompts.render(secondTask(plan, "docs")))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("an unknown placeholder and a missing file are plan problems naming the file, the placeholder and where the plan names it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.writeFileSync(path.join(dir, "bad.md"), "Task {{taskId}}\nFix {{tittle}} now\n")
      const plan = yield* planOf({ prompt: "bad.md" }, dir).pipe(
        Effect.map((p) => ({
          ...p,
          file: new Plan.PlanFile({
            ...p.file,
            streams: p.file.streams.map((s) => s.type === "ui" ? new Plan.Stream({ ...s, prompt: "missing.md" }) : s)
          }),
          streams: p.streams.map((s) => s.type === "ui" ? { ...s, prompt: path.join(dir, "missing.md") } : s)
        }))
      )
      const problems = yield* Prompt.check(plan)
      assert.deepStrictEqual(problems.map((p) => p.path), ["prompt", "streams[2].prompt"])
      assert.include(problems[0]!.message, path.join(dir, "bad.md"))
      assert.include(problems[0]!.message, "unknown placeholder {{tittle}} on line 2")
      assert.include(problems[0]!.message, "known: role, roleDescription")
      assert.include(problems[1]!.message, `${path.join(dir, "missing.md")}: does not exist`)

      const prompts = yield* Prompt.make(plan)
      const attempt = prompts.forAttempt(secondTask(plan, "api"))
      assert.isTrue(Either.isLeft(attempt))
      assert.throws(() => Prompt.render(secondTask(plan, "api")), /unknown placeholder \{\{tittle\}\}/)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a plan without templates has no template problems", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Prompt.check(yield* planOf()), [])
    }).pipe(Effect.provide(NodeContext.layer)))
})
