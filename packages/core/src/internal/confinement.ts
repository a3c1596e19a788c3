/**
 * Confinement for `GitWorkspace`: finds what an attempt's agent changed outside its own
 * worktree — in the main checkout, or in the worktree of another stream with no attempt in
 * progress. Each place has a snapshot (see `snapshot.ts`), compared with the files by their
 * stats alone (git is asked only where something changed) whenever an agent starts or ends
 * (`attempting`, `strays`) and before a stream's worktree is taken for work (`occupied`).
 * Between two such moments the set of agents at work does not change, so whatever changed
 * since the last look was made by one of them (or by a person): every one of them is told of
 * it, with the others named — never the agent that merely finished first, and never one that
 * started after the change. Which of several agents at work made it cannot be told by looking;
 * confining each agent's processes by the operating system can. With no agent at work, a
 * change is nobody's attempt's. What the user had changed before the run, and what a stream's
 * own attempt, commit and review leave in its own worktree, is not reported; every finding is
 * reported once, to each agent it may be the deed of.
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
import type * as Workspace from "../ports/Workspace.js"
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
  return { where: REPOSITORY, paths: changed, note, ...(alongside.length > 0 ? { alongside } : {}) }
}

const MAIN = "main checkout"

/** Changes found in one place outside the agents' own worktrees, as one attempt is told of them. */
interface Outside {
  readonly where: string
  readonly paths: ReadonlyArray<string>
  /** The other streams whose agents were at work when the change appeared. */
  readonly alongside: ReadonlyArray<string>
}

/** One finding per place for one attempt, naming the other agents that were at work. */
const outsideFindings = (found: ReadonlyArray<Outside>): Workspace.Strays => {
  const places = [...new Set(found.map((f) => f.where))]
  return places.map((where) => {
    const here = found.filter((f) => f.where === where)
    const alongside = [...new Set(here.flatMap((f) => f.alongside))].sort()
    return {
      where,
      paths: [...new Set(here.flatMap((f) => f.paths))].sort(),
      ...(alongside.length > 0
        ? {
          note: `the agents of ${plural(alongside, "stream", "streams")} ${alongside.join(", ")} were at work too when it appeared, and which one made it cannot be told`,
          alongside
        }
        : {})
    }
  })
}

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
  /** Changes in the main checkout and idle worktrees each stream's attempt is yet to be told of. */
  const outside = new Map<string, Array<Outside>>()
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

  /**
   * Looks at the places no attempt of their own is using — the main checkout, idle worktrees
   * (among them one an attempt is about to take) — and tells every agent at work now of what
   * changed there since the last look. What was written into an idle worktree is dropped: it
   * would otherwise go into that stream's next attempt.
   */
  const lookAround = 
    Effect.gen(function*() {
      const found: Array<{ readonly where: string; readonly paths: ReadonlyArray<string> }> = []
      if (main !== undefined) {
        const paths = yield* changesIn(main)
        if (paths.length > 0) found.push({ where: MAIN, paths })
      }
      for (const [name, place] of streams) {
        if (busy.has(name)) continue
        const paths = yield* changesIn(place)
        if (paths.length === 0) continue
        found.push({ where: `worktree of stream ${name}`, paths })
        yield* git.discard(name)
        const ignored = place.snapshot?.ignored ?? new Set<string>()
        place.snapshot = { dirty: new Map(), ignored, seen: Snapshot.walk(place.dir, ignored, undefined, Date.now() - TICK) }
      }
      if (found.length === 0) return
      const agents = [...working.keys()]
      for (const stream of agents) {
        const alongside = agents.filter((s) => s !== stream)
        outside.set(stream, [...(outside.get(stream) ?? []), ...found.map((f) => ({ ...f, alongside }))])
      }
    })

  /** A look at an agent's start never fails it: the next look sees what this one missed. */
  const lookAroundQuietly = Effect.catchAll(lookAround, () => Effect.void)

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
        // What changed before this agent started is not its deed — in its own idle worktree
        // neither: the agents at work until now are told.
        lock.withPermits(1)(Effect.gen(function*() {
          yield* lookAroundQuietly
          busy.set(stream, (busy.get(stream) ?? 0) + 1)
          working.set(stream, (working.get(stream) ?? 0) + 1)
        })),
        () =>
          Effect.zipRight(
            Effect.sync(() => {
              if (working.has(stream)) stopWorking(stream)
              if (!working.has(stream)) outside.delete(stream)
            }),
            leave(stream)
          )
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
        yield* lookAround
        const found: Array<Workspace.Strays[number]> = [...outsideFindings(outside.get(stream) ?? [])]
        outside.delete(stream)
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
