/**
 * The data plane of a cluster run is git: runners share no disk, only the run's remote. Each
 * runner keeps its own clones under its work folder — one for the run's integration, one per
 * stream it works on (so no two tasks ever share a checkout) — and a stream's branch
 * `braid/<run>/<stream>` on the remote is the truth of its work: a task starts from it
 * (whatever a runner that died left in its own clone), pushes it after every attempt, and the
 * integration fetches it.
 *
 * @since 0.5.0
 */
import { GitWorkspace, Workspace } from "@braid/core"
import * as NodeCommandExecutor from "@effect/platform-node/NodeCommandExecutor"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** Where a runner keeps a run's clones. */
export const runFolder = (workdir: string, runId: string) => path.join(workdir, "runs", runId)
export const integrationClone = (workdir: string, runId: string) => path.join(runFolder(workdir, runId), "integration")
export const streamClone = (workdir: string, runId: string, stream: string) => path.join(runFolder(workdir, runId), "streams", stream)
/**
 * Where the checkouts of a clone's workspace go: in the clone's own `.braid` (a runner's clone is
 * braid's, not a user's repository), so they go with the clone when a runner drops it — never the
 * user's cache folder.
 */
export const checkoutsOf = (clone: string) => path.join(clone, ".braid", "checkouts")
/** Where a runner puts the files that came with the run's plan. */
export const planFolder = (workdir: string, runId: string) => path.join(runFolder(workdir, runId), "plan")

/** A stream's branch, the same name in every clone and on the remote. */
export const streamBranch = (runId: string, stream: string) => `braid/${runId}/${stream}`

/** The run's integration branch (as `GitWorkspace` names it), published on the remote too. */
export const integrationBranch = (runId: string) => `braid/${runId}/integration`

// With the configuration braid's workspace git runs with (an agent working in a runner's clone
// reaches that clone's .git/config, and nothing there may make these git processes run a
// program), through the one process runner.
// A runner's remote work needs nothing from its caller: the platform's process executor is given here.
const git = (args: ReadonlyArray<string>, cwd: string, operation: string) =>
  GitWorkspace.runGit(args, { cwd, operation }).pipe(Effect.provide(NodeCommandExecutor.layer), Effect.provide(NodeFileSystem.layer))

const exists = (file: string) => Effect.promise(() => fs.access(file).then(() => true, () => false))

/** Fetches every branch of the remote into the clone's `origin/*` (a branch deleted there goes here too). */
export const fetch = (dir: string) => Effect.asVoid(git(["fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*"], dir, "fetch"))

/**
 * A clone of `remote` at `dir`, fetched now: made on first use, with its main checkout
 * detached (no branch is held by it) and automatic garbage collection off (runs come and go
 * in it; an object a later fetch needs is never collected from under it).
 */
export const clone = (remote: string, dir: string) =>
  Effect.gen(function*() {
    if (!(yield* exists(path.join(dir, ".git")))) {
      yield* Effect.promise(() => fs.mkdir(path.dirname(dir), { recursive: true }))
      yield* Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
      yield* git(["clone", "--quiet", "--no-checkout", remote, dir], path.dirname(dir), "clone")
      yield* git(["config", "gc.auto", "0"], dir, "clone")
      yield* git(["config", "maintenance.auto", "false"], dir, "clone")
    }
    yield* fetch(dir)
  })

/**
 * The commits of some refs of a clone (absent: no such ref): read from its files (a runner asks
 * around every attempt), else in one git call.
 */
const refs = (dir: string, names: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    const read = GitWorkspace.readRefs(path.join(dir, ".git"), names)
    return read !== undefined ? Effect.succeed(read) : refsFromGit(dir, names)
  })

const refsFromGit = (dir: string, names: ReadonlyArray<string>) =>
  Effect.map(git(["for-each-ref", "--format=%(refname) %(objectname)", ...names], dir, "for-each-ref"), (out) => {
    const found = new Map<string, string>()
    for (const line of out.split("\n")) {
      const [name, sha] = line.split(" ")
      if (name !== undefined && sha !== undefined && names.includes(name)) found.set(name, sha)
    }
    return found
  })

/** The commit the clone's main checkout is detached at, read from its HEAD file (no git process). */
const detachedAt = (dir: string) =>
  Effect.promise(() => fs.readFile(path.join(dir, ".git", "HEAD"), "utf8").then((t) => /^[0-9a-f]{40,64}$/.test(t.trim()) ? t.trim() : undefined, () => undefined))

/**
 * Makes the clone's branch `branch` what the remote has (made, moved, or removed when the
 * remote has none); the main checkout is detached at `at` (the run's base) first, so the
 * branch is free to move.
 */
export const adopt = (dir: string, branch: string, at: string) =>
  Effect.gen(function*() {
    if ((yield* detachedAt(dir)) !== at) yield* git(["checkout", "--quiet", "--detach", "--force", at], dir, "checkout")
    const found = yield* refs(dir, [`refs/remotes/origin/${branch}`, `refs/heads/${branch}`])
    const theirs = found.get(`refs/remotes/origin/${branch}`)
    const ours = found.get(`refs/heads/${branch}`)
    if (theirs === ours) return
    if (theirs === undefined) yield* git(["update-ref", "-d", `refs/heads/${branch}`], dir, "update-ref")
    else yield* git(["update-ref", `refs/heads/${branch}`, theirs], dir, "update-ref")
  })

/**
 * Publishes a branch of the clone to the remote (forced: the stream's work has one author at
 * a time) unless the remote has it already; the commit it has now.
 */
export const push = (dir: string, branch: string) =>
  Effect.gen(function*() {
    const found = yield* refs(dir, [`refs/heads/${branch}`, `refs/remotes/origin/${branch}`])
    const ours = found.get(`refs/heads/${branch}`)
    if (ours === undefined || ours === found.get(`refs/remotes/origin/${branch}`)) return ours
    // git moves the remote-tracking ref too (the clone's fetch refspec maps the branch to it),
    // so the next push knows what the remote has.
    yield* git(["push", "--quiet", "--force", "origin", `refs/heads/${branch}:refs/heads/${branch}`], dir, "push")
    return ours
  })

/** The remote's branch `target`, as a local branch of the clone (where landing moves it from). */
export const trackTarget = (dir: string, target: string) =>
  Effect.gen(function*() {
    const found = yield* refs(dir, [`refs/remotes/origin/${target}`, `refs/heads/${target}`])
    const theirs = found.get(`refs/remotes/origin/${target}`)
    if (theirs === undefined) {
      return yield* new Workspace.WorkspaceRefused({ reason: "invalid-option", message: `the run's remote has no branch ${target} to start from and land on` })
    }
    if (found.get(`refs/heads/${target}`) !== theirs) yield* git(["update-ref", `refs/heads/${target}`, theirs], dir, "update-ref")
    return theirs
  })

/** Whether a worktree of the clone has `branch` checked out (then it is this clone's to move, not the remote's). */
export const checkedOut = (dir: string, branch: string) =>
  Effect.map(git(["worktree", "list", "--porcelain"], dir, "worktree list"), (out) => out.split("\n").includes(`branch refs/heads/${branch}`))

/** Removes a run's clones from this runner. */
export const forget = (workdir: string, runId: string) => Effect.promise(() => fs.rm(runFolder(workdir, runId), { recursive: true, force: true }))
