/**
 * Preparing a git run: every refusal first (`checks`), then the run folder, the repository's
 * guard and the main checkout's snapshot; the run's workspace comes back in the scope, which
 * releases it. Stream checkouts are opened later, when a stream has work (`Run.checkout`).
 *
 * @internal
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Workspace from "../../ports/Workspace.js"
import * as CheckoutPool from "../checkoutPool.js"
import * as Confinement from "../confinement.js"
import * as Git from "../git.js"
import * as Snapshot from "../snapshot.js"
import * as Branch from "./branch.js"
import * as Checkout from "./checkout.js"
import { checks } from "./checks.js"
import type { RunContext } from "./context.js"
import * as Integration from "./integration.js"
import * as Places from "./places.js"
import { failure, isInside, isMissing, makeRepo, realpath, refused, type Repo, type StreamTree } from "./repo.js"
import * as Streams from "./streams.js"
import * as Target from "./target.js"

/** How a git workspace finds its repository and names what it creates (see `GitWorkspace.Options`). */
export interface Settings {
  readonly repo: string
  readonly base?: string | undefined
  readonly target?: string | undefined
  readonly author?: Git.Identity | undefined
  readonly runFolder?: string | undefined
  readonly worktreesDir?: string | undefined
}

/** Who braid's commits are made by when the repository configures no `user.name`/`user.email`. */
export const braidIdentity: Git.Identity = { name: "braid", email: "braid@localhost" }

/** Adds the run folder to `info/exclude` of the repository (never the user's .gitignore). */
const excludeRunFolder = (repo: Repo, top: string, runFolder: string, commonDir: string) =>
  Effect.gen(function*() {
    if (!isInside(top, runFolder) || runFolder === top) return
    const pattern = `/${path.relative(top, runFolder).split(path.sep).join("/")}/`
    const file = path.join(commonDir, "info", "exclude")
    yield* Effect.tryPromise({
      try: async () => {
        const current = await fs.readFile(file, "utf8").catch((e) => isMissing(e) ? "" : Promise.reject(e))
        const lines = current.split("\n").map((l) => l.trim())
        if (lines.includes(pattern) || lines.includes(pattern.slice(1))) return
        await fs.mkdir(path.dirname(file), { recursive: true })
        const separator = current === "" || current.endsWith("\n") ? "" : "\n"
        await fs.appendFile(file, `${separator}# braid's run folder (worktrees, journal)\n${pattern}\n`)
      },
      catch: Workspace.failed("exclude run folder")
    })
  })

/** Prepares a run in the repository of `settings`: its workspace, released when the scope closes. */
export const prepare = (executor: CommandExecutor.CommandExecutor, settings: Settings) =>
  Effect.fn("GitWorkspace.prepare")(function*(setup: Workspace.RunSetup) {
    // Checks first: nothing below changes the repository until every one has passed.
    const plain = makeRepo(Git.make(executor, settings.author ?? braidIdentity), executor)
    const { base, names, runFolder, target, targetHead, top } = yield* checks(plain, settings.repo, settings, setup)
    const identity = settings.author ?? (yield* Git.configuredIdentity(executor, top)) ?? braidIdentity
    // An existing run's checkouts stay where it recorded them; a new run's go outside the repository.
    const worktrees = yield* Effect.tryPromise({
      try: () => Places.choose(top, runFolder, setup.runId, settings.worktreesDir),
      catch: Workspace.failed("choose the worktrees folder")
    })
    if (isInside(top, worktrees) && !isInside(runFolder, worktrees)) {
      return yield* refused(
        "invalid-option",
        `the worktrees folder ${worktrees} is inside the repository ${top}: its tools would see every checkout; choose a folder outside it`
      )
    }
    const streams = new Map<string, StreamTree>(
      names.map((name) => [name, {
        branch: `braid/${setup.runId}/${name}`,
        dir: path.join(worktrees, name),
        recorded: base,
        sparse: setup.streams.find((s) => s.name === name)?.sparse
      }])
    )
    // Checkouts an earlier process of this run left on no branch (parked for reuse, or cut
    // off while being moved between streams) hold nothing the journal needs: every attempt
    // is committed on its stream's branch. They go, so a stream's folder is free again.
    for (const entry of yield* plain.listWorktrees(top)) {
      if (entry.branch === undefined && isInside(worktrees, entry.path) && entry.path !== worktrees) {
        yield* plain.git.ok(["worktree", "remove", "--force", entry.path], { cwd: top, operation: "prepare" })
      }
    }
    // Leftovers of this run from an earlier process are taken over, but a branch of this
    // run checked out somewhere else is not ours to move.
    const entries = yield* plain.listWorktrees(top)
    for (const tree of streams.values()) {
      const holder = entries.find((e) => e.branch === `refs/heads/${tree.branch}`)
      if (holder !== undefined && (yield* realpath(holder.path)) !== (yield* realpath(tree.dir))) {
        return yield* refused("invalid-option", `branch ${tree.branch} is already checked out at ${holder.path}`)
      }
      const occupied = yield* Effect.promise(() => fs.readdir(tree.dir).then((e) => e.length > 0, () => false))
      if (holder === undefined && occupied) {
        return yield* refused("invalid-option", `${tree.dir} already exists and is not the worktree of ${tree.branch}`)
      }
    }
    // Recorded before any checkout is made, so that resume, clean and status find them.
    yield* Effect.tryPromise({
      try: () => Places.record(runFolder, setup.runId, worktrees),
      catch: Workspace.failed("record the worktrees folder")
    })
    const commonDir = Git.firstLine(
      yield* plain.git.ok(["rev-parse", "--path-format=absolute", "--git-common-dir"], { cwd: top, operation: "rev-parse" })
    )
    const lock = Git.lockFor(yield* realpath(commonDir))
    yield* lock.withPermits(1)(excludeRunFolder(plain, top, runFolder, commonDir))
    // A sparse checkout in a linked worktree keeps its settings in the worktree's own config,
    // which git reads once the repository says so (as `git sparse-checkout` itself would set):
    // set now, before the repository's config is guarded.
    if (setup.streams.some((s) => s.sparse !== undefined)) {
      yield* lock.withPermits(1)(plain.git.ok(["config", "extensions.worktreeConfig", "true"], { cwd: top, operation: "prepare" }))
    }

    // Before every git process of the run: the repository's git files as they were at prepare (an agent may have changed them).
    const git = Git.make(executor, identity, { before: () => confinement.checkRepository() })
    const confinement = Confinement.make({
      status: (dir) => git.ok(Snapshot.statusArgs, { cwd: dir, operation: "strays" }),
      discard: (stream) => Effect.suspend(() => Checkout.dropChanges(ctx, stream))
    })
    const ctx: RunContext = {
      runId: setup.runId,
      top,
      runFolder,
      worktrees,
      lock,
      base,
      target,
      targetAtStart: setup.resume?.targetAt ?? targetHead,
      streams,
      integration: undefined,
      owned: [],
      open: undefined,
      landed: undefined,
      kept: new Set(),
      keepIntegration: false,
      spares: [],
      sparesMade: 0,
      repo: makeRepo(git, executor, commonDir, { top, runFolder, worktrees, runDir: Places.runDirOf(runFolder, setup.runId) }),
      confinement,
      indexWritten: new Map(),
      openAbsorbs: new Map()
    }
    // From here on, whatever the run creates is released with its scope.
    yield* Effect.addFinalizer(() => Effect.ignore(Target.release(ctx, setup.keepWorktrees === true)))
    // The repository's config, hooks and info/ as they are now (after excludeRunFolder) are what
    // every later git process of the run gets: a change an agent makes is put back and reported.
    yield* confinement.guardRepository(commonDir)
    // Made now rather than with the first worktree, so that it is part of the main checkout's snapshot.
    yield* Effect.promise(() => fs.mkdir(worktrees, { recursive: true }).catch(() => undefined))
    // What is dirty in the main checkout now is the user's: only what changes later is an agent's.
    yield* confinement.watchMain(
      top,
      (relative) => relative === ".braid" || relative.startsWith(".braid/") || isInside(runFolder, path.join(top, relative))
    )
    // A checkout closed for good (not kept for a person) gets its environment's teardown first.
    const beforeClose = (stream: string, keep: boolean) =>
      Effect.suspend(() => {
        const tree = streams.get(stream)
        return keep || setup.beforeClose === undefined || tree === undefined || !ctx.owned.includes(tree)
          ? Effect.void
          : confinement.occupied(stream, setup.beforeClose(Checkout.checkoutOf(ctx, tree, stream, false)))
      })
    const pool = yield* CheckoutPool.make<Workspace.WorkspaceError>(
      { max: setup.maxCheckouts ?? Number.POSITIVE_INFINITY, keep: setup.keepWorktrees === true },
      {
        open: (stream) => Streams.open(ctx, stream),
        close: (stream, keep) => Effect.zipRight(beforeClose(stream, keep), Streams.close(ctx, stream, keep))
      }
    )
    const checkout = (stream: string) =>
      Effect.suspend(() => {
        const tree = streams.get(stream)
        return tree === undefined
          ? Effect.fail(failure("checkout", `no workspace for stream "${stream}" in run ${setup.runId}`))
          : Effect.map(pool.take(stream), (opened) => Checkout.checkoutOf(ctx, tree, stream, opened))
      })
    const run: Workspace.Run = {
      runId: setup.runId,
      base,
      target,
      targetAt: setup.resume?.targetAt ?? targetHead,
      checkout,
      close: (stream, options) => pool.close(stream, options.keep),
      branch: (stream) => Branch.branchOf(ctx, stream),
      integration: Integration.make(ctx),
      landing: Target.make(ctx),
      keepIntegration: Effect.sync(() => void (ctx.keepIntegration = true)),
      source: {
        dir: top,
        untracked: (patterns) =>
          patterns.length === 0 ? Effect.succeed([]) : Effect.map(
            plain.git.ok(["ls-files", "-z", "--others", "--ignored", ...patterns.flatMap((p) => ["-x", p])], { cwd: top, operation: "environment.copy" }),
            (out) => Git.splitZ(out).filter((relative) => !isInside(runFolder, path.join(top, relative)))
          )
      }
    }
    return run
  })
