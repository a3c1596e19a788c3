/**
 * A minimal `Workspace` for measuring the engine alone: each stream's files are a map, an
 * attempt's change is the set of paths written since the last one, and nothing is
 * snapshotted, merged or absorbed. Methods it does not replace come from a MemoryWorkspace
 * (only reached off the happy path: conflicts, commands, resume).
 */
import { Workspace } from "@braid/core"
import { Effect } from "effect"

export const make = (memory, base = { "README.md": "base\n" }) => {
  let counter = 0
  const sides = new Map()
  const side = (stream) => {
    let s = sides.get(stream)
    if (s === undefined) {
      s = { files: new Map(Object.entries(base)), touched: new Set(), own: new Set(), head: "c0" }
      sides.set(stream, s)
    }
    return s
  }
  const integration = { files: new Map(Object.entries(base)), touched: new Set(), own: new Set(), head: "c0" }
  const filesOf = (s) => ({
    dir: undefined,
    read: (p) => Effect.sync(() => s.files.get(p)),
    write: (p, content) => Effect.sync(() => void (s.files.set(p, content), s.touched.add(p))),
    remove: (p) => Effect.sync(() => void (s.files.delete(p), s.touched.add(p))),
    list: () => Effect.sync(() => [...s.files.keys()].sort())
  })
  return {
    ...memory,
    prepare: (run) =>
      Effect.sync(() => {
        for (const s of run.streams) side(s.name)
        return { base: "c0", target: "main", targetAt: "c0" }
      }),
    // The engine alone: checkouts, confinement and merge bookkeeping cost nothing here.
    openStream: () => Effect.void,
    closeStream: () => Effect.void,
    attempting: () => Effect.void,
    strays: () => Effect.succeed([]),
    mergeState: () => Effect.succeed({ merged: false, open: undefined }),
    abortMerge: () => Effect.void,
    catchUp: () => Effect.succeed(null),
    files: (stream) => filesOf(side(stream)),
    commitAttempt: (stream) =>
      Effect.sync(() => {
        const s = side(stream)
        const files = [...s.touched].sort()
        s.touched.clear()
        if (files.length === 0) return new Workspace.AttemptChange({ commit: null, files: [] })
        for (const f of files) s.own.add(f)
        s.head = `c${++counter}`
        return new Workspace.AttemptChange({ commit: s.head, files })
      }),
    // Its own commits: the memory workspace's pin and integration check know none of them.
    pin: (stream, commit) =>
      Effect.sync(() => {
        const s = side(stream)
        if (s.head === commit) return undefined
        const found = s.head
        s.head = commit
        return `stream "${stream}" was at ${found}, not at the journaled ${commit}; put back at ${commit}`
      }),
    // Every stream merges (mergeStream below), so the integration holds every attempt's commit.
    missingFromIntegration: () => Effect.succeed([]),
    // Nothing is absorbed: a stream "already has" its dependencies' work.
    absorb: () => Effect.succeed({ _tag: "Absorbed", commit: null }),
    discard: (stream) => Effect.sync(() => side(stream).touched.clear()),
    findAttempt: () => Effect.succeed(undefined),
    changedFiles: (stream) => Effect.sync(() => [...side(stream).own].sort()),
    head: (location) => Effect.sync(() => location._tag === "Stream" ? side(location.stream).head : integration.head),
    beginIntegration: () => Effect.void,
    probeMerge: () => Effect.succeed([]),
    mergeStream: () => Effect.sync(() => ({ _tag: "Merged", commit: (integration.head = `c${++counter}`) })),
    integrationFiles: () => filesOf(integration),
    concludeMerge: () => Effect.sync(() => (integration.head = `c${++counter}`)),
    land: () => Effect.sync(() => new Workspace.Landing({ target: "main", commit: integration.head, previous: "c0", fastForward: true })),
    release: () => Effect.void
  }
}
