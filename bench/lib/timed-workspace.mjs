/**
 * A proxy around a `Workspace` service that sums the time spent in each method (and in the
 * methods of the `Files` views it hands out), without changing what the methods do.
 */
import { Workspace } from "@braid/core"
import { Effect, Layer } from "effect"

/** Wraps `service`; returns the wrapped service and the running totals. */
export const timed = (service) => {
  const totals = {}
  const add = (name, ms) => {
    const t = (totals[name] ??= { calls: 0, ms: 0 })
    t.calls++
    t.ms += ms
  }
  const wrap = (name, f) => (...args) =>
    Effect.suspend(() => {
      const started = performance.now()
      return Effect.ensuring(f(...args), Effect.sync(() => add(name, performance.now() - started)))
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
  Object.fromEntries(Object.entries(totals).sort().map(([k, v]) => [k, { calls: v.calls, ms: +v.ms.toFixed(1) }]))
