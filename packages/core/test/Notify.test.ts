/**
 * Notifications in the engine: `notify:` as the plan and `braid.config.yaml` give it (strict:
 * every unknown field and bad value a problem at its path), the desktop rule, and delivery —
 * which run events notify whom, once each, a replayed settling not again, a failed notifier
 * reported and nothing else, everything queued delivered by `drain`.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Notify from "../src/present/Notify.js"
import type * as Progress from "../src/ports/Progress.js"
import * as Plan from "../src/run/Plan.js"
import * as RunReport from "../src/present/RunReport.js"

const base = {
  featureName: "notes",
  tasks: [{ id: "a", title: "A", stream: "s1" }],
  streams: [{ name: "s1", type: "api" }]
}

const problemsOf = (input: unknown, config?: Plan.ConfigFile) =>
  Plan.decode(input, "test.yaml", undefined, config).pipe(
    Effect.flip,
    Effect.map((e) => e.problems.map((p) => `${p.path}: ${p.message}`))
  )

const tmp = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-notify-core-")))

describe("notify: in the plan", () => {
  it.effect("commands and the desktop, the config's first; every event and 10 s by default", () =>
    Effect.gen(function*() {
      const config = new Plan.ConfigFile({ notify: [new Plan.NotifierSettings({ desktop: true, on: ["finished"] })] })
      const plan = yield* Plan.decode({
        ...base,
        notify: [{ command: "notify-me --channel builds" }, { name: "pager", command: ["page", "-q"], on: ["paused", "conflict-left"], timeoutSeconds: 2 }, { desktop: false }]
      }, "test.yaml", undefined, config)
      assert.deepStrictEqual(plan.notify, [
        { _tag: "Desktop", name: "desktop", timeoutMs: 10_000, on: ["finished"] },
        { _tag: "Command", name: "notify-me --channel builds", argv: ["notify-me", "--channel", "builds"], timeoutMs: 10_000, on: Plan.NotifyEvent.literals },
        { _tag: "Command", name: "pager", argv: ["page", "-q"], timeoutMs: 2_000, on: ["paused", "conflict-left"] }
      ])
      assert.deepStrictEqual(plan.warnings, [])
      assert.deepStrictEqual((yield* Plan.decode(base)).notify, [])
    }))

  it.effect("an unknown field, a bad event, an empty on, neither or both of command and desktop: each a problem at its path", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* problemsOf({ ...base, notify: [{ command: ["x"], onn: ["finished"] }, { desktop: true, channel: "builds" }] }),
        [
          `notify[0].onn: unknown field "onn" — did you mean "on"? (a notifier has name, command, desktop, on, timeoutSeconds)`,
          `notify[1].channel: unknown field "channel" (a notifier has name, command, desktop, on, timeoutSeconds)`
        ]
      )
      assert.deepStrictEqual(yield* problemsOf({ ...base, notify: [{ command: ["x"], on: ["finishd"] }] }), [
        `notify[0].on[0]: expected a list of events (review-needed, paused, conflict-left, finished, pull-request), got "finishd"`
      ])
      assert.deepStrictEqual(yield* problemsOf({ ...base, notify: [{ desktop: "yes" }] }), [`notify[0].desktop: expected true or false, got "yes"`])
      assert.deepStrictEqual(yield* problemsOf({ ...base, notify: { command: ["x"] } }), [
        `notify: expected a list of notifiers ({ command: [program, args…] } or { desktop: true }), got {"command":["x"]}`
      ])
      assert.deepStrictEqual(
        yield* problemsOf({ ...base, notify: [{ on: ["finished"] }, { command: ["x"], desktop: true }, { command: "", on: [] }] }),
        [
          "notify[0]: a notifier needs command: [program, args…] or desktop: true",
          "notify[1]: give command or desktop, not both (two notifiers are two entries)",
          "notify[2].on: lists no event: name at least one, or leave on out for every event",
          "notify[2].command: command is empty"
        ]
      )
      // The config file's notifiers are checked with the plan, named as the config's.
      const config = new Plan.ConfigFile({ notify: [new Plan.NotifierSettings({})] })
      assert.deepStrictEqual(yield* problemsOf(base, config), ["braid.config.yaml: notify[0]: a notifier needs command: [program, args…] or desktop: true"])
    }))

  it.effect("braid.config.yaml: an unknown notifier field refuses it, naming the file and the field", () =>
    Effect.gen(function*() {
      const dir = tmp()
      fs.writeFileSync(path.join(dir, "braid.config.yaml"), "notify:\n  - command: [x]\n    when: [finished]\n")
      const error = yield* Effect.flip(Plan.readConfig(dir))
      assert.strictEqual(error.source, path.join(dir, "braid.config.yaml"))
      assert.deepStrictEqual(error.problems, [{ path: "notify[0].when", message: `unknown field "when" (a notifier has name, command, desktop, on, timeoutSeconds)` }])
      fs.writeFileSync(path.join(dir, "braid.config.yaml"), "notify:\n  - desktop: true\n")
      assert.deepStrictEqual((yield* Plan.readConfig(dir)).notify?.map((n) => n.desktop), [true])
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("the desktop rule", () => {
  it("never under CI or without a display; notify-send on Linux, osascript on macOS, when on PATH", () => {
    const dir = tmp()
    for (const name of ["notify-send", "osascript"]) fs.writeFileSync(path.join(dir, name), "#!/bin/sh\n", { mode: 0o755 })
    const env = { PATH: dir, DISPLAY: ":0" }
    assert.deepStrictEqual(Notify.desktopArgv("t", "b", "linux", env), { _tag: "Argv", argv: ["notify-send", "--app-name=braid", "t", "b"] })
    assert.deepStrictEqual(Notify.desktopArgv("t", "b", "linux", { ...env, CI: "true" }), { _tag: "None", reason: "CI is set" })
    assert.deepStrictEqual(Notify.desktopArgv("t", "b", "linux", { ...env, CI: "1" }), { _tag: "None", reason: "CI is set" })
    assert.strictEqual(Notify.desktopArgv("t", "b", "linux", { ...env, CI: "false" })._tag, "Argv")
    assert.strictEqual(Notify.desktopArgv("t", "b", "linux", { ...env, CI: "" })._tag, "Argv")
    assert.deepStrictEqual(Notify.desktopArgv("t", "b", "linux", { PATH: dir }), { _tag: "None", reason: "no display (DISPLAY, WAYLAND_DISPLAY)" })
    assert.strictEqual(Notify.desktopArgv("t", "b", "linux", { PATH: dir, WAYLAND_DISPLAY: "wayland-0" })._tag, "Argv")
    assert.deepStrictEqual(Notify.desktopArgv("t", "b", "linux", { DISPLAY: ":0", PATH: os.tmpdir() }), { _tag: "None", reason: "notify-send is not installed" })
    const mac = Notify.desktopArgv("a \"title\"", "it's done", "darwin", { PATH: dir })
    // The texts are the script's arguments, never part of its source.
    assert.deepStrictEqual(mac, {
      _tag: "Argv",
      argv: ["osascript", "-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)", "-e", "end run", "a \"title\"", "it's done"]
    })
    assert.strictEqual(Notify.desktopArgv("t", "b", "darwin", { PATH: dir, SSH_CONNECTION: "1.2.3.4 22 5.6.7.8 22" })._tag, "None")
    assert.strictEqual(Notify.desktopArgv("t", "b", "win32", env)._tag, "None")
    fs.rmSync(dir, { recursive: true, force: true })
  })
})

describe("delivery", () => {
  const at = "2026-12-05T10:00:00.000Z"
  const settled = (taskId: string, status: RunReport.TaskStatus): Progress.RunEvent => ({
    _tag: "TaskSettled",
    at,
    stream: "s1",
    taskId,
    status,
    score: 40,
    error: null,
    durationMs: 1,
    head: null
  })

  it.scopedLive("each event to the notifiers that hear it, once; a replayed settling not again; a failure reported; drain delivers everything", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const log = (name: string) => path.join(dir, `${name}.log`)
      const record = (name: string) => ["sh", "-c", `cat >> ${log(name)}; echo >> ${log(name)}; printf '%s\\n' "$BRAID_EVENT" >> ${log(name)}.env`]
      const plan = yield* Plan.decode({
        ...base,
        tasks: [{ id: "a", title: "A", stream: "s1" }, { id: "b", title: "B", stream: "s1" }, { id: "c", title: "C", stream: "s1" }],
        notify: [
          { name: "all", command: record("all") },
          { name: "review", command: record("review"), on: ["review-needed"] },
          { name: "broken", command: ["sh", "-c", "exit 7"], on: ["finished"] }
        ]
      })
      const failures: Array<string> = []
      const notifications = yield* Notify.make({
        runId: "r1",
        plan,
        reportPath: "/runs/r1/report.json",
        env: {},
        platform: "linux",
        told: new Set(["b"]),
        onFailure: (e) => Effect.sync(() => void failures.push(`${e.notifier} ${e.event}: ${e.message}`))
      })
      const publish = notifications.progress.publish
      yield* publish(settled("a", "completed"))
      yield* publish(settled("b", "needs-review"))
      yield* publish(settled("c", "needs-review"))
      yield* publish({ _tag: "ConflictSettled", at, streams: ["s1", "s2"], paths: ["x.ts"], strategy: "manual", outcome: "resolved", commit: "c", detail: "" })
      yield* publish({ _tag: "ConflictSettled", at, streams: ["s1", "s2"], paths: ["x.ts"], strategy: "manual", outcome: "blocked", commit: null, detail: "" })
      yield* publish({ _tag: "Landed", at, target: "main", commit: "abc", previous: "def", mode: "pr", remote: "origin", pullRequest: "https://example.test/pull/1" })
      yield* notifications.notify("paused", { message: "run r1 paused: budget" })
      yield* notifications.drain
      const lines = (name: string) => fs.existsSync(log(name)) ? fs.readFileSync(log(name), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)) : []
      const all = lines("all")
      assert.deepStrictEqual(all.map((n) => n.kind), ["review-needed", "conflict-left", "pull-request", "paused"])
      assert.deepStrictEqual(all[0], {
        v: 1,
        kind: "review-needed",
        at: all[0].at,
        runId: "r1",
        project: "project",
        feature: "notes",
        stream: "s1",
        taskId: "c",
        outcome: null,
        landed: null,
        pullRequest: null,
        message: "task c (C) needs a person's review: score 40 below 80",
        report: "/runs/r1/report.json"
      })
      assert.strictEqual(all[2].pullRequest, "https://example.test/pull/1")
      // The same payload in BRAID_EVENT.
      assert.deepStrictEqual(fs.readFileSync(`${log("all")}.env`, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)), all)
      assert.deepStrictEqual(lines("review").map((n) => n.taskId), ["c"])
      assert.deepStrictEqual(failures, [])
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("finished is delivered when the scope closes; a failing notifier is reported and the effect still succeeds", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const log = path.join(dir, "finished.log")
      const plan = yield* Plan.decode({
        ...base,
        notify: [
          { name: "slow", command: ["sh", "-c", `sleep 0.3; cat >> ${log}`] },
          { name: "broken", command: ["sh", "-c", "echo refused >&2; exit 7"], on: ["finished"] },
          { name: "missing", command: ["braid-no-such-notifier"] }
        ]
      })
      const failures: Array<string> = []
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const notifications = yield* Notify.make({
          runId: "r2",
          plan,
          reportPath: "/r2.json",
          env: {},
          platform: "linux",
          onFailure: (e) => Effect.sync(() => void failures.push(`${e.notifier} ${e.event}: ${e.message}`))
        })
        yield* notifications.notify("finished", { outcome: "failed", landed: false, message: "run r2 failed" })
        // Not drained here: the scope's closing does it.
      })))
      assert.isTrue(Exit.isSuccess(exit))
      const told = JSON.parse(fs.readFileSync(log, "utf8"))
      assert.deepInclude(told, { kind: "finished", outcome: "failed", landed: false, runId: "r2" })
      assert.sameMembers(failures, ["broken finished: exited with 7: refused", "missing finished: could not start braid-no-such-notifier: not found"])
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeContext.layer)))
})
