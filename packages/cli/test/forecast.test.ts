/**
 * The conflict forecast (`Forecast.ts`, printed by `braid plan`): overlapping scopes, files named
 * by tasks of two streams, files the history changes together — each warned only between streams
 * (or tasks) that no dependency serialises. Real git repositories with real commits; the built
 * `braid` for the bundled example and a plan with nothing to forecast.
 */
import { Plan } from "@braid/core"
import { assert, describe, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Forecast from "../src/Forecast.js"
import { braid, git, root } from "./support/Braid.js"

interface Doc {
  readonly streams: ReadonlyArray<Record<string, unknown>>
  readonly tasks: ReadonlyArray<Record<string, unknown>>
}

/** A repository in the temporary folder whose history is `commits`, oldest first: each the files it writes. */
const repoWith = (commits: ReadonlyArray<ReadonlyArray<string>>): string => {
  const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-forecast-")))
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), "base\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  commits.forEach((files, i) => {
    for (const file of files) {
      fs.mkdirSync(path.dirname(path.join(repo, file)), { recursive: true })
      fs.appendFileSync(path.join(repo, file), `change ${i}\n`)
    }
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", `change ${i}`)
  })
  return repo
}

/** The plan `doc`, written beside the repository (as plans usually are not in it). */
const planFile = (doc: Doc): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-forecast-plan-"))
  const file = path.join(dir, "plan.yaml")
  fs.writeFileSync(file, JSON.stringify(doc, null, 2))
  return file
}

const forecastOf = (doc: Doc, repo: string) =>
  Effect.gen(function*() {
    const plan = yield* Plan.parse(JSON.stringify(doc), "plan.yaml", repo)
    return yield* Forecast.forecast(plan, repo)
  }).pipe(Effect.provide(NodeContext.layer))

const streams = (...specs: ReadonlyArray<readonly [string, string, string]>) =>
  specs.map(([name, type, scope]) => ({ name, type, scope }))

/** History where src/api/handlers.js and src/ui/pages.js change together, with the shared registry src/routes.js. */
const coupledHistory = [
  ["src/api/handlers.js", "src/ui/pages.js", "src/routes.js"],
  ["src/api/handlers.js", "src/ui/pages.js", "src/routes.js"],
  ["src/api/handlers.js", "src/ui/pages.js"],
  ["src/api/other.js"],
  ["docs/a.md"]
]

const coupledPlan = (dependsOn: boolean): Doc => ({
  streams: streams(["api", "api", "src/api/"], ["ui", "ui", "src/ui/"]),
  tasks: [
    { id: "api-1", title: "Orders endpoint", stream: "api" },
    { id: "ui-1", title: "Orders page", stream: "ui", ...(dependsOn ? { dependsOn: ["api-1"] } : {}) }
  ]
})

describe("the conflict forecast", () => {
  it("finds path-like words conservatively", () => {
    assert.deepStrictEqual(
      Forecast.pathsIn("Register POST /checkout in `src/routes.js`, see https://example.com/a/b.html and ~/x/y.js; bump to v1.2.3 (package.json)."),
      ["src/routes.js", "package.json"]
    )
    // Candidates only: "and/or" is no file at HEAD and in no scope, so it names nothing.
    assert.deepStrictEqual(Forecast.pathsIn("use one and/or the other, e.g. 2.5 times, see ./docs/x.md or ../up.md"), ["and/or", "docs/x.md"])
    assert.strictEqual(Forecast.prefixOf("src/**/*.ts"), "src")
    assert.strictEqual(Forecast.prefixOf("src/api"), "src/api")
    assert.isUndefined(Forecast.prefixOf("*.md"))
  })

  it.live("warns two streams whose scopes overlap, with a fix; src/api/ and src/apix/ do not overlap", () =>
    Effect.gen(function*() {
      const repo = repoWith([])
      const found = yield* forecastOf({
        streams: [...streams(["core", "infrastructure", "src/"], ["api", "api", "src/api/, lib/"], ["apix", "api", "src/apix/"]), { name: "docs", type: "docs", scope: ["docs/"] }],
        tasks: [
          { id: "core-1", title: "Core", stream: "core" },
          { id: "api-1", title: "API", stream: "api" },
          { id: "apix-1", title: "APIX", stream: "apix" },
          // docs waits for apix: their scopes would not collide anyway.
          { id: "docs-1", title: "Docs", stream: "docs", dependsOn: ["apix-1"] }
        ]
      }, repo)
      assert.deepStrictEqual(found.map((c) => [c.kind, ...c.streams]), [["scope", "core", "api"], ["scope", "core", "apix"]])
      const [first] = found
      assert.deepStrictEqual(first!.paths, ["src", "src/api"])
      assert.deepStrictEqual(first!.tasks, ["core-1", "api-1"])
      assert.include(first!.message, "streams core and api overlap in scope")
      assert.include(first!.fix, "add dependsOn: [core-1] to task api-1")
    }))

  it.live("warns two tasks in different streams that name one file, and not what is no file", () =>
    Effect.gen(function*() {
      const repo = repoWith([["src/routes.js", "src/api/orders.js"]])
      const found = yield* forecastOf({
        streams: streams(["api", "api", "src/api/"], ["ui", "ui", "src/ui/"]),
        tasks: [
          { id: "api-1", title: "Orders endpoint", stream: "api", description: "Add src/api/orders.js and register it in src/routes.js; input and/or output as JSON." },
          { id: "ui-1", title: "Orders page", stream: "ui", acceptanceCriteria: ["the page is listed in `src/routes.js`", "works with and/or without cookies", "see v1.2.3"] }
        ]
      }, repo)
      assert.strictEqual(found.length, 1, JSON.stringify(found))
      const [c] = found
      assert.strictEqual(c!.kind, "file")
      assert.deepStrictEqual(c!.streams, ["api", "ui"])
      assert.deepStrictEqual(c!.tasks, ["api-1", "ui-1"])
      assert.deepStrictEqual(c!.paths, ["src/routes.js"])
      assert.include(c!.message, "src/routes.js")
      assert.strictEqual(c!.fix, "Add dependsOn: [api-1] to task ui-1, let one stream own src/routes.js, or merge api-1 and ui-1 into one task.")
    }))

  it.live("warns files the history changes together across two streams with no dependency, and a shared file beside both", () =>
    Effect.gen(function*() {
      const repo = repoWith(coupledHistory)
      const found = yield* forecastOf(coupledPlan(false), repo)
      assert.strictEqual(found.length, 1, JSON.stringify(found))
      const [c] = found
      assert.strictEqual(c!.kind, "cochange")
      assert.deepStrictEqual(c!.streams, ["api", "ui"])
      assert.deepStrictEqual(c!.tasks, ["api-1", "ui-1"])
      assert.deepStrictEqual(c!.paths, ["src/api/handlers.js", "src/routes.js", "src/ui/pages.js"])
      assert.include(c!.message, "src/api/handlers.js (api) and src/ui/pages.js (ui) changed together in 3 of 3 commits")
      assert.include(c!.message, "src/routes.js (in no scope) changed with src/api/handlers.js (api) in 2 of 2 commits")
      assert.include(c!.fix, "Let one stream own src/routes.js")
      assert.include(c!.fix, "add dependsOn: [api-1] to task ui-1")
    }))

  it.live("a shared file alone (a route registry) is enough, and one commit together is not", () =>
    Effect.gen(function*() {
      const registry = repoWith([
        ["src/api/a.js", "src/routes.js"],
        ["src/api/a.js", "src/routes.js"],
        ["src/ui/b.js", "src/routes.js"],
        ["src/ui/b.js", "src/routes.js"],
        ["src/api/a.js", "src/ui/b.js"]
      ])
      const found = yield* forecastOf(coupledPlan(false), registry)
      assert.deepStrictEqual(found.map((c) => [c.kind, c.paths]), [["cochange", ["src/api/a.js", "src/routes.js", "src/ui/b.js"]]])
      assert.notInclude(found[0]!.message, "src/api/a.js (api) and src/ui/b.js (ui)")
    }))

  it.live("warns nothing when a dependsOn serialises the two streams", () =>
    Effect.gen(function*() {
      const repo = repoWith(coupledHistory)
      assert.deepStrictEqual(yield* forecastOf(coupledPlan(true), repo), [])
    }))

  it.live("outside a repository the forecast goes by the plan alone", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-forecast-none-"))
      const found = yield* forecastOf({
        streams: streams(["api", "api", "src/api/"], ["ui", "ui", "src/"]),
        tasks: [{ id: "api-1", title: "A", stream: "api" }, { id: "ui-1", title: "U", stream: "ui" }]
      }, dir)
      assert.deepStrictEqual(found.map((c) => c.kind), ["scope"])
    }))

  it.effect("a plan of 10,000 streams in one scope is forecast, with at most MAX_COLLISIONS collisions of a kind", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.parse(JSON.stringify({
        streams: Array.from({ length: 10_000 }, (_, i) => ({ name: `s${i}`, type: "api", scope: "src/" })),
        tasks: Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, title: "Change src/x.js", stream: `s${i}` }))
      }), "plan.yaml", os.tmpdir())
      const found = Forecast.collisions(plan, { files: new Set(), history: [] })
      assert.strictEqual(found.filter((c) => c.kind === "scope").length, Forecast.MAX_COLLISIONS)
      assert.strictEqual(found.filter((c) => c.kind === "file").length, Forecast.MAX_COLLISIONS)
      assert.deepStrictEqual(found[0]!.streams, ["s0", "s1"])
    }))

  it("braid plan: a plan with no collisions warns nothing, in text and in --json", async () => {
    const repo = repoWith(coupledHistory)
    const file = planFile({
      streams: streams(["api", "api", "src/api/"], ["ui", "ui", "src/ui/"], ["docs", "docs", "docs/"]),
      tasks: [
        { id: "api-1", title: "Orders endpoint in src/api/handlers.js", stream: "api", run: "true" },
        { id: "ui-1", title: "Orders page in src/ui/pages.js", stream: "ui", dependsOn: ["api-1"], run: "true" },
        { id: "docs-1", title: "Document docs/a.md", stream: "docs", run: "true" }
      ]
    })
    const text = await braid(["plan", file, "--repo", repo])
    assert.strictEqual(text.code, 0, text.stderr)
    assert.notInclude(text.stderr, "conflict forecast")
    const json = await braid(["plan", file, "--repo", repo, "--json"])
    assert.strictEqual(json.code, 0, json.stderr)
    assert.deepStrictEqual(JSON.parse(json.stdout).forecast, [])
  })

  it("braid plan on the bundled example names src/routes.js between api and ui", async () => {
    const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-forecast-example-")))
    fs.cpSync(path.join(root, "examples/checkout-flow/project"), repo, { recursive: true })
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    const plan = path.join(root, "examples/checkout-flow/plan.yaml")
    const text = await braid(["plan", plan, "--repo", repo])
    assert.strictEqual(text.code, 0, text.stderr)
    const part = text.stderr.slice(text.stderr.indexOf("conflict forecast"))
    assert.include(part, "conflict forecast: 1 collision between streams that run side by side")
    assert.include(part, "streams api and ui both change src/routes.js")
    assert.include(part, "fix: Add dependsOn: [api-1] to task ui-1")
    const json = await braid(["plan", plan, "--repo", repo, "--json"])
    const forecast = JSON.parse(json.stdout).forecast as ReadonlyArray<Forecast.Collision>
    assert.deepStrictEqual(forecast.map((c) => [c.kind, c.streams, c.tasks, c.paths]), [["file", ["api", "ui"], ["api-1", "ui-1"], ["src/routes.js"]]])
  })
})
