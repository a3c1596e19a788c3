/**
 * What every part of the git workspace shares: the trees a run holds, path safety, and the git
 * questions asked of a repository (a ref's commit, ancestry, worktrees, files of a worktree).
 *
 * @internal
 */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect, Either } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type * as CommandSpec from "../../run/CommandSpec.js"
import * as Process from "../../system/Process.js"
import type * as Sandbox from "../../system/Sandbox.js"
import * as Workspace from "../../ports/Workspace.js"
import * as Git from "../git.js"

/** A branch and the worktree it is checked out in. */
export interface Tree {
  readonly branch: string
  readonly dir: string
}

/** A stream's tree and the commit its last attempt was recorded at. */
export interface StreamTree extends Tree {
  recorded: string
  /** The folders of its sparse checkout; undefined: the whole tree. */
  readonly sparse?: ReadonlyArray<string> | undefined
  /** The commit the journal holds for the stream (`pin`): while braid has not moved the branch since, it is what integrates. */
  pinned?: string | undefined
}

/** The stream's journaled commit, while braid has recorded nothing after it. */
export const pinnedOf = (tree: StreamTree): string | undefined =>
  tree.pinned !== undefined && tree.pinned === tree.recorded ? tree.pinned : undefined

export const INTEGRATION_DIR = "_integration"
export const INTEGRATION_BRANCH = "integration"

export const refused = (reason: Workspace.WorkspaceRefused["reason"], message: string) =>
  new Workspace.WorkspaceRefused({ reason, message })

export const failure = (operation: string, message: string) => new Workspace.WorkspaceFailed({ operation, message })

export const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

/** Remote URLs may carry credentials (`https://user:token@host`): never repeated in a message. */
export const redactUrl = (text: string) => text.replace(/(\w+:\/\/)[^/\s@]+@/g, "$1***@")

export const isInside = (root: string, candidate: string): boolean => {
  const rel = path.relative(root, candidate)
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))
}

export const realpath = (p: string) => Effect.promise(() => fs.realpath(p).catch(() => path.resolve(p)))

export const exists = (p: string) => Effect.promise(() => fs.lstat(p).then(() => true, () => false))

export const isMissing = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code
  return code === "ENOENT" || code === "ENOTDIR"
}

/**
 * Resolves a workspace-relative path, refusing anything that would reach outside the
 * worktree: absolute paths, `..`, git's own `.git`, and symbolic links leading out (an
 * agent could plant `link -> /` and write through it). With `followLeaf` false the last
 * component is not followed (removing a link removes the link, wherever it points).
 */
const resolveInside = async (root: string, relative: string, followLeaf: boolean): Promise<string> => {
  if (relative === "" || relative.includes("\0")) throw new Error(`"${relative}" is not a file path`)
  if (path.isAbsolute(relative) || path.win32.isAbsolute(relative)) {
    throw new Error(`path "${relative}" is absolute; workspace paths are relative to ${root}`)
  }
  const full = path.resolve(root, relative)
  if (full === root || !isInside(root, full)) throw new Error(`path "${relative}" is outside the workspace ${root}`)
  if (path.relative(root, full).split(path.sep)[0]!.toLowerCase() === ".git") {
    throw new Error(`path "${relative}" is git's metadata, not a file of the workspace ${root}`)
  }
  const realRoot = await fs.realpath(root)
  let probe = followLeaf ? full : path.dirname(full)
  for (;;) {
    const found = await fs.lstat(probe).then(() => true, () => false)
    if (found) {
      const real = await fs.realpath(probe).catch(() => undefined)
      if (real === undefined || !isInside(realRoot, real)) {
        throw new Error(`path "${relative}" leads outside the workspace ${root} through a symbolic link`)
      }
      return full
    }
    probe = path.dirname(probe)
  }
}

/** Git's answers about one repository. */
export type Repo = ReturnType<typeof makeRepo>

/**
 * The git questions a workspace asks, over `git`. Once `commonDir` (the repository's common
 * git directory) is known, branch heads are read from its files.
 */
export const makeRepo = (
  git: Git.Git,
  executor: CommandExecutor.CommandExecutor,
  commonDir?: string,
  places?: {
    readonly top: string
    readonly runFolder: string
    /** The folder holding this run's checkouts (outside the repository unless the run is of the old layout). */
    readonly worktrees: string
    /** The run's own folder (`<runFolder>/runs/<runId>`), where agents keep their tool homes. */
    readonly runDir: string
  }
) => {
  // A process confined to a worktree writes it, reads the repository (its tools, its .git),
  // and sees neither the home folder, the run's folder (the journal) nor the folder of the
  // run's checkouts (the other streams' worktrees); its own checkout is bound writable over that.
  const confinementOf = (dir: string): Sandbox.Policy | undefined =>
    places === undefined ? undefined : {
      writable: [dir],
      hidden: [os.homedir(), places.runFolder, places.worktrees],
      readable: [places.top, ...(commonDir !== undefined ? [commonDir] : [])]
    }
  /** The commit a ref points at, or undefined when there is no such ref. */
  const resolveCommit = (ref: string, cwd: string) =>
    Effect.suspend(() => {
      // A branch head is read from git's files when it can be (no git process): a run asks often.
      const read = commonDir !== undefined && ref.startsWith("refs/heads/")
        ? Git.readBranch(commonDir, ref.slice("refs/heads/".length))
        : undefined
      if (read === null) return Effect.succeed<string | undefined>(undefined)
      return read !== undefined ? Effect.succeed<string | undefined>(read) : Effect.map(
        git.exec(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { cwd }),
        (r) => r.exitCode === 0 ? Git.firstLine(r.stdout) : undefined
      )
    })

  const branchHead = (operation: string, branch: string, cwd: string) =>
    Effect.flatMap(resolveCommit(`refs/heads/${branch}`, cwd), (sha) =>
      sha === undefined
        ? Effect.fail(failure(operation, `branch ${branch} does not exist`))
        : Effect.succeed(sha))

  const isAncestor = (ancestor: string, descendant: string, cwd: string) =>
    Effect.flatMap(git.exec(["merge-base", "--is-ancestor", ancestor, descendant], { cwd }), (r) =>
      r.exitCode === 0 || r.exitCode === 1
        ? Effect.succeed(r.exitCode === 0)
        : Effect.fail(failure("merge-base", Git.describeFailure(["merge-base", "--is-ancestor", ancestor, descendant], cwd, r))))

  /**
   * Which of `commits` are not ancestors of `descendant` (nor it): one `git rev-list` for all
   * of them (what it lists is reachable from them but not from `descendant`), or one
   * `merge-base --is-ancestor` each when that cannot answer (an abbreviated or missing commit).
   */
  const notAncestors = (commits: ReadonlyArray<string>, descendant: string, cwd: string) =>
    Effect.gen(function*() {
      const asked = [...new Set(commits)].filter((c) => c !== descendant)
      if (asked.length > 1 && asked.every((c) => Git.isObjectId(c))) {
        const listed = yield* git.exec(["rev-list", "--stdin"], { cwd, stdin: `${asked.join("\n")}\n^${descendant}\n` })
        if (listed.exitCode === 0) {
          const beyond = new Set(listed.stdout.split("\n"))
          return commits.filter((c) => c !== descendant && beyond.has(c))
        }
      }
      const held: Array<string> = []
      for (const c of asked) {
        const there = (yield* git.exec(["merge-base", "--is-ancestor", c, descendant], { cwd })).exitCode === 0
        if (!there) held.push(c)
      }
      return commits.filter((c) => held.includes(c))
    })

  const listWorktrees = (cwd: string) =>
    Effect.map(git.ok(["worktree", "list", "--porcelain", "-z"], { cwd, operation: "worktree list" }), Git.parseWorktrees)

  /** Tracked changes in a working tree, leaving out the run folder. */
  const dirtyPaths = (dir: string, runFolder: string) =>
    Effect.map(
      git.ok(["status", "--porcelain", "-z", "--untracked-files=no"], { cwd: dir, operation: "status" }),
      (out) => Git.parseStatusPaths(out).filter((p) => !isInside(runFolder, path.resolve(dir, p)))
    )

  const unmergedPaths = (dir: string) =>
    Effect.map(
      git.ok(["diff", "--name-only", "--no-renames", "--diff-filter=U", "-z"], { cwd: dir, operation: "diff" }),
      (out) => Git.sortedUnique(Git.splitZ(out))
    )

  /** The commit being merged in the working tree at `dir`, read from its git directory when it can be (a run asks around every merge). */
  const mergeHead = (dir: string) =>
    Effect.suspend(() => {
      const read = Git.readMergeHead(dir)
      if (read === null) return Effect.succeed<string | undefined>(undefined)
      return read !== undefined ? Effect.succeed<string | undefined>(read) : resolveCommit("MERGE_HEAD", dir)
    })

  /**
   * Makes sure `branch` is checked out in a worktree at `dir`: creates both from `start`,
   * or takes back over what an earlier process of the same run left. Runs under the lock.
   */
  const ensureWorktree = (top: string, tree: Tree, start: string) =>
    Effect.gen(function*() {
      const present = yield* exists(tree.dir)
      if (present) {
        const wanted = yield* realpath(tree.dir)
        for (const entry of yield* listWorktrees(top)) {
          if ((yield* realpath(entry.path)) === wanted && entry.branch === `refs/heads/${tree.branch}`) return
        }
      }
      const existing = yield* resolveCommit(`refs/heads/${tree.branch}`, top)
      const add = (force: ReadonlyArray<string>) =>
        existing === undefined
          // --no-track: parallel adds would otherwise race on .git/config.
          ? ["worktree", "add", "--quiet", ...force, "--no-track", "-b", tree.branch, tree.dir, start]
          : ["worktree", "add", "--quiet", ...force, tree.dir, tree.branch]
      // The usual case needs no listing of the worktrees first: git names the one it refuses.
      const first = yield* git.exec(add([]), { cwd: top })
      if (first.exitCode === 0) return
      // Registered at our path but its folder was deleted by hand: re-adding needs --force.
      if (!present && /missing but (?:already registered|locked) worktree/.test(first.stderr)) {
        yield* git.ok(add(["--force"]), { cwd: top, operation: "worktree add" })
        return
      }
      return yield* failure("worktree add", Git.describeFailure(add([]), top, first))
    })

  /** The files of the worktree at `dir` (which may not exist yet: each operation fails then). */
  const filesAt = (dir: string): Workspace.Worktree => {
    const at = (operation: string, relative: string, followLeaf = true) =>
      Effect.tryPromise({
        try: () => resolveInside(dir, relative, followLeaf),
        catch: Workspace.failed(operation)
      })
    return {
      _tag: "Worktree",
      dir,
      ...(places !== undefined ? { runDir: places.runDir } : {}),
      confinement: confinementOf(dir),
      read: (relative) =>
        Effect.flatMap(at("files.read", relative), (full) =>
          Effect.tryPromise({
            try: () => fs.readFile(full, "utf8").catch((e) => isMissing(e) ? undefined : Promise.reject(e)),
            catch: Workspace.failed("files.read")
          })),
      write: (relative, content) =>
        Effect.flatMap(at("files.write", relative), (full) =>
          Effect.tryPromise({
            try: async () => {
              await fs.mkdir(path.dirname(full), { recursive: true })
              await fs.writeFile(full, content)
            },
            catch: Workspace.failed("files.write")
          })),
      remove: (relative) =>
        Effect.flatMap(at("files.remove", relative, false), (full) =>
          Effect.tryPromise({ try: () => fs.rm(full, { force: true }), catch: Workspace.failed("files.remove") })),
      list: () =>
        Effect.gen(function*() {
          // Tracked files plus untracked ones git does not ignore, minus tracked files deleted
          // from disk; an open merge lists a conflicted path once per stage, hence the dedupe.
          const present = yield* git.ok(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
            cwd: dir,
            operation: "files.list"
          })
          const deleted = new Set(Git.splitZ(yield* git.ok(["ls-files", "-z", "--deleted"], { cwd: dir, operation: "files.list" })))
          return Git.sortedUnique(Git.splitZ(present).filter((p) => !deleted.has(p)))
        })
    }
  }

  /** Runs a command in `cwd` through `Process.run`; a program that cannot start is exit 127, as a shell reports it. */
  const exec = (cwd: string, command: CommandSpec.Command, env?: Record<string, string>) =>
    Effect.gen(function*() {
      const started = Date.now()
      // A check's or verify command's output is shown and kept as it is: credentials in it never are.
      const outcome = yield* Process.run(command.argv, { cwd, env, timeoutMs: command.timeoutMs, redact: [] }).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        Effect.either
      )
      // A program that cannot start is the user's command failing, not the workspace: report
      // it the way a shell would (127), with the reason as its output.
      return Either.match(outcome, {
        onLeft: (e) =>
          new Workspace.CommandResult({
            name: command.name,
            argv: [...command.argv],
            exitCode: 127,
            timedOut: false,
            durationMs: Date.now() - started,
            outputTail: Process.tail(e.message)
          }),
        onRight: (result) =>
          new Workspace.CommandResult({
            name: command.name,
            argv: [...command.argv],
            exitCode: result.exitCode,
            timedOut: result.timedOut,
            durationMs: result.durationMs,
            outputTail: Process.tail(`${result.stdout}${result.stderr}`)
          })
      })
    })

  return { git, resolveCommit, branchHead, isAncestor, notAncestors, listWorktrees, dirtyPaths, unmergedPaths, mergeHead, ensureWorktree, filesAt, exec }
}
