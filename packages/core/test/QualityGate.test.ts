/**
 * The quality gate hands on what the journal records, not copies rebuilt from it: the reviewer
 * is given the attempt as journaled (its commit, the agent's summary, session, model and
 * usage), and the next attempt the review as journaled (its `passes`, findings and every judge
 * sample) — in the run that made them and in a run continued from the journal after it was
 * cut off. Over a real repository.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schema } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Agent from "../src/ports/Agent.js"
import * as ConflictResolver from "../src/ports/ConflictResolver.js"
import * as GitWorkspace from "../src/workspaces/GitWorkspace.js"
import * as Orchestrator from "../src/pipeline/Orchestrator.js"
import * as Plan from "../src/run/Plan.js"
import * as Progress from "../src/ports/Progress.js"
import * as Review from "../src/ports/Review.js"
import * as RunState from "../src/run/RunState.js"
import * as Steps from "../src/ports/Steps.js"

const git = (cwd: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd, encoding: "utf8" }).trim()

const tempRepo = () => {
  const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-gate-")))
  fs.writeFileSync(path.join(repo, "README.md"), "base\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return repo
}

const plan = Plan.decode({
  projectName: "gate",
  featureName: "records",
  qualityThreshold: 80,
  streams: [{ name: "api", type: "api" }],
  tasks: [{ id: "t1", title: "one", stream: "api" }]
}, "gate")

/** The first review: below the threshold, with a judge's finding and its one answer. */
const low = new Review.Review({
  score: 40,
  issues: ["the total is wrong"],
  suggestions: ["add the tax"],
  reviewer: "judge",
  findings: [new Review.Finding({ severity: "major", file: "t1.txt", message: "the total is wrong" })],
  samples: [new Review.JudgeSample({ score: 40, findings: [], suggestions: ["add the tax"], model: "judge-1", inputTokens: 7, outputTokens: 3, costUsd: 0.002 })]
})

interface Seen {
  readonly agent: Array<Agent.AttemptRequest>
  readonly reviewer: Array<Review.ReviewRequest>
}

/** An agent that writes its attempt's file and reports usage; `hold`, when given, keeps attempt 2 at work until interrupted. */
const services = (seen: Seen, hold?: Deferred.Deferred<void>) => {
  const agent: Agent.Service = {
    name: "inline",
    attempt: (request) =>
      Effect.gen(function*() {
        seen.agent.push(request)
        yield* request.files.write("t1.txt", `attempt ${request.attempt}\n`).pipe(Effect.orDie)
        if (hold !== undefined && request.attempt === 2) {
          yield* Deferred.succeed(hold, undefined)
          return yield* Effect.never
        }
        return new Agent.AttemptOutput({
          summary: `wrote attempt ${request.attempt}`,
          sessionId: "session-1",
          model: "model-1",
          turns: 2,
          usage: new Agent.Usage({ inputTokens: 100 * request.attempt, outputTokens: 10, cacheReadTokens: 5, costUsd: 0.01 * request.attempt })
        })
      })
  }
  return Layer.mergeAll(
    Layer.succeed(Agent.AgentRegistry, { check: () => Effect.void, forStream: () => agent }),
    Layer.succeed(Review.Reviewer, {
      review: (request) =>
        Effect.sync(() => {
          seen.reviewer.push(request)
          return request.attempt === 1 ? low : new Review.Review({ score: 100, issues: [], suggestions: [], reviewer: "judge" })
        })
    }),
    Layer.succeed(ConflictResolver.ConflictResolver, { name: "none", resolve: () => Effect.succeed({ summary: "" }) }),
    Progress.layerSilent
  )
}

const runIn = (repo: string, steps: Steps.Service, seen: Seen, hold?: Deferred.Deferred<void>) =>
  Effect.flatMap(plan, (p) =>
    Orchestrator.run(p, { runId: "r1", land: false }).pipe(
      Effect.provide(Layer.merge(services(seen, hold), GitWorkspace.layer({ repo }))),
      Effect.provideService(Steps.Steps, steps),
      Effect.provide(NodeContext.layer)
    ))

const task = RunState.keys.task("api", "t1", 0)
/** The journal's value of `key`, as journaled (encoded). */
const journaled = (journal: ReadonlyArray<Steps.Entry>, key: string) => journal.find((e) => e.key === key)?.value

describe("the quality gate hands on what the journal records", () => {
  it.live("the reviewer gets the attempt as journaled, the next attempt the review as journaled, also after the run was cut off and continued", () =>
    Effect.gen(function*() {
      const repo = tempRepo()
      try {
        // The first run: attempt 1 is reviewed below the threshold, attempt 2 is cut off at work.
        const first: Seen = { agent: [], reviewer: [] }
        const memory = Steps.memory()
        const hold = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(runIn(repo, memory.service, first, hold))
        yield* Deferred.await(hold)
        yield* Fiber.interrupt(fiber)

        const attempt1 = journaled(memory.journal, RunState.keys.attempt(task, 1)) as any
        assert.strictEqual(attempt1.agent.sessionId, "session-1")
        assert.deepStrictEqual(Schema.encodeSync(RunState.AttemptDone)(first.reviewer[0]!.recorded), attempt1)
        const review1 = (journal: ReadonlyArray<Steps.Entry>) => (journaled(journal, RunState.keys.review(task, 1)) as any).quality
        assert.strictEqual(review1(memory.journal).samples.length, 1)
        assert.strictEqual(review1(memory.journal).passes, false)
        const feedback = first.agent[1]!.feedback!
        assert.deepStrictEqual(Schema.encodeSync(RunState.ReviewRecord)(feedback), review1(memory.journal))

        // Continued from the journal: attempt 1 and its review replay; attempt 2 runs with the review read back.
        const second: Seen = { agent: [], reviewer: [] }
        const resumed = Steps.memory(memory.journal)
        const report = yield* runIn(repo, resumed.service, second)
        assert.deepStrictEqual(second.agent.map((r) => r.attempt), [2])
        assert.deepStrictEqual(second.reviewer.map((r) => r.attempt), [2])
        assert.deepStrictEqual(Schema.encodeSync(RunState.ReviewRecord)(second.agent[0]!.feedback!), review1(memory.journal))
        assert.deepStrictEqual(
          Schema.encodeSync(RunState.AttemptDone)(second.reviewer[0]!.recorded),
          journaled(resumed.journal, RunState.keys.attempt(task, 2)) as any
        )
        // The report holds both attempts once, the first with the judge's review as journaled.
        const t1 = report.streamResults[0]!.results[0]!
        assert.strictEqual(t1.status, "completed")
        assert.deepStrictEqual(t1.attempts.map((a) => a.attempt), [1, 2])
        assert.deepStrictEqual(t1.attempts[0]!.review?.samples.map((s) => s.model), ["judge-1"])
        assert.strictEqual(t1.usage?.inputTokens, 300)
        assert.strictEqual(report.usage.inputTokens, 300)
      } finally {
        fs.rmSync(repo, { recursive: true, force: true })
      }
    }), 60_000)
})
