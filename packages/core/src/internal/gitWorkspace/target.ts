/**
 * The target of a git run: landing the integration on it (fast-forward only), pushing the
 * integration to a remote (never forced), and releasing what the run made when its scope closes.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Workspace from "../../ports/Workspace.js"
import type { RunContext } from "./context.js"
import { begun } from "./integration.js"
import * as Places from "./places.js"
import { exists, failure, oneLine, realpath, redactUrl, refused, type Tree } from "./repo.js"

/** The target of the prepared run `ctx`. */
export const make = (ctx: RunContext): Workspace.Target => {
  const { branchHead, dirtyPaths, git, isAncestor, listWorktrees, mergeHead } = ctx.repo

  const land = Effect.gen(function*() {
    const integration = yield* begun(ctx, "land")
    if ((yield* mergeHead(integration.dir)) !== undefined) {
      return yield* failure("land", `a merge is still open in ${integration.dir}; conclude it before landing`)
    }
    const next = yield* branchHead("land", integration.branch, ctx.top)
    return yield* ctx.lock.withPermits(1)(Effect.gen(function*() {
      const previous = yield* branchHead("land", ctx.target, ctx.top)
      if (previous === next && ctx.targetAtStart !== next && (yield* isAncestor(ctx.targetAtStart, next, ctx.top))) {
        // Landed already by an earlier process of this run that stopped before recording it.
        ctx.landed = next
        return new Workspace.Landing({ target: ctx.target, commit: next, previous: ctx.targetAtStart, fastForward: true })
      }
      if (!(yield* isAncestor(previous, next, ctx.top))) {
        return yield* refused(
          "target-moved",
          previous !== ctx.targetAtStart
            ? `target ${ctx.target} moved since the run started: it was ${ctx.targetAtStart}, it is now ${previous}; nothing was landed`
            : `the integration ${integration.branch} (${next}) does not contain ${ctx.target} (${previous}): landing would not be a fast-forward`
        )
      }
      const holder = (yield* listWorktrees(ctx.top)).find((e) => e.branch === `refs/heads/${ctx.target}`)
      if (holder !== undefined) {
        // The user's checkout follows the branch: a fast-forward merge there, not a ref
        // update behind its back.
        const dirty = yield* dirtyPaths(holder.path, ctx.runFolder)
        if (dirty.length > 0) {
          return yield* refused(
            "dirty-working-tree",
            `${ctx.target} is checked out at ${holder.path}, which has uncommitted changes (${dirty.slice(0, 5).join(", ")}); nothing was landed`
          )
        }
        yield* git.ok(["merge", "--quiet", "--ff-only", "--no-edit", next], { cwd: holder.path, operation: "land" })
      } else {
        // Compare-and-swap: fails if the branch moved since it was read.
        yield* git.ok(
          ["update-ref", "-m", `braid: land run ${ctx.runId}`, `refs/heads/${ctx.target}`, next, previous],
          { cwd: ctx.top, operation: "land" }
        )
      }
      const landed = yield* branchHead("land", ctx.target, ctx.top)
      if (landed !== next) {
        return yield* failure("land", `${ctx.target} is at ${landed} after landing, expected ${next}`)
      }
      ctx.targetAtStart = next
      ctx.landed = next
      return new Workspace.Landing({ target: ctx.target, commit: next, previous, fastForward: true })
    }))
  }).pipe(Effect.withSpan("GitWorkspace.land"))

  const push = Effect.fn("GitWorkspace.push")(function*(request: { readonly remote: string; readonly branch: string }) {
    const integration = yield* begun(ctx, "push")
    const commit = yield* branchHead("push", integration.branch, ctx.top)
    const ref = `refs/heads/${request.branch}`
    const where = `${request.branch} on ${request.remote}`
    const remoteHead = yield* git.exec(["ls-remote", "--", request.remote, ref], { cwd: ctx.top })
    if (remoteHead.exitCode !== 0) {
      return yield* failure("push", redactUrl(`cannot reach the remote ${request.remote}: ${oneLine(remoteHead.stderr).slice(0, 400)}`))
    }
    const previous = remoteHead.stdout.split("\n").map((l) => l.split("\t")).find((f) => f[1] === ref)?.[0] ?? null
    if (previous === commit) return new Workspace.Pushed({ remote: request.remote, branch: request.branch, commit, previous })
    // No `+` and no --force: git itself refuses anything but a fast-forward.
    const pushed = yield* git.exec(["push", "--porcelain", "--no-verify", "--", request.remote, `${commit}:${ref}`], { cwd: ctx.top })
    if (pushed.exitCode !== 0) {
      const output = `${pushed.stdout}\n${pushed.stderr}`
      if (/\[rejected\]|non-fast-forward|fetch first|\(stale info\)/.test(output)) {
        return yield* refused(
          "push-rejected",
          `${where} has commits the run's integration (${commit.slice(0, 10)}) does not hold (it is at ${previous?.slice(0, 10) ?? "?"}): the push was refused, braid never forces; bring those commits into ${integration.branch} or move ${where} back, then run braid land again`
        )
      }
      return yield* failure("push", redactUrl(`pushing to ${where} failed (exit ${pushed.exitCode}): ${oneLine(pushed.stderr).slice(0, 400)}`))
    }
    return new Workspace.Pushed({ remote: request.remote, branch: request.branch, commit, previous })
  })

  return { land, push }
}

/**
 * Removes what the run created and does not keep: worktrees (all kept with `keepWorktrees`;
 * streams closed with `keep`; the integration's after `keepIntegration`), and the branches the
 * target now holds.
 */
export const release = Effect.fn("GitWorkspace.release")(function*(ctx: RunContext, keepWorktrees: boolean) {
  if (keepWorktrees) return
  const { git, listWorktrees, notAncestors, resolveCommit } = ctx.repo
  const keep = (tree: Tree) =>
    (tree === ctx.integration && ctx.keepIntegration) ||
    [...ctx.kept].some((name) => ctx.streams.get(name)?.dir === tree.dir)
  yield* ctx.lock.withPermits(1)(Effect.gen(function*() {
    const registered = new Set<string>()
    for (const entry of yield* listWorktrees(ctx.top)) registered.add(yield* realpath(entry.path))
    for (const tree of ctx.owned) {
      if (keep(tree)) continue
      if ((yield* exists(tree.dir)) && registered.has(yield* realpath(tree.dir))) {
        // --force: an attempt may have left uncommitted files, or a merge may be open.
        yield* git.ok(["worktree", "remove", "--force", tree.dir], { cwd: ctx.top, operation: "release" })
      }
    }
    // Drops the entries whose folder is gone (ours removed by hand); locked worktrees,
    // git's way of protecting one on removable media, are left alone by git.
    yield* git.ok(["worktree", "prune"], { cwd: ctx.top, operation: "release" })
    const target = yield* resolveCommit(`refs/heads/${ctx.target}`, ctx.top)
    // A worktree kept for a person keeps its branch checked out: the branch stays too. So does
    // the branch of any worktree still there (one an earlier process kept): update-ref would
    // delete it under that worktree, leaving it on a branch that does not exist.
    const checkedOut = new Set((yield* listWorktrees(ctx.top)).map((e) => e.branch))
    const branches = [...ctx.streams].filter(([name]) => !ctx.kept.has(name)).map(([, t]) => t.branch)
    // Until something landed, the integration branch is the only record of the merges.
    if (ctx.integration !== undefined && ctx.landed !== undefined) branches.push(ctx.integration.branch)
    if (target === undefined) return
    const heads: Array<readonly [string, string]> = []
    for (const branch of branches) {
      if (checkedOut.has(`refs/heads/${branch}`)) continue
      const sha = yield* resolveCommit(`refs/heads/${branch}`, ctx.top)
      if (sha !== undefined) heads.push([`refs/heads/${branch}`, sha])
    }
    const unlanded = new Set(yield* notAncestors(heads.map(([, sha]) => sha), target, ctx.top))
    const landed = heads.filter(([, sha]) => !unlanded.has(sha))
    if (landed.length === 0) return
    // Deleted only if each still points where we checked: a branch moved meanwhile is kept.
    // One transaction for all; should one have moved, each is deleted on its own.
    const together = yield* git.exec(["update-ref", "--stdin"], {
      cwd: ctx.top,
      stdin: landed.map(([ref, sha]) => `delete ${ref} ${sha}\n`).join("")
    })
    if (together.exitCode === 0) return
    for (const [ref, sha] of landed) {
      yield* git.exec(["update-ref", "-d", ref, sha], { cwd: ctx.top })
    }
  }))
  const stays = ctx.owned.filter(keep)
  ctx.owned.length = 0
  ctx.owned.push(...stays)
  ctx.spares.length = 0
  if (ctx.integration !== undefined && !stays.includes(ctx.integration)) ctx.integration = undefined
  // Only if empty: anything else in it is not ours to delete.
  yield* Effect.promise(() => Places.tidy(ctx.worktrees))
})
