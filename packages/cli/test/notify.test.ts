/**
 * Notifications on the built `braid`, on real runs of script agents: each event kind runs each
 * notifier that hears it once, with the event's JSON on stdin and in `BRAID_EVENT` (a notifier
 * script appends both to a file); `on:` filters; `braid.config.yaml`'s notifiers run beside the
 * plan's; a notifier that fails (exit 1, not there, hanging past its timeout) is a warning and
 * leaves the run's outcome and exit code alone; the desktop notifier is off under CI and called
 * once without it; an unknown field in a notifier refuses the plan, naming it. The plan's rules
 * and the delivery's in detail: core's `Notify.test.ts`.
 */
// By path: the testkit's index would load the engine into the test worker for nothing.
import * as FakeGitHub from "@braid/testkit/FakeGitHub"
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { braid, git } from "./support/Braid.js"

/** Appends what it is told (stdin, then $BRAID_EVENT) as one JSON line to the file named by its argument. */
const recorder = `
const fs = require("node:fs")
let stdin = ""
process.stdin.on("data", (d) => (stdin += d))
process.stdin.on("end", () => fs.appendFileSync(process.argv[2], JSON.stringify({ stdin: JSON.parse(stdin), env: JSON.parse(process.env.BRAID_EVENT) }) + "\\n"))
`

/** A temporary folder with a repository (`repo`, on main) and the recorder; `told(name)` reads what recorder `name` was told. */
const setUp = () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-notify-")))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(path.join(repo, "src"), { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "src", "routes.js"), "module.exports = ['home']\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const program = path.join(dir, "recorder.cjs")
  fs.writeFileSync(program, recorder)
  const record = (name: string) => [process.execPath, program, path.join(dir, `${name}.log`)]
  const told = (name: string): Array<Record<string, any>> => {
    const file = path.join(dir, `${name}.log`)
    if (!fs.existsSync(file)) return []
    return fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => {
      const { env, stdin } = JSON.parse(l)
      // The same payload both ways.
      assert.deepStrictEqual(env, stdin)
      return stdin
    })
  }
  const writePlan = (plan: Record<string, unknown>) => {
    const file = path.join(dir, "plan.json")
    fs.writeFileSync(file, JSON.stringify({ projectName: "shop", featureName: "notes", ...plan }))
    return file
  }
  /** A fake `notify-send` first on PATH, logging its arguments. */
  const fakeDesktop = () => {
    const bin = path.join(dir, "bin")
    fs.mkdirSync(bin, { recursive: true })
    fs.writeFileSync(path.join(bin, "notify-send"), `#!/bin/sh\necho "$@" >> ${JSON.stringify(path.join(dir, "desktop.log"))}\n`, { mode: 0o755 })
    return { PATH: `${bin}${path.delimiter}${process.env.PATH}` }
  }
  const desktopCalls = () => {
    const file = path.join(dir, "desktop.log")
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []
  }
  return { dir, repo, record, told, writePlan, fakeDesktop, desktopCalls, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

const writes = (file: string, content: string) => [process.execPath, "-e", `require('fs').writeFileSync(${JSON.stringify(file)}, ${JSON.stringify(content)})`]

const reportOf = (repo: string, runId: string) => JSON.parse(fs.readFileSync(path.join(repo, ".braid", "runs", runId, "report.json"), "utf8"))

describe("notifications", () => {
  it("finished (failed): every notifier that hears it runs once with the event's JSON; on: filters; the config's run too; failing notifiers are warnings and the exit code stays the run's; the desktop is off under CI", async () => {
    const f = setUp()
    try {
      fs.writeFileSync(path.join(f.dir, "braid.config.yaml"), `notify:\n  - command: ${JSON.stringify(f.record("config"))}\n    on: [finished]\n`)
      const plan = f.writePlan({
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "api-1", title: "broken", stream: "api", run: ["sh", "-c", "echo cannot; exit 1"] }],
        notify: [
          { command: f.record("all") },
          { command: f.record("review"), on: ["review-needed"] },
          { name: "exits", command: ["sh", "-c", "echo no channel >&2; exit 1"] },
          { command: ["braid-notify-not-installed-here"] },
          { name: "hangs", command: ["sleep", "30"], timeoutSeconds: 1 },
          { desktop: true }
        ]
      })
      const run = await braid(["run", plan, "--repo", f.repo, "--events"], { CI: "true", DISPLAY: ":99", ...f.fakeDesktop() })
      // The run's own result: what the plan gives without notifiers (a failed task: exit 1).
      assert.strictEqual(run.code, 1, run.stderr)
      const events = run.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
      const runId = events.find((e) => e._tag === "RunStarted").runId as string
      const report = reportOf(f.repo, runId)
      assert.strictEqual(report.status, "failed")
      assert.isFalse(report.mergeResult.landed)

      const [finished, ...more] = f.told("all")
      assert.lengthOf(more, 0)
      assert.deepInclude(finished, {
        v: 1,
        kind: "finished",
        runId,
        project: "shop",
        feature: "notes",
        stream: null,
        taskId: null,
        outcome: "failed",
        landed: false,
        pullRequest: null,
        report: path.join(f.repo, ".braid", "runs", runId, "report.json")
      })
      assert.match(finished!.message, new RegExp(`^run ${runId} failed; not landed: `))
      assert.deepStrictEqual(f.told("config").map((n) => n.kind), ["finished"])
      assert.lengthOf(f.told("review"), 0)
      // Under CI the desktop shows nothing, and that is no failure.
      assert.lengthOf(f.desktopCalls(), 0)

      // Each failure: a warning line and a NotificationFailed event; nothing else.
      const failures = events.filter((e) => e._tag === "NotificationFailed")
      assert.sameMembers(failures.map((e) => e.notifier), ["exits", "braid-notify-not-installed-here", "hangs"])
      assert.isTrue(failures.every((e) => e.event === "finished"))
      assert.include(run.stderr, "braid: warning: notifier exits (finished) failed: exited with 1: no channel")
      assert.include(run.stderr, "braid: warning: notifier braid-notify-not-installed-here (finished) failed: could not start braid-notify-not-installed-here: not found")
      assert.include(run.stderr, "braid: warning: notifier hangs (finished) failed: ran past its 1 s and was killed")
    } finally {
      f.cleanup()
    }
  }, 60_000)

  it("review-needed and conflict-left once each, then finished with the run's outcome; the desktop is called once for it without CI, with a display", async () => {
    const f = setUp()
    try {
      const plan = f.writePlan({
        conflictStrategy: "manual",
        streams: [{ name: "api", type: "api", priority: 1 }, { name: "ui", type: "ui", priority: 2 }, { name: "docs", type: "docs" }],
        tasks: [
          { id: "api-1", title: "checkout route", stream: "api", run: writes("src/routes.js", "module.exports = ['home', 'checkout']\n") },
          { id: "ui-1", title: "cart route", stream: "ui", run: writes("src/routes.js", "module.exports = ['home', 'cart']\n") },
          { id: "docs-1", title: "guide", stream: "docs", run: writes("GUIDE.md", "guide\n"), checks: [["sh", "-c", "echo the guide is too short; exit 1"]] }
        ],
        notify: [{ command: f.record("all") }, { command: f.record("people"), on: ["review-needed", "conflict-left"] }, { desktop: true, on: ["finished"] }]
      })
      const run = await braid(["run", plan, "--repo", f.repo, "-q", "--json"], { CI: "", DISPLAY: ":99", WAYLAND_DISPLAY: "", ...f.fakeDesktop() })
      const report = JSON.parse(run.stdout)
      assert.strictEqual(run.code, 1, run.stderr)
      const told = f.told("all")
      assert.deepStrictEqual(told.map((n) => n.kind).sort(), ["conflict-left", "finished", "review-needed"])
      const review = told.find((n) => n.kind === "review-needed")!
      assert.deepInclude(review, { stream: "docs", taskId: "docs-1", outcome: null, runId: report.runId })
      assert.match(review.message, /^task docs-1 \(guide\) needs a person's review/)
      const conflict = told.find((n) => n.kind === "conflict-left")!
      assert.include(conflict.message, "src/routes.js")
      assert.include(conflict.message, "left for a person")
      const finished = told.find((n) => n.kind === "finished")!
      assert.deepInclude(finished, { outcome: report.status, landed: false })
      assert.strictEqual(report.status, "blocked")
      assert.deepStrictEqual(f.told("people").map((n) => n.kind).sort(), ["conflict-left", "review-needed"])
      const calls = f.desktopCalls()
      assert.lengthOf(calls, 1)
      assert.strictEqual(calls[0], `--app-name=braid braid · finished notes: run ${report.runId} blocked; not landed: ${report.mergeResult.reason}`)
    } finally {
      f.cleanup()
    }
  }, 60_000)

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
        notify: [{ command: f.record("all"), on: ["pull-request", "finished"] }]
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
    } finally {
      await github.close()
      f.cleanup()
    }
  }, 60_000)

  it("a notifier with an unknown field refuses the plan, naming it (the rest of the rules: core's Notify.test.ts)", async () => {
    const f = setUp()
    try {
      const plan = f.writePlan({
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "api-1", title: "one", stream: "api", run: ["true"] }],
        notify: [{ command: ["x"], onn: ["finished"] }, { command: ["y"], channel: "builds" }]
      })
      const refused = await braid(["run", plan, "--repo", f.repo])
      assert.strictEqual(refused.code, 2, refused.stderr)
      assert.include(refused.stderr, `notify[0].onn: unknown field "onn" — did you mean "on"?`)
      assert.include(refused.stderr, `notify[1].channel: unknown field "channel"`)
      assert.notInclude(refused.stderr, "    at ")
      assert.isFalse(fs.existsSync(path.join(f.repo, ".braid", "runs")) && fs.readdirSync(path.join(f.repo, ".braid", "runs")).length > 0)
    } finally {
      f.cleanup()
    }
  }, 60_000)
})
