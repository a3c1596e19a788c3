/**
 * Conflicts resolved by an agent backend in the architect role, over real git repositories:
 * between two streams at integration (over every backend in `contract/Resolvers.ts`: the real
 * claude against a scripted server, and a stand-in program), a resolution that leaves markers
 * refused, and a conflict met when a task brings in the work of the task it depends on,
 * settled by each strategy.
 */
import { GitWorkspace, Orchestrator, Plan, Progress, type RunReport, Steps } from "@braid/core"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Registry from "../src/Registry.js"
import { git, tempDir } from "./contract/Drivers.js"
import * as Resolvers from "./contract/Resolvers.js"

const BASE = "module.exports = [\n  'home',\n]\n"
const WITH_CHECKOUT = "module.exports = [\n  'home',\n  'checkout',\n]\n"
const WITH_CART = "module.exports = [\n  'home',\n  'cart',\n]\n"
const BOTH = "module.exports = [\n  'home',\n  'checkout',\n  'cart',\n]\n"

const repoIn = (root: string) => {
  const repo = path.join(root, "repo")
  fs.mkdirSync(path.join(repo, "src"), { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "src", "routes.js"), BASE)
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return repo
}

/** A task run that writes `content` into `file` (an argv: no shell). */
const writes = (file: string, content: string) => [process.execPath, "-e", `require('fs').writeFileSync(${JSON.stringify(file)}, ${JSON.stringify(content)})`]

/** A check that `file` has every one of `wanted` and no conflict marker. */
const has = (file: string, ...wanted: Array<string>) => [
  process.execPath,
  "-e",
  `const t = require('fs').readFileSync(${JSON.stringify(file)}, 'utf8'); ` +
  `for (const w of ${JSON.stringify(wanted)}) if (!t.includes(w)) { console.error(${JSON.stringify(file)} + ' lacks ' + w); process.exit(1) } ` +
  `if (/^(<{7}|={7}|>{7})/m.test(t)) { console.error('markers left'); process.exit(1) }`
]

const streams = [
  { name: "api", type: "api", scope: "src/", priority: 1 },
  { name: "ui", type: "ui", scope: "src/", priority: 2 }
]

/** Two streams that edit the same line of src/routes.js. */
const conflictingPlan = (resolver: string, settings: Readonly<Record<string, unknown>>) =>
  Plan.decode({
    projectName: "shop",
    featureName: "checkout-flow",
    streams,
    resolver: { agent: resolver },
    agents: { [resolver]: settings },
    tasks: [
      { id: "api-1", title: "Add the checkout route", description: "GET /checkout", stream: "api", run: writes("src/routes.js", WITH_CHECKOUT) },
      { id: "ui-1", title: "Add the cart route", description: "GET /cart", stream: "ui", run: writes("src/routes.js", WITH_CART) }
    ],
    verify: [has("src/routes.js", "'checkout'", "'cart'")]
  })

/** Runs a plan over a real repository with the real registry; its journal is kept. */
const runPlan = (repo: string, plan: Plan.Plan) =>
  Effect.gen(function*() {
    const events: Array<Progress.RunEvent> = []
    const steps = Steps.memory()
    const outcome = yield* Orchestrator.run(plan, { runId: "r1" }).pipe(
      Effect.provide(Layer.mergeAll(
        Registry.layer(plan).pipe(Layer.provideMerge(GitWorkspace.layer({ repo }))),
        Progress.layerCallback((e) => events.push(e)),
        Layer.succeed(Steps.Steps, steps.service)
      )),
      Effect.provide(NodeContext.layer),
      Effect.either
    )
    if (Either.isLeft(outcome)) return assert.fail(`the run failed: ${String(outcome.left)}`)
    return { report: outcome.right, events, journal: steps.journal }
  })

const taskOf = (report: RunReport.RunReport, id: string) => report.streamResults.flatMap((s) => s.results).find((t) => t.taskId === id)!

describe("conflicts resolved by an agent backend", () => {
  for (const driver of Resolvers.resolvers) {
    it.scopedLive(`${driver.name}: a conflict between two streams is resolved in the integration, verified and landed`, () =>
      Effect.gen(function*() {
        const root = yield* tempDir("braid-resolve-")
        const stage = yield* driver.stage(root)
        stage.resolves("src/routes.js", BOTH, "Kept both routes: checkout from api, cart from ui.")
        const repo = repoIn(root)
        const plan = yield* conflictingPlan(driver.name, stage.settings)
        const { journal, report } = yield* runPlan(repo, plan)

        assert.strictEqual(report.status, "succeeded", JSON.stringify(report.conflictReport))
        assert.isTrue(report.mergeResult.landed)
        assert.strictEqual(fs.readFileSync(path.join(repo, "src", "routes.js"), "utf8"), BOTH)
        assert.isTrue(report.integrationResult.ran && report.integrationResult.passed)
        const [conflict] = report.conflictReport.conflicts
        assert.deepStrictEqual(
          { streams: conflict?.streams, paths: conflict?.paths, outcome: conflict?.outcome, resolver: conflict?.resolver, said: conflict?.said },
          { streams: ["ui", "api"], paths: ["src/routes.js"], outcome: "resolved", resolver: driver.name, said: "Kept both routes: checkout from api, cart from ui." }
        )
        // The agent was told the conflict: the file with its markers, and both streams' intents.
        const prompts = stage.prompts()
        assert.strictEqual(prompts.length, 1)
        const prompt = prompts[0]!
        assert.include(prompt, "architect")
        assert.match(prompt, /<<<<<<< [^\n]*\n[\s\S]*'checkout'[\s\S]*=======[\s\S]*'cart'[\s\S]*>>>>>>> /)
        for (const text of ["Add the checkout route", "GET /checkout", "Add the cart route", "GET /cart", "+  'checkout',", "+  'cart',"]) {
          assert.include(prompt, text)
        }
        assert.include(prompt, "lacks")
        if (driver.reportsUsage) {
          assert.isString(conflict?.agent?.sessionId)
          assert.isAbove(conflict?.agent?.costUsd ?? 0, 0)
          // The resolution's cost is in the run's totals.
          assert.isAbove(report.usage.costUsd, 0)
        }
        // The resolution is a journaled step with the resolved text, so a resumed run does not ask again.
        const resolved = journal.find((e) => e.key === "integration/0/merge/ui/resolve")
        assert.deepInclude((resolved?.value as { files: Array<unknown> }).files, { path: "src/routes.js", content: BOTH })
      }), 90_000)
  }

  it.scopedLive("a resolution that leaves conflict markers is refused, with what the agent said; nothing lands", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("braid-resolve-markers-")
      const stage = yield* Resolvers.claudeCode.stage(root)
      const marked = "module.exports = [\n  'home',\n<<<<<<< HEAD\n  'checkout',\n=======\n  'cart',\n>>>>>>> ui\n]\n"
      stage.resolves("src/routes.js", marked, "I could not decide between the two routes.")
      const repo = repoIn(root)
      const plan = yield* conflictingPlan("claude-code", stage.settings)
      const { journal, report } = yield* runPlan(repo, plan)

      assert.strictEqual(report.status, "failed")
      assert.isFalse(report.mergeResult.landed)
      assert.strictEqual(fs.readFileSync(path.join(repo, "src", "routes.js"), "utf8"), BASE)
      const [conflict] = report.conflictReport.conflicts
      assert.strictEqual(conflict?.outcome, "failed")
      assert.match(conflict?.detail ?? "", /conflict markers remain in src\/routes\.js; the resolution is refused/)
      assert.include(conflict?.detail ?? "", "I could not decide between the two routes.")
      assert.strictEqual(conflict?.said, "I could not decide between the two routes.")
      assert.isFalse(journal.some((e) => e.key.endsWith("/resolve")))
      assert.isTrue(report.nextSteps.some((s) => s.includes("conflict markers remain")))
    }), 90_000)
})

/** ui-2 depends on api-1, while ui-1 edited the same line of src/routes.js as api-1. */
const dependentPlan = (strategy: Plan.ConflictStrategy, extra: Record<string, unknown> = {}) =>
  Plan.decode({
    streams,
    conflictStrategy: strategy,
    tasks: [
      { id: "api-1", title: "Add the checkout route", stream: "api", run: writes("src/routes.js", WITH_CHECKOUT) },
      { id: "ui-1", title: "Add the cart route", stream: "ui", run: writes("src/routes.js", WITH_CART) },
      {
        id: "ui-2",
        title: "Link to checkout",
        stream: "ui",
        dependsOn: ["api-1"],
        run: writes("src/link.js", "module.exports = '/checkout'\n"),
        checks: [has("src/routes.js", "'checkout'")]
      }
    ],
    verify: [has("src/routes.js", "'checkout'"), has("src/link.js", "/checkout")],
    ...extra
  })

describe("a conflict met bringing in a dependency's work, settled by the run's strategy", () => {
  it.scopedLive("agent: the resolver edits the stream's worktree; the dependent task is carried out and the run lands", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("braid-absorb-agent-")
      const stage = yield* Resolvers.command.stage(root)
      stage.resolves("src/routes.js", BOTH, "Both routes kept.")
      const repo = repoIn(root)
      const plan = yield* dependentPlan("agent", { resolver: { agent: "command" }, agents: { command: stage.settings } })
      const { journal, report } = yield* runPlan(repo, plan)

      assert.strictEqual(report.status, "succeeded", JSON.stringify(taskOf(report, "ui-2")))
      assert.strictEqual(taskOf(report, "ui-2").status, "completed")
      const [conflict] = taskOf(report, "ui-2").conflicts ?? []
      assert.deepStrictEqual(
        { kind: conflict?.kind, streams: conflict?.streams, paths: conflict?.paths, outcome: conflict?.outcome, resolver: conflict?.resolver },
        { kind: "dependency", streams: ["ui", "api"], paths: ["src/routes.js"], outcome: "resolved", resolver: "command" }
      )
      // The prompt said it was the ui stream bringing in api's work, with both intents.
      const [prompt] = stage.prompts()
      assert.include(prompt, "Stream ui is bringing in the work of api")
      assert.include(prompt, "Add the checkout route")
      assert.include(prompt, "Add the cart route")
      // Resolved in the stream: the integration met no conflict, and the landed file has both routes.
      assert.deepStrictEqual(report.conflictReport.conflicts, [])
      assert.strictEqual(fs.readFileSync(path.join(repo, "src", "routes.js"), "utf8"), BOTH)
      assert.isTrue(journal.some((e) => e.key === "stream/ui/task/ui-2/absorb/api-1/resolve"))
    }), 60_000)

  it.scopedLive("priority: the higher-priority stream's side is kept; the dependent task is carried out", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("braid-absorb-priority-")
      const repo = repoIn(root)
      const { report } = yield* runPlan(repo, yield* dependentPlan("priority"))
      assert.strictEqual(taskOf(report, "ui-2").status, "completed")
      const [conflict] = taskOf(report, "ui-2").conflicts ?? []
      assert.strictEqual(conflict?.outcome, "resolved")
      assert.match(conflict?.detail ?? "", /^api has the higher priority/)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(fs.readFileSync(path.join(repo, "src", "routes.js"), "utf8"), WITH_CHECKOUT)
    }), 60_000)

  it.scopedLive("manual: the dependent task does not start and fails saying what to merge by hand", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("braid-absorb-manual-")
      const repo = repoIn(root)
      const { report } = yield* runPlan(repo, yield* dependentPlan("manual"))
      const ui2 = taskOf(report, "ui-2")
      assert.strictEqual(ui2.status, "failed")
      assert.deepStrictEqual(ui2.attempts, [])
      assert.match(ui2.error ?? "", /bringing api-1 from stream api into stream "ui" conflicts in src\/routes\.js; conflictStrategy is manual/)
      assert.strictEqual(ui2.conflicts?.[0]?.outcome, "blocked")
      assert.strictEqual(report.status, "failed")
      assert.isFalse(report.mergeResult.landed)
    }), 60_000)
})
