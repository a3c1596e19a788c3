/**
 * GitHub sync and its HTTP client against the fake GitHub on 127.0.0.1, in-process: edits are
 * coalesced, a comment is found again by its marker when the journal does not have it (another
 * process, a lost record), status labels replace each other, rate limits are waited out when
 * they lift soon and given up (a warning, no stall) when they do not.
 */
import { GitHub, GitHubSync, Plan, Steps } from "@braid/core"
import { FakeGitHub } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, type Scope } from "effect"
import * as GitHubHttp from "../src/GitHubHttp.js"

const TOKEN = "ghp_syncTestToken0123456789"

const plan = Plan.decode({
  githubRepo: "acme/shop",
  githubIssueNumber: 9,
  streams: [{ name: "api", type: "api" }],
  tasks: [{ id: "api-1", title: "POST /checkout", stream: "api", githubIssueNumber: 2 }, { id: "api-2", title: "GET /orders", stream: "api" }]
})

const withGitHub = <A, E>(f: (fake: FakeGitHub.FakeGitHub, github: GitHub.Service) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeGitHub.start({ repo: "acme/shop", issues: [2, 9], token: TOKEN })),
    (fake) =>
      Effect.flatMap(
        GitHubHttp.live({ _tag: "On", repo: "acme/shop", apiUrl: fake.url, token: Redacted.make(TOKEN) }, { maxWaitMs: 3000, backoffMs: 20 }),
        (github) => f(fake, github)
      ),
    (fake) => Effect.promise(() => fake.close())
  ).pipe(Effect.scoped)

const at = "2026-12-01T00:00:00Z"
const started = (attempt: number) => ({ _tag: "AttemptStarted" as const, at, stream: "api", taskId: "api-1", attempt })
const reviewed = (attempt: number, score: number) => ({
  _tag: "ReviewRecorded" as const,
  at,
  stream: "api",
  taskId: "api-1",
  attempt,
  score,
  passes: score >= 80,
  issues: score >= 80 ? [] : ["total is wrong: 350 !== 850"],
  suggestions: [],
  reviewer: "checks",
  durationMs: 1,
  inputTokens: 0,
  outputTokens: 0,
  costUsd: 0
})

/** Waits (real time) until the fake has seen `n` requests more than `from`. */
const requestsAfter = (fake: FakeGitHub.FakeGitHub, from: number, n: number) =>
  Effect.promise(async () => {
    for (let i = 0; i < 500 && fake.state.requests.length < from + n; i++) await new Promise((r) => setTimeout(r, 10))
  })

describe("GitHubSync over GitHubHttp", () => {
  it.live("coalesces a burst of events into one comment, finds it again by its marker, and swaps status labels", () =>
    withGitHub((fake, github) =>
      Effect.gen(function*() {
        const p = yield* plan
        const first = yield* GitHubSync.make({ runId: "r1", plan: p, github, steps: Steps.memory().service, debounceMs: 150 })
        // A burst within one debounce interval: one comment with the latest state, no edits.
        for (const e of [started(1), reviewed(1, 40), started(2), reviewed(2, 90)]) yield* first.progress.publish(e)
        const issue = fake.state.issues.get(2)!
        yield* Effect.promise(async () => {
          for (let i = 0; i < 500 && !issue.labels.has("braid:in-progress"); i++) await new Promise((r) => setTimeout(r, 10))
        })
        assert.strictEqual(issue.comments.length, 1)
        assert.strictEqual(issue.comments[0]!.edits, 0)
        assert.include(issue.comments[0]!.body, "<!-- braid:run=r1 task=api-1 -->")
        assert.include(issue.comments[0]!.body, "| 2 | – | 90 (passes) |")
        assert.include(issue.comments[0]!.body, "total is wrong: 350 !== 850")
        assert.deepStrictEqual([...issue.labels], ["braid:in-progress"])
        // The tracking issue got the summary; the task without an issue got nothing of its own.
        assert.strictEqual(fake.state.issues.get(9)!.comments.length, 1)
        assert.include(fake.state.issues.get(9)!.comments[0]!.body, "<!-- braid:run=r1 summary -->")

        // Another sync of the same run with an empty journal (a lost record): the marker finds the comment.
        issue.labels.add("customer-facing")
        const second = yield* GitHubSync.make({ runId: "r1", plan: p, github, steps: Steps.memory().service, debounceMs: 50 })
        const before = fake.state.requests.length
        yield* second.progress.publish({ _tag: "TaskSettled", at, stream: "api", taskId: "api-1", status: "completed", score: 90, error: null, durationMs: 5, head: null })
        yield* requestsAfter(fake, before, 6)
        yield* Effect.promise(async () => {
          for (let i = 0; i < 500 && !issue.labels.has("braid:completed"); i++) await new Promise((r) => setTimeout(r, 10))
        })
        assert.strictEqual(issue.comments.length, 1, "a second comment was posted")
        assert.isAbove(issue.comments[0]!.edits, 0)
        assert.include(issue.comments[0]!.body, "**Status:** completed")
        assert.deepStrictEqual([...issue.labels].sort(), ["braid:completed", "customer-facing"])
        assert.isTrue(fake.state.requests.every((r) => r.authorization === `Bearer ${TOKEN}`))

        // Someone deletes the comment: the next change posts a new one instead of failing on every edit.
        const deletedId = issue.comments[0]!.id
        issue.comments.splice(0, 1)
        yield* second.progress.publish(started(3))
        yield* Effect.promise(async () => {
          for (let i = 0; i < 500 && !issue.comments.some((c) => c.body.includes("| 3 |")); i++) await new Promise((r) => setTimeout(r, 10))
        })
        assert.strictEqual(issue.comments.length, 1)
        assert.notStrictEqual(issue.comments[0]!.id, deletedId)
        assert.include(issue.comments[0]!.body, "<!-- braid:run=r1 task=api-1 -->")
      })
    ))

  it.live("waits out a 403 whose limit lifts soon and a 429 with retry-after; gives up at once on a limit that lifts too late", () =>
    withGitHub((fake, github) =>
      Effect.gen(function*() {
        fake.state.faults.push(
          { method: "GET", path: "/issues/2", status: 403, message: "API rate limit exceeded", headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 1) } },
          { method: "GET", path: "/issues/2", status: 429, message: "secondary rate limit", headers: { "retry-after": "1" } }
        )
        const issue = yield* github.getIssue(2)
        assert.strictEqual(issue.number, 2)
        assert.deepStrictEqual(fake.state.requests.map((r) => r.status), [403, 429, 200])

        // An hour away: longer than braid waits (3 s here), so it fails with the reason instead of stalling.
        fake.state.faults.push({ method: "GET", path: "/issues/9", status: 403, message: "API rate limit exceeded", headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600) } })
        const late = yield* Effect.flip(github.getIssue(9))
        assert.match(late.message, /rate limited \(403: API rate limit exceeded\); it lifts in \d+ s, longer than braid waits \(3 s\)/)
        // Nothing else is sent before that reset.
        const sent = fake.state.requests.length
        const blocked = yield* Effect.flip(github.getIssue(2))
        assert.match(blocked.message, /rate limit is used up/)
        assert.strictEqual(fake.state.requests.length, sent)
        assert.notInclude(late.message + blocked.message, TOKEN)
      })
    ))

  it.live("a 404 is a warning of the sync, once, not a failure", () =>
    withGitHub((fake, github) =>
      Effect.gen(function*() {
        const p = yield* Plan.decode({ githubRepo: "acme/shop", streams: [{ name: "api", type: "api" }], tasks: [{ id: "api-1", title: "t", stream: "api", githubIssueNumber: 404 }] })
        const warnings: Array<string> = []
        const sync = yield* GitHubSync.make({ runId: "r2", plan: p, github, steps: Steps.memory().service, debounceMs: 20, onWarning: (w) => warnings.push(w) })
        yield* sync.progress.publish(started(1))
        yield* requestsAfter(fake, 0, 2)
        yield* Effect.sleep("100 millis")
        assert.deepStrictEqual(warnings.filter((w) => w.includes("#404")).length, warnings.length)
        assert.isAtLeast(warnings.length, 1)
        // Parked until the final flush: no request per tick.
        const count = fake.state.requests.length
        yield* Effect.sleep("150 millis")
        assert.strictEqual(fake.state.requests.length, count)
      })
    ))
})
