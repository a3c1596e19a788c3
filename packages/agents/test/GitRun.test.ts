/**
 * Whole runs over real git repositories with the scripted harness: each conflict strategy's
 * outcome, a failed verification stopping the landing, and what is left behind.
 */
import { Agent, GitWorkspace, Orchestrator, Plan, Progress } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

const tempRepo = Effect.acquireRelease(
  Effect.sync(() => {
    const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-gitrun-")))
    git(repo, "init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, "routes.txt"), "health\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo
  }),
  (repo) => Effect.sync(() => fs.rmSync(repo, { recursive: true, force: true }))
)

/** The folder of run `runId`'s checkouts, as the run recorded it (outside the repository). */
const checkoutsOf = (repo: string, runId = "r1") =>
  fs.readFileSync(path.join(repo, ".braid", "runs", runId, GitWorkspace.WORKTREES_RECORD), "utf8").trim()

const planOf = (extra: Record<string, unknown>) =>
  Plan.decode({
    streams: [{ name: "api", type: "api", priority: 1 }, { name: "ui", type: "ui", priority: 2 }],
    tasks: [{ id: "api-1", title: "checkout route", stream: "api" }, { id: "ui-1", title: "page route", stream: "ui" }],
    ...extra
  })

/** Both streams add a different line at the same place: a real textual conflict. */
const script: Harness.Script = {
  tasks: {
    "api-1": [{ files: { "routes.txt": "health\ncheckout\n", "api.txt": "api\n" } }],
    "ui-1": [{ files: { "routes.txt": "health\npage\n", "ui.txt": "ui\n" } }]
  }
}

const run = (repo: string, extra: Record<string, unknown>, harnessScript: Harness.Script = script) =>
  Effect.gen(function*() {
    const plan = yield* planOf(extra)
    const harness = yield* Harness.make(harnessScript)
    const report = yield* Orchestrator.run(plan, { runId: "r1" }).pipe(
      Effect.provide(Layer.mergeAll(harness.layer, GitWorkspace.layer({ repo }), Progress.layerSilent)),
      Effect.provide(NodeContext.layer)
    )
    return { report, harness }
  })

describe("runs over git", () => {
  it.scopedLive("agent strategy: the resolver's edit is committed as the merge and lands", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const { harness, report } = yield* run(repo, { conflictStrategy: "agent" })
      assert.strictEqual(report.status, "succeeded")
      assert.deepStrictEqual(report.conflictReport.overlaps.map((o) => o.paths), [["routes.txt"]])
      const conflict = report.conflictReport.conflicts[0]!
      assert.deepStrictEqual([conflict.streams, conflict.paths, conflict.outcome], [["ui", "api"], ["routes.txt"], "resolved"])
      assert.deepStrictEqual(harness.calls.resolve.map((c) => c.paths), [["routes.txt"]])
      assert.strictEqual(fs.readFileSync(path.join(repo, "routes.txt"), "utf8"), "health\ncheckout\npage\n")
      assert.strictEqual(git(repo, "rev-parse", "main"), report.mergeResult.commit)
      // The resolution commit is the merge of ui, and it is on main.
      assert.match(git(repo, "log", "-1", "--format=%s", conflict.commit!), /merge stream ui \(conflicts resolved\)/)
      // Landed: the run's worktrees are gone, the user's checkout is clean.
      assert.deepStrictEqual(git(repo, "worktree", "list", "--porcelain").match(/^worktree /gm)?.length, 1)
      assert.strictEqual(git(repo, "status", "--porcelain"), "")
    }))

  it.scopedLive("priority strategy: the higher-priority stream's hunk wins", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const { harness, report } = yield* run(repo, { conflictStrategy: "priority" })
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.conflictReport.conflicts[0]!.outcome, "resolved")
      assert.strictEqual(harness.calls.resolve.length, 0)
      assert.strictEqual(fs.readFileSync(path.join(repo, "routes.txt"), "utf8"), "health\ncheckout\n")
      assert.strictEqual(fs.readFileSync(path.join(repo, "ui.txt"), "utf8"), "ui\n")
    }))

  it.scopedLive("manual strategy: the run stops blocked, the conflict is left in the integration worktree", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const before = git(repo, "rev-parse", "main")
      const { report } = yield* run(repo, { conflictStrategy: "manual" })
      assert.strictEqual(report.status, "blocked")
      assert.isFalse(report.mergeResult.landed)
      assert.strictEqual(git(repo, "rev-parse", "main"), before)
      const integration = path.join(checkoutsOf(repo), "_integration")
      assert.match(fs.readFileSync(path.join(integration, "routes.txt"), "utf8"), /^<<<<<<< /m)
      assert.isTrue(report.nextSteps.some((s) => s.includes(integration) && s.includes("routes.txt")))
      // Nothing is removed when a run stops blocked.
      assert.include(git(repo, "branch", "--list", "braid/r1/*"), "braid/r1/api")
    }))

  it.scopedLive("a failed verification stops the landing and keeps the integration for a look", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const before = git(repo, "rev-parse", "main")
      const { report } = yield* run(repo, {
        verify: [["node", "-e", "process.exit(require('fs').existsSync('ui.txt') ? 7 : 0)"]]
      }, { tasks: { "api-1": [{ files: { "api.txt": "api\n" } }], "ui-1": [{ files: { "ui.txt": "ui\n" } }] } })
      assert.strictEqual(report.status, "failed")
      assert.deepStrictEqual(report.integrationResult.checks.map((c) => c.exitCode), [7])
      assert.isFalse(report.mergeResult.landed)
      assert.strictEqual(git(repo, "rev-parse", "main"), before)
      assert.strictEqual(git(repo, "rev-parse", "braid/r1/integration"), report.integrationResult.commit)
      assert.isTrue(fs.existsSync(path.join(checkoutsOf(repo), "_integration", "ui.txt")))
    }))

  it.scopedLive("a task depending on another stream's task sees its work, which stays that stream's change", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      let seen: string | undefined
      const harness = yield* Harness.make({
        tasks: { "api-1": [{ files: { "db.txt": "orders\n" } }], "ui-1": [{ files: { "ui.txt": "ui\n" } }] }
      })
      const plan = yield* Plan.decode({
        streams: [{ name: "api", type: "api" }, { name: "ui", type: "ui" }],
        tasks: [
          { id: "api-1", title: "db", stream: "api" },
          { id: "ui-1", title: "ui", stream: "ui", dependsOn: ["api-1"] }
        ]
      })
      const spy = Layer.succeed(
        Agent.AgentRegistry,
        {
          check: () => Effect.void,
          forStream: () => ({
            name: "spy",
            attempt: (request) =>
              Effect.flatMap(request.files.read("db.txt"), (text) => {
                if (request.task.id === "ui-1") seen = text
                return harness.agent.attempt(request)
              }).pipe(Effect.orDie)
          })
        }
      )
      const report = yield* Orchestrator.run(plan, { runId: "r1" }).pipe(
        Effect.provide(Layer.mergeAll(harness.layer, spy, GitWorkspace.layer({ repo }), Progress.layerSilent)),
        Effect.provide(NodeContext.layer)
      )
      assert.strictEqual(seen, "orders\n")
      assert.deepStrictEqual(report.streamResults.map((s) => [s.streamName, s.changedFiles]), [["api", ["db.txt"]], ["ui", ["ui.txt"]]])
      assert.deepStrictEqual(report.conflictReport.overlaps, [])
      assert.strictEqual(report.status, "succeeded")
    }))
})
