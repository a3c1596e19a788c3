/**
 * A stream's branch in a git run: putting it back at the journaled commit (`pin`), what it
 * changed, its diff for a resolver, and its head. None of it needs the stream's checkout.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Workspace from "../../ports/Workspace.js"
import * as Git from "../git.js"
import { noteIndex, type RunContext } from "./context.js"
import { exists, failure, oneLine, pinnedOf, type StreamTree } from "./repo.js"

const pin = Effect.fn("GitWorkspace.pin")(function*(
  ctx: RunContext,
  tree: StreamTree,
  stream: string,
  commit: string,
  keep?: Workspace.AttemptId
) {
  const { git, resolveCommit } = ctx.repo
  const found = yield* resolveCommit(`refs/heads/${tree.branch}`, ctx.top)
  if (found === commit) {
    tree.recorded = commit
    tree.pinned = commit
    return undefined
  }
  if (keep !== undefined && found !== undefined) {
    const [parents = "", body = ""] = (yield* git.ok(["log", "-1", "--format=%P%x00%B", found], { cwd: ctx.top, operation: "pin" })).split("\0")
    const step = `Braid-Step: ${Workspace.attemptStep(stream, keep)}`
    if (parents.trim().split(" ")[0] === commit && body.split("\n").some((l) => l.trim() === step)) return undefined
  }
  const there = yield* git.exec(["cat-file", "-e", `${commit}^{commit}`], { cwd: ctx.top })
  if (there.exitCode !== 0) {
    return yield* failure(
      "integrity",
      `the commit ${commit} braid journaled for stream "${stream}" no longer exists in the repository ${ctx.top}: ` +
        `that work cannot be integrated, so nothing of run ${ctx.runId} lands (restore the object from a clone or backup, then braid resume ${ctx.runId})`
    )
  }
  const subject = found === undefined ? "" : Git.firstLine((yield* git.exec(["log", "-1", "--no-show-signature", "--format=%s", found], { cwd: ctx.top })).stdout)
  yield* ctx.lock.withPermits(1)(git.ok(
    ["update-ref", "-m", "braid: put back at the journaled commit", `refs/heads/${tree.branch}`, commit],
    { cwd: ctx.top, operation: "pin" }
  ))
  // A checkout of the branch follows it: its files become the journaled commit's.
  if (ctx.owned.includes(tree) && (yield* exists(tree.dir))) {
    yield* ctx.confinement.occupied(stream, Effect.gen(function*() {
      yield* git.ok(["reset", "--quiet", "--hard", commit], { cwd: tree.dir, operation: "pin" })
      noteIndex(ctx, stream, tree.dir)
    }))
  }
  tree.recorded = commit
  tree.pinned = commit
  const short = (c: string) => c.slice(0, 10)
  return found === undefined
    ? `branch ${tree.branch} of stream "${stream}" had been deleted; recreated at the journaled commit ${short(commit)}`
    : `branch ${tree.branch} of stream "${stream}" had been moved to ${short(found)}${subject === "" ? "" : ` ("${oneLine(subject).slice(0, 80)}")`}, ` +
      `which braid did not record; put back at the journaled commit ${short(commit)}, and ${short(found)} is not integrated`
})

const changedFiles = Effect.fn("GitWorkspace.changedFiles")(function*(ctx: RunContext, tree: StreamTree) {
  const head = pinnedOf(tree) ?? (yield* ctx.repo.resolveCommit(`refs/heads/${tree.branch}`, ctx.top))
  if (head === undefined) return []
  // The stream's own commits only: --first-parent skips the work absorbed from the
  // streams it depends on (merged in), which is theirs, not this stream's.
  // --no-renames: a renamed file is two changed paths, both of which can conflict.
  const out = yield* ctx.repo.git.ok(
    ["log", "--first-parent", "--no-merges", "--no-renames", "--no-ext-diff", "--format=", "--name-only", "-z", `${ctx.base}..${head}`],
    { cwd: ctx.top, operation: "changedFiles" }
  )
  return Git.sortedUnique(Git.splitZ(out).map((p) => p.replace(/^\n+/, "")).filter((p) => p !== ""))
})

const diff = Effect.fn("GitWorkspace.diff")(function*(ctx: RunContext, tree: StreamTree, paths: ReadonlyArray<string>) {
  const head = pinnedOf(tree) ?? (yield* ctx.repo.resolveCommit(`refs/heads/${tree.branch}`, ctx.top)) ?? ctx.base
  if (paths.length === 0) return ""
  return yield* ctx.repo.git.ok(["diff", "--no-color", "--no-ext-diff", "--no-renames", ctx.base, head, "--", ...paths], { cwd: ctx.top, operation: "diff" })
})

const head = Effect.fn("GitWorkspace.head")(function*(ctx: RunContext, tree: StreamTree) {
  // An open stream is where braid last recorded it (a ref moved by anyone else is not its work).
  if (ctx.owned.includes(tree)) return tree.recorded
  // A stream that never had work has no branch yet: it is at the base.
  return (yield* ctx.repo.resolveCommit(`refs/heads/${tree.branch}`, ctx.top)) ?? ctx.base
})

/** The branch of `stream` (a stream the run was not prepared with fails every operation). */
export const branchOf = (ctx: RunContext, stream: string): Workspace.Branch => {
  const tree = (operation: string) =>
    Effect.suspend(() => {
      const found = ctx.streams.get(stream)
      return found === undefined
        ? Effect.fail(failure(operation, `no workspace for stream "${stream}" in run ${ctx.runId}`))
        : Effect.succeed(found)
    })
  return {
    pin: (commit, keep) => Effect.flatMap(tree("pin"), (t) => pin(ctx, t, stream, commit, keep)),
    diff: (paths) => Effect.flatMap(tree("diff"), (t) => diff(ctx, t, paths)),
    changedFiles: Effect.flatMap(tree("changedFiles"), (t) => changedFiles(ctx, t)),
    head: Effect.flatMap(tree("head"), (t) => head(ctx, t))
  }
}
