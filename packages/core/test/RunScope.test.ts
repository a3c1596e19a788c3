/**
 * The workspace of a library run is a scoped resource: whatever way `Orchestrator.run` ends —
 * a failed task, an interruption — no worktree or branch is left that the run did not mean
 * to keep; and a stream's worktree exists only while it has work.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
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

const git = (cwd: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd, encoding: "utf8" }).trim()

const tempRepo = () => {
  const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-scope-")))
  fs.writeFileSync(path.join(repo, "README.md"), "base\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return repo
}

const worktrees = (repo: string) =>
  git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree ")).map((l) => l.slice(9)).filter((p) => p !== repo)
/** The folder of run `runId`'s checkouts, as recorded in its run folder (outside the repository). */
const checkouts = (repo: string, runId = "r1") => fs.readFileSync(path.join(repo, ".braid", "runs", runId, "worktrees-dir"), "utf8").trim()
const branches = (repo: string) => git(repo, "branch", "--list", "braid/*", "--format=%(refname:short)").split("\n").filter((l) => l !== "").sort()

const plan = Plan.decode({
  projectName: "scope",
  featureName: "scope",
  maxParallel: 2,
  streams: [{ name: "ok", type: "api" }, { name: "bad", type: "ui" }, { name: "later", type: "docs" }],
  tasks: [
    { id: "ok-1", title: "works", stream: "ok" },
    { id: "bad-1", title: "fails", stream: "bad" },
    { id: "later-1", title: "after ok", stream: "later", dependsOn: ["ok-1"] }
  ]
}, "scope")

/** Agents that write a file; `bad-1` fails; `hold`, when given, keeps `later-1` at work until interrupted. */
const services = (hold?: Deferred.Deferred<void>) => {
  const agent: Agent.Service = {
    name: "inline",
    attempt: (request) =>
      Effect.gen(function*() {
        if (request.task.id === "bad-1") {
          yield* request.files.write("bad.txt", "half done\n")
          return yield* new Agent.AgentFailed({ agent: "inline", taskId: request.task.id, message: "gave up", reason: "failed" })
        }
        yield* request.files.write(`${request.task.id}.txt`, "done\n").pipe(Effect.orDie)
        if (hold !== undefined && request.task.id === "later-1") {
          yield* Deferred.succeed(hold, undefined)
          return yield* Effect.never
        }
        return new Agent.AttemptOutput({ summary: "done" })
      }).pipe(Effect.catchTag("WorkspaceFailed", (e) => Effect.die(e)))
  }
  return Layer.mergeAll(
    Layer.succeed(Agent.AgentRegistry, { check: () => Effect.void, forStream: () => agent }),
    Layer.succeed(Review.Reviewer, {
      review: () => Effect.succeed(new Review.Review({ score: 100, issues: [], suggestions: [], reviewer: "inline" }))
    }),
    Layer.succeed(ConflictResolver.ConflictResolver, { name: "none", resolve: () => Effect.succeed({ summary: "" }) }),
    Progress.layerSilent
  )
}

const runIn = (repo: string, hold?: Deferred.Deferred<void>) =>
  Effect.flatMap(plan, (p) =>
    Orchestrator.run(p, { runId: "r1" }).pipe(
      Effect.provide(Layer.merge(services(hold), GitWorkspace.layer({ repo }))),
      Effect.provide(NodeContext.layer)
    ))

describe("a library run's workspace", () => {
  it.live("after a failed task keeps only the failed stream's worktree, and only branches with work on them", () =>
    Effect.gen(function*() {
      const repo = tempRepo()
      const report = yield* runIn(repo)
      assert.strictEqual(report.status, "failed")
      // The failed stream's worktree stays for a person to look at, with what its agent left.
      assert.deepStrictEqual(worktrees(repo), [path.join(checkouts(repo), "bad")])
      assert.strictEqual(fs.readFileSync(path.join(worktrees(repo)[0]!, "bad.txt"), "utf8"), "half done\n")
      // Branches: the work of ok and later (kept for a retry), and bad's, checked out in its worktree.
      assert.deepStrictEqual(branches(repo), ["braid/r1/bad", "braid/r1/later", "braid/r1/ok"])
      assert.strictEqual(git(repo, "status", "--porcelain"), "")
    }), 60_000)

  it.live("after an interruption keeps no worktree of a stream at work, and only the branches with committed work", () =>
    Effect.gen(function*() {
      const repo = tempRepo()
      const hold = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(runIn(repo, hold))
      yield* Deferred.await(hold)
      // later-1 is at work in its worktree: the run is interrupted there.
      assert.include(worktrees(repo), path.join(checkouts(repo), "later"))
      yield* Fiber.interrupt(fiber)
      // Only the worktree of the stream whose task had failed before: later's is gone.
      assert.deepStrictEqual(worktrees(repo), [path.join(checkouts(repo), "bad")])
      // Branches hold committed work only: ok-1's, ok's work brought into later (later-1 itself was
      // cut off before its commit), and bad's, checked out in its worktree.
      assert.deepStrictEqual(branches(repo), ["braid/r1/bad", "braid/r1/later", "braid/r1/ok"])
      assert.include(git(repo, "ls-tree", "--name-only", "braid/r1/later"), "ok-1.txt")
      assert.notInclude(git(repo, "ls-tree", "--name-only", "braid/r1/later"), "later-1.txt")
      assert.strictEqual(git(repo, "status", "--porcelain"), "")
    }), 60_000)
})
