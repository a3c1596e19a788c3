/**
 * A stream's checkout in a git run: recording an attempt (one commit), bringing in another
 * stream's work, dropping what a cut-off attempt left, finding an attempt after a crash, and
 * commands in its worktree. Every change braid makes there is made with the stream marked busy
 * (`occupied`), so confinement never takes it for an agent's stray.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Workspace from "../../ports/Workspace.js"
import * as Git from "../git.js"
import * as GitIndex from "../gitIndex.js"
import * as Links from "../links.js"
import * as Snapshot from "../snapshot.js"
import { noteIndex, type RunContext } from "./context.js"
import { failure, oneLine, type StreamTree } from "./repo.js"

/**
 * Two git processes for an attempt that changed files (`git add --all`, `git commit`),
 * none for one that changed nothing. The checked-out branch and its head are read from
 * git's files; whether anything changed, from the worktree's stats; what changed, from the
 * index before and after the add. When an agent staged or committed by itself, git is
 * asked instead (a diff or two more).
 */
const recordAttempt = (ctx: RunContext, tree: StreamTree, stream: string, attempt: Workspace.AttemptToRecord) =>
  Effect.gen(function*() {
    const { branchHead, git, resolveCommit } = ctx.repo
    const cwd = tree.dir
    const dirs = Git.gitDirsOf(cwd)
    const checkedOut = (dirs === undefined ? undefined : Git.readHeadRef(dirs.gitDir)) ??
      Git.firstLine((yield* git.exec(["symbolic-ref", "--quiet", "HEAD"], { cwd })).stdout)
    if (checkedOut !== `refs/heads/${tree.branch}`) {
      return yield* failure(
        "commitAttempt",
        `the worktree of stream "${stream}" (${cwd}) is no longer on its branch ${tree.branch}; its work cannot be recorded`
      )
    }
    const before = yield* resolveCommit(`refs/heads/${tree.branch}`, cwd)
    const ownHead = before === tree.recorded
    if (ownHead && ctx.confinement.untouched(stream)) return new Workspace.AttemptChange({ commit: null, files: [] })
    // The index as braid left it (only then is it the head's tree) is compared with the index after the add.
    const oidBytes = before === undefined ? 0 : before.length / 2
    const indexFile = dirs === undefined ? undefined : `${dirs.gitDir}/index`
    const trusted = ownHead && dirs !== undefined && ctx.indexWritten.get(stream) === Snapshot.fingerprint(dirs.gitDir, "index")
    const staged = trusted && indexFile !== undefined ? GitIndex.read(indexFile, oidBytes) : undefined
    yield* git.ok(["add", "--all"], { cwd, operation: "commitAttempt" })
    const added = staged !== undefined && indexFile !== undefined ? GitIndex.read(indexFile, oidBytes) : undefined
    const changed = staged !== undefined && added !== undefined
      ? GitIndex.changed(staged, added)
      : Git.sortedUnique(Git.splitZ(
        yield* git.ok(["diff", "--cached", "--name-only", "--no-renames", "--no-ext-diff", "-z", "HEAD"], {
          cwd,
          operation: "commitAttempt"
        })
      ))
    // Some agents commit on their own (aider, a `git commit` in a script): what the attempt
    // changed is everything since the last recorded attempt, whoever committed it; the index holds it all now.
    const files = ownHead ? changed : Git.sortedUnique(Git.splitZ(
      yield* git.ok(["diff", "--cached", "--name-only", "--no-renames", "--no-ext-diff", "-z", tree.recorded], {
        cwd,
        operation: "commitAttempt"
      })
    ))
    // Symbolic links leading out of the repository are judged before anything is committed (a
    // commit of them would be found again after a crash): the attempt's changes go, and it fails.
    const outward = yield* Links.outwardIn(
      cwd,
      added ?? (indexFile === undefined ? undefined : GitIndex.read(indexFile, tree.recorded.length / 2)),
      files,
      {
        stage: () => git.ok(["ls-files", "--stage", "-z"], { cwd, operation: "commitAttempt" }),
        blob: (oid) => git.ok(["cat-file", "blob", oid], { cwd, operation: "commitAttempt" })
      }
    )
    if (outward.length > 0) {
      yield* git.ok(["reset", "--quiet", "--hard", tree.recorded], { cwd, operation: "commitAttempt" })
      yield* git.ok(["clean", "-fdq"], { cwd, operation: "commitAttempt" })
      noteIndex(ctx, stream, cwd)
      yield* ctx.confinement.committed(stream)
      return yield* new Workspace.OutwardSymlink({ stream, taskId: attempt.taskId, attempt: attempt.attempt, links: outward })
    }
    if (changed.length > 0) yield* commitStaged(ctx, cwd, stream, attempt)
    const commit = yield* branchHead("commitAttempt", tree.branch, cwd)
    noteIndex(ctx, stream, cwd)
    yield* ctx.confinement.committed(stream)
    tree.recorded = commit
    return files.length === 0
      ? new Workspace.AttemptChange({ commit: null, files: [] })
      : new Workspace.AttemptChange({ commit, files })
  })

const commitStaged = (ctx: RunContext, cwd: string, stream: string, attempt: Workspace.AttemptToRecord) => {
  const title = attempt.title.replace(/\s+/g, " ").trim()
  return ctx.repo.git.ok([
    "commit",
    "--quiet",
    "--no-verify",
    // "whitespace" keeps a title starting with "#" (the default may strip it as a comment).
    "--cleanup=whitespace",
    "-m",
    `braid: ${attempt.taskId} attempt ${attempt.attempt} — ${title}`,
    "-m",
    [
      `Braid-Step: ${Workspace.attemptStep(stream, attempt)}`,
      // Who did the work: the agent backend and the role it played.
      ...(attempt.agent !== undefined ? [`Braid-Agent: ${oneLine(attempt.agent)}`] : []),
      ...(attempt.role !== undefined ? [`Braid-Role: ${oneLine(attempt.role)}`] : [])
    ].join("\n")
  ], { cwd, operation: "commitAttempt" })
}

const absorbInto = Effect.fn("GitWorkspace.absorb")(function*(
  ctx: RunContext,
  tree: StreamTree,
  stream: string,
  commit: string,
  reason: string,
  side: Workspace.AbsorbSide
) {
  const { branchHead, git, isAncestor, mergeHead, unmergedPaths } = ctx.repo
  const cwd = tree.dir
  const head = yield* branchHead("absorb", tree.branch, ctx.top)
  if (yield* isAncestor(commit, head, ctx.top)) return { _tag: "Absorbed", commit: null } as const
  const strategy = side === "ours" ? ["-X", "ours"] : side === "theirs" ? ["-X", "theirs"] : []
  const args = ["merge", "--no-ff", "--no-log", "--no-edit", "-m", `braid: bring in ${reason}`, ...strategy, commit]
  const result = yield* git.exec(args, { cwd })
  if (result.exitCode !== 0) {
    const paths = yield* unmergedPaths(cwd)
    if (paths.length > 0 && side === "none") {
      // Left open for a resolver: `concludeAbsorb` commits it, `discard` drops it.
      ctx.openAbsorbs.set(stream, paths)
      return { _tag: "Conflicted", paths } as const
    }
    if ((yield* mergeHead(cwd)) !== undefined) yield* git.ok(["merge", "--abort"], { cwd, operation: "absorb" })
    return yield* failure(
      "absorb",
      paths.length > 0
        ? `bringing ${reason} into stream "${stream}" with the ${side === "ours" ? "stream's" : "dependency's"} side winning still ` +
          `left conflicts in ${paths.join(", ")} (a file deleted on one side and changed on the other, or added on both); the merge was aborted`
        : Git.describeFailure(args, cwd, result)
    )
  }
  const next = yield* branchHead("absorb", tree.branch, ctx.top)
  noteIndex(ctx, stream, cwd)
  // The merge is not an attempt: the next attempt's change starts after it.
  tree.recorded = next
  return { _tag: "Absorbed", commit: next } as const
})

const concludeAbsorbIn = Effect.fn("GitWorkspace.concludeAbsorb")(function*(
  ctx: RunContext,
  tree: StreamTree,
  stream: string,
  reason: string
) {
  const { branchHead, filesAt, git, mergeHead, unmergedPaths } = ctx.repo
  const cwd = tree.dir
  if ((yield* mergeHead(cwd)) === undefined) return yield* failure("concludeAbsorb", `no merge is open in ${cwd}`)
  const paths = Git.sortedUnique([...(ctx.openAbsorbs.get(stream) ?? []), ...(yield* unmergedPaths(cwd))])
  const files = filesAt(cwd)
  const remaining: Array<string> = []
  for (const p of paths) {
    const text = yield* files.read(p)
    if (text !== undefined && Workspace.hasConflictMarkers(text)) remaining.push(p)
  }
  if (remaining.length > 0) return yield* new Workspace.ConflictMarkersRemain({ stream, paths: remaining })
  yield* git.ok(["add", "--all"], { cwd, operation: "concludeAbsorb" })
  yield* git.ok(
    ["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-m", `braid: bring in ${reason} (conflicts resolved)`],
    { cwd, operation: "concludeAbsorb" }
  )
  ctx.openAbsorbs.delete(stream)
  const next = yield* branchHead("concludeAbsorb", tree.branch, ctx.top)
  noteIndex(ctx, stream, cwd)
  tree.recorded = next
  return next
})

/** Drops what is uncommitted in the stream's worktree, and a merge left open (not marked busy: see `discard`). */
export const dropChanges = Effect.fn("GitWorkspace.discard")(function*(ctx: RunContext, stream: string) {
  const tree = ctx.streams.get(stream)
  if (tree === undefined) return yield* failure("discard", `no workspace for stream "${stream}" in run ${ctx.runId}`)
  const { git, mergeHead } = ctx.repo
  const cwd = tree.dir
  if ((yield* mergeHead(cwd)) !== undefined) yield* git.ok(["merge", "--abort"], { cwd, operation: "discard" })
  yield* git.ok(["reset", "--quiet", "--hard", "HEAD"], { cwd, operation: "discard" })
  // Untracked files the cut-off attempt created; ignored files (dependencies) stay.
  yield* git.ok(["clean", "-fdq"], { cwd, operation: "discard" })
  ctx.openAbsorbs.delete(stream)
  noteIndex(ctx, stream, cwd)
})

const findAttemptIn = Effect.fn("GitWorkspace.findAttempt")(function*(
  ctx: RunContext,
  tree: StreamTree,
  stream: string,
  attempt: Workspace.AttemptId
) {
  const { git } = ctx.repo
  const cwd = tree.dir
  // A branch still at the base holds no attempt (not even one of an earlier run's, landed there).
  if (tree.recorded === ctx.base) return undefined
  // The head commit read from git's object files when it can be (no git process): asked at every checkout's first attempt.
  const dirs = Git.gitDirsOf(cwd)
  const head = dirs === undefined ? undefined : Git.readHead(dirs)
  const read = head === undefined || dirs === undefined ? undefined : Git.readCommit(dirs.commonDir, head)
  const [body = "", parents = ""] = read !== undefined
    ? [read.message, read.parents.join(" ")]
    : (yield* git.ok(["log", "-1", "--format=%B%x00%P", "HEAD"], { cwd, operation: "findAttempt" })).split("\0")
  const step = `Braid-Step: ${Workspace.attemptStep(stream, attempt)}`
  if (!body.split("\n").some((l) => l.trim() === step)) return undefined
  const commit = read !== undefined ? head! : Git.firstLine(yield* git.ok(["rev-parse", "HEAD"], { cwd, operation: "findAttempt" }))
  const parent = parents.trim().split(" ")[0]!
  const files = Git.sortedUnique(Git.splitZ(
    yield* git.ok(["diff", "--name-only", "--no-renames", "--no-ext-diff", "-z", parent, commit], { cwd, operation: "findAttempt" })
  ))
  tree.recorded = commit
  return new Workspace.AttemptChange({ commit, files })
})

/** The checkout of an open stream (`opened`: this acquisition opened it). */
export const checkoutOf = (ctx: RunContext, tree: StreamTree, stream: string, opened: boolean): Workspace.Checkout => {
  const { confinement } = ctx
  return {
    stream,
    opened,
    files: ctx.repo.filesAt(tree.dir),
    // Where braid last recorded it (a ref moved by anyone else is not its work).
    head: Effect.sync(() => tree.recorded),
    commitAttempt: Effect.fn("GitWorkspace.commitAttempt")(function*(attempt: Workspace.AttemptToRecord) {
      return yield* confinement.occupied(stream, recordAttempt(ctx, tree, stream, attempt))
    }),
    absorb: (commit, reason, side = "none") => confinement.occupied(stream, absorbInto(ctx, tree, stream, commit, reason, side)),
    concludeAbsorb: (reason) => confinement.occupied(stream, concludeAbsorbIn(ctx, tree, stream, reason)),
    discard: confinement.occupied(stream, dropChanges(ctx, stream)),
    findAttempt: (attempt) => findAttemptIn(ctx, tree, stream, attempt),
    attempting: confinement.attempting(stream),
    strays: Effect.withSpan(confinement.strays(stream), "GitWorkspace.strays"),
    exec: Effect.fn("GitWorkspace.exec")(function*(command, env?: Record<string, string>) {
      return yield* ctx.repo.exec(tree.dir, command, env)
    }),
    busy: (effect) => confinement.occupied(stream, effect)
  }
}
