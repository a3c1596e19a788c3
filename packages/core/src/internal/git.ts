/**
 * Running git for `GitWorkspace`: one place that decides how git is invoked (identity,
 * configuration overrides, environment), how its output is parsed, and which lock guards
 * a repository's shared state.
 *
 * @internal
 */
// By path, not @effect/platform's index, which would initialise every platform module at start-up (ARCHITECTURE.md).
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Process from "../Process.js"
import * as Workspace from "../Workspace.js"

/** Who braid's commits are made by. */
export interface Identity {
  readonly name: string
  readonly email: string
}

/**
 * Configuration forced on every git call, whatever the user's global or repository config
 * says. braid's commits are bookkeeping of agent attempts and merges, made from a process
 * nobody watches, so:
 * - hooks do not run (`core.hooksPath=/dev/null`): a user's pre-commit hook could reject or
 *   rewrite an attempt's commit, and post-checkout hooks (husky, installers) would run once
 *   per worktree; braid's own quality gate is what judges an attempt;
 * - nothing is signed (`commit.gpgsign`, `tag.gpgsign`): signing may prompt or need an agent;
 * - `rerere.enabled=false`: a remembered resolution would silently "resolve" a conflict the
 *   run must see and report;
 * - `merge.conflictStyle=merge`: plain two-sided markers, the form resolvers and
 *   `Workspace.hasConflictMarkers` expect (diff3/zdiff3 add a third section);
 * - `gc.auto=0`, `maintenance.auto=false`: no background housekeeping racing the parallel
 *   worktrees for the repository's locks;
 * - `core.quotePath=false`: paths come back as they are (we also read them with `-z`).
 * The rest of the user's configuration (filters such as git-lfs, safe.directory, …) is kept.
 */
const forcedConfig = [
  "core.hooksPath=/dev/null",
  "commit.gpgsign=false",
  "tag.gpgsign=false",
  "rerere.enabled=false",
  "merge.conflictStyle=merge",
  "gc.auto=0",
  "maintenance.auto=false",
  "core.quotePath=false"
]

/** A git runner bound to an executor and an identity. */
export interface Git {
  /** Runs git and returns whatever it exited with; fails only when git cannot be started. */
  readonly exec: (
    args: ReadonlyArray<string>,
    options: { readonly cwd: string; readonly stdin?: string }
  ) => Effect.Effect<Process.Result, Workspace.WorkspaceFailed>
  /** Runs git and returns its stdout; any non-zero exit is a `WorkspaceFailed`. */
  readonly ok: (
    args: ReadonlyArray<string>,
    options: { readonly cwd: string; readonly stdin?: string; readonly operation: string }
  ) => Effect.Effect<string, Workspace.WorkspaceFailed>
}

/** Builds the argv of one git call. */
export const argv = (identity: Identity, args: ReadonlyArray<string>): Array<string> => [
  "git",
  "-c",
  `user.name=${identity.name}`,
  "-c",
  `user.email=${identity.email}`,
  ...forcedConfig.flatMap((c) => ["-c", c]),
  ...args
]

/** The environment of one git call (added to the inherited one). */
export const env = (identity: Identity): Record<string, string> => ({
  // Never wait on a credential or passphrase prompt nobody will answer.
  GIT_TERMINAL_PROMPT: "0",
  // The environment wins over any config, so commits are attributed the same everywhere.
  GIT_AUTHOR_NAME: identity.name,
  GIT_AUTHOR_EMAIL: identity.email,
  GIT_COMMITTER_NAME: identity.name,
  GIT_COMMITTER_EMAIL: identity.email,
  // Some commands open an editor or a pager on a terminal; there is none.
  GIT_EDITOR: "true",
  GIT_PAGER: "cat",
  // `git status` would otherwise refresh the index of the user's checkout (an optional write
  // that can collide with the user's own git commands, and "checking" must change nothing).
  GIT_OPTIONAL_LOCKS: "0"
})

/**
 * The author identity configured for the repository at `cwd` (its `user.name` and
 * `user.email`, from any level of git's config), or undefined when either is unset. Read
 * without braid's own `-c user.*`, so commits carry the person's identity when they have one.
 */
export const configuredIdentity = (executor: CommandExecutor.CommandExecutor, cwd: string): Effect.Effect<Identity | undefined> => {
  const read = (key: string) =>
    Process.run(["git", "config", "--get", key], { cwd, env: { GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0" } }).pipe(
      Effect.provideService(CommandExecutor.CommandExecutor, executor),
      Effect.map((r) => r.exitCode === 0 ? firstLine(r.stdout) : ""),
      Effect.orElseSucceed(() => "")
    )
  return Effect.map(Effect.all([read("user.name"), read("user.email")]), ([name, email]) =>
    name !== "" && email !== "" ? { name, email } : undefined)
}

/** Describes a failed git call in one readable message. */
export const describeFailure = (args: ReadonlyArray<string>, cwd: string, result: Process.Result): string => {
  const output = Process.tail(`${result.stderr}${result.stdout}`, 12, 2000)
  return `git ${args.join(" ")} (in ${cwd}) exited with ${result.exitCode}${output === "" ? "" : `: ${output}`}`
}

let started = 0

/** How many git processes this process has started so far (tests and the benchmark count them per attempt). */
export const calls = (): number => started

/** A git runner using the given executor, so its calls need nothing from the context. */
export const make = (executor: CommandExecutor.CommandExecutor, identity: Identity): Git => {
  const exec: Git["exec"] = (args, options) =>
    Effect.suspend(() => {
      started++
      return Process.run(argv(identity, args), {
        cwd: options.cwd,
        env: env(identity),
        stdin: options.stdin
      })
    }).pipe(
      Effect.provideService(CommandExecutor.CommandExecutor, executor),
      Effect.mapError((e) =>
        new Workspace.WorkspaceFailed({ operation: `git ${args[0] ?? ""}`, message: `could not run git: ${e.message}` })
      )
    )
  const ok: Git["ok"] = (args, options) =>
    Effect.flatMap(exec(args, options), (result) =>
      result.exitCode === 0
        ? Effect.succeed(result.stdout)
        : Effect.fail(
          new Workspace.WorkspaceFailed({ operation: options.operation, message: describeFailure(args, options.cwd, result) })
        ))
  return { exec, ok }
}

/** Splits NUL-separated output (`-z`) into its non-empty fields. */
export const splitZ = (text: string): Array<string> => text.split("\0").filter((s) => s !== "")

/** Sorted, without duplicates. */
export const sortedUnique = (paths: Iterable<string>): Array<string> => [...new Set(paths)].sort()

/** The first line of a command's output, trimmed. */
export const firstLine = (text: string): string => text.split("\n")[0]!.trim()

/**
 * One lock per repository (keyed by its common git directory), shared by every workspace
 * of this process that uses that repository: adding, removing and pruning worktrees and
 * updating refs of the main repository take `.git/config`, `.git/worktrees` and ref locks
 * that git does not wait for, so they must happen one at a time.
 */
const locks = new Map<string, Effect.Semaphore>()

export const lockFor = (commonDir: string): Effect.Semaphore => {
  let lock = locks.get(commonDir)
  if (lock === undefined) {
    lock = Effect.unsafeMakeSemaphore(1)
    locks.set(commonDir, lock)
  }
  return lock
}

/** One entry of `git worktree list --porcelain`. */
export interface WorktreeEntry {
  readonly path: string
  readonly head: string | undefined
  /** The full ref checked out (`refs/heads/…`), undefined when detached or bare. */
  readonly branch: string | undefined
}

/** Parses `git worktree list --porcelain -z`. */
export const parseWorktrees = (text: string): Array<WorktreeEntry> => {
  const entries: Array<WorktreeEntry> = []
  let current: { path: string; head: string | undefined; branch: string | undefined } | undefined
  for (const field of text.split("\0")) {
    if (field === "") {
      if (current !== undefined) entries.push(current)
      current = undefined
    } else if (field.startsWith("worktree ")) {
      if (current !== undefined) entries.push(current)
      current = { path: field.slice("worktree ".length), head: undefined, branch: undefined }
    } else if (current !== undefined && field.startsWith("HEAD ")) {
      current.head = field.slice("HEAD ".length)
    } else if (current !== undefined && field.startsWith("branch ")) {
      current.branch = field.slice("branch ".length)
    }
  }
  if (current !== undefined) entries.push(current)
  return entries
}

/**
 * Paths in `git status --porcelain -z` output. A rename or copy record carries its source
 * path in the following field, which is a path too.
 */
export const parseStatusPaths = (text: string): Array<string> => {
  const fields = text.split("\0")
  const paths: Array<string> = []
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!
    if (field.length < 4) continue
    const xy = field.slice(0, 2)
    paths.push(field.slice(3))
    if (xy.includes("R") || xy.includes("C")) {
      const source = fields[++i]
      if (source !== undefined && source !== "") paths.push(source)
    }
  }
  return paths
}

/** A working tree's own git directory and the repository's common one. */
export interface GitDirs {
  readonly gitDir: string
  readonly commonDir: string
}

const readText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

/**
 * Finds a working tree's git directories from its `.git` (a folder, or a file naming the
 * folder, as linked worktrees have) and `commondir`, without starting git. Undefined when
 * they cannot be read that way.
 */
export const gitDirsOf = (worktree: string): GitDirs | undefined => {
  const dotGit = path.join(worktree, ".git")
  const st = fs.statSync(dotGit, { throwIfNoEntry: false })
  if (st === undefined) return undefined
  let gitDir = dotGit
  if (!st.isDirectory()) {
    const named = /^gitdir: (.*)$/m.exec(readText(dotGit) ?? "")?.[1]?.trim()
    if (named === undefined || named === "") return undefined
    gitDir = path.resolve(worktree, named)
  }
  const common = readText(path.join(gitDir, "commondir"))?.trim()
  return { gitDir, commonDir: common === undefined || common === "" ? gitDir : path.resolve(gitDir, common) }
}

/** The environment variables that change where git finds a repository: with any set, ask git. */
const DISCOVERY_ENV = ["GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_COMMON_DIR"]

/**
 * The top of the working tree holding `dir` (a real path, as `git rev-parse --show-toplevel`
 * prints it), found from the `.git` entries of `dir` and the folders above it without starting
 * git. Undefined whenever git might answer otherwise, so the caller asks git then: an
 * environment that moves the repository, a folder inside a `.git`, a `.git` that does not hold
 * a HEAD, a repository owned by another user, one whose configuration names another working tree
 * (`core.worktree`) or has per-worktree configuration (`extensions.worktreeConfig`).
 */
export const topOf = (dir: string, env: NodeJS.ProcessEnv = process.env): string | undefined => {
  if (DISCOVERY_ENV.some((name) => env[name] !== undefined)) return undefined
  let at: string
  try {
    at = fs.realpathSync(dir)
  } catch {
    return undefined
  }
  if (at.split(path.sep).includes(".git")) return undefined
  for (;;) {
    const dirs = gitDirsOf(at)
    if (dirs !== undefined) {
      if (!fs.existsSync(path.join(dirs.gitDir, "HEAD"))) return undefined
      // Someone else's repository: git refuses it unless safe.directory says otherwise.
      if (process.getuid !== undefined && fs.statSync(at).uid !== process.getuid()) return undefined
      // core.worktree, or per-worktree configuration that might set it.
      return /^\s*worktree(?:config)?\s*=/im.test(readText(path.join(dirs.commonDir, "config")) ?? "") ? undefined : at
    }
    const up = path.dirname(at)
    if (up === at) return undefined
    at = up
  }
}

const OBJECT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/

/**
 * A branch's commit read from the common git directory's files (its loose ref, else
 * `packed-refs`), without starting git. Undefined when it cannot be read that way (no such
 * branch, a reftable repository, anything unexpected): ask git then.
 */
export const readBranch = (commonDir: string, branch: string): string | undefined => {
  if (fs.existsSync(path.join(commonDir, "reftable"))) return undefined
  const ref = `refs/heads/${branch}`
  const loose = readText(path.join(commonDir, ref))?.trim()
  if (loose !== undefined) return OBJECT_ID.test(loose) ? loose : undefined
  for (const line of (readText(path.join(commonDir, "packed-refs")) ?? "").split("\n")) {
    const space = line.indexOf(" ")
    if (space > 0 && line.slice(space + 1).trim() === ref) {
      const id = line.slice(0, space)
      return OBJECT_ID.test(id) ? id : undefined
    }
  }
  return undefined
}

/** The ref a working tree's HEAD names (`refs/heads/…`), read from its git directory; undefined when detached or unreadable. */
export const readHeadRef = (gitDir: string): string | undefined =>
  /^ref: (\S+)\s*$/.exec(readText(path.join(gitDir, "HEAD")) ?? "")?.[1]
