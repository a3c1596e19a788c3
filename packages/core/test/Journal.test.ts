import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option, Schema } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as FileRunStore from "../src/run/FileRunStore.js"
import * as Journal from "../src/run/Journal.js"
import * as RunState from "../src/run/RunState.js"
import * as RunStore from "../src/ports/RunStore.js"
import * as Steps from "../src/ports/Steps.js"

const at = "2026-11-24T10:00:00.000Z"
const entry = (key: string, value: RunState.Value): Steps.Entry => ({ key, value: Schema.encodeSync(RunState.Value)(value) })
const quality = new RunState.ReviewRecord({ score: 90, passes: true, issues: [], suggestions: [], reviewer: "checks" })
const done = (stream: string, taskId: string, commit: string, files: Array<string>) =>
  new RunState.AttemptDone({
    stream,
    taskId,
    round: 0,
    attempt: 1,
    startedAt: at,
    durationMs: 3,
    commit,
    files,
    summary: `did ${taskId}`,
    inputTokens: 0,
    outputTokens: 0,
    costUsd: 0,
    agent: null
  })
const db = RunState.keys.task("db", "db-1", 0)
const api = RunState.keys.task("api", "api-1", 0)
const ui = RunState.keys.task("ui", "ui-1", 0)
const dbDone = done("db", "db-1", "c1", ["a.sql"])
const dbReview = new RunState.Reviewed({ stream: "db", taskId: "db-1", round: 0, attempt: 1, quality, durationMs: 2 })
const entries: Array<Steps.Entry> = [
  entry("run", new RunState.Started({ runId: "r1", base: "b0", target: "main", targetAt: "b0", streams: ["db", "api", "ui"], tasks: 3, at })),
  entry(RunState.keys.attempt(db, 1), dbDone),
  entry(RunState.keys.review(db, 1), dbReview),
  entry(db, new RunState.Settled({
    stream: "db",
    round: 0,
    head: "c1",
    result: new RunState.TaskRecord({
      taskId: "db-1",
      title: "db-1",
      result: "did db-1",
      quality,
      qualityIterations: 0,
      status: "completed",
      attempts: [RunState.attemptRecord(dbDone, dbReview)],
      durationMs: 5
    })
  })),
  entry(RunState.keys.attempt(api, 1), done("api", "api-1", "c2", ["api.js"])),
  entry(RunState.keys.process(ui, 1, 4242), new RunState.ProcessNoted({ stream: "ui", taskId: "ui-1", round: 0, attempt: 1, pid: 4242, startTime: "9", command: "agent" }))
]
const text = entries.map((e, i) => Journal.line(i + 1, at, e)).join("")

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "braid-journal-"))

describe("Journal", () => {
  it("keys every record by its step", () => {
    assert.deepStrictEqual(
      Journal.parse("j", text).pipe(Either.getOrThrow).records.map((r) => r.key),
      ["run", "stream/db/task/db-1/attempt/1", "stream/db/task/db-1/attempt/1/review", "stream/db/task/db-1", "stream/api/task/api-1/attempt/1", "stream/ui/task/ui-1/attempt/1/process/4242"]
    )
  })

  it("ignores a torn last line with a warning", () => {
    const torn = text + text.split("\n")[1]!.slice(0, 25)
    const parsed = Journal.parse("journal.jsonl", torn).pipe(Either.getOrThrow)
    assert.strictEqual(parsed.records.length, entries.length)
    assert.match(parsed.warning!, /journal.jsonl:7: ignored a torn last record/)
  })

  it("reports a corrupted middle line with its line number", () => {
    const lines = text.split("\n")
    lines[3] = lines[3]!.replace(/"seq":4/, "\"seq\":\"four\"")
    const broken = Journal.parse("journal.jsonl", lines.join("\n"))
    assert.match(Either.getLeft(broken).pipe((o) => o._tag === "Some" ? o.value.message : ""), /^journal.jsonl:4: corrupt journal record/)
    lines[3] = "{not json"
    const garbage = Journal.parse("journal.jsonl", lines.join("\n"))
    assert.match(Either.getLeft(garbage).pipe((o) => o._tag === "Some" ? o.value.message : ""), /journal.jsonl:4: corrupt journal record \(not valid JSON\)/)
  })

  it("drops a corrupt last record that ends in a newline with a warning naming its step, and keeps the rest", () => {
    const lines = text.split("\n")
    lines[5] = lines[5]!.replace("\"seq\":6", "\"seq\":\"six\"")
    const parsed = Journal.parse("journal.jsonl", lines.join("\n")).pipe(Either.getOrThrow)
    assert.strictEqual(parsed.records.length, entries.length - 1)
    assert.strictEqual(
      parsed.warning,
      "journal.jsonl:6: ignored a corrupt last record (seq: Expected number, actual \"six\"); step stream/ui/task/ui-1/attempt/1/process/4242 runs again"
    )
    assert.strictEqual(parsed.kept, lines.slice(0, 5).map((l) => `${l}\n`).join(""))
    // A complete journal is kept as it is.
    assert.isUndefined(Journal.parse("journal.jsonl", text).pipe(Either.getOrThrow).kept)
  })

  it("refuses a corrupt record before the last, naming the line and the command that repairs it", () => {
    const lines = text.split("\n")
    lines[1] = "{not json"
    const error = Either.getLeft(Journal.parse("journal.jsonl", lines.join("\n"), { repair: "braid doctor r1" })).pipe(Option.getOrThrow)
    assert.strictEqual(error._tag, "JournalCorrupt")
    assert.strictEqual(
      error.message,
      "journal.jsonl:2: corrupt journal record (not valid JSON); braid doctor r1 shows what a repair drops, braid doctor r1 --repair drops it (keeping a copy of the journal)"
    )
  })

  it("examines every line: each bad one named with the step it still names, the good ones kept as they were", () => {
    const lines = text.split("\n")
    lines[1] = lines[1]!.slice(0, lines[1]!.indexOf("\"value\""))
    lines[3] = ""
    const examined = Journal.examine("j", `${lines.join("\n")}{"v":2,"seq":7,"at":"x","ke`).pipe(Either.getOrThrow)
    assert.deepStrictEqual(examined.damage.map((d) => [d.line, d.problem, d.key, d.last, d.torn]), [
      [2, "not valid JSON", "stream/db/task/db-1/attempt/1", false, false],
      [4, "an empty line", undefined, false, false],
      [7, "not valid JSON", undefined, true, true]
    ])
    assert.deepStrictEqual(examined.records.map((r) => r.seq), [1, 3, 5, 6])
    assert.strictEqual(examined.kept, [0, 2, 4, 5].map((i) => `${text.split("\n")[i]}\n`).join(""))
  })

  it("refuses a journal from a newer schema version, and names one from an older braid", () => {
    const newer = Either.getLeft(Journal.parse("journal.jsonl", text.replace(/^\{"v":2/m, "{\"v\":3"))).pipe(Option.getOrUndefined)
    assert.strictEqual(newer?._tag, "JournalTooNew")
    assert.match(newer!.message, /journal.jsonl:1: journal schema version 3 is newer than this braid understands \(2\)/)
    const older = Either.getLeft(Journal.parse("journal.jsonl", text.replace(/^\{"v":2/m, "{\"v\":1"))).pipe(Option.getOrUndefined)
    assert.strictEqual(older?._tag, "JournalTooOld")
    assert.match(older!.message, /written by an earlier braid/)
  })

  it("folds settled tasks, an attempt committed but not reviewed, and the processes of one cut off", () => {
    const state = RunState.fold(Journal.parse("j", text).pipe(Either.getOrThrow).records)
    assert.strictEqual(state.tasks.get("db-1")!.settled!.quality!.score, 90)
    assert.strictEqual(state.tasks.get("api-1")!.awaitingReview, 1)
    assert.strictEqual(state.tasks.get("ui-1")!.cutOff, 1)
    assert.deepStrictEqual(state.processes.map((p) => [p.taskId, p.pid]), [["ui-1", 4242]])
    assert.deepStrictEqual(state.progress, { settled: 1, total: 3 })
    assert.isUndefined(state.finished)
  })

  it("writes exactly what the Schema encodes", () => {
    const encode = Schema.encodeSync(Schema.parseJson(Journal.Record))
    entries.forEach((e, i) => {
      assert.deepStrictEqual(JSON.parse(Journal.line(i + 1, at, e)), JSON.parse(encode({ v: Journal.SCHEMA_VERSION, seq: i + 1, at, key: e.key, value: e.value })))
    })
  })
})

describe("Steps", () => {
  it.effect("runs a step once: its result is journaled, and replayed from the journal without running again", () =>
    Effect.gen(function*() {
      const first = Steps.memory()
      let runs = 0
      const work = Effect.sync(() => ++runs).pipe(Effect.as(new RunState.Interrupted({ reason: "x", at })))
      yield* first.service.step("k", RunState.Interrupted, work)
      yield* first.service.step("k", RunState.Interrupted, work)
      assert.strictEqual(runs, 1)
      const again = Steps.memory(first.journal)
      const replayed = yield* again.service.step("k", RunState.Interrupted, work)
      assert.strictEqual(runs, 1)
      assert.strictEqual(replayed.reason, "x")
    }))

  it.effect("a step that fails journals nothing, so it runs again", () =>
    Effect.gen(function*() {
      const steps = Steps.memory()
      yield* Effect.flip(steps.service.step("k", Schema.Number, Effect.fail("not yet")))
      assert.deepStrictEqual(steps.journal, [])
      assert.strictEqual(yield* steps.service.step("k", Schema.Number, Effect.succeed(7)), 7)
      assert.deepStrictEqual(yield* steps.service.recall("k", Schema.Number), Option.some(7))
    }))
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
      yield* Effect.forEach(entries.slice(0, 4), (e) => writer.append(e), { concurrency: "unbounded" })
      const reopened = yield* Effect.scoped(Effect.flatMap(store.journal("r1"), (w) => w.append(entries[4]!)))
      void reopened
      const loaded = yield* store.load("r1")
      assert.strictEqual(loaded.planText, "tasks: []\n# exactly as given\n")
      assert.deepStrictEqual(loaded.records.map((r) => r.seq), [1, 2, 3, 4, 5])
      assert.deepStrictEqual(loaded.records.map((r) => r.key), entries.slice(0, 5).map((e) => e.key))
      assert.deepStrictEqual(yield* store.list(), ["r1"])
    }))

  it.scoped("cuts a torn last record off before appending after it", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      const file = path.join(dir, "runs", "r1", "journal.jsonl")
      fs.writeFileSync(file, text + "{\"v\":2,\"seq\":8,\"ke")
      const writer = yield* store.journal("r1")
      yield* writer.append(entry(RunState.keys.finished, new RunState.Finished({ status: "succeeded", at })))
      const loaded = yield* store.load("r1")
      assert.isUndefined(loaded.warning)
      assert.strictEqual(loaded.records.at(-1)!.key, "run/finished")
      assert.strictEqual(loaded.records.at(-1)!.seq, entries.length + 1)
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

  it.scoped("drops a corrupt last record before appending, keeping a copy of the journal as it was", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      const file = path.join(dir, "runs", "r1", "journal.jsonl")
      const damaged = text + "{\"v\":2,\"seq\":7,\"at\":\"x\",\"key\":\"run/finished\",\"value\":{\"_tag\":\"Fini\n"
      fs.writeFileSync(file, damaged)
      const loaded = yield* store.load("r1")
      assert.match(loaded.warning!, /journal.jsonl:7: ignored a corrupt last record \(not valid JSON\); step run\/finished runs again$/)
      const writer = yield* store.journal("r1")
      yield* writer.append(entry(RunState.keys.finished, new RunState.Finished({ status: "succeeded", at })))
      const after = yield* store.load("r1")
      assert.isUndefined(after.warning)
      assert.deepStrictEqual(after.records.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7])
      const copies = fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith("journal.jsonl.bak-"))
      assert.lengthOf(copies, 1)
      assert.strictEqual(fs.readFileSync(path.join(path.dirname(file), copies[0]!), "utf8"), damaged)
    }))

  it.scoped("a journal deleted during the run stops it at the next write, and what the run holds is written back", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      const file = path.join(dir, "runs", "r1", "journal.jsonl")
      const writer = yield* store.journal("r1")
      yield* Effect.forEach(entries.slice(0, 3), (e) => writer.append(e))
      fs.rmSync(file)
      const stopped = yield* Effect.flip(writer.append(entries[3]!))
      assert.strictEqual(stopped._tag, "JournalReplaced")
      assert.strictEqual(
        stopped.message,
        `run r1 stopped: its journal ${file} was deleted while the run was working (by an agent?); braid wrote the 4 records it holds back to ${file}. Find what touched it, then: braid resume r1`
      )
      // Every later write is refused the same way; the journal holds all four, and nothing else.
      assert.strictEqual((yield* Effect.flip(writer.append(entries[4]!)))._tag, "JournalReplaced")
      const loaded = yield* store.load("r1")
      assert.deepStrictEqual(loaded.records.map((r) => r.key), entries.slice(0, 4).map((e) => e.key))
      assert.deepStrictEqual(fs.readdirSync(path.dirname(file)).sort(), ["journal.jsonl", "manifest.json", "plan.source"])
    }))

  it.scoped("a journal replaced during the run is kept aside and the run's own written back", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      const file = path.join(dir, "runs", "r1", "journal.jsonl")
      const writer = yield* store.journal("r1")
      yield* writer.append(entries[0]!)
      fs.writeFileSync(`${file}.forged`, "forged\n")
      fs.renameSync(`${file}.forged`, file)
      const stopped = yield* Effect.flip(writer.append(entries[1]!))
      assert.strictEqual(stopped._tag, "JournalReplaced")
      const kept = (stopped as RunStore.JournalReplaced).kept!
      assert.include(stopped.message, `was replaced by another file (kept as ${kept})`)
      assert.strictEqual(fs.readFileSync(kept, "utf8"), "forged\n")
      assert.deepStrictEqual((yield* store.load("r1")).records.map((r) => r.seq), [1, 2])
    }))

  it.scoped("a full disk fails a write with one line naming the file and the way on, and leaves no temporary file", () =>
    Effect.gen(function*() {
      const dir = tmp()
      let full = false
      const store = FileRunStore.make(dir, { fault: () => full ? "ENOSPC" : undefined })
      yield* store.create(manifest("r1"), "")
      const folder = path.join(dir, "runs", "r1")
      const writer = yield* store.journal("r1")
      yield* writer.append(entries[0]!)
      full = true
      const report = yield* Effect.flip(store.saveReport("r1", "{}"))
      assert.strictEqual(report.message, `no space left on device writing ${folder}/report.json`)
      const append = yield* Effect.flip(writer.append(entries[1]!))
      assert.strictEqual(append.message, `no space left on device writing ${folder}/journal.jsonl; free space, then braid resume r1`)
      assert.deepStrictEqual(fs.readdirSync(folder).sort(), ["journal.jsonl", "manifest.json", "plan.source"])
      // A run that cannot be recorded leaves no half of its record.
      const created = yield* Effect.flip(store.create(manifest("r2"), "plan"))
      assert.strictEqual(created.message, `no space left on device writing ${dir}/runs/r2/plan.source; free space, then run the plan again`)
      assert.isFalse(fs.existsSync(path.join(dir, "runs", "r2")))
      full = false
      assert.deepStrictEqual((yield* store.load("r1")).records.map((r) => r.seq), [1])
    }))

  it.scoped("names a run whose journal or manifest is missing as unreadable, and lists it", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      yield* store.create(manifest("r2"), "")
      fs.rmSync(path.join(dir, "runs", "r1", "journal.jsonl"))
      fs.rmSync(path.join(dir, "runs", "r2", "manifest.json"))
      assert.deepStrictEqual(yield* store.list(), ["r1", "r2"])
      const r1 = yield* Effect.flip(store.load("r1"))
      assert.strictEqual(r1._tag, "RunUnreadable")
      assert.strictEqual(r1.message, `run r1 cannot be read: ${dir}/runs/r1/journal.jsonl is missing (deleted?) (braid doctor r1 says what can be done)`)
      assert.strictEqual((yield* Effect.flip(store.load("r2")))._tag, "RunUnreadable")
      const checkup = yield* store.checkup("r1")
      assert.deepStrictEqual(checkup.findings.map((f) => [f.repair, f.harmless]), [[undefined, false]])
      assert.match(checkup.findings[0]!.problem, /journal.jsonl is missing \(deleted\?\): the run cannot be continued \(braid clean r1 removes/)
    }))

  it.scoped("a checkup names every bad line and leftover; a repair drops them, keeping a copy of the journal", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      yield* store.create(manifest("r1"), "")
      const folder = path.join(dir, "runs", "r1")
      const file = path.join(folder, "journal.jsonl")
      const lines = text.split("\n")
      lines[2] = lines[2]!.slice(0, lines[2]!.indexOf("\"value\""))
      const damaged = lines.join("\n")
      fs.writeFileSync(file, damaged)
      fs.writeFileSync(path.join(folder, "report.json.tmp-999999999"), "{")
      const refused = yield* Effect.flip(store.load("r1"))
      assert.strictEqual(refused._tag, "JournalCorrupt")
      assert.include(refused.message, `${file}:3: corrupt journal record (not valid JSON); braid doctor r1 shows what a repair drops`)
      const checkup = yield* store.checkup("r1")
      assert.strictEqual(checkup.records, entries.length - 1)
      assert.deepStrictEqual(checkup.findings.map((f) => [f.problem, f.repair, f.harmless]), [
        [`${file}:3: corrupt record (not valid JSON); it was step stream/db/task/db-1/attempt/1/review`, "drop line 3 (step stream/db/task/db-1/attempt/1/review runs again when the run is continued)", false],
        [`${folder}/report.json.tmp-999999999: a temporary file left by a write that failed`, "remove it", true]
      ])
      // Nothing is repaired under a live run.
      const live = spawn("sleep", ["30"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => live.kill("SIGKILL")))
      fs.writeFileSync(path.join(folder, "lock"), `${live.pid}\n`)
      assert.strictEqual((yield* Effect.flip(store.repair("r1")))._tag, "RunLocked")
      assert.strictEqual(fs.readFileSync(file, "utf8"), damaged)
      live.kill("SIGKILL")
      yield* Effect.promise(() => new Promise((resolve) => live.on("exit", resolve)))
      const repaired = yield* store.repair("r1")
      assert.deepStrictEqual(repaired.done, [
        `removed ${folder}/lock, left by braid process ${live.pid}`,
        `dropped ${file}:3 (step stream/db/task/db-1/attempt/1/review)`,
        `removed ${folder}/report.json.tmp-999999999`
      ])
      assert.strictEqual(fs.readFileSync(repaired.backup!, "utf8"), damaged)
      assert.deepStrictEqual((yield* store.load("r1")).records.map((r) => r.seq), [1, 2, 4, 5, 6])
      assert.deepStrictEqual((yield* store.checkup("r1")).findings, [])
    }))

  it.scoped("holds a target for one live run: a second is refused naming the first, a dead one's hold is taken over", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const store = FileRunStore.make(dir)
      const live = spawn("sleep", ["30"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => live.kill("SIGKILL")))
      fs.mkdirSync(path.join(dir, "active"), { recursive: true })
      fs.writeFileSync(path.join(dir, "active", "feature%2Fx"), `${live.pid} r1\n`)
      assert.deepStrictEqual(yield* store.activeOn("feature/x"), { pid: live.pid!, runId: "r1" })
      const refused = yield* Effect.flip(Effect.scoped(store.holdTarget("feature/x", "r2")))
      assert.strictEqual(refused._tag, "TargetInUse")
      assert.include(refused.message, `run r1 (braid process ${live.pid}) is already working on feature/x in this repository`)
      // Another target is free.
      yield* Effect.scoped(store.holdTarget("main", "r2"))
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid
      fs.writeFileSync(path.join(dir, "active", "feature%2Fx"), `${dead} r1\n`)
      assert.isUndefined(yield* store.activeOn("feature/x"))
      yield* Effect.scoped(Effect.gen(function*() {
        yield* store.holdTarget("feature/x", "r2")
        assert.strictEqual(fs.readFileSync(path.join(dir, "active", "feature%2Fx"), "utf8"), `${process.pid} r2\n`)
      }))
      assert.isFalse(fs.existsSync(path.join(dir, "active", "feature%2Fx")))
    }))

  it.effect("a missing run is named clearly", () =>
    Effect.gen(function*() {
      const store = FileRunStore.make(tmp())
      const error = yield* Effect.flip(store.load("nope"))
      assert.strictEqual(error._tag, "RunNotFound")
      assert.match(error.message, /no run "nope" in .*runs/)
    }))
})

