/**
 * The cap on agents working at once. A counting semaphore whose waiters are served by
 * priority (longest remaining dependency chain first, then stream priority), so the slots
 * go to the work that holds the rest of the plan back. Waiting for a dependency never holds
 * a slot.
 *
 * A slot is handed out one scheduler turn after it frees up or is asked for, never on the
 * spot: by then every task made ready by the same event (the finished task's next one in its
 * stream, the tasks that waited on it, every stream at the start) has queued, so the best of
 * them gets it rather than whichever asked first.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit } from "effect"

/** Lower sorts first: compared element by element. */
export type Priority = ReadonlyArray<number | string>

/** Orders priorities: element by element, lower first; a shorter prefix sorts first. */
export const compare = (a: Priority, b: Priority): number => {
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
    let grantPending = false

    const grant = () => {
      grantPending = false
      while (available > 0 && waiters.length > 0) {
        const next = waiters.shift()!
        available--
        next.granted = true
        Deferred.unsafeDone(next.deferred, Exit.void)
      }
    }
    // Two turns of the scheduler, so the fibers the same event wakes (scheduled right after
    // this call) queue first; no fiber is forked for it, as that costs more than the grant.
    const scheduleGrant = Effect.withFiberRuntime<void>((fiber) => {
      if (!grantPending) {
        grantPending = true
        const scheduler = fiber.currentScheduler
        scheduler.scheduleTask(() => scheduler.scheduleTask(grant, 0), 0)
      }
      return Effect.void
    })

    const release = Effect.suspend(() => {
      available++
      return scheduleGrant
    })

    const acquire = (priority: Priority, restore: <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(Deferred.make<void>(), (deferred) => {
        const waiter: Waiter = { priority, seq: seq++, deferred, granted: false }
        let i = waiters.length
        while (i > 0 && (compare(waiters[i - 1]!.priority, priority) > 0)) i--
        waiters.splice(i, 0, waiter)
        return Effect.zipRight(
          scheduleGrant,
          restore(Deferred.await(deferred)).pipe(
            Effect.onInterrupt(() =>
              Effect.suspend(() => {
                if (waiter.granted) return release
                waiters.splice(waiters.indexOf(waiter), 1)
                return Effect.void
              })
            )
          )
        )
      })

    return {
      withSlot: (priority) => (effect) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.zipRight(acquire(priority, restore), restore(effect).pipe(Effect.ensuring(release)))
        ),
      inUse: () => size - available
    }
  })
