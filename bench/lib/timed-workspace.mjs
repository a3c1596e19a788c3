/**
 * A proxy around a `Workspace` service that sums the time spent in each method (and in the
 * methods of the `Files` views it hands out), without changing what the methods do.
 *
 * With `countSpawns`, it also counts the processes each method starts (git, and others such
 * as checks): every call runs with its method's name in a FiberRef, and `child_process.spawn`
 * is wrapped (once, for the whole process) to read it from the fiber that starts the process.
 * Calls of different methods overlap freely, and the counts stay exact; processes started
 * outside any method (the agents) go to `outsideSpawns()`.
 * With `trace` (an array), every call is also pushed to it: { name, stream, start, end } in
 * epoch milliseconds.
 */
import { Workspace } from "@braid/core"
import { Effect, ExecutionStrategy, Exit, Fiber, FiberRef, Layer, Scope } from "effect"
import { createRequire, syncBuiltinESMExports } from "node:module"
import * as path from "node:path"

/** Everything a stream's tasks do to their own worktree (and their dependencies' work). */
export const STREAM_SIDE = ["files.read", "files.write", "files.remove", "files.list", "commitAttempt", "absorb", "head", "discard", "findAttempt", "attempting", "strays"]

/** The workspace method (or Files method) the current fiber is in. */
const methodRef = FiberRef.unsafeMake(undefined)
const spawnListeners = new Set()
let spawnHooked = false
const outside = { git: 0, other: 0 }

/** Wraps `child_process.spawn` so each process is counted against the method that started it. */
const hookSpawn = () => {
  if (spawnHooked) return
  spawnHooked = true
  const childProcess = createRequire(import.meta.url)("node:child_process")
  const original = childProcess.spawn
  childProcess.spawn = function spawn(command, ...rest) {
    const fiber = Fiber.getCurrentFiber()
    const current = fiber._tag === "Some" ? fiber.value.getFiberRef(methodRef) : undefined
    const method = typeof current === "object" ? current.name : current
    const kind = path.basename(String(command)) === "git" ? "git" : "other"
    if (method === undefined) outside[kind]++
    for (const listener of spawnListeners) listener(method, kind)
    return original.call(this, command, ...rest)
  }
  // ES module imports of node:child_process (the platform's command executor) see the wrapper too.
  syncBuiltinESMExports()
}

/** Processes started outside any workspace method so far (the agents, preflight). */
export const outsideSpawns = () => ({ ...outside })

/**
 * Wraps `service`; returns the wrapped service and the running totals. A prepared run's parts
 * are timed under the names the workspace methods had before the run became a handle
 * (`prepare`, `checkout`, `close`, `release`; a checkout's `commitAttempt`, `files.write`, …; a
 * branch's `pin`, `changedFiles`, `head`; the integration's `beginIntegration`, `mergeStream`,
 * `integrationFiles.read`, …; the target's `land`, `push`).
 */
export const timed = (service, { countSpawns = false, trace } = {}) => {
  const totals = {}
  const totalOf = (name) => (totals[name] ??= { calls: 0, ms: 0, ...(countSpawns ? { git: 0, otherProcesses: 0 } : {}) })
  if (countSpawns) {
    hookSpawn()
    spawnListeners.add((method, kind) => {
      if (method === undefined) return
      if (kind === "git") totalOf(method).git++
      else totalOf(method).otherProcesses++
    })
  }
  /**
   * Times one call of `effect` as `name` (of `stream`, when it is a stream's). `as` (a `{ name }`
   * box) is what the processes it starts are counted against, when it is not `name`.
   */
  const time = (name, stream, effect, as) =>
    Effect.suspend(() => {
      const started = performance.now()
      const call = countSpawns ? Effect.locally(effect, methodRef, as ?? name) : effect
      return Effect.ensuring(
        call,
        Effect.sync(() => {
          const ended = performance.now()
          const t = totalOf(name)
          t.calls++
          t.ms += ended - started
          trace?.push({
            name,
            stream,
            start: +(performance.timeOrigin + started).toFixed(1),
            end: +(performance.timeOrigin + ended).toFixed(1)
          })
        })
      )
    })
  const wrap = (name, stream, f) => (...args) => time(name, stream, f(...args))
  const wrapFiles = (prefix, stream, files) => ({
    ...files,
    read: wrap(`${prefix}.read`, stream, files.read),
    write: wrap(`${prefix}.write`, stream, files.write),
    remove: wrap(`${prefix}.remove`, stream, files.remove),
    list: wrap(`${prefix}.list`, stream, files.list)
  })
  const wrapCheckout = (c) => ({
    ...c,
    files: wrapFiles("files", c.stream, c.files),
    head: time("head", c.stream, c.head),
    commitAttempt: wrap("commitAttempt", c.stream, c.commitAttempt),
    absorb: wrap("absorb", c.stream, c.absorb),
    concludeAbsorb: wrap("concludeAbsorb", c.stream, c.concludeAbsorb),
    discard: time("discard", c.stream, c.discard),
    findAttempt: wrap("findAttempt", c.stream, c.findAttempt),
    attempting: time("attempting", c.stream, c.attempting),
    strays: time("strays", c.stream, c.strays),
    exec: wrap("exec", c.stream, c.exec)
  })
  const wrapRun = (run) => {
    const i = run.integration
    return {
      ...run,
      checkout: (stream) => Effect.map(time("checkout", stream, run.checkout(stream)), wrapCheckout),
      close: (stream, options) => time("close", stream, run.close(stream, options)),
      branch: (stream) => {
        const b = run.branch(stream)
        return {
          pin: wrap("pin", stream, b.pin),
          diff: wrap("diff", stream, b.diff),
          changedFiles: time("changedFiles", stream, b.changedFiles),
          head: time("head", stream, b.head)
        }
      },
      integration: {
        begin: wrap("beginIntegration", undefined, i.begin),
        probe: (stream) => time("probeMerge", stream, i.probe(stream)),
        merge: (stream, side) => time("mergeStream", stream, i.merge(stream, side)),
        conclude: (stream) => time("concludeMerge", stream, i.conclude(stream)),
        abort: time("abortMerge", undefined, i.abort),
        files: wrapFiles("integrationFiles", undefined, i.files),
        mergeState: (stream) => time("mergeState", stream, i.mergeState(stream)),
        catchUp: time("catchUp", undefined, i.catchUp),
        head: time("head", undefined, i.head),
        exec: wrap("exec", undefined, i.exec),
        missing: wrap("missingFromIntegration", undefined, i.missing)
      },
      landing: { land: time("land", undefined, run.landing.land), push: wrap("push", undefined, run.landing.push) }
    }
  }
  const wrapped = {
    // The run's release is its scope's: timed as `release` when that scope closes.
    prepare: (setup) =>
      Effect.flatMap(Effect.scope, (outer) =>
        Effect.gen(function*() {
          const inner = yield* Scope.fork(outer, ExecutionStrategy.sequential)
          // A finalizer runs with the fiber refs of when it was added (within prepare): the box it
          // sees is renamed once prepare is done, so the release's git processes count as release's.
          const counted = { name: "prepare" }
          const run = yield* time("prepare", undefined, Scope.extend(service.prepare(setup), inner), counted)
          counted.name = "release"
          yield* Effect.addFinalizer(() => time("release", undefined, Scope.close(inner, Exit.void)))
          return wrapRun(run)
        }))
  }
  return { service: wrapped, totals }
}

/** The wrapped service as a `Workspace` layer. */
export const layer = (service) => Layer.succeed(Workspace.Workspace, service)

/** Totals rounded for a report. */
export const rounded = (totals) =>
  Object.fromEntries(Object.entries(totals).sort().map(([k, v]) => [k, { ...v, ms: +v.ms.toFixed(1) }]))

/** The git processes the methods `names` started (0 when not counted). */
export const gitCallsOf = (totals, names) => names.reduce((sum, n) => sum + (totals[n]?.git ?? 0), 0)

/** A method's git processes per call (null when it was not called or not counted). */
export const gitPerCall = (totals, name) =>
  totals[name]?.git === undefined || totals[name].calls === 0 ? null : +(totals[name].git / totals[name].calls).toFixed(2)

/**
 * Wall time during which at least one call of the methods `names` was running (overlapping
 * calls counted once), from a trace.
 */
export const unionMs = (trace, names) => {
  const spans = trace.filter((t) => names.includes(t.name)).sort((a, b) => a.start - b.start)
  let total = 0
  let end = -Infinity
  for (const s of spans) {
    if (s.start > end) {
      total += s.end - s.start
      end = s.end
    } else if (s.end > end) {
      total += s.end - end
      end = s.end
    }
  }
  return +total.toFixed(1)
}
