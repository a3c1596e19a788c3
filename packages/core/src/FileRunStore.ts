/**
 * The file `RunStore`: `<dir>/runs/<runId>/` holds `plan.source` (the plan as given),
 * `manifest.json` (the resolved options) and `journal.jsonl`. Appends are group-committed:
 * records that arrive while a flush is under way are written and fsynced together, and each
 * append returns only after its record is on disk.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Either, Exit, FiberId, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Journal from "./Journal.js"
import * as RunStore from "./RunStore.js"
import * as Steps from "./Steps.js"

const failed = (operation: string) => (e: unknown) =>
  new RunStore.StoreFailed({ operation, message: e instanceof Error ? e.message : String(e) })

const encodeManifest = Schema.encodeSync(Schema.parseJson(RunStore.RunManifest, { space: 2 }))
const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(RunStore.RunManifest))

const alive = (pid: number): boolean => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Writes a file whole: to a temporary name, fsynced, then renamed over the target. */
const writeWhole = async (file: string, text: string) => {
  const tmp = `${file}.tmp-${process.pid}`
  const handle = await fsp.open(tmp, "w")
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fsp.rename(tmp, file)
}

/** A file run store rooted at `dir` (usually `<repo>/.braid`). */
export const make = (dir: string): RunStore.Service => {
  const runsDir = path.join(dir, "runs")
  const runDir = (runId: string) => path.join(runsDir, runId)
  const journalFile = (runId: string) => path.join(runDir(runId), "journal.jsonl")
  const lockFile = (runId: string) => path.join(runDir(runId), "lock")

  const exists = (runId: string) =>
    Effect.tryPromise({
      try: () => fsp.access(path.join(runDir(runId), "manifest.json")).then(() => true, () => false),
      catch: failed("read")
    }).pipe(
      Effect.flatMap((ok) => ok ? Effect.void : Effect.fail(new RunStore.RunNotFound({ runId, where: runsDir })))
    )

  const readPid = (runId: string) =>
    Effect.tryPromise({
      try: () => fsp.readFile(lockFile(runId), "utf8").then((t) => Number.parseInt(t, 10), () => undefined),
      catch: failed("lock")
    })

  const service: RunStore.Service = {
    location: runsDir,
    create: (manifest, planText) =>
      Effect.tryPromise({
        try: async () => {
          await fsp.mkdir(runDir(manifest.runId), { recursive: true })
          await writeWhole(path.join(runDir(manifest.runId), "plan.source"), planText)
          await writeWhole(path.join(runDir(manifest.runId), "manifest.json"), encodeManifest(manifest))
          await fsp.appendFile(journalFile(manifest.runId), "")
        },
        catch: failed("create")
      }),
    journal: (runId) =>
      Effect.gen(function*() {
        yield* exists(runId)
        const text = yield* Effect.tryPromise({ try: () => fsp.readFile(journalFile(runId), "utf8"), catch: failed("read") })
        const parsed = Journal.parse(journalFile(runId), text)
        if (Either.isLeft(parsed)) return yield* parsed.left
        // A torn last record is cut off before appending, so the file stays line-aligned.
        const keep = parsed.right.warning === undefined ? text.length : text.lastIndexOf("\n") + 1
        const handle = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: async () => {
              if (keep !== text.length) await fsp.truncate(journalFile(runId), keep)
              return fsp.open(journalFile(runId), "a")
            },
            catch: failed("open journal")
          }),
          (h) => Effect.promise(() => h.close())
        )
        let seq = parsed.right.records.at(-1)?.seq ?? 0
        let pending: Array<{ readonly text: string; readonly done: Deferred.Deferred<void, RunStore.StoreFailed> }> = []
        let flushing = false
        const flush = async () => {
          flushing = true
          while (pending.length > 0) {
            const batch = pending
            pending = []
            try {
              await handle.write(batch.map((b) => b.text).join(""))
              await handle.datasync()
              for (const b of batch) Deferred.unsafeDone(b.done, Exit.void)
            } catch (e) {
              for (const b of batch) Deferred.unsafeDone(b.done, Exit.fail(failed("append")(e)))
            }
          }
          flushing = false
        }
        return {
          append: (entry) =>
            Effect.suspend(() => {
              const done = Deferred.unsafeMake<void, RunStore.StoreFailed>(FiberId.none)
              pending.push({ text: Journal.line(++seq, new Date().toISOString(), entry), done })
              if (!flushing) void flush()
              return Deferred.await(done)
            })
        } satisfies RunStore.JournalWriter
      }),
    load: (runId) =>
      Effect.gen(function*() {
        yield* exists(runId)
        const [manifestText, planText, journalText] = yield* Effect.tryPromise({
          try: () =>
            Promise.all([
              fsp.readFile(path.join(runDir(runId), "manifest.json"), "utf8"),
              fsp.readFile(path.join(runDir(runId), "plan.source"), "utf8"),
              fsp.readFile(journalFile(runId), "utf8")
            ]),
          catch: failed("read")
        })
        const manifest = decodeManifest(manifestText)
        if (Either.isLeft(manifest)) {
          return yield* new RunStore.StoreFailed({ operation: "read", message: `${path.join(runDir(runId), "manifest.json")}: ${manifest.left.message}` })
        }
        const parsed = Journal.parse(journalFile(runId), journalText)
        if (Either.isLeft(parsed)) return yield* parsed.left
        return { manifest: manifest.right, planText, records: parsed.right.records, warning: parsed.right.warning }
      }),
    list: () =>
      Effect.tryPromise({
        try: async () => {
          const entries = await fsp.readdir(runsDir, { withFileTypes: true }).catch(() => [])
          const ids: Array<string> = []
          for (const e of entries) {
            if (e.isDirectory() && fs.existsSync(path.join(runsDir, e.name, "manifest.json"))) ids.push(e.name)
          }
          return ids.sort()
        },
        catch: failed("list")
      }),
    lock: (runId) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          yield* Effect.tryPromise({ try: () => fsp.mkdir(runDir(runId), { recursive: true }), catch: failed("lock") })
          for (let tries = 0; tries < 3; tries++) {
            const took = yield* Effect.tryPromise({
              try: () => fsp.writeFile(lockFile(runId), `${process.pid}\n`, { flag: "wx" }).then(() => true, (e) => {
                if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
                throw e
              }),
              catch: failed("lock")
            })
            if (took) return
            const pid = yield* readPid(runId)
            if (pid !== undefined && !Number.isNaN(pid) && alive(pid)) return yield* new RunStore.RunLocked({ runId, pid })
            // A stale lock: the process that held it is gone. Remove it and try again.
            yield* Effect.tryPromise({ try: () => fsp.rm(lockFile(runId), { force: true }), catch: failed("lock") })
          }
          return yield* new RunStore.StoreFailed({ operation: "lock", message: `could not take the lock ${lockFile(runId)}` })
        }),
        () =>
          Effect.promise(async () => {
            const pid = await fsp.readFile(lockFile(runId), "utf8").then((t) => Number.parseInt(t, 10), () => undefined)
            if (pid === process.pid) await fsp.rm(lockFile(runId), { force: true })
          })
      ),
    isLocked: (runId) =>
      Effect.map(readPid(runId), (pid) => pid !== undefined && !Number.isNaN(pid) && alive(pid) && pid !== process.pid),
    saveReport: (runId, json) =>
      Effect.tryPromise({ try: () => writeWhole(path.join(runDir(runId), "report.json"), json), catch: failed("save report") }),
    loadReport: (runId) =>
      Effect.tryPromise({
        try: () => fsp.readFile(path.join(runDir(runId), "report.json"), "utf8").catch(() => undefined),
        catch: failed("load report")
      }),
    remove: (runId) =>
      Effect.tryPromise({
        try: async () => {
          await fsp.rm(runDir(runId), { recursive: true, force: true })
          // Leave no empty folders behind either (a run refused before it started).
          await fsp.rmdir(runsDir).catch(() => undefined)
          await fsp.rmdir(dir).catch(() => undefined)
        },
        catch: failed("remove")
      })
  }
  return service
}

/** Durable steps over a stored run's journal: what it holds replays, new results are appended. */
export const steps = (records: ReadonlyArray<Journal.Record>, writer: RunStore.JournalWriter): Steps.Service =>
  Steps.make(records, writer.append)

/** A file run store layer rooted at `dir`. */
export const layer = (dir: string): Layer.Layer<RunStore.RunStore> => Layer.succeed(RunStore.RunStore, make(dir))
