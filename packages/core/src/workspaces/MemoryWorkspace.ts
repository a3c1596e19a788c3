/**
 * An in-memory `Workspace`: each stream's files are a map of path → content over a shared
 * base; a conflict is the same path changed differently by two sides. Commands run in a
 * temporary directory holding a copy of the files. For the library and tests.
 *
 * Files are persistent trees (`internal/tree.ts`): a commit shares everything it did not
 * change with its parent, so recording one costs nothing and comparing or merging two
 * versions visits only where they differ, however many files the streams hold.
 *
 * @since 0.1.0
 */
import { CommandExecutor } from "@effect/platform"
import { Effect, Layer, type Scope } from "effect"
import * as CheckoutPool from "../internal/checkoutPool.js"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { FileTree } from "../internal/tree.js"
import type * as CommandSpec from "../run/CommandSpec.js"
import * as Process from "../system/Process.js"
import * as Workspace from "../ports/Workspace.js"

/** One version of a workspace's files (`get(path)` reads a file). */
export type Tree = FileTree

interface Side {
  /** The working files (may hold changes not yet recorded). */
  files: Tree
  /** The commit the side is at ("m<n>"); `State.commits` holds each commit's tree. */
  head: string
  /** Paths the side's own attempts changed (absorbed work is not its own). */
  readonly own: Set<string>
  /** Paths written or removed since `head` was recorded: all an attempt's commit has to compare. */
  readonly touched: Set<string>
}

interface OpenMerge {
  readonly stream: string
  /** The stream commit being merged. */
  readonly head: string
  readonly paths: ReadonlyArray<string>
  readonly merged: Tree
}

export interface Options {
  /** The files every stream starts from. */
  readonly base?: Record<string, string>
  /** The name of the target "branch" (only for the report). */
  readonly target?: string
}

/** The state a memory workspace keeps; exposed so tests can look inside. */
export interface State {
  readonly base: Tree
  readonly commits: Map<string, Tree>
  readonly streams: Map<string, Side>
  integration: Side | undefined
  open: OpenMerge | undefined
  /** The stream commit last merged into the integration: the merge base of the stream's next merge. */
  readonly merged: Map<string, string>
  target: string
  landed: string | undefined
  /** An attempt's step key (`Workspace.attemptStep`) → the commit that recorded it, and its files. */
  readonly attempts: Map<string, { readonly commit: string; readonly files: ReadonlyArray<string> }>
}

const conflictText = (ours: string | undefined, theirs: string | undefined, stream: string) =>
  `<<<<<<< integration\n${ours ?? ""}${ours?.endsWith("\n") || ours === undefined ? "" : "\n"}=======\n${theirs ?? ""}${
    theirs?.endsWith("\n") || theirs === undefined ? "" : "\n"
  }>>>>>>> ${stream}\n`

const diffPaths = FileTree.diff

/** Builds a memory workspace and its inspectable state. */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    let counter = 0
    const state: State = {
      base: FileTree.fromEntries(Object.entries(options.base ?? {})),
      commits: new Map(),
      streams: new Map(),
      integration: undefined,
      open: undefined,
      merged: new Map(),
      target: options.target ?? "main",
      landed: undefined,
      attempts: new Map()
    }
    // Each commit's parents (as git records them): what the integration holds is found from them.
    const parentsOf = new Map<string, ReadonlyArray<string>>()
    const record = (tree: Tree, parents: ReadonlyArray<string> = []) => {
      const id = `m${++counter}`
      state.commits.set(id, tree)
      parentsOf.set(id, parents)
      return id
    }
    /** The commit and every commit before it. */
    const history = (head: string) => {
      const seen = new Set([head])
      const todo = [head]
      while (todo.length > 0) {
        for (const p of parentsOf.get(todo.pop()!) ?? []) {
          if (!seen.has(p)) {
            seen.add(p)
            todo.push(p)
          }
        }
      }
      return seen
    }
    const baseCommit = record(state.base)

    const side = (stream: string) =>
      Effect.suspend(() => {
        const s = state.streams.get(stream)
        return s === undefined
          ? Effect.fail(new Workspace.WorkspaceFailed({ operation: "stream", message: `no workspace for stream "${stream}"` }))
          : Effect.succeed(s)
      })
    const integration = () =>
      state.integration === undefined
        ? Effect.fail(new Workspace.WorkspaceFailed({ operation: "integration", message: "integration has not begun" }))
        : Effect.succeed(state.integration)

    // Like git's merge base: the stream's history is linear and the integration only ever
    // merges streams, so what the integration already has of a stream is its last merged commit.
    // Streams with a merge `absorb` left open, and its conflicted paths.
    const absorbing = new Map<string, { readonly paths: ReadonlyArray<string>; readonly commit: string }>()
    // Commits each stream has brought in (git knows this from ancestry).
    const absorbedBy = new Map<string, Set<string>>()
    const noteAbsorbed = (stream: string, commit: string) => (absorbedBy.get(stream) ?? absorbedBy.set(stream, new Set()).get(stream)!).add(commit)

    const mergeBase = (stream: string) => state.commits.get(state.merged.get(stream) ?? baseCommit)!

    const filesOf = (get: () => Side | undefined, label: string): Workspace.Files => {
      const at = () => {
        const s = get()
        return s === undefined
          ? Effect.fail(new Workspace.WorkspaceFailed({ operation: "files", message: `no workspace for ${label}` }))
          : Effect.succeed(s)
      }
      return {
        _tag: "InMemory",
        read: (p) => Effect.map(at(), (s) => s.files.get(p)),
        write: (p, content) =>
          Effect.map(at(), (s) => {
            s.files = s.files.set(p, content)
            s.touched.add(p)
          }),
        remove: (p) =>
          Effect.map(at(), (s) => {
            s.files = s.files.delete(p)
            s.touched.add(p)
          }),
        list: () => Effect.map(at(), (s) => s.files.paths())
      }
    }

    const exec = (files: () => Effect.Effect<Tree, Workspace.WorkspaceFailed>) => (command: CommandSpec.Command, env?: Record<string, string>) =>
      Effect.gen(function*() {
        const tree = yield* files()
        const dir = yield* Effect.tryPromise({
          try: async () => {
            const d = await fs.mkdtemp(path.join(os.tmpdir(), "braid-mem-"))
            for (const [p, content] of tree) {
              await fs.mkdir(path.dirname(path.join(d, p)), { recursive: true })
              await fs.writeFile(path.join(d, p), content)
            }
            return d
          },
          catch: Workspace.failed("exec")
        })
        const result = yield* Process.run(command.argv, {
          cwd: dir,
          env: { ...process.env, ...env },
          timeoutMs: command.timeoutMs,
          // A check's output is shown and kept as it is: credentials in it never are.
          redact: []
        }).pipe(
          Effect.provideService(CommandExecutor.CommandExecutor, executor),
          Effect.ensuring(Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))),
          // A program that cannot start is the user's command failing (as a shell reports it:
          // 127), not the workspace; the git workspace does the same.
          Effect.catchTag("SpawnFailed", (e) =>
            Effect.succeed({ exitCode: 127, stdout: "", stderr: e.message, timedOut: false, durationMs: 0 }))
        )
        return new Workspace.CommandResult({
          name: command.name,
          argv: command.argv,
          exitCode: result.exitCode,
          timedOut: result.timedOut,
          durationMs: result.durationMs,
          outputTail: Process.tail(`${result.stdout}${result.stderr}`)
        })
      })

    /** A stream's checkout: the stream's side of the state (memory checkouts cost nothing to open). */
    const checkoutOf = (stream: string, opened: boolean): Workspace.Checkout => ({
      stream,
      opened,
      files: filesOf(() => state.streams.get(stream), `stream "${stream}"`),
      head: Effect.map(side(stream), (s) => s.head),
      busy: (effect) => effect,
      commitAttempt: (attempt) =>
        Effect.map(side(stream), (s) => {
          // Only touched paths can differ from the head (every other change is recorded at once).
          const head = state.commits.get(s.head)!
          const files = [...s.touched].filter((p) => head.get(p) !== s.files.get(p)).sort()
          s.touched.clear()
          if (files.length === 0) return new Workspace.AttemptChange({ commit: null, files: [] })
          s.head = record(s.files, [s.head])
          for (const f of files) s.own.add(f)
          state.attempts.set(Workspace.attemptStep(stream, attempt), { commit: s.head, files })
          return new Workspace.AttemptChange({ commit: s.head, files })
        }),
      absorb: (commit, _reason, absorbSide = "none") =>
        Effect.gen(function*() {
          const s = yield* side(stream)
          const theirs = state.commits.get(commit)
          if (theirs === undefined) {
            return yield* new Workspace.WorkspaceFailed({ operation: "absorb", message: `no commit ${commit}` })
          }
          if (absorbedBy.get(stream)?.has(commit) === true) return { _tag: "Absorbed", commit: null } as const
          // Their change is taken where the stream still has the base's content.
          const clashes: Array<string> = []
          const merged = FileTree.merge(state.base, s.files, theirs, (p, _b, mine, other) => {
            if (absorbSide === "ours") return mine
            if (absorbSide === "theirs") return other
            clashes.push(p)
            return conflictText(mine, other, commit)
          })
          if (clashes.length > 0) {
            // Left open: the conflicted files carry markers until `concludeAbsorb` (or `discard`).
            s.files = merged
            for (const p of clashes) s.touched.add(p)
            absorbing.set(stream, { paths: clashes.sort(), commit })
            return { _tag: "Conflicted", paths: [...clashes] } as const
          }
          noteAbsorbed(stream, commit)
          if (diffPaths(s.files, merged).length === 0) return { _tag: "Absorbed", commit: null } as const
          // Uncommitted work goes into this commit with the absorbed changes.
          s.files = merged
          s.head = record(merged, [s.head, commit])
          s.touched.clear()
          return { _tag: "Absorbed", commit: s.head } as const
        }),
      concludeAbsorb: () =>
        Effect.gen(function*() {
          const s = yield* side(stream)
          const open = absorbing.get(stream)
          if (open === undefined) return yield* new Workspace.WorkspaceFailed({ operation: "concludeAbsorb", message: `no open merge in stream "${stream}"` })
          const remaining = open.paths.filter((p) => Workspace.hasConflictMarkers(s.files.get(p) ?? ""))
          if (remaining.length > 0) return yield* new Workspace.ConflictMarkersRemain({ stream, paths: remaining })
          absorbing.delete(stream)
          noteAbsorbed(stream, open.commit)
          s.head = record(s.files, [s.head, open.commit])
          s.touched.clear()
          return s.head
        }),
      // Nothing outside a memory workspace can be written to: no strays, nothing to mark.
      attempting: Effect.void,
      strays: Effect.succeed([]),
      discard: Effect.map(side(stream), (s) => {
        s.files = state.commits.get(s.head)!
        s.touched.clear()
        absorbing.delete(stream)
      }),
      findAttempt: (attempt) =>
        Effect.map(side(stream), (s) => {
          const found = state.attempts.get(Workspace.attemptStep(stream, attempt))
          return found !== undefined && found.commit === s.head
            ? new Workspace.AttemptChange({ commit: found.commit, files: found.files })
            : undefined
        }),
      exec: exec(() => Effect.map(side(stream), (s) => s.files))
    })

    const branchOf = (stream: string): Workspace.Branch => ({
      pin: (commit) =>
        Effect.gen(function*() {
          const s = yield* side(stream)
          const tree = state.commits.get(commit)
          if (tree === undefined) {
            return yield* new Workspace.WorkspaceFailed({ operation: "integrity", message: `the journaled commit ${commit} of stream "${stream}" no longer exists` })
          }
          if (s.head === commit) return undefined
          const found = s.head
          s.head = commit
          s.files = tree
          s.touched.clear()
          return `stream "${stream}" was at ${found}, not at the journaled ${commit}; put back at ${commit}`
        }),
      diff: (paths) =>
        Effect.map(side(stream), (s) => {
          const now = state.commits.get(s.head)!
          return paths.flatMap((p) => {
            const before = state.base.get(p)
            const after = now.get(p)
            if (before === after) return []
            const lines = (text: string | undefined, mark: string) => (text ?? "").split("\n").filter((l, i, all) => i < all.length - 1 || l !== "").map((l) => `${mark}${l}`)
            return [`--- a/${p}`, `+++ b/${p}`, ...lines(before, "-"), ...lines(after, "+")]
          }).join("\n")
        }),
      changedFiles: Effect.map(side(stream), (s) => [...s.own].sort()),
      head: Effect.map(side(stream), (s) => s.head)
    })

    const integrationOps: Workspace.Integration = {
      begin: (options) =>
        Effect.sync(() => {
          if (state.integration === undefined || options?.restart === true) {
            state.integration = { files: state.base, head: baseCommit, own: new Set(), touched: new Set() }
            state.merged.clear()
            state.open = undefined
          }
          // An open merge stays: it may be a person's (the merge step decides, see mergeState).
        }),
      probe: (stream) =>
        Effect.gen(function*() {
          const s = yield* side(stream)
          const i = yield* integration()
          const theirs = state.commits.get(s.head)!
          const ours = state.commits.get(i.head)!
          const conflicted: Array<string> = []
          FileTree.merge(mergeBase(stream), ours, theirs, (p, _b, o) => {
            conflicted.push(p)
            return o
          })
          return conflicted.sort()
        }),
      merge: (stream, mergeSide) =>
        Effect.gen(function*() {
          const s = yield* side(stream)
          const i = yield* integration()
          const theirs = state.commits.get(s.head)!
          const ours = state.commits.get(i.head)!
          const conflicted: Array<string> = []
          const merged = FileTree.merge(mergeBase(stream), ours, theirs, (p, _b, o, t) => {
            if (mergeSide === "stream") return t
            if (mergeSide === "integration") return o
            conflicted.push(p)
            return conflictText(o, t, stream)
          })
          conflicted.sort()
          i.files = merged
          if (conflicted.length > 0) {
            state.open = { stream, head: s.head, paths: conflicted, merged }
            return { _tag: "Conflicted", paths: conflicted } as const
          }
          i.head = record(merged, [i.head, s.head])
          state.merged.set(stream, s.head)
          return { _tag: "Merged", commit: i.head } as const
        }),
      files: filesOf(() => state.integration, "the integration"),
      mergeState: (stream) =>
        Effect.map(side(stream), (s) => ({
          merged: s.head === baseCommit || state.merged.get(stream) === s.head,
          open: state.open?.stream
        })),
      abort: Effect.sync(() => {
        if (state.integration !== undefined) state.integration.files = state.commits.get(state.integration.head)!
        state.open = undefined
      }),
      // Nothing else moves the memory target.
      catchUp: Effect.succeed(null),
      conclude: (stream) =>
        Effect.gen(function*() {
          const i = yield* integration()
          const open = state.open
          if (open === undefined || open.stream !== stream) {
            return yield* new Workspace.WorkspaceFailed({ operation: "conclude", message: `no open merge of stream "${stream}"` })
          }
          const remaining = open.paths.filter((p) => Workspace.hasConflictMarkers(i.files.get(p) ?? ""))
          if (remaining.length > 0) return yield* new Workspace.ConflictMarkersRemain({ stream, paths: remaining })
          state.open = undefined
          state.merged.set(stream, open.head)
          i.head = record(i.files, [i.head, open.head])
          return i.head
        }),
      head: Effect.suspend(() => Effect.map(integration(), (s) => s.head)),
      exec: exec(() => Effect.map(integration(), (s) => s.files)),
      missing: (commits) =>
        Effect.map(integration(), (i) => {
          const held = history(i.head)
          return commits.filter((c) => !held.has(c))
        })
    }

    const landing: Workspace.Target = {
      land: Effect.gen(function*() {
        const i = yield* integration()
        const previous = state.landed ?? baseCommit
        state.landed = i.head
        return new Workspace.Landing({ target: state.target, commit: i.head, previous, fastForward: true })
      }),
      push: (request) =>
        Effect.fail(new Workspace.WorkspaceRefused({ reason: "invalid-option", message: `a memory workspace has no remote to push to (${request.remote}); use the git workspace` }))
    }

    const prepare = (setup: Workspace.RunSetup): Effect.Effect<Workspace.Run, Workspace.WorkspaceError, Scope.Scope> =>
      Effect.gen(function*() {
        for (const s of setup.streams) {
          if (!state.streams.has(s.name)) state.streams.set(s.name, { files: state.base, head: baseCommit, own: new Set(), touched: new Set() })
        }
        const pool = yield* CheckoutPool.make<Workspace.WorkspaceError>(
          { max: setup.maxCheckouts ?? Number.POSITIVE_INFINITY, keep: setup.keepWorktrees === true },
          { open: (stream) => Effect.asVoid(side(stream)), close: () => Effect.void }
        )
        return {
          runId: setup.runId,
          base: baseCommit,
          target: state.target,
          targetAt: state.landed ?? baseCommit,
          checkout: (stream) => Effect.map(pool.take(stream), (opened) => checkoutOf(stream, opened)),
          close: (stream, options) => pool.close(stream, options.keep),
          branch: branchOf,
          integration: integrationOps,
          landing,
          // Nothing to release: the state is the memory "repository", kept for the next run.
          keepIntegration: Effect.void
        } satisfies Workspace.Run
      })

    const service: Workspace.Service = { prepare }
    return { service, state }
  })

/** A memory workspace layer. */
export const layer = (options: Options = {}): Layer.Layer<Workspace.Workspace, never, CommandExecutor.CommandExecutor> =>
  Layer.effect(Workspace.Workspace, Effect.map(make(options), (m) => m.service))
