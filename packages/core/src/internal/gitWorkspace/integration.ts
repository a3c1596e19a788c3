/**
 * The integration of a git run: a worktree on the run's integration branch where streams are
 * merged one at a time, each stream's journaled commit (`pin`) when it has one; conflicts
 * probed first with `git merge-tree` (no working tree touched).
 *
 * @internal
 */
import { Effect } from "effect"
import * as path from "node:path"
import * as Workspace from "../../ports/Workspace.js"
import * as Git from "../git.js"
import type { RunContext } from "./context.js"
import { failure, INTEGRATION_BRANCH, INTEGRATION_DIR, pinnedOf, type Tree } from "./repo.js"

/** The integration's tree: where it is, whether or not it has begun. */
export const integrationTree = (ctx: RunContext): Tree =>
  ctx.integration ?? { branch: `braid/${ctx.runId}/${INTEGRATION_BRANCH}`, dir: path.join(ctx.worktrees, INTEGRATION_DIR) }

/** The integration once it has begun. */
export const begun = (ctx: RunContext, operation: string) =>
  Effect.suspend(() =>
    ctx.integration === undefined
      ? Effect.fail(failure(operation, `the integration of run ${ctx.runId} has not begun`))
      : Effect.succeed(ctx.integration)
  )

const streamTree = (ctx: RunContext, operation: string, stream: string) =>
  Effect.suspend(() => {
    const tree = ctx.streams.get(stream)
    return tree === undefined
      ? Effect.fail(failure(operation, `no workspace for stream "${stream}" in run ${ctx.runId}`))
      : Effect.succeed(tree)
  })

/** The integration of the prepared run `ctx`. */
export const make = (ctx: RunContext): Workspace.Integration => {
  const { branchHead, git, isAncestor, mergeHead, resolveCommit, unmergedPaths } = ctx.repo

  const begin = Effect.fn("GitWorkspace.beginIntegration")(function*(options?: { readonly restart: boolean }) {
    let tree = ctx.integration
    if (tree === undefined) {
      tree = integrationTree(ctx)
      yield* ctx.lock.withPermits(1)(ctx.repo.ensureWorktree(ctx.top, tree, ctx.base))
      ctx.integration = tree
      ctx.owned.push(tree)
    }
    const cwd = tree.dir
    // A merge left open is not abandoned here: it may be a person's resolution of a conflict
    // (the merge step decides, see `mergeState`).
    if (options?.restart === true) {
      if ((yield* mergeHead(cwd)) !== undefined) yield* git.ok(["merge", "--abort"], { cwd, operation: "beginIntegration" })
      ctx.open = undefined
      yield* ctx.lock.withPermits(1)(git.ok(["reset", "--quiet", "--hard", ctx.base], { cwd, operation: "beginIntegration" }))
    }
  })

  const probe = Effect.fn("GitWorkspace.probeMerge")(function*(stream: string) {
    const integration = yield* begun(ctx, "probeMerge")
    const tree = yield* streamTree(ctx, "probeMerge", stream)
    // git 2.39 also exits 1 for a ref it cannot resolve, so resolve both first.
    const ours = yield* branchHead("probeMerge", integration.branch, ctx.top)
    const theirs = pinnedOf(tree) ?? (yield* branchHead("probeMerge", tree.branch, ctx.top))
    const args = ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs]
    const result = yield* git.exec(args, { cwd: ctx.top })
    if (result.exitCode === 0) return []
    const fields = Git.splitZ(result.stdout)
    if (result.exitCode !== 1 || fields.length === 0) {
      return yield* failure("probeMerge", Git.describeFailure(args, ctx.top, result))
    }
    // The first field is the (conflicted) tree's id; the conflicted paths follow.
    return Git.sortedUnique(fields.slice(1))
  })

  const merge = Effect.fn("GitWorkspace.mergeStream")(function*(stream: string, side: Workspace.MergeSide) {
    const integration = yield* begun(ctx, "mergeStream")
    const tree = yield* streamTree(ctx, "mergeStream", stream)
    const cwd = integration.dir
    if ((yield* mergeHead(cwd)) !== undefined) {
      return yield* failure(
        "mergeStream",
        `a merge${ctx.open === undefined ? "" : ` of stream "${ctx.open.stream}"`} is still open in ${cwd}; conclude it first`
      )
    }
    const theirs = pinnedOf(tree) ?? (yield* branchHead("mergeStream", tree.branch, ctx.top))
    const strategy = side === "integration" ? ["-X", "ours"] : side === "stream" ? ["-X", "theirs"] : []
    const args = ["merge", "--no-ff", "--no-log", "--no-squash", "--no-edit", "-m", `braid: merge stream ${stream}`, ...strategy, theirs]
    const result = yield* git.exec(args, { cwd })
    if (result.exitCode === 0) {
      return { _tag: "Merged", commit: yield* branchHead("mergeStream", integration.branch, ctx.top) } as const
    }
    const paths = yield* unmergedPaths(cwd)
    const open = (yield* mergeHead(cwd)) !== undefined
    if (paths.length === 0 || side !== "none") {
      if (open) yield* git.ok(["merge", "--abort"], { cwd, operation: "mergeStream" })
      return yield* failure(
        "mergeStream",
        paths.length === 0
          ? Git.describeFailure(args, cwd, result)
          : `merging stream "${stream}" with the ${side} side winning still left conflicts in ${paths.join(", ")} ` +
            `(-X ${side === "integration" ? "ours" : "theirs"} settles conflicting hunks, not a file deleted on one side ` +
            `and changed on the other, nor both sides adding it); the merge was aborted`
      )
    }
    ctx.open = { stream, paths }
    return { _tag: "Conflicted", paths } as const
  })

  const conclude = Effect.fn("GitWorkspace.concludeMerge")(function*(stream: string) {
    const integration = yield* begun(ctx, "concludeMerge")
    const tree = yield* streamTree(ctx, "concludeMerge", stream)
    const cwd = integration.dir
    const merging = yield* mergeHead(cwd)
    const theirs = pinnedOf(tree) ?? (yield* branchHead("concludeMerge", tree.branch, ctx.top))
    if (merging === undefined || merging !== theirs) {
      return yield* failure(
        "concludeMerge",
        merging === undefined ? `no merge is open in ${cwd}` : `the merge open in ${cwd} is not of stream "${stream}"`
      )
    }
    const paths = Git.sortedUnique([...(ctx.open?.stream === stream ? ctx.open.paths : []), ...(yield* unmergedPaths(cwd))])
    const files = ctx.repo.filesAt(cwd)
    const remaining: Array<string> = []
    for (const p of paths) {
      const text = yield* files.read(p)
      if (text !== undefined && Workspace.hasConflictMarkers(text)) remaining.push(p)
    }
    if (remaining.length > 0) return yield* new Workspace.ConflictMarkersRemain({ stream, paths: remaining })
    yield* git.ok(["add", "--all"], { cwd, operation: "concludeMerge" })
    yield* git.ok(
      ["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-m", `braid: merge stream ${stream} (conflicts resolved)`],
      { cwd, operation: "concludeMerge" }
    )
    ctx.open = undefined
    return yield* branchHead("concludeMerge", integration.branch, ctx.top)
  })

  const mergeState = Effect.fn("GitWorkspace.mergeState")(function*(stream: string) {
    const integration = yield* begun(ctx, "mergeState")
    const tree = yield* streamTree(ctx, "mergeState", stream)
    const theirs = pinnedOf(tree) ?? (yield* resolveCommit(`refs/heads/${tree.branch}`, ctx.top))
    const ours = yield* branchHead("mergeState", integration.branch, ctx.top)
    const merging = yield* mergeHead(integration.dir)
    let open: string | undefined
    if (merging !== undefined) {
      for (const [name, t] of ctx.streams) {
        if ((pinnedOf(t) ?? (yield* resolveCommit(`refs/heads/${t.branch}`, ctx.top))) === merging) open = name
      }
      open ??= "(unknown)"
    }
    return {
      merged: theirs !== undefined && (theirs === ctx.base || (yield* isAncestor(theirs, ours, ctx.top))),
      open
    } satisfies Workspace.MergeState
  })

  const abort = Effect.gen(function*() {
    const integration = yield* begun(ctx, "abortMerge")
    if ((yield* mergeHead(integration.dir)) !== undefined) {
      yield* git.ok(["merge", "--abort"], { cwd: integration.dir, operation: "abortMerge" })
    }
    ctx.open = undefined
  }).pipe(Effect.withSpan("GitWorkspace.abortMerge"))

  const catchUp = Effect.gen(function*() {
    const integration = yield* begun(ctx, "catchUp")
    const target = yield* branchHead("catchUp", ctx.target, ctx.top)
    const ours = yield* branchHead("catchUp", integration.branch, ctx.top)
    if (yield* isAncestor(target, ours, ctx.top)) return null
    const cwd = integration.dir
    const args = ["merge", "--no-ff", "--no-log", "--no-edit", "-m", `braid: bring in ${ctx.target} (it moved since the run started)`, target]
    const result = yield* git.exec(args, { cwd })
    if (result.exitCode !== 0) {
      const paths = yield* unmergedPaths(cwd)
      if ((yield* mergeHead(cwd)) !== undefined) yield* git.ok(["merge", "--abort"], { cwd, operation: "catchUp" })
      return yield* failure(
        "catchUp",
        paths.length > 0
          ? `${ctx.target} moved and its new commits conflict with the run in ${paths.join(", ")}; merge ${ctx.target} into ${integration.branch} by hand (in ${cwd}), then run braid land again`
          : Git.describeFailure(args, cwd, result)
      )
    }
    return yield* branchHead("catchUp", integration.branch, ctx.top)
  }).pipe(Effect.withSpan("GitWorkspace.catchUp"))

  const missing = Effect.fn("GitWorkspace.missingFromIntegration")(function*(commits: ReadonlyArray<string>) {
    const integration = yield* begun(ctx, "missingFromIntegration")
    const head = yield* branchHead("missingFromIntegration", integration.branch, ctx.top)
    return yield* ctx.repo.notAncestors(commits, head, ctx.top)
  })

  return {
    begin,
    probe,
    merge,
    conclude,
    abort,
    files: ctx.repo.filesAt(integrationTree(ctx).dir),
    mergeState,
    catchUp,
    head: Effect.flatMap(begun(ctx, "head"), (t) => branchHead("head", t.branch, ctx.top)).pipe(Effect.withSpan("GitWorkspace.head")),
    exec: Effect.fn("GitWorkspace.exec")(function*(command, env?: Record<string, string>) {
      const tree = yield* begun(ctx, "exec")
      return yield* ctx.repo.exec(tree.dir, command, env)
    }),
    missing
  }
}
