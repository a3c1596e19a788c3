/**
 * Opening and closing a stream's checkout in a git run (what the run's checkout pool calls).
 * A closed checkout is parked (detached, at most two) and the next stream to open moves it to
 * its own folder and switches branch: only the files that differ are rewritten.
 *
 * @internal
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Git from "../git.js"
import { dropChanges } from "./checkout.js"
import { noteIndex, type RunContext } from "./context.js"
import { exists, failure, type StreamTree } from "./repo.js"

/** At most this many closed checkouts wait to be reused. */
const MAX_SPARES = 2
/** The folder name of a parked checkout under the run's worktrees folder. */
export const SPARE_PREFIX = ".spare-"

const treeOf = (ctx: RunContext, operation: string, stream: string) =>
  Effect.suspend(() => {
    const tree = ctx.streams.get(stream)
    return tree === undefined
      ? Effect.fail(failure(operation, `no workspace for stream "${stream}" in run ${ctx.runId}`))
      : Effect.succeed(tree)
  })

/**
 * Makes the stream's worktree (its branch from the base when new), or takes over one an
 * earlier process left, dropping what was not committed there. Idempotent.
 */
export const open = Effect.fn("GitWorkspace.openStream")(function*(ctx: RunContext, stream: string) {
  const { branchHead, ensureWorktree, git, resolveCommit } = ctx.repo
  const tree = yield* treeOf(ctx, "openStream", stream)
  if (ctx.owned.includes(tree)) return
  const present = yield* exists(tree.dir)
  const spare = present ? undefined : ctx.spares.pop()
  if (spare !== undefined) {
    yield* ctx.lock.withPermits(1)(Effect.gen(function*() {
      ctx.owned.splice(ctx.owned.indexOf(spare), 1)
      yield* git.ok(["worktree", "move", spare.dir, tree.dir], { cwd: ctx.top, operation: "openStream" })
      const existing = yield* resolveCommit(`refs/heads/${tree.branch}`, ctx.top)
      yield* git.ok(
        existing === undefined
          ? ["checkout", "--quiet", "--force", "--no-track", "-b", tree.branch, ctx.base]
          : ["checkout", "--quiet", "--force", tree.branch],
        { cwd: tree.dir, operation: "openStream" }
      )
      // As pristine as a new worktree: nothing of the stream that used it stays, ignored files included.
      yield* git.ok(["clean", "-fdxq"], { cwd: tree.dir, operation: "openStream" })
    }))
  } else {
    yield* ctx.lock.withPermits(1)(ensureWorktree(ctx.top, tree, ctx.base))
  }
  yield* sparseCheckout(ctx, tree)
  ctx.owned.push(tree)
  ctx.kept.delete(stream)
  // The next attempt's change starts from the branch head.
  tree.recorded = yield* branchHead("openStream", tree.branch, ctx.top)
  // Taken over from an earlier process: what it did not commit is dropped (the attempt
  // runs again), and so is a merge it left open.
  if (present) yield* ctx.confinement.occupied(stream, dropChanges(ctx, stream))
  // From now on what changes in it while no attempt of its own runs is an agent's stray.
  yield* ctx.confinement.watchStream(stream, tree.dir, !present)
  noteIndex(ctx, stream, tree.dir)
})

/**
 * The checkout as sparse as its stream asks (cone mode: its folders, and every file at the
 * top), or complete again (a parked checkout of a sparse stream handed to another). Its
 * settings are the worktree's own (`config.worktree`), never the repository's.
 */
const sparseCheckout = (ctx: RunContext, tree: StreamTree) =>
  Effect.gen(function*() {
    const { git } = ctx.repo
    const cwd = tree.dir
    if (tree.sparse !== undefined) {
      yield* git.ok(["sparse-checkout", "set", "--cone", "--", ...tree.sparse], { cwd, operation: "openStream" })
      return
    }
    // A checkout that never had settings of its own (no config.worktree) is not sparse: no git to ask.
    const dirs = Git.gitDirsOf(cwd)
    if (dirs !== undefined && !fs.existsSync(path.join(dirs.gitDir, "config.worktree"))) return
    const sparse = yield* git.exec(["config", "--worktree", "--get", "core.sparseCheckout"], { cwd })
    if (sparse.exitCode === 0 && sparse.stdout.trim() === "true") {
      yield* git.ok(["sparse-checkout", "disable"], { cwd, operation: "openStream" })
    }
  })

/**
 * Removes the stream's worktree (its branch and commits stay), or with `keep` leaves it for
 * a person to look at: release leaves it too.
 */
export const close = Effect.fn("GitWorkspace.closeStream")(function*(ctx: RunContext, stream: string, keep: boolean) {
  const { git } = ctx.repo
  const tree = yield* treeOf(ctx, "closeStream", stream)
  yield* ctx.confinement.unwatch(stream)
  ctx.indexWritten.delete(stream)
  if (keep) {
    ctx.kept.add(stream)
    return
  }
  const at = ctx.owned.indexOf(tree)
  if (at < 0) return
  yield* ctx.lock.withPermits(1)(Effect.gen(function*() {
    if (!(yield* exists(tree.dir))) return
    if (ctx.spares.length < MAX_SPARES) {
      // Parked for the next stream to open, on no branch (the stream's branch stays free for
      // any other checkout, after a crash too); its uncommitted files go when it is reused.
      const spare = { branch: "", dir: path.join(ctx.worktrees, `${SPARE_PREFIX}${process.pid}-${ctx.sparesMade++}`) }
      yield* git.ok(["checkout", "--quiet", "--detach"], { cwd: tree.dir, operation: "closeStream" })
      yield* git.ok(["worktree", "move", tree.dir, spare.dir], { cwd: ctx.top, operation: "closeStream" })
      ctx.spares.push(spare)
      ctx.owned.push(spare)
    } else {
      // --force: a cut-off attempt may have left uncommitted files.
      yield* git.ok(["worktree", "remove", "--force", tree.dir], { cwd: ctx.top, operation: "closeStream" })
    }
  }))
  ctx.owned.splice(ctx.owned.indexOf(tree), 1)
  ctx.kept.delete(stream)
})
