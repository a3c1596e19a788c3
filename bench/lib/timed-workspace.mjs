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
import { Effect, Fiber, FiberRef, Layer } from "effect"
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
    const method = fiber._tag === "Some" ? fiber.value.getFiberRef(methodRef) : undefined
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

/** Wraps `service`; returns the wrapped service and the running totals. */
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
  const wrap = (name, f) => (...args) =>
    Effect.suspend(() => {
      const started = performance.now()
      const call = countSpawns ? Effect.locally(f(...args), methodRef, name) : f(...args)
      return Effect.ensuring(
        call,
        Effect.sync(() => {
          const ended = performance.now()
          const t = totalOf(name)
          t.calls++
          t.ms += ended - started
          trace?.push({
            name,
            stream: typeof args[0] === "string" ? args[0] : undefined,
            start: +(performance.timeOrigin + started).toFixed(1),
            end: +(performance.timeOrigin + ended).toFixed(1)
          })
        })
      )
    })
  const wrapFiles = (prefix, files) => ({
    dir: files.dir,
    read: wrap(`${prefix}.read`, files.read),
    write: wrap(`${prefix}.write`, files.write),
    remove: wrap(`${prefix}.remove`, files.remove),
    list: wrap(`${prefix}.list`, files.list)
  })
  const wrapped = { kind: service.kind }
  for (const [name, value] of Object.entries(service)) {
    if (name === "kind") continue
    if (name === "files") wrapped.files = (stream) => wrapFiles("files", service.files(stream))
    else if (name === "integrationFiles") wrapped.integrationFiles = () => wrapFiles("integrationFiles", service.integrationFiles())
    else wrapped[name] = wrap(name, value)
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
