/**
 * The judge and composite reviewers in whole runs over real git repositories: script agents
 * make the changes, the judge is the real `@effect/ai` client against a scripted Anthropic or
 * OpenAI server on 127.0.0.1. A malformed reply (and a 429) retried without using a gate run;
 * a score near the threshold sampled three times, the median used; a failing check failing the
 * gate although the judge scored 100; a judge that keeps failing fails the task; plan fields.
 */
import { GitWorkspace, Orchestrator, Plan, Progress, RunReport } from "@braid/core"
import { AnthropicServer, OpenAiServer, ScriptedServer } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Schedule } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Registry from "../src/Registry.js"

const KEYS = new Map([["ANTHROPIC_API_KEY", "sk-ant-test-PLANTED-3333"], ["OPENAI_API_KEY", "sk-test-PLANTED-4444"]])

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

const tempRepo = Effect.acquireRelease(
  Effect.sync(() => {
    const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-judge-")))
    git(repo, "init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, "README.md"), "shop\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo
  }),
  (repo) => Effect.sync(() => fs.rmSync(repo, { recursive: true, force: true }))
)

const verdict = (score: number, message = "fine") => ({
  object: { score, issues: [{ severity: "minor", file: "total.js", message }], suggestions: [`about ${score}`] }
})

/** One task whose script agent writes `total.js` (a different line each attempt), reviewed as `extra` says. */
const run = (repo: string, server: ScriptedServer.Server, extra: Record<string, unknown>, provider = "anthropic") =>
  Effect.gen(function*() {
    const plan = yield* Plan.decode({
      qualityThreshold: 80,
      streams: [{ name: "api", type: "api" }],
      tasks: [{
        id: "api-1",
        title: "Add the total",
        stream: "api",
        acceptanceCriteria: ["total adds the items"],
        run: ["node", "-e", "require('fs').writeFileSync('total.js', 'export const total = ' + process.env.BRAID_ATTEMPT + '\\n')"]
      }],
      judge: { provider, model: provider === "anthropic" ? "claude-sonnet-4-5" : "gpt-5", baseUrl: provider === "anthropic" ? server.url : `${server.url}/v1` },
      ...extra
    }, "plan", repo)
    const events: Array<Progress.RunEvent> = []
    const report = yield* Orchestrator.run(plan, { runId: "r1", reviewRetry: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(3))) }).pipe(
      Effect.provide(Registry.layer(plan)),
      Effect.provide(Layer.mergeAll(GitWorkspace.layer({ repo }), Progress.layerCallback((e) => void events.push(e)))),
      Effect.provide(NodeContext.layer)
    )
    return { report, events }
  }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(KEYS)))

const task = (report: RunReport.RunReport) => report.streamResults[0]!.results[0]!

describe("judge and composite reviewers", () => {
  it.scopedLive("a malformed reply and a 429 are retried without using a gate run (OpenAI)", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const server = yield* ScriptedServer.start(OpenAiServer.provider, ScriptedServer.sequence(
        { error: { status: 429, retryAfterSeconds: 0, message: "slow down" } },
        { object: { score: "high", issues: "none" } },
        { body: "{ not json" },
        verdict(95, "the total could use a doc comment")
      ))
      const { events, report } = yield* run(repo, server, { reviewer: "judge" }, "openai")
      const t = task(report)
      assert.strictEqual(t.status, "completed")
      assert.strictEqual(t.attempts.length, 1)
      assert.strictEqual(t.quality?.score, 95)
      assert.strictEqual(t.quality?.reviewer, "judge")
      assert.deepStrictEqual(t.quality?.findings.map((f) => [f.severity, f.file, f.message]), [["minor", "total.js", "the total could use a doc comment"]])
      assert.deepStrictEqual(t.quality?.issues, ["[minor] total.js: the total could use a doc comment"])
      assert.deepStrictEqual(t.quality?.samples.map((s) => s.score), [95])
      const retried = events.filter((e) => e._tag === "ReviewRetried")
      assert.strictEqual(retried.length, 3)
      assert.include((retried[0] as { message: string }).message, "HTTP 429")
      assert.include((retried[1] as { message: string }).message, "did not decode")
      // The judge saw the task, its criteria, the rubric and the diff; at temperature 0.
      const asked = server.requests.at(-1)!.body as { input: unknown; temperature: number }
      const text = JSON.stringify(asked.input)
      assert.include(text, "Add the total")
      assert.include(text, "total adds the items")
      assert.include(text, "API developer")
      assert.include(text, "+export const total = 1")
      assert.strictEqual(asked.temperature, 0)
      assert.strictEqual(report.status, "succeeded")
    }))

  it.scopedLive("a score near the threshold is sampled three times and the median decides (Anthropic, composite)", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const server = yield* ScriptedServer.start(AnthropicServer.provider, ScriptedServer.sequence(
        verdict(82, "close"),
        verdict(76, "missing the empty case"),
        verdict(79, "the empty case returns undefined"),
        verdict(91, "good")
      ))
      const { report } = yield* run(repo, server, {})
      const t = task(report)
      assert.strictEqual(t.attempts.length, 2)
      const first = t.attempts[0]!.review!
      assert.strictEqual(first.reviewer, "composite")
      assert.deepStrictEqual(first.samples.map((s) => s.score), [82, 76, 79])
      assert.strictEqual(first.score, 79)
      assert.isFalse(first.passes)
      assert.deepStrictEqual(first.issues, ["[minor] total.js: the empty case returns undefined"])
      const second = t.attempts[1]!.review!
      assert.deepStrictEqual(second.samples.map((s) => s.score), [91])
      assert.isTrue(second.passes)
      assert.strictEqual(server.requests.length, 4)
      assert.strictEqual(t.status, "completed")
      // The retry's agent was told the judge's review; the report shows every sample.
      const markdown = RunReport.toMarkdown(report)
      assert.include(markdown, "judge: scores 82, 76, 79 (median 79) · claude-sonnet-4-5")
      assert.include(markdown, "[minor] total.js: the empty case returns undefined")
    }))

  it.scopedLive("a failing check fails the gate although the judge scored 100", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const server = yield* ScriptedServer.start(AnthropicServer.provider, ScriptedServer.sequence(verdict(100, "perfect")))
      const { report } = yield* run(repo, server, { reviewer: "composite", checks: [{ name: "unit", command: ["node", "-e", "console.log('1 failing'); process.exit(1)"] }] })
      const t = task(report)
      assert.strictEqual(t.status, "needs-review")
      assert.strictEqual(t.attempts.length, 3)
      for (const a of t.attempts) {
        assert.deepStrictEqual(a.review!.samples.map((s) => s.score), [100])
        assert.isFalse(a.review!.passes)
        assert.isBelow(a.review!.score, 50)
        assert.include(a.review!.issues[0]!, "unit exited 1")
      }
      assert.strictEqual(report.mergeResult.landed, false)
    }))

  it.scopedLive("a judge that keeps failing fails the task with the reviewer's error", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const server = yield* ScriptedServer.start(AnthropicServer.provider, ScriptedServer.sequence({ object: { score: 500 } }))
      const { report } = yield* run(repo, server, { reviewer: "judge" })
      const t = task(report)
      assert.strictEqual(t.status, "failed")
      assert.include(t.error ?? "", "did not decode")
      // The reviewer's failures never used a gate run: one attempt, its review asked 1 + 3 times.
      assert.isAtMost(t.attempts.length, 1)
      assert.strictEqual(server.requests.length, 4)
    }))

  it.effect("plan fields: reviewer and judge per plan, role and stream; misspellings and bad values named", () =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode({
        streams: [{ name: "api", type: "api" }, { name: "ui", type: "ui", reviewer: "checks" }, { name: "db", type: "database", judge: { model: "m-db" } }],
        tasks: [{ id: "a", title: "a", stream: "api" }, { id: "u", title: "u", stream: "ui" }, { id: "d", title: "d", stream: "db" }],
        judge: { provider: "openai", model: "gpt-5", margin: 3 },
        roles: { "api-developer": { judge: { model: "m-api" } } }
      })
      const settings = plan.streams.map((s) => Plan.reviewSettingsOf(plan, s))
      assert.deepStrictEqual(settings.map((s) => [s.reviewer, s.judge?.model, s.judge?.provider, s.judge?.margin]), [
        [undefined, "m-api", "openai", 3],
        ["checks", "gpt-5", "openai", 3],
        [undefined, "m-db", "openai", 3]
      ])
      const bad = yield* Effect.either(Plan.decode({
        streams: [{ name: "api", type: "api", reviewr: "judge" }],
        tasks: [{ id: "a", title: "a", stream: "api" }],
        reviewer: "llm",
        judge: { modle: "x", margin: -1 },
        roles: { "api-dev": { reviewer: "judge" } }
      }))
      assert.isTrue(Either.isLeft(bad))
      const problems = Either.isLeft(bad) ? bad.left.problems.map((p) => `${p.path}: ${p.message}`) : []
      assert.include(problems.join("\n"), `streams[0].reviewr: unknown field "reviewr" — did you mean "reviewer"?`)
      assert.include(problems.join("\n"), `judge.modle: unknown field "modle" — did you mean "model"?`)
      assert.include(problems.join("\n"), `reviewer: expected one of checks, judge, composite, got "llm"`)
      assert.include(problems.join("\n"), "judge.margin: expected a number of points, 0 or more, got -1")
      assert.include(problems.join("\n"), `roles.api-dev: unknown role "api-dev"`)
    }))
})
