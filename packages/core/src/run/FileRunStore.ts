/**
 * The file `RunStore`: `<dir>/runs/<runId>/` holds `plan.source` (the plan as given),
 * `manifest.json` (the resolved options) and `journal.jsonl`. Appends are group-committed:
 * records that arrive while a flush is under way are written and fsynced together, and each
 * append returns only after its record is on disk.
 *
 * Damage is met where it is found: before each flush the journal's path must still name the
 * file the writer holds open (else the run stops and writes what it holds back as a new
 * journal); a torn or corrupt last record is dropped, keeping a copy of the journal; a file
 * written whole leaves no temporary file behind when the write fails; `checkup` and `repair`
 * are `braid doctor`'s.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Either, Exit, FiberId, Layer, Schema, type Scope } from "effect"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Journal from "./Journal.js"
import * as RunStore from "../ports/RunStore.js"
import * as Steps from "../ports/Steps.js"

/** An operating system error in words. */
const REASONS: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EIO: "input/output error",
  ENOENT: "no such file or folder",
  ENOTDIR: "a path component is not a folder",
  EMFILE: "too many open files"
}

/** The error code of a failed file operation, if it has one. */
export const codeOf = (e: unknown): string | undefined => {
  const code = typeof e === "object" && e !== null && "code" in e ? (e as { code: unknown }).code : undefined
  return typeof code === "string" ? code : undefined
}

/** What a person does about an error code before continuing. */
const remedyOf = (code: string | undefined, file: string): string | undefined =>
  code === "ENOSPC" || code === "EDQUOT"
    ? "free space"
    : code === "EROFS" || code === "EACCES" || code === "EPERM"
    ? `make ${path.dirname(file)} writable`
    : undefined

/**
 * A failed file operation as one line: what failed, on which file, and what to do before
 * `next` (the command that continues, when there is one).
 */
const failed = (operation: string, verb: "reading" | "writing", file: string, next?: string) => (e: unknown) => {
  const code = codeOf(e)
  const reason = code !== undefined ? REASONS[code] : undefined
  const remedy = remedyOf(code, file)
  const what = reason !== undefined ? `${reason} ${verb} ${file}` : `${verb} ${file}: ${e instanceof Error ? e.message : String(e)}`
  return new RunStore.StoreFailed({
    operation,
    message: remedy !== undefined && next !== undefined ? `${what}; ${remedy}, then ${next}` : what
  })
}

const encodeManifest = Schema.encodeSync(Schema.parseJson(RunStore.RunManifest, { space: 2 }))
const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(RunStore.RunManifest))

/** Whether a process with this pid is running. */
const alive = (pid: number): boolean => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return codeOf(e) === "EPERM"
  }
}

/**
 * A fault to inject before a write (tests only): the error code the write to `file` fails
 * with, or undefined for none. The command line builds it from `BRAID_STORE_FAULT`.
 */
export type Fault = (file: string) => string | undefined

const faultError = (code: string, file: string) =>
  Object.assign(new Error(`${code}: ${REASONS[code] ?? "injected fault"}, write '${file}'`), { code })

/**
 * Writes a file whole: to a temporary name, fsynced, then renamed over the target. A failed
 * write removes the temporary file, so a full disk leaves nothing half-written behind.
 */
const writeWhole = async (file: string, text: string, fault?: Fault) => {
  const tmp = `${file}.tmp-${process.pid}`
  try {
    const handle = await fsp.open(tmp, "w")
    try {
      const code = fault?.(file)
      if (code !== undefined) {
        // As a full disk does: part of the text is written, then the write fails.
        await handle.writeFile(text.slice(0, Math.floor(text.length / 2)))
        throw faultError(code, file)
      }
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fsp.rename(tmp, file)
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
    throw e
  }
}

/** A free name beside `file` for a copy of it: `<file>.<what>-<time>`. */
const asideName = (file: string, what: string) => {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-")
  let name = `${file}.${what}-${stamp}`
  for (let n = 2; fs.existsSync(name); n++) name = `${file}.${what}-${stamp}-${n}`
  return name
}

/** Copies `file` aside (`<file>.bak-<time>`) before braid changes it; the copy's path. */
const backUp = async (file: string, fault?: Fault) => {
  const copy = asideName(file, "bak")
  await writeWhole(copy, await fsp.readFile(file, "utf8"), fault)
  return copy
}

/** The lock file of a target branch: its name, made safe for a file name. */
const targetLockName = (target: string) => {
  const encoded = encodeURIComponent(target)
  return encoded.length <= 200 ? encoded : `${encoded.slice(0, 160)}~${Buffer.from(target).toString("base64url").slice(-32)}`
}

/** A lock file's holder: the pid on its first line, and what follows it (a run id). */
const readHolder = (file: string) =>
  fsp.readFile(file, "utf8").then((t) => {
    const [pid, ...rest] = t.trim().split(/\s+/)
    const n = Number.parseInt(pid ?? "", 10)
    return Number.isNaN(n) ? undefined : { pid: n, runId: rest.join(" ") }
  }, () => undefined)

/** A problem `braid doctor` found in a run's record, and what `--repair` does about it. */
export interface Finding {
  readonly problem: string
  /** What a repair does; undefined when braid cannot repair it (the problem says what to do). */
  readonly repair: string | undefined
  /** Whether the run can go on without a repair (resume deals with it, or it is only litter). */
  readonly harmless: boolean
}

/** What `braid doctor` found in one run. */
export interface Checkup {
  readonly runId: string
  readonly folder: string
  readonly journal: string
  /** The journal's good records, when it could be read. */
  readonly records: number | undefined
  /** The live braid process working on the run: nothing is repaired under it. */
  readonly heldBy: number | undefined
  readonly findings: ReadonlyArray<Finding>
  /** Copies braid kept of the journal (repairs, a replaced journal). */
  readonly copies: ReadonlyArray<string>
}

/** What `braid doctor --repair` did. */
export interface Repaired {
  /** The copy of the journal kept before it was changed. */
  readonly backup: string | undefined
  /** What was done, a line each. */
  readonly done: ReadonlyArray<string>
}

/** The file run store: the `RunStore` port, plus the repository's target locks and `braid doctor`'s checkup and repair. */
export interface Service extends RunStore.Service {
  /**
   * Holds `target` of the repository for run `runId` until the scope closes (`<dir>/active/<target>`):
   * a second run, resume, retry or land on the same target is refused while a live process holds it.
   */
  readonly holdTarget: (target: string, runId: string) => Effect.Effect<void, RunStore.TargetInUse | RunStore.StoreFailed, Scope.Scope>
  /** The live run holding `target`, if any. */
  readonly activeOn: (target: string) => Effect.Effect<{ readonly runId: string; readonly pid: number } | undefined>
  /** What is wrong with a run's record. */
  readonly checkup: (runId: string) => Effect.Effect<Checkup, RunStore.RunNotFound | RunStore.StoreFailed>
  /** Repairs what `checkup` finds repairable, keeping a copy of the journal; refused while a live process holds the run. */
  readonly repair: (runId: string) => Effect.Effect<Repaired, RunStore.RunNotFound | RunStore.RunLocked | RunStore.StoreFailed>
}

/** A file run store rooted at `dir` (usually `<repo>/.braid`); `fault` injects write failures (tests). */
export const make = (dir: string, options?: { readonly fault?: Fault | undefined }): Service => {
  const fault = options?.fault
  const runsDir = path.join(dir, "runs")
  const activeDir = path.join(dir, "active")
  const runDir = (runId: string) => path.join(runsDir, runId)
  const journalFile = (runId: string) => path.join(runDir(runId), "journal.jsonl")
  const lockFile = (runId: string) => path.join(runDir(runId), "lock")
  const resume = (runId: string) => `braid resume ${runId}`
  const doctor = (runId: string) => `braid doctor ${runId}`

  /** The run's folder exists (else RunNotFound); whether it holds a manifest. */
  const exists = (runId: string) =>
    Effect.flatMap(
      Effect.promise(() => fsp.stat(runDir(runId)).then((s) => s.isDirectory(), () => false)),
      (ok) => ok ? Effect.void : Effect.fail(new RunStore.RunNotFound({ runId, where: runsDir }))
    )

  /** Reads one of a run's files; a missing one makes the run unreadable. */
  const readRunFile = (runId: string, file: string) =>
    Effect.tryPromise({
      try: () => fsp.readFile(file, "utf8"),
      catch: (e) =>
        codeOf(e) === "ENOENT"
          ? new RunStore.RunUnreadable({ runId, file, problem: "is missing (deleted?)" })
          : failed("read", "reading", file)(e)
    })

  const readPid = (runId: string) => Effect.promise(() => readHolder(lockFile(runId)).then((h) => h?.pid))

  /**
   * Takes a lock file: creates it holding `content`, or takes it over from a dead process.
   * `refuse` names the live holder's refusal.
   */
  const takeLock = <E>(file: string, content: string, refuse: (holder: { readonly pid: number; readonly runId: string }) => E) =>
    Effect.gen(function*() {
      yield* Effect.tryPromise({ try: () => fsp.mkdir(path.dirname(file), { recursive: true }), catch: failed("lock", "writing", file) })
      for (let tries = 0; tries < 3; tries++) {
        const took = yield* Effect.tryPromise({
          try: () =>
            fsp.writeFile(file, content, { flag: "wx" }).then(() => true, (e) => {
              if (codeOf(e) === "EEXIST") return false
              throw e
            }),
          catch: failed("lock", "writing", file)
        })
        if (took) return
        const holder = yield* Effect.promise(() => readHolder(file))
        if (holder !== undefined && alive(holder.pid)) return yield* Effect.fail(refuse(holder))
        // A stale lock: the process that held it is gone. Remove it and try again.
        yield* Effect.tryPromise({ try: () => fsp.rm(file, { force: true }), catch: failed("lock", "writing", file) })
      }
      return yield* new RunStore.StoreFailed({ operation: "lock", message: `could not take the lock ${file}` })
    })

  /** Releases a lock file this process holds. */
  const releaseLock = (file: string) =>
    Effect.promise(async () => {
      const holder = await readHolder(file)
      if (holder?.pid === process.pid) await fsp.rm(file, { force: true })
    })

  const journal = Effect.fn("FileRunStore.journal")(function*(runId: string) {
    yield* exists(runId)
    const file = journalFile(runId)
    const text = yield* readRunFile(runId, file)
    const parsed = Journal.parse(file, text, { repair: doctor(runId) })
    if (Either.isLeft(parsed)) return yield* parsed.left
    // A dropped last record is cut off (a copy of the journal kept) before appending, so the
    // file stays line-aligned and its next record is read.
    const start = parsed.right.kept ?? text
    if (parsed.right.kept !== undefined) {
      yield* Effect.tryPromise({
        try: async () => {
          if (parsed.right.warning !== undefined) await backUp(file, fault)
          await writeWhole(file, start, fault)
        },
        catch: failed("repair", "writing", file, resume(runId))
      })
    }
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => fsp.open(file, "a"), catch: failed("open journal", "writing", file, resume(runId)) }),
      (h) => Effect.promise(() => h.close())
    )
    // The file the writer appends to: the journal's path must still name it at each flush.
    const opened = yield* Effect.tryPromise({ try: () => handle.stat(), catch: failed("open journal", "reading", file) })
    const written: Array<string> = [start]
    let records = parsed.right.records.length
    let seq = parsed.right.records.at(-1)?.seq ?? 0
    let stopped: RunStore.JournalReplaced | undefined
    let pending: Array<{ readonly text: string; readonly done: Deferred.Deferred<void, RunStore.StoreFailed | RunStore.JournalReplaced> }> = []
    let flushing = false

    /** The journal was deleted or replaced: write what this run holds back as the journal, and stop. */
    const rescue = async (found: "deleted" | "replaced", batch: string, count: number) => {
      let kept: string | undefined
      try {
        if (found === "replaced") {
          kept = asideName(file, "replaced")
          await fsp.rename(file, kept)
        }
        await writeWhole(file, written.join("") + batch, fault)
      } catch (e) {
        return new RunStore.JournalReplaced({
          runId,
          file,
          found,
          records: records + count,
          rewritten: false,
          problem: failed("append", "writing", file)(e).message,
          ...(kept !== undefined ? { kept } : {})
        })
      }
      return new RunStore.JournalReplaced({ runId, file, found, records: records + count, rewritten: true, ...(kept !== undefined ? { kept } : {}) })
    }

    /** Whether the journal's path still names the open file. */
    const identity = async (): Promise<"same" | "deleted" | "replaced"> => {
      const now = await fsp.stat(file).catch((e) => {
        if (codeOf(e) === "ENOENT") return undefined
        throw e
      })
      return now === undefined ? "deleted" : now.dev === opened.dev && now.ino === opened.ino ? "same" : "replaced"
    }

    const flush = async () => {
      flushing = true
      while (pending.length > 0) {
        const batch = pending
        pending = []
        const text = batch.map((b) => b.text).join("")
        let outcome: Exit.Exit<void, RunStore.StoreFailed | RunStore.JournalReplaced>
        if (stopped !== undefined) {
          outcome = Exit.fail(stopped)
        } else {
          try {
            const found = await identity()
            if (found !== "same") {
              stopped = await rescue(found, text, batch.length)
              outcome = Exit.fail(stopped)
            } else {
              const code = fault?.(file)
              if (code !== undefined) throw faultError(code, file)
              await handle.write(text)
              await handle.datasync()
              written.push(text)
              records += batch.length
              outcome = Exit.void
            }
          } catch (e) {
            outcome = Exit.fail(failed("append", "writing", file, resume(runId))(e))
          }
        }
        for (const b of batch) Deferred.unsafeDone(b.done, outcome)
      }
      flushing = false
    }
    return {
      append: (entry) =>
        Effect.suspend(() => {
          const done = Deferred.unsafeMake<void, RunStore.StoreFailed | RunStore.JournalReplaced>(FiberId.none)
          pending.push({ text: Journal.line(++seq, new Date().toISOString(), entry), done })
          if (!flushing) void flush()
          return Deferred.await(done)
        })
    } satisfies RunStore.JournalWriter
  })

  const load = Effect.fn("FileRunStore.load")(function*(runId: string) {
    yield* exists(runId)
    const manifestFile = path.join(runDir(runId), "manifest.json")
    const [manifestText, planText, journalText] = yield* Effect.all([
      readRunFile(runId, manifestFile),
      readRunFile(runId, path.join(runDir(runId), "plan.source")),
      readRunFile(runId, journalFile(runId))
    ])
    const manifest = decodeManifest(manifestText)
    if (Either.isLeft(manifest)) {
      return yield* new RunStore.RunUnreadable({ runId, file: manifestFile, problem: `is not a run manifest: ${manifest.left.message.split("\n")[0]}` })
    }
    const parsed = Journal.parse(journalFile(runId), journalText, { repair: doctor(runId) })
    if (Either.isLeft(parsed)) return yield* parsed.left
    return { manifest: manifest.right, planText, records: parsed.right.records, warning: parsed.right.warning } satisfies RunStore.StoredRun
  })

  /** Temporary files of writes by processes that are gone. */
  const litter = (folder: string) =>
    fsp.readdir(folder).then((names) =>
      names.flatMap((name) => {
        const m = /\.tmp-(\d+)$/.exec(name)
        return m !== null && !alive(Number(m[1])) ? [path.join(folder, name)] : []
      }), () => [])

  const checkup = Effect.fn("FileRunStore.checkup")(function*(runId: string) {
    yield* exists(runId)
    const folder = runDir(runId)
    const file = journalFile(runId)
    const findings: Array<Finding> = []
    const holder = yield* readPid(runId)
    const heldBy = holder !== undefined && alive(holder) && holder !== process.pid ? holder : undefined
    if (holder !== undefined && heldBy === undefined && holder !== process.pid) {
      findings.push({ problem: `${lockFile(runId)}: a lock left by braid process ${holder}, which is gone`, repair: "remove it (a run takes it over anyway)", harmless: true })
    }
    for (const name of ["manifest.json", "plan.source"]) {
      const missing = yield* Effect.promise(() => fsp.access(path.join(folder, name)).then(() => false, () => true))
      if (missing) {
        findings.push({ problem: `${path.join(folder, name)} is missing: the run cannot be read or continued (braid clean ${runId} removes it)`, repair: undefined, harmless: false })
      }
    }
    const text = yield* Effect.tryPromise({
      try: () => fsp.readFile(file, "utf8").catch((e) => codeOf(e) === "ENOENT" ? undefined : Promise.reject(e)),
      catch: failed("checkup", "reading", file)
    })
    let records: number | undefined
    if (text === undefined) {
      findings.push({ problem: `${file} is missing (deleted?): the run cannot be continued (braid clean ${runId} removes its worktrees, branches and record)`, repair: undefined, harmless: false })
    } else {
      const examined = Journal.examine(file, text)
      if (Either.isLeft(examined)) {
        findings.push({ problem: examined.left.message, repair: undefined, harmless: false })
      } else {
        records = examined.right.records.length
        for (const d of examined.right.damage) {
          findings.push({
            problem: Journal.describeDamage(file, d),
            repair: `drop line ${d.line}${d.key !== undefined ? ` (step ${d.key} runs again when the run is continued)` : ""}`,
            harmless: d.last
          })
        }
        if (examined.right.damage.length === 0 && text !== "" && !text.endsWith("\n")) {
          findings.push({ problem: `${file}: the last record has no newline`, repair: "add it", harmless: true })
        }
      }
    }
    for (const tmp of yield* Effect.promise(() => litter(folder))) {
      findings.push({ problem: `${tmp}: a temporary file left by a write that failed`, repair: "remove it", harmless: true })
    }
    const copies = yield* Effect.promise(() =>
      fsp.readdir(folder).then((names) => names.filter((n) => /^journal\.jsonl\.(bak|replaced)-/.test(n)).sort().map((n) => path.join(folder, n)), () => [])
    )
    return { runId, folder, journal: file, records, heldBy, findings, copies } satisfies Checkup
  })

  const repair = Effect.fn("FileRunStore.repair")(function*(runId: string) {
    yield* exists(runId)
    const done: Array<string> = []
    const left = yield* readPid(runId)
    // Under the run's lock: nothing is repaired under a live run, and none starts meanwhile.
    yield* service.lock(runId)
    if (left !== undefined && left !== process.pid) done.push(`removed ${lockFile(runId)}, left by braid process ${left}`)
    const file = journalFile(runId)
    let backup: string | undefined
    const text = yield* Effect.promise(() => fsp.readFile(file, "utf8").then((t) => t, () => undefined))
    const examined = text === undefined ? undefined : Journal.examine(file, text)
    if (text !== undefined && examined !== undefined && Either.isRight(examined) && examined.right.kept !== text) {
      const kept = examined.right.kept
      backup = yield* Effect.tryPromise({
        try: async () => {
          const copy = await backUp(file, fault)
          await writeWhole(file, kept, fault)
          return copy
        },
        catch: failed("repair", "writing", file)
      })
      for (const d of examined.right.damage) done.push(`dropped ${file}:${d.line}${d.key !== undefined ? ` (step ${d.key})` : ""}`)
      if (examined.right.damage.length === 0) done.push(`ended ${file}'s last record with a newline`)
    }
    for (const tmp of yield* Effect.promise(() => litter(runDir(runId)))) {
      yield* Effect.tryPromise({ try: () => fsp.rm(tmp, { force: true }), catch: failed("repair", "writing", tmp) })
      done.push(`removed ${tmp}`)
    }
    return { backup, done } satisfies Repaired
  }, Effect.scoped)

  const service: Service = {
    location: runsDir,
    create: (manifest, planText) => {
      const folder = runDir(manifest.runId)
      let writing = folder
      return Effect.tryPromise({
        try: async () => {
          try {
            await fsp.mkdir(folder, { recursive: true })
            writing = path.join(folder, "plan.source")
            await writeWhole(writing, planText, fault)
            writing = path.join(folder, "manifest.json")
            await writeWhole(writing, encodeManifest(manifest), fault)
            writing = journalFile(manifest.runId)
            await fsp.appendFile(writing, "")
          } catch (e) {
            // A run that could not be recorded leaves no half of a record behind.
            await fsp.rm(folder, { recursive: true, force: true }).catch(() => undefined)
            throw e
          }
        },
        catch: (e) => failed("create", "writing", writing, "run the plan again")(e)
      })
    },
    journal,
    load,
    list: () =>
      Effect.promise(async () => {
        const entries = await fsp.readdir(runsDir, { withFileTypes: true }).catch(() => [])
        const ids: Array<string> = []
        for (const e of entries) {
          // A run's folder holds its manifest and journal; either one makes it a run (a damaged one, `runs` says).
          if (e.isDirectory() && ["manifest.json", "journal.jsonl"].some((f) => fs.existsSync(path.join(runsDir, e.name, f)))) ids.push(e.name)
        }
        return ids.sort()
      }),
    lock: (runId) =>
      Effect.acquireRelease(
        takeLock(lockFile(runId), `${process.pid}\n`, (h) => new RunStore.RunLocked({ runId, pid: h.pid })),
        () => releaseLock(lockFile(runId))
      ),
    isLocked: (runId) => Effect.map(readPid(runId), (pid) => pid !== undefined && alive(pid) && pid !== process.pid),
    saveReport: (runId, json) => {
      const file = path.join(runDir(runId), "report.json")
      return Effect.tryPromise({ try: () => writeWhole(file, json, fault), catch: failed("save report", "writing", file) })
    },
    loadReport: (runId) => {
      const file = path.join(runDir(runId), "report.json")
      return Effect.tryPromise({
        try: () => fsp.readFile(file, "utf8").catch((e) => codeOf(e) === "ENOENT" ? undefined : Promise.reject(e)),
        catch: failed("load report", "reading", file)
      })
    },
    remove: (runId) =>
      Effect.tryPromise({
        try: async () => {
          await fsp.rm(runDir(runId), { recursive: true, force: true })
          // Leave no empty folders behind either (a run refused before it started).
          await fsp.rmdir(runsDir).catch(() => undefined)
          await fsp.rmdir(activeDir).catch(() => undefined)
          await fsp.rmdir(dir).catch(() => undefined)
        },
        catch: failed("remove", "writing", runDir(runId))
      }),
    holdTarget: (target, runId) => {
      const file = path.join(activeDir, targetLockName(target))
      return Effect.acquireRelease(
        takeLock(file, `${process.pid} ${runId}\n`, (h) => new RunStore.TargetInUse({ target, runId: h.runId, pid: h.pid })),
        () => Effect.zipRight(releaseLock(file), Effect.promise(() => fsp.rmdir(activeDir).catch(() => undefined)))
      )
    },
    activeOn: (target) =>
      Effect.promise(async () => {
        const holder = await readHolder(path.join(activeDir, targetLockName(target)))
        return holder !== undefined && holder.pid !== process.pid && alive(holder.pid) ? holder : undefined
      }),
    checkup,
    repair
  }
  return service
}

/** Durable steps over a stored run's journal: what it holds replays, new results are appended. */
export const steps = (records: ReadonlyArray<Journal.Record>, writer: RunStore.JournalWriter): Steps.Service =>
  Steps.make(records, writer.append)

/** A file run store layer rooted at `dir`. */
export const layer = (dir: string): Layer.Layer<RunStore.RunStore> => Layer.succeed(RunStore.RunStore, make(dir))
