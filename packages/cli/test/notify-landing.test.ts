/**
 * Notifications on the built `braid` as a run pauses and lands: paused by the budget (once, with
 * how to continue), resumed with more and finished (landed) once, paused not told again; the
 * pull request opened by `--land pr` on a fake GitHub, then finished with its URL. The other
 * events: `notify.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
// By path: the testkit's index would load the engine into the test worker for nothing.
import * as FakeGitHub from "@braid/testkit/FakeGitHub"
import { braid, git } from "./support/Braid.js"
import { setUp, writes } from "./support/Notify.js"

describe("notifications as a run pauses and lands", () => {
  it("paused by the budget: paused once, with how to continue; resumed with more, finished (landed) once and paused not again", async () => {
    const f = setUp()
    try {
      const agent = path.join(f.dir, "agent.cjs")
      fs.writeFileSync(
        agent,
        `require("node:fs").writeFileSync(process.argv[2] + ".txt", "done\\n")\nconsole.log(JSON.stringify({ summary: "written", usage: { inputTokens: 1000, outputTokens: 200, costUsd: 0.5 } }))\n`
      )
      const plan = f.writePlan({
        agent: "command",
        agents: { command: { command: [process.execPath, agent], args: ["{taskId}"], timeoutSeconds: 30 } },
        budget: { usd: 0.4 },
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "api-1", title: "one", stream: "api" }, { id: "api-2", title: "two", stream: "api" }],
        notify: [{ command: f.record("all") }]
      })
      const run = await braid(["run", plan, "--repo", f.repo])
      assert.strictEqual(run.code, 75, run.stderr)
      const told = f.told("all")
      assert.deepStrictEqual(told.map((n) => n.kind), ["paused"])
      assert.match(told[0]!.message, /paused: .*budget is reached.*--budget/)

      const resumed = await braid(["resume", "--repo", f.repo, "--budget", "10usd", "-q"])
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      const after = f.told("all")
      assert.deepStrictEqual(after.map((n) => n.kind), ["paused", "finished"])
      assert.deepInclude(after[1], { runId: told[0]!.runId, outcome: "succeeded", landed: true })
      assert.match(after[1]!.message, new RegExp(`^run ${told[0]!.runId} succeeded; landed [0-9a-f]{10} on main$`))
    } finally {
      f.cleanup()
    }
  }, 60_000)

  it("pull-request once the pull request is open (--land pr on a fake GitHub), and finished with its URL", async () => {
    const f = setUp()
    const TOKEN = "ghp_braidNOTIFYtest0000000000000000000000"
    const github = await FakeGitHub.start({ repo: "acme/shop", issues: [], token: TOKEN })
    try {
      const bare = path.join(f.dir, "origin.git")
      execFileSync("git", ["init", "-q", "--bare", "-b", "main", bare])
      git(f.repo, "remote", "add", "origin", bare)
      git(f.repo, "push", "-q", "origin", "main")
      const plan = f.writePlan({
        githubRepo: "acme/shop",
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "api-1", title: "checkout route", stream: "api", run: writes("src/routes.js", "module.exports = ['home', 'checkout']\n") }],
        notify: [{ command: f.record("all"), on: ["pull-request", "finished"] }, { name: "down", command: ["sh", "-c", "exit 1"], on: ["finished"] }]
      })
      const run = await braid(["run", plan, "--repo", f.repo, "--land", "pr", "-q"], { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: github.url, BRAID_GITHUB_DEBOUNCE_MS: "0" })
      assert.strictEqual(run.code, 0, run.stderr)
      assert.lengthOf(github.state.pulls, 1)
      const url = github.state.pulls[0]!.html_url
      const told = f.told("all")
      assert.deepStrictEqual(told.map((n) => n.kind), ["pull-request", "finished"])
      assert.deepInclude(told[0], { pullRequest: url, outcome: null })
      assert.include(told[0]!.message, url)
      // Proposed, not landed: the pull request lands it.
      assert.deepInclude(told[1], { pullRequest: url, outcome: "succeeded", landed: false })
      // Quiet, a failed notifier is still a warning on stderr.
      assert.include(run.stderr, "braid: warning: notifier down (finished) failed: exited with 1")
    } finally {
      await github.close()
      f.cleanup()
    }
  }, 60_000)

})
