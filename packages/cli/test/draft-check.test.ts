/**
 * `Draft`'s parts in-process: a plan taken out of a reply; a draft checked as `braid plan`
 * decodes plans, every problem with its path; the conflict forecast's findings (through the
 * `forecast` option, the shape `Forecast.forecast` has) carried as notes into the next round's
 * prompt without blocking the draft; the loop's rounds and its bound.
 */
import { Plan } from "@braid/core"
import { assert, describe, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect, Either } from "effect"
import * as path from "node:path"
import * as Draft from "../src/Draft.js"
import { BAD, GOOD } from "./support/Draft.js"

const repository: Draft.Repository = { tree: "src/routes.js", readme: "(none)", files: "(none found)", environment: "" }
const options = (forecast?: Draft.ForecastOf) => ({ source: "plan.yaml", baseDir: path.resolve("."), config: new Plan.ConfigFile({}), repository: path.resolve("."), forecast })
const warnsOfRoutes: Draft.ForecastOf = () => Effect.succeed([{ message: "api and ui both edit src/routes.js", fix: "give src/routes.js to one stream" }])

describe("Draft", () => {
  it("extract takes the last yaml block, else the last block, else a bare plan; nothing from prose", () => {
    assert.strictEqual(Draft.extract("x\n```json\n{}\n```\n```yaml\na: 1\n```\nbye"), "a: 1\n")
    assert.strictEqual(Draft.extract("```\nstreams: []\n```"), "streams: []\n")
    assert.strictEqual(Draft.extract("streams: []\ntasks: []"), "streams: []\ntasks: []\n")
    assert.isUndefined(Draft.extract("I could not find the repository."))
  })

  it.live("check: braid plan's problems with their paths; a valid draft passes with the forecast's findings as notes", () =>
    Effect.gen(function*() {
      const bad = yield* Draft.check(BAD, options(warnsOfRoutes))
      assert.isUndefined(bad.plan)
      assert.deepStrictEqual(bad.problems.map((p) => p.path), ["tasks[0].titel", "tasks"])
      const none = yield* Draft.check(undefined, options())
      assert.include(none.problems[0]!.message, "the reply holds no plan")
      const good = yield* Draft.check(GOOD, options(warnsOfRoutes))
      assert.deepStrictEqual(good.problems, [])
      assert.isDefined(good.plan)
      assert.deepInclude(good.notes, { path: "forecast", message: "api and ui both edit src/routes.js", fix: "give src/routes.js to one stream" })
      const quiet = yield* Draft.check(GOOD, options())
      assert.isFalse(quiet.notes.some((n) => n.path === "forecast"))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("loop: each round's prompt has the previous draft's problems and notes; it stops at the first passing draft, or after 1 + FIX_ROUNDS", () =>
    Effect.gen(function*() {
      const template = Either.getOrThrow(Draft.parseTemplate("t", Draft.DEFAULT_TEMPLATE))
      const prompts: Array<string> = []
      const replies = [BAD, GOOD]
      const passed = yield* Draft.loop({
        prompt: (input) => Draft.fill(template, input),
        input: { feature: "checkout", projectName: "shop", repository },
        ask: (prompt, round) => Effect.sync(() => (prompts.push(prompt), { text: "```yaml\n" + replies[round - 1] + "```", session: "s", changed: [] })),
        check: (text) => Draft.check(text, options(warnsOfRoutes))
      })
      assert.strictEqual(passed._tag, "Passed")
      assert.strictEqual(passed.rounds, 2)
      assert.notInclude(prompts[0], "Your previous draft")
      assert.include(prompts[1], "- tasks[0].titel: unknown field \"titel\"")
      assert.include(prompts[1], "- tasks: dependency cycle")
      assert.include(prompts[1], "round 2 of 4")

      // Notes alone do not block; a draft with problems is asked again at most FIX_ROUNDS times.
      let asked = 0
      const rejected = yield* Draft.loop({
        prompt: (input) => Draft.fill(template, input),
        input: { feature: "checkout", projectName: "shop", repository },
        ask: () => Effect.sync(() => (asked++, { text: "no plan here", session: undefined, changed: [] })),
        check: (text) => Draft.check(text, options())
      })
      assert.strictEqual(rejected._tag, "Rejected")
      assert.strictEqual(asked, 1 + Draft.FIX_ROUNDS)
    }).pipe(Effect.provide(NodeContext.layer)))

  it("findingsOf sends the forecast's findings with their fixes, marked as notes", () => {
    const text = Draft.findingsOf({
      feature: "f",
      projectName: "p",
      repository,
      round: 2,
      previous: { text: GOOD, checked: { plan: undefined, problems: [], notes: [{ path: "forecast", message: "api and ui both edit src/routes.js", fix: "give it to one stream" }] } }
    })
    assert.include(text, "Notes (warnings and the conflict forecast; fix them where you can):\n- forecast: api and ui both edit src/routes.js (fix: give it to one stream)")
  })
})
