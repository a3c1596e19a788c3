import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as FileRunStore from "../src/FileRunStore.js"
import * as Journal from "../src/Journal.js"
import type * as Progress from "../src/Progress.js"
import * as Replay from "../src/Replay.js"
import * as RunStore from "../src/RunStore.js"
import * as Workspace from "../src/Workspace.js"

const at = "2026-11-24T10:00:00.000Z"
const events: Array<Progress.RunEvent> = [
  { _tag: "RunStarted", at, runId: "r1", streams: ["db", "api"], tasks: 2, base: "b0", target: "main", targetAt: "b0" },
  { _tag: "AttemptStarted", at, stream: "db", taskId: "db-1", attempt: 1 },
  { _tag: "AttemptFinished", at, stream: "db", taskId: "db-1", attempt: 1, commit: "c1", files: ["a.sql"], summary: "did db" },
  {
    _tag: "ReviewRecorded",
    at,
    stream: "db",
    taskId: "db-1",
    attempt: 1,
    score: 90,
    passes: true,
    issues: [],
    suggestions: [],
    reviewer: "checks",
    durationMs: 5,
    inputTokens: 0,
    outputTokens: 0,
    costUsd: 0
  },
  { _tag: "TaskSettled", at, stream: "db", taskId: "db-1", status: "completed", score: 90, error: null, durationMs: 5, head: "c1" },
  { _tag: "AttemptStarted", at, stream: "api", taskId: "api-1", attempt: 1 },
  { _tag: "AttemptFinished", at, stream: "api", taskId: "api-1", attempt: 1, commit: "c2", files: ["api.js"], summary: "did api" }
]
const text = events.map((e, i) => Journal.line(i + 1, e)).join("")

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "braid-journal-"))

describe("Journal", () => {
  it("keys every step by its meaning", () => {
    assert.deepStrictEqual(
      Journal.parse("j", text).pipe(Either.getOrThrow).records.map((r) => r.key),
      ["run", "stream/db/task/db-1/attempt/1", "stream/db/task/db-1/attempt/1", "stream/db/task/db-1/attempt/1", "stream/db/task/db-1", "stream/api/task/api-1/attempt/1", "stream/api/task/api-1/attempt/1"]
    )
  })

  it("ignores a torn last line with a warning", () => {
    const torn = text + text.split("\n")[1]!.slice(0, 25)
    const parsed = Journal.parse("journal.jsonl", torn).pipe(Either.getOrThrow)
    assert.strictEqual(parsed.records.length, events.length)
    assert.match(parsed.warning!, /journal.jsonl:8: ignored a torn last record/)
  })

  it("reports a corrupted middle line with its line number", () => {
    const lines = text.split("\n")
    lines[3] = lines[3]!.replace(/"score":90/, "\"score\":\"ninety\"")
    const broken = Journal.parse("journal.jsonl", lines.join("\n"))
    assert.isTrue(Either.isLeft(broken))
    assert.match(Either.getLeft(broken).pipe((o) => o._tag === "Some" ? o.value.message : ""), /^journal.jsonl:4: corrupt journal record/)
    lines[3] = "{not json"
    const garbage = Journal.parse("journal.jsonl", lines.join("\n"))
    assert.match(Either.getLeft(garbage).pipe((o) => o._tag === "Some" ? o.value.message : ""), /journal.jsonl:4: corrupt journal record \(not valid JSON\)/)
  })

  it("refuses a journal from a newer schema version", () => {
    const newer = text.replace(/^\{"v":1/m, "{\"v\":2")
    const parsed = Journal.parse("journal.jsonl", newer)
    const error = Either.getLeft(parsed).pipe((o) => o._tag === "Some" ? o.value : undefined)
    assert.strictEqual(error?._tag, "JournalTooNew")
    assert.match(error!.message, /journal.jsonl:1: journal schema version 2 is newer than this braid understands \(1\)/)
  })

  it("replays settled tasks and an attempt committed but not reviewed", () => {
    const state = Replay.replay(Journal.parse("j", text).pipe(Either.getOrThrow).records)
    assert.deepStrictEqual([...state.settled.keys()], ["db-1"])
    assert.strictEqual(state.settled.get("db-1")!.quality!.score, 90)
    assert.strictEqual(state.settledAt.get("db-1"), "c1")
    assert.deepStrictEqual(state.pending.get("api-1")?.change.commit, "c2")
    assert.strictEqual(state.inFlight.size, 0)
    assert.deepStrictEqual(state.progress, { settled: 1, total: 2 })
  })
})

describe("FileRunStore", () => {
  const manifest = (runId: string) =>
    new RunStore.RunManifest({ runId, createdAt: at, planSource: "/p/plan.yaml", planBaseDir: "/p", options: { land: true } })

  it.scoped("keeps the plan as given and an append-only journal that survives reopening", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "tasks: []\n# exactly as given\n")
      const writer = yield* store.journal("r1")
      // Concurrent appends are group-committed, in order.
      yield* Effect.forEach(events.slice(0, 4), (e) => writer.append(e), { concurrency: "unbounded" })
      const reopened = yield* Effect.scoped(Effect.flatMap(store.journal("r1"), (w) => w.append(events[4]!)))
      void reopened
      const loaded = yield* store.load("r1")
      assert.strictEqual(loaded.planText, "tasks: []\n# exactly as given\n")
      assert.deepStrictEqual(loaded.records.map((r) => r.seq), [1, 2, 3, 4, 5])
      assert.deepStrictEqual(loaded.records.map((r) => r.event._tag), events.slice(0, 5).map((e) => e._tag))
      assert.deepStrictEqual(yield* store.list(), ["r1"])
    }))

  it.scoped("cuts a torn last record off before appending after it", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      const file = path.join(dir, "runs", "r1", "journal.jsonl")
      fs.writeFileSync(file, text + "{\"v\":1,\"seq\":8,\"ke")
      const writer = yield* store.journal("r1")
      yield* writer.append({ _tag: "RunFinished", at, status: "succeeded" })
      const loaded = yield* store.load("r1")
      assert.isUndefined(loaded.warning)
      assert.strictEqual(loaded.records.at(-1)!.event._tag, "RunFinished")
      assert.strictEqual(loaded.records.at(-1)!.seq, 8)
    }))

  it.scoped("refuses a run held by a live process and takes over the lock of a dead one", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      const lock = path.join(dir, "runs", "r1", "lock")
      const live = spawn("sleep", ["30"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => live.kill("SIGKILL")))
      fs.writeFileSync(lock, `${live.pid}\n`)
      const refused = yield* Effect.flip(Effect.scoped(store.lock("r1")))
      assert.strictEqual(refused._tag, "RunLocked")
      assert.match(refused.message, new RegExp(`in use by another braid process \\(pid ${live.pid}\\)`))
      assert.isTrue(yield* store.isLocked("r1"))
      // A process that has exited leaves a stale lock: it is taken over.
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid
      fs.writeFileSync(lock, `${dead}\n`)
      yield* Effect.scoped(Effect.gen(function*() {
        yield* store.lock("r1")
        assert.strictEqual(fs.readFileSync(lock, "utf8").trim(), String(process.pid))
      }))
      assert.isFalse(fs.existsSync(lock))
    }))

  it.effect("a missing run is named clearly", () =>
    Effect.gen(function*() {
      const store = FileRunStore.make(tmp())
      const error = yield* Effect.flip(store.load("nope"))
      assert.strictEqual(error._tag, "RunNotFound")
      assert.match(error.message, /no run "nope" in .*runs/)
    }))
})

describe("Journal encoding", () => {
  it("writes exactly what the Schema encodes, for every kind of event", () => {
    const all: Array<Progress.RunEvent> = [
      ...events,
      { _tag: "ConflictSettled", at, streams: ["a", "b"], paths: ["x"], strategy: "agent", outcome: "resolved", commit: "c", detail: "d" },
      {
        _tag: "VerificationFinished",
        at,
        passed: true,
        commit: "c",
        checks: [new Workspace.CommandResult({ name: "t", argv: ["t"], exitCode: 0, timedOut: false, durationMs: 1, outputTail: "" })]
      },
      { _tag: "Landed", at, target: "main", commit: "c", previous: "p" },
      { _tag: "RunFinished", at, status: "succeeded" },
      { _tag: "RunInterrupted", at, reason: "signal" }
    ]
    const encode = Schema.encodeSync(Schema.parseJson(Journal.Record))
    all.forEach((event, i) => {
      const written = Journal.line(i + 1, event)
      assert.deepStrictEqual(JSON.parse(written), JSON.parse(encode({ v: Journal.SCHEMA_VERSION, seq: i + 1, key: Journal.stepKey(event), event })))
    })
    assert.strictEqual(Journal.parse("j", all.map((e, i) => Journal.line(i + 1, e)).join("")).pipe(Either.getOrThrow).records.length, all.length)
  })
})
