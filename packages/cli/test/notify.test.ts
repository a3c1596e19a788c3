/**
 * Notifications on the built `braid`, on real runs of script agents: each event kind runs each
 * notifier that hears it once, with the event's JSON on stdin and in `BRAID_EVENT` (a notifier
 * script appends both to a file); `on:` filters; `braid.config.yaml`'s notifiers run beside the
 * plan's; a notifier that fails (exit 1, not there, hanging past its timeout) is a warning and
 * leaves the run's outcome and exit code alone; the desktop notifier is off under CI and called
 * once without it; an unknown field in a notifier refuses the plan, naming it. Paused and the
 * pull request: `notify-landing.test.ts`; the plan's rules and the delivery in detail: core's
 * `Notify.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { braid } from "./support/Braid.js"
import { reportOf, setUp, writes } from "./support/Notify.js"

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
