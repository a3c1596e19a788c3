/**
 * The stream checkouts a prepared run holds open, shared by the git and memory workspaces. A
 * stream's checkout is opened when one of its tasks takes it and stays open while the stream
 * waits (no churn: reopening a checkout of a large repository costs seconds), unless a stream
 * about to work needs room. Then the checkout idle longest is closed, so the run holds at
 * most `max` checkouts whatever its number of streams. A checkout in use is never closed.
 *
 * @internal
 */
import { Effect, type Scope } from "effect"

/** What the pool opens and closes. */
export interface Checkouts<E> {
  readonly open: (stream: string) => Effect.Effect<void, E>
  readonly close: (stream: string, keep: boolean) => Effect.Effect<void, E>
}

/** The checkouts of one run. */
export interface Pool<E> {
  /** Holds the stream's checkout until the scope closes (opening it, making room if needed); true when it was opened now. */
  readonly take: (stream: string) => Effect.Effect<boolean, E, Scope.Scope>
  /** Closes the stream's checkout if it is open (`keep`: left for a person). */
  readonly close: (stream: string, keep: boolean) => Effect.Effect<void, E>
  /** The streams whose checkout is open, and whether each is in use. */
  readonly open: () => ReadonlyMap<string, boolean>
}

/** A pool of at most `max` open checkouts; one evicted is closed with `keep` (`--keep-worktrees`). */
export const make = <E>(options: { readonly max: number; readonly keep: boolean }, checkouts: Checkouts<E>): Effect.Effect<Pool<E>> =>
  Effect.map(Effect.makeSemaphore(1), (lock) => {
    const held = new Map<string, { users: number; since: number }>()
    let tick = 0
    const closeNow = (stream: string, keep: boolean) =>
      Effect.suspend(() => !held.has(stream) ? Effect.void : Effect.tap(checkouts.close(stream, keep), () => held.delete(stream)))
    const acquire = (stream: string) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const found = held.get(stream)
        if (found !== undefined) {
          found.users++
          return false
        }
        while (held.size >= options.max) {
          const idle = [...held.entries()].filter(([, c]) => c.users === 0).sort(([, a], [, b]) => a.since - b.since)[0]
          // Every checkout is in use: the caller holds more than `max` at once (no slot limits it).
          if (idle === undefined) break
          yield* closeNow(idle[0], options.keep)
        }
        yield* checkouts.open(stream)
        held.set(stream, { users: 1, since: tick++ })
        return true
      }))
    const idle = (stream: string) =>
      Effect.sync(() => {
        const found = held.get(stream)
        if (found !== undefined) {
          found.users = Math.max(0, found.users - 1)
          found.since = tick++
        }
      })
    return {
      take: (stream) => Effect.acquireRelease(acquire(stream), () => idle(stream)),
      close: (stream, keep) => lock.withPermits(1)(closeNow(stream, keep)),
      open: () => new Map([...held].map(([name, c]) => [name, c.users > 0]))
    }
  })
