/**
 * A minimal `Workspace` for measuring the engine alone: each stream's files are a map, an
 * attempt's change is the set of paths written since the last one, and nothing is
 * snapshotted, merged or absorbed. What it does not replace comes from a run of a
 * MemoryWorkspace (only reached off the happy path: conflicts, commands, resume).
 */
import { Workspace } from "@braid/core"
import { Effect } from "effect"

export const make = (memory, base = { "README.md": "base\n" }) => ({
  prepare: (setup) =>
    Effect.map(memory.prepare(setup), (fallback) => {
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
      for (const s of setup.streams) side(s.name)
      const integration = { files: new Map(Object.entries(base)), touched: new Set(), own: new Set(), head: "c0" }
      const filesOf = (s) => ({
        _tag: "InMemory",
        read: (p) => Effect.sync(() => s.files.get(p)),
        write: (p, content) => Effect.sync(() => void (s.files.set(p, content), s.touched.add(p))),
        remove: (p) => Effect.sync(() => void (s.files.delete(p), s.touched.add(p))),
        list: () => Effect.sync(() => [...s.files.keys()].sort())
      })
      // The engine alone: checkouts, their pool, confinement and merge bookkeeping cost nothing here.
      const checkoutOf = (stream) => ({
        stream,
        opened: false,
        files: filesOf(side(stream)),
        head: Effect.sync(() => side(stream).head),
        commitAttempt: () =>
          Effect.sync(() => {
            const s = side(stream)
            const files = [...s.touched].sort()
            s.touched.clear()
            if (files.length === 0) return new Workspace.AttemptChange({ commit: null, files: [] })
            for (const f of files) s.own.add(f)
            s.head = `c${++counter}`
            return new Workspace.AttemptChange({ commit: s.head, files })
          }),
        // Nothing is absorbed: a stream "already has" its dependencies' work.
        absorb: () => Effect.succeed({ _tag: "Absorbed", commit: null }),
        concludeAbsorb: () => Effect.succeed(side(stream).head),
        discard: Effect.sync(() => side(stream).touched.clear()),
        findAttempt: () => Effect.succeed(undefined),
        attempting: Effect.void,
        strays: Effect.succeed([]),
        exec: (command, env) => Effect.flatMap(Effect.scoped(fallback.checkout(stream)), (c) => c.exec(command, env))
      })
      return {
        ...fallback,
        checkout: (stream) => Effect.succeed(checkoutOf(stream)),
        close: () => Effect.void,
        branch: (stream) => ({
          // Its own commits: the memory workspace's pin knows none of them.
          pin: (commit) =>
            Effect.sync(() => {
              const s = side(stream)
              if (s.head === commit) return undefined
              const found = s.head
              s.head = commit
              return `stream "${stream}" was at ${found}, not at the journaled ${commit}; put back at ${commit}`
            }),
          diff: () => Effect.succeed(""),
          changedFiles: Effect.sync(() => [...side(stream).own].sort()),
          head: Effect.sync(() => side(stream).head)
        }),
        integration: {
          ...fallback.integration,
          begin: () => Effect.void,
          probe: () => Effect.succeed([]),
          merge: () => Effect.sync(() => ({ _tag: "Merged", commit: (integration.head = `c${++counter}`) })),
          conclude: () => Effect.sync(() => (integration.head = `c${++counter}`)),
          abort: Effect.void,
          files: filesOf(integration),
          mergeState: () => Effect.succeed({ merged: false, open: undefined }),
          catchUp: Effect.succeed(null),
          head: Effect.sync(() => integration.head),
          // Every stream merges (merge above), so the integration holds every attempt's commit.
          missing: () => Effect.succeed([])
        },
        landing: {
          ...fallback.landing,
          land: Effect.sync(() => new Workspace.Landing({ target: "main", commit: integration.head, previous: "c0", fastForward: true }))
        }
      }
    })
})
