/**
 * The git `Workspace`: one branch and worktree per stream under the repository's run
 * folder, one commit per attempt, conflict checks with `git merge-tree` (no working tree
 * touched), an integration worktree where streams are merged one at a time, and a
 * fast-forward-only landing on the target branch. The parts live in
 * `internal/gitWorkspace/` (preparing a run, stream checkouts and their pool, branches, the
 * integration, the target); this module is the port's face.
 *
 * @since 0.1.0
 */
// By path, not @effect/platform's index, which would initialise every platform module at start-up (ARCHITECTURE.md).
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Git from "../internal/git.js"
import * as Checks from "../internal/gitWorkspace/checks.js"
import * as Places from "../internal/gitWorkspace/places.js"
import * as Prepare from "../internal/gitWorkspace/prepare.js"
import { isInside, makeRepo, realpath, refused } from "../internal/gitWorkspace/repo.js"
import * as Workspace from "../ports/Workspace.js"

/** How a git workspace finds its repository and names what it creates. */
export interface Options {
  /** A directory inside the repository (default: the current directory). */
  readonly repo?: string
  /** The ref every stream starts from (default: the branch checked out in `repo`). */
  readonly base?: string
  /** The branch a landing advances (default: the base, when the base is a branch). */
  readonly target?: string
  /** Who braid's commits are made by (default `braid <braid@localhost>`). */
  readonly author?: { readonly name: string; readonly email: string }
  /** Where runs keep their journals and records; relative to the repository's top (default `<repo>/.braid`). */
  readonly runFolder?: string
  /**
   * The folder under which a new run's checkouts go, as `<worktreesDir>/<runId>/<stream>`;
   * relative to the repository's top. Default: {@link defaultWorktreesDir}, outside the
   * repository. Inside the repository only under the run folder. A run prepared again (resumed)
   * keeps the folder it recorded.
   */
  readonly worktreesDir?: string
}

/** A git version as `git --version` reports it. */
export type GitVersion = Checks.GitVersion

/** The oldest git with `merge-tree --write-tree`, which probing conflicts needs. */
export const minimumGitVersion: GitVersion = Checks.minimumGitVersion

/** Reads `git --version` output and refuses a git older than {@link minimumGitVersion}. */
export const checkGitVersion = Checks.checkGitVersion

/** Who braid's commits are made by when the repository configures no `user.name`/`user.email`. */
export const braidIdentity: Git.Identity = Prepare.braidIdentity

const settingsOf = (options: Options): Prepare.Settings => ({
  repo: path.resolve(options.repo ?? process.cwd()),
  base: options.base,
  target: options.target,
  author: options.author,
  runFolder: options.runFolder,
  worktreesDir: options.worktreesDir
})

/** Builds a git workspace. Its methods need nothing from the context. */
export const make = (options: Options = {}) =>
  Effect.map(CommandExecutor.CommandExecutor, (executor) => {
    const settings = settingsOf(options)
    const service: Workspace.Service = { prepare: Prepare.prepare(executor, settings) }
    const check = (setup: Workspace.RunSetup) =>
      Checks.checks(makeRepo(Git.make(executor, options.author ?? braidIdentity), executor), settings.repo, settings, setup)
    return { service, check }
  })

/**
 * Whether a run of these streams could start in the repository at `options.repo`: every
 * refusal `prepare` would make (git too old, not a repository, unknown base or target, a
 * branch name git refuses, a dirty checkout when landing), found without creating anything.
 */
export const check = (options: Options, setup: Workspace.RunSetup) =>
  Effect.flatMap(make(options), (m) => m.check(setup))

/** How many git processes workspaces of this process have started so far (for tests and the benchmark). */
export const gitCalls = (): number => Git.calls()

/**
 * The argv of any other git process braid starts (`["git", ...]`): the configuration every
 * workspace git call runs with, which keeps a repository's config from making git run a
 * program (fsmonitor, hooks, pager, editor, external diffs, signing); `args` must name a builtin.
 */
export const safeGitArgv = (args: ReadonlyArray<string>): Array<string> => Git.safeArgv(args)

/** Runs one hardened git command outside a workspace through `Process.run`: its stdout, or `WorkspaceFailed` for `operation`. */
export const runGit = Git.run

/**
 * The commits of refs of the repository whose git directory is `gitDir` (`refs/heads/…`,
 * `refs/remotes/…`), read from its files without starting git: absent refs are left out.
 * Undefined when any cannot be read that way (ask git then).
 *
 * @since 0.6.0
 */
export const readRefs = (gitDir: string, refs: ReadonlyArray<string>): ReadonlyMap<string, string> | undefined => {
  const found = new Map<string, string>()
  for (const ref of refs) {
    const sha = Git.readRef(gitDir, ref)
    if (sha === undefined) return undefined
    if (sha !== null) found.set(ref, sha)
  }
  return found
}


/** The environment to add to the inherited one for {@link safeGitArgv}: no prompts, no editor or pager, no replace refs. */
export const safeGitEnv: Readonly<Record<string, string>> = Git.safeEnv

/** A git workspace layer over the repository at `options.repo`. */
export const layer = (options: Options = {}): Layer.Layer<Workspace.Workspace, never, CommandExecutor.CommandExecutor> =>
  Layer.effect(Workspace.Workspace, Effect.map(make(options), (m) => m.service))

/**
 * The top folder of the repository containing `dir`; refuses clearly when there is none.
 * Found from the `.git` entries above `dir` where that is unambiguous (no git process, which
 * was a fifth of `braid runs`'s start-up), else asked of git.
 */
export const repositoryTop = (dir: string) =>
  Effect.gen(function*() {
    const isDirectory = yield* Effect.promise(() => fs.stat(dir).then((s) => s.isDirectory(), () => false))
    if (!isDirectory) return yield* refused("not-a-repository", `${dir} is not a directory`)
    const found = Git.topOf(dir)
    if (found !== undefined) return found
    const executor = yield* CommandExecutor.CommandExecutor
    const git = Git.make(executor, braidIdentity)
    const result = yield* git.exec(["rev-parse", "--show-toplevel"], { cwd: dir })
    if (result.exitCode !== 0) return yield* refused("not-a-repository", `${dir} is not inside a git repository`)
    return Git.firstLine(result.stdout)
  })

/**
 * The folder a repository's runs keep their checkouts in unless told otherwise:
 * `$XDG_CACHE_HOME/braid/worktrees/<repo basename>-<short hash of its real top>` (XDG_CACHE_HOME
 * unset or empty: `~/.cache`). A run's checkouts are in `<that>/<runId>/<stream>`.
 */
export const defaultWorktreesDir = (top: string): Effect.Effect<string> => Effect.promise(() => Places.defaultRoot(top))

/** The file in a run's folder (`<runFolder>/runs/<runId>/worktrees-dir`) naming the folder of its checkouts. */
export const WORKTREES_RECORD = Places.RECORD

/**
 * The folder holding the checkouts of run `runId` of the repository whose top is `top`: the one
 * recorded when it was prepared, else (a run of the old layout) `<runFolder>/runs/<runId>/worktrees`
 * when it exists; undefined when neither.
 */
export const worktreesOf = (options: { readonly top: string; readonly runId: string; readonly runFolder?: string }) =>
  Effect.promise(() => Places.find(path.resolve(options.top, options.runFolder ?? ".braid"), options.runId))

/** What `cleanRun` removed. */
export interface Cleaned {
  readonly worktrees: ReadonlyArray<string>
  readonly branches: ReadonlyArray<string>
}

/**
 * Removes what a finished run left: its worktrees and its `braid/<runId>/…` branches. The
 * target branch is never under that prefix, so a landing is never undone; nothing else is
 * touched.
 */
export const cleanRun = (options: { readonly repo: string; readonly runId: string; readonly runFolder?: string }) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    const git = Git.make(executor, { name: "braid", email: "braid@localhost" })
    const top = yield* repositoryTop(options.repo)
    const runFolder = path.resolve(top, options.runFolder ?? ".braid")
    const worktreesDir = (yield* Effect.promise(() => Places.find(runFolder, options.runId))) ??
      Places.legacyOf(runFolder, options.runId)
    const commonDir = Git.firstLine(
      yield* git.ok(["rev-parse", "--path-format=absolute", "--git-common-dir"], { cwd: top, operation: "clean" })
    )
    const lock = Git.lockFor(yield* realpath(commonDir))
    return yield* lock.withPermits(1)(Effect.gen(function*() {
      const removed: Array<string> = []
      const entries = Git.parseWorktrees(yield* git.ok(["worktree", "list", "--porcelain", "-z"], { cwd: top, operation: "clean" }))
      const root = yield* realpath(worktreesDir)
      for (const entry of entries) {
        if (isInside(root, yield* realpath(entry.path)) && (yield* realpath(entry.path)) !== root) {
          yield* git.ok(["worktree", "remove", "--force", entry.path], { cwd: top, operation: "clean" })
          removed.push(entry.path)
        }
      }
      yield* git.ok(["worktree", "prune"], { cwd: top, operation: "clean" })
      const refs = yield* git.ok(["for-each-ref", "--format=%(refname)", `refs/heads/braid/${options.runId}/`], {
        cwd: top,
        operation: "clean"
      })
      const branches = refs.split("\n").map((l) => l.trim()).filter((l) => l !== "")
      for (const ref of branches) yield* git.ok(["update-ref", "-d", ref], { cwd: top, operation: "clean" })
      yield* Effect.promise(() => fs.rm(worktreesDir, { recursive: true, force: true }).then(() => Places.tidy(worktreesDir)))
      return { worktrees: removed, branches: branches.map((b) => b.replace(/^refs\/heads\//, "")) } satisfies Cleaned
    }))
  })
