/**
 * The cap on agents working at once. A counting semaphore whose waiters are served by
 * priority (longest remaining dependency chain first, then stream priority), so the slots
 * go to the work that holds the rest of the plan back. Waiting for a dependency never holds
 * a slot.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit } from "effect"

/** Lower sorts first: compared element by element. */
export type Priority = ReadonlyArray<number | string>

const compare = (a: Priority, b: Priority): number => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i]
    const y = b[i]
    if (x === y) continue
    if (x === undefined) return -1
    if (y === undefined) return 1
    return x < y ? -1 : 1
  }
  return 0
}

export interface AgentSlots {
  /** Runs `effect` while holding one slot, waiting for one by priority. */
  readonly withSlot: (priority: Priority) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Slots in use right now. */
  readonly inUse: () => number
}

interface Waiter {
  readonly priority: Priority
  readonly seq: number
  readonly deferred: Deferred.Deferred<void>
  granted: boolean
}

/** Creates a pool of `size` slots. */
export const make = (size: number): Effect.Effect<AgentSlots> =>
  Effect.sync(() => {
    let available = size
    let seq = 0
    const waiters: Array<Waiter> = []

    const release = () => {
      const next = waiters.shift()
      if (next === undefined) available++
      else {
        next.granted = true
        Deferred.unsafeDone(next.deferred, Exit.void)
      }
    }

    const acquire = (priority: Priority, restore: <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        if (available > 0 && waiters.length === 0) {
          available--
          return Effect.void
        }
        return Effect.flatMap(Deferred.make<void>(), (deferred) => {
          const waiter: Waiter = { priority, seq: seq++, deferred, granted: false }
          let i = waiters.length
          while (i > 0 && (compare(waiters[i - 1]!.priority, priority) > 0)) i--
          waiters.splice(i, 0, waiter)
          return restore(Deferred.await(deferred)).pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                if (waiter.granted) release()
                else waiters.splice(waiters.indexOf(waiter), 1)
              })
            )
          )
        })
      })

    return {
      withSlot: (priority) => (effect) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.zipRight(acquire(priority, restore), restore(effect).pipe(Effect.ensuring(Effect.sync(release))))
        ),
      inUse: () => size - available
    }
  })
