/**
 * Confinement for `GitWorkspace`: finds what an attempt's agent changed outside its own
 * worktree — in the main checkout, or in the worktree of another stream with no attempt in
 * progress. Each place has a snapshot (see `snapshot.ts`); after an attempt the snapshots are
 * compared with the files by their stats alone, and git is asked only where something changed.
 * What the user had changed before the run, and what a stream's own attempt, commit and review
 * leave in its own worktree, is not reported; every finding is reported once.
 *
 * The repository's own git files (`.git/config`, hooks, `info/`: see `gitGuard.ts`) are
 * checked before every git process braid starts and after every attempt; what changed is put
 * back at once. Which agent changed them cannot be told (they all reach the same `.git`), so
 * the finding goes to every attempt whose agent was at work when it was found: from
 * `attempting` until the attempt's own `strays`. The agent that made the change is among
 * them: its attempt's `strays` comes after the change, and looks too.
 *
 * @internal
 */
import { Effect, type Scope } from "effect"
import type * as Workspace from "../Workspace.js"
import * as GitGuard from "./gitGuard.js"
import * as Snapshot from "./snapshot.js"

/** What confinement needs from git. */
export interface Git {
  /** `git status` output (`Snapshot.statusArgs`) in a working tree. */
  readonly status: (dir: string) => Effect.Effect<string, Workspace.WorkspaceFailed>
  /** Drops every change in a stream's worktree (back to its branch head; ignored files stay). */
  readonly discard: (stream: string) => Effect.Effect<void, Workspace.WorkspaceFailed>
}

interface Place {
  readonly dir: string
  readonly skip: (relative: string) => boolean
  snapshot: Snapshot.Snapshot | undefined
}

/** The confinement of one run's streams. */
export interface Confinement {
  /** Takes the main checkout's snapshot: what is dirty now is the user's, not an agent's. */
  readonly watchMain: (top: string, skip: (relative: string) => boolean) => Effect.Effect<void, Workspace.WorkspaceFailed>
  /** A stream's worktree came into use; `clean`: just made, so nothing in it is dirty (no git needed). */
  readonly watchStream: (stream: string, dir: string, clean: boolean) => Effect.Effect<void, Workspace.WorkspaceFailed>
  /** A stream's worktree went away. */
  readonly unwatch: (stream: string) => Effect.Effect<void>
  /** Marks the stream busy while `effect` runs; afterwards what its worktree holds is its own. */
  readonly occupied: <A, E, R>(stream: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Marks the stream busy until the scope closes (an attempt: its agent, commit and review). */
  readonly attempting: (stream: string) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Whether nothing in the stream's worktree changed since its snapshot, which held nothing
   * uncommitted: an attempt that wrote nothing needs no git at all.
   */
  readonly untouched: (stream: string) => boolean
  /** The stream's worktree was just committed: clean but for what git ignores (a walk, no git). */
  readonly committed: (stream: string) => Effect.Effect<void>
  /** Changes outside `stream`'s worktree since they were last looked at; those in idle worktrees are dropped. */
  readonly strays: (stream: string) => Effect.Effect<Workspace.Strays, Workspace.WorkspaceFailed>
  /** Copies the repository's git files (once per run: a second prepare keeps the first copy). */
  readonly guardRepository: (commonDir: string) => Effect.Effect<void>
  /** Puts the repository's git files back if they changed (before each git process; synchronous). */
  readonly checkRepository: () => void
}

/** Where a change to the repository's own git files is reported. */
export const REPOSITORY = "repository's .git"

/** One change to the repository's git files, as one attempt is told of it. */
interface Tampered extends GitGuard.Tampering {
  /** The other streams whose agents were at work when it was found. */
  readonly alongside: ReadonlyArray<string>
}

const plural = (items: ReadonlyArray<string>, one: string, many: string) => items.length === 1 ? one : many

/** The finding of the repository's git files for one attempt: what changed, and what braid did about it. */
const repositoryFinding = (found: ReadonlyArray<Tampered>): Workspace.Strays[number] => {
  const changed = [...new Set(found.flatMap((f) => f.changed))].sort()
  const unrestored = [...new Set(found.flatMap((f) => f.unrestored))].sort()
  const restored = changed.filter((p) => !unrestored.includes(p))
  const alongside = [...new Set(found.flatMap((f) => f.alongside))].sort()
  const note = [
    restored.length > 0
      ? `braid put ${restored.join(", ")} back as ${plural(restored, "it was", "they were")} when the run started`
      : undefined,
    unrestored.length > 0
      ? `${unrestored.join(", ")} could not be put back: look at ${plural(unrestored, "it", "them")} before running git there`
      : undefined,
    alongside.length > 0
      ? `the agents of ${plural(alongside, "stream", "streams")} ${alongside.join(", ")} were at work too, and which one made the change cannot be told`
      : undefined
  ].filter((part) => part !== undefined).join("; ")
  return { where: REPOSITORY, paths: changed, note }
}

const MAIN = "main checkout"

const TICK = Snapshot.TICK

/** Builds the confinement of one run. */
export const make = (git: Git): Confinement => {
  const lock = Effect.unsafeMakeSemaphore(1)
  let main: Place | undefined
  const streams = new Map<string, Place>()
  const busy = new Map<string, number>()
  /** Streams whose attempt's agent is (or may be) at work: from `attempting` until the attempt's `strays`. */
  const working = new Map<string, number>()
  /** Changes to the repository's git files each stream's attempt is yet to be told of. */
  const tampered = new Map<string, Array<Tampered>>()
  let guard: GitGuard.Guard | undefined

  const checkRepository = () => {
    const found = guard?.check()
    if (found === undefined) return
    // With no agent at work (a resolver, a person), it is put back and nobody's attempt fails.
    for (const stream of working.keys()) {
      const alongside = [...working.keys()].filter((s) => s !== stream)
      tampered.set(stream, [...(tampered.get(stream) ?? []), { ...found, alongside }])
    }
  }

  const stopWorking = (stream: string) => {
    const left = (working.get(stream) ?? 1) - 1
    if (left > 0) working.set(stream, left)
    else working.delete(stream)
  }

  /** A fresh snapshot: git status, then a walk (in that order, so a write racing them is looked at again). */
  const look = (place: Place) =>
    Effect.gen(function*() {
      const at = Date.now()
      const out = yield* git.status(place.dir)
      return Snapshot.make(place.dir, Snapshot.parseStatus(out), place.skip, at)
    })

  /** What changed in a place since its snapshot (which it then replaces); empty without asking git when nothing did. */
  const changesIn = (place: Place) =>
    Effect.gen(function*() {
      const before = place.snapshot
      if (before !== undefined && Snapshot.unchanged(place.dir, before)) return []
      const after = yield* look(place)
      place.snapshot = after
      return before === undefined ? [] : Snapshot.changes(before, after)
    })

  /** A stream's worktree is its own again: what it holds now is the baseline. */
  const settle = (stream: string) =>
    Effect.gen(function*() {
      const place = streams.get(stream)
      if (place === undefined) return
      yield* changesIn(place).pipe(
        // Without a snapshot the next look takes one (and reports nothing of that place then).
        Effect.catchAll(() => Effect.sync(() => void (place.snapshot = undefined)))
      )
    })

  const enter = (stream: string) => lock.withPermits(1)(Effect.sync(() => void busy.set(stream, (busy.get(stream) ?? 0) + 1)))

  const leave = (stream: string) =>
    lock.withPermits(1)(Effect.suspend(() => {
      const left = (busy.get(stream) ?? 1) - 1
      if (left > 0) {
        busy.set(stream, left)
        return Effect.void
      }
      busy.delete(stream)
      return settle(stream)
    }))

  return {
    watchMain: (top, skip) =>
      lock.withPermits(1)(Effect.gen(function*() {
        if (main?.dir === top) return
        const place: Place = { dir: top, skip, snapshot: undefined }
        place.snapshot = yield* look(place)
        main = place
      })),
    watchStream: (stream, dir, clean) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const place: Place = { dir, skip: () => false, snapshot: undefined }
        place.snapshot = clean
          // Nothing else writes there before its first attempt starts, much later than a clock tick.
          ? { dirty: new Map(), ignored: new Set(), seen: Snapshot.walk(dir, new Set()) }
          : yield* look(place)
        streams.set(stream, place)
      })),
    unwatch: (stream) => lock.withPermits(1)(Effect.sync(() => void streams.delete(stream))),
    occupied: (stream, effect) => Effect.acquireUseRelease(enter(stream), () => effect, () => leave(stream)),
    attempting: (stream) =>
      Effect.acquireRelease(
        Effect.zipRight(enter(stream), Effect.sync(() => void working.set(stream, (working.get(stream) ?? 0) + 1))),
        () => Effect.zipRight(Effect.sync(() => working.has(stream) && stopWorking(stream)), leave(stream))
      ),
    untouched: (stream) => {
      const snapshot = streams.get(stream)?.snapshot
      return snapshot !== undefined && snapshot.dirty.size === 0 && Snapshot.unchanged(streams.get(stream)!.dir, snapshot)
    },
    committed: (stream) =>
      Effect.sync(() => {
        const place = streams.get(stream)
        if (place === undefined) return
        // What git ignored at the last look: a folder ignored since then is walked until the next one.
        const ignored = place.snapshot?.ignored ?? new Set<string>()
        // What the stream itself writes next comes much later than a clock tick: no file needs a second look.
        place.snapshot = { dirty: new Map(), ignored, seen: Snapshot.walk(place.dir, ignored) }
      }),
    strays: (stream) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const found: Array<{ where: string; paths: ReadonlyArray<string> }> = []
        if (main !== undefined) {
          const paths = yield* changesIn(main)
          if (paths.length > 0) found.push({ where: MAIN, paths })
        }
        for (const [name, place] of streams) {
          if (name === stream || busy.has(name)) continue
          const paths = yield* changesIn(place)
          if (paths.length === 0) continue
          found.push({ where: `worktree of stream ${name}`, paths })
          // What was written there would otherwise go into that stream's next attempt.
          yield* git.discard(name)
          const ignored = place.snapshot?.ignored ?? new Set<string>()
          place.snapshot = { dirty: new Map(), ignored, seen: Snapshot.walk(place.dir, ignored, undefined, Date.now() - TICK) }
        }
        checkRepository()
        const repository = tampered.get(stream)
        tampered.delete(stream)
        // The agent is done: what changes from now on is not its attempt's.
        working.delete(stream)
        if (repository !== undefined) found.push(repositoryFinding(repository))
        return found
      })),
    guardRepository: (commonDir) =>
      Effect.sync(() => {
        if (guard?.commonDir !== commonDir) guard = GitGuard.take(commonDir)
      }),
    checkRepository
  }
}
