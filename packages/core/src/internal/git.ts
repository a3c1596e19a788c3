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
import * as zlib from "node:zlib"
import * as Process from "../system/Process.js"
import * as Workspace from "../ports/Workspace.js"

/** Who braid's commits are made by. */
export interface Identity {
  readonly name: string
  readonly email: string
}

/**
 * Configuration forced on every git process braid starts, whatever the user's global or
 * repository config says. A repository's `.git/config` is within an agent's reach (`git
 * rev-parse --git-common-dir` finds it from any worktree), and braid's git runs unconfined,
 * in every worktree, long after the agent is gone: nothing in that file may make braid's git
 * run a program or lie. Command-line `-c` wins over every config file, includes too. So:
 * - `core.hooksPath=/dev/null`: no hook runs. A user's pre-commit hook could reject or rewrite
 *   an attempt's commit, post-checkout hooks (husky, installers) would run once per worktree,
 *   and a hook an agent plants would run as braid; braid's own quality gate judges an attempt;
 * - `core.fsmonitor=false`: the value may name a script git runs on nearly every command
 *   (`status`, `add`, `commit`, `reset`, `stash`), or start a background daemon;
 * - `core.pager=cat`, `core.editor=true`, `sequence.editor=true`: programs git starts for a
 *   person at a terminal; braid has none (the environment says the same, see {@link safeEnv});
 * - `core.useReplaceRefs=false`: `refs/replace/*` would make git read another object in place
 *   of a commit braid journaled, so what merges and lands would not be what was recorded;
 * - nothing is signed or verified (`commit.gpgSign`, `tag.gpgSign`, `push.gpgSign`,
 *   `merge.verifySignatures`, `log.showSignature`): each runs `gpg.program`, which may prompt,
 *   need an agent, or be any program;
 * - `protocol.file.allow=user` and `protocol.ext.allow=never`, git's own defaults: a
 *   repository cannot widen them (`ext::` URLs run a command);
 * - `rerere.enabled=false`: a remembered resolution would silently "resolve" a conflict the
 *   run must see and report;
 * - `merge.conflictStyle=merge`: plain two-sided markers, the form resolvers and
 *   `Workspace.hasConflictMarkers` expect (diff3/zdiff3 add a third section);
 * - `gc.auto=0`, `maintenance.auto=false`: no background housekeeping racing the parallel
 *   worktrees for the repository's locks;
 * - `core.quotePath=false`: paths come back as they are (we also read them with `-z`).
 * Diffs run with `--no-ext-diff --no-textconv` (added by {@link safeArgs}): `diff.external`
 * and `diff.<driver>.textconv` name programs.
 *
 * Kept, because braid needs what the user set up, and guarded instead (`gitGuard.ts` puts
 * `.git/config` back whenever it changes during a run, before braid's next git process):
 * - filters (`filter.<driver>.clean/smudge/process`, e.g. git-lfs) and merge drivers: without
 *   them `git add` would commit an LFS file's whole content instead of its pointer;
 * - `core.sshCommand`, `credential.helper`, `core.askPass`, `remote.*`, `url.*`, `http.*`:
 *   used only when braid pushes to the user's remote, which may need exactly these.
 * Not forced because braid's git never consults them: `core.alternateRefsCommand` and
 * `uploadpack.*` (a repository serving a fetch; the latter only from protected config) and
 * aliases (braid only ever names builtins, which no alias can replace: see {@link safeArgs}).
 */
const forcedConfig = [
  "core.hooksPath=/dev/null",
  "core.fsmonitor=false",
  "core.pager=cat",
  "core.editor=true",
  "sequence.editor=true",
  "core.useReplaceRefs=false",
  "commit.gpgSign=false",
  "tag.gpgSign=false",
  "push.gpgSign=false",
  "merge.verifySignatures=false",
  "log.showSignature=false",
  "protocol.file.allow=user",
  "protocol.ext.allow=never",
  "rerere.enabled=false",
  "merge.conflictStyle=merge",
  "gc.auto=0",
  "maintenance.auto=false",
  "core.quotePath=false"
]

/**
 * The git commands braid may run: builtins (an alias can never stand in for one) that start
 * no program of the user's by design. Leaves out `difftool`, `help` (a browser), `hook`,
 * `credential*`, `fsmonitor--daemon`, `remote-ext`, the server sides (`upload-pack`,
 * `receive-pack`) and git's own helpers.
 */
const SUBCOMMANDS = new Set([
  "add", "am", "apply", "archive", "blame", "branch", "bundle", "cat-file", "check-attr", "check-ignore",
  "check-mailmap", "check-ref-format", "checkout", "checkout-index", "cherry", "cherry-pick", "clean", "clone",
  "commit", "commit-graph", "commit-tree", "config", "count-objects", "describe", "diff", "diff-files", "diff-index",
  "diff-tree", "fetch", "fmt-merge-msg", "for-each-ref", "format-patch", "fsck", "gc", "grep", "hash-object",
  "init", "interpret-trailers", "log", "ls-files", "ls-remote", "ls-tree", "merge", "merge-base", "merge-file",
  "merge-tree", "mktag", "mktree", "mv", "name-rev", "notes", "pack-objects", "pack-refs", "patch-id", "prune",
  "pull", "push", "range-diff", "read-tree", "rebase", "reflog", "remote", "repack", "replace", "reset", "restore",
  "rev-list", "rev-parse", "revert", "rm", "shortlog", "show", "show-branch", "show-ref", "sparse-checkout",
  "stash", "status", "stripspace", "switch", "symbolic-ref", "tag", "update-index", "update-ref", "var",
  "verify-pack", "version", "worktree", "write-tree"
])

/** Global options before the subcommand that take the next argument as their value. */
const GLOBAL_WITH_VALUE = new Set(["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"])

/** Subcommands that print diffs: `diff.external` and textconv drivers are programs, never run. */
const DIFFING = new Set(["diff", "log", "show"])

/**
 * The argv of a git process braid starts (without `git` itself): the forced configuration,
 * then `args`, with `--no-ext-diff --no-textconv` after a diffing subcommand. A subcommand
 * that is not one of braid's builtins is a bug: it dies rather than run whatever an alias or
 * a `git-<name>` on the PATH would.
 */
export const safeArgs = (args: ReadonlyArray<string>): Array<string> => {
  let at = 0
  while (at < args.length && args[at]!.startsWith("-") && args[at] !== "--version") {
    at += GLOBAL_WITH_VALUE.has(args[at]!) ? 2 : 1
  }
  const command = args[at]
  if (command !== "--version" && (command === undefined || !SUBCOMMANDS.has(command))) {
    throw new Error(`braid runs only git's builtins it knows, not "${command ?? ""}" (git ${args.join(" ")})`)
  }
  const extra = DIFFING.has(command) ? ["--no-ext-diff", "--no-textconv"] : []
  return [...forcedConfig.flatMap((c) => ["-c", c]), ...args.slice(0, at + 1), ...extra, ...args.slice(at + 1)]
}

/**
 * The environment of every git process braid starts (added to the inherited one, whose
 * `GIT_*` settings are the user's own and win over any repository config).
 */
export const safeEnv: Readonly<Record<string, string>> = {
  // Never wait on a credential or passphrase prompt nobody will answer.
  GIT_TERMINAL_PROMPT: "0",
  // Some commands open an editor or a pager on a terminal; there is none.
  GIT_EDITOR: "true",
  GIT_SEQUENCE_EDITOR: "true",
  GIT_PAGER: "cat",
  // As core.useReplaceRefs=false, for git processes that read no config of ours.
  GIT_NO_REPLACE_OBJECTS: "1",
  // `git status` would otherwise refresh the index of the user's checkout (an optional write
  // that can collide with the user's own git commands, and "checking" must change nothing).
  GIT_OPTIONAL_LOCKS: "0"
}

/** A git process braid starts outside a workspace, as `Process.run` takes it: `["git", ...safeArgs(args)]`. */
export const safeArgv = (args: ReadonlyArray<string>): Array<string> => ["git", ...safeArgs(args)]

/**
 * Runs one git command outside a workspace (a runner's clone, `ls-remote` on a remote), with
 * braid's hardening (`safeArgv`, `safeEnv`) and through `Process.run` like every other process
 * braid starts: its stdout, or a `WorkspaceFailed` for `operation` naming the command and what
 * git said.
 */
export const run = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string | undefined; readonly operation: string; readonly timeoutMs?: number | undefined }
): Effect.Effect<string, Workspace.WorkspaceFailed, CommandExecutor.CommandExecutor> =>
  Process.run(safeArgv(args), { cwd: options.cwd, env: safeEnv, timeoutMs: options.timeoutMs, unconfined: true }).pipe(
    Effect.mapError((e) => new Workspace.WorkspaceFailed({ operation: options.operation, message: e.message })),
    Effect.flatMap((result) =>
      result.exitCode === 0
        ? Effect.succeed(result.stdout)
        : Effect.fail(
          new Workspace.WorkspaceFailed({
            operation: options.operation,
            message: `git ${args.slice(0, 2).join(" ")}: ${(result.stderr || `exited ${result.exitCode}`).trim()}`
          })
        )
    )
  )

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
  ...safeArgs(args)
]

/** The environment of one git call (added to the inherited one). */
export const env = (identity: Identity): Record<string, string> => ({
  ...safeEnv,
  // The environment wins over any config, so commits are attributed the same everywhere.
  GIT_AUTHOR_NAME: identity.name,
  GIT_AUTHOR_EMAIL: identity.email,
  GIT_COMMITTER_NAME: identity.name,
  GIT_COMMITTER_EMAIL: identity.email
})

/**
 * The author identity configured for the repository at `cwd` (its `user.name` and
 * `user.email`, from any level of git's config), or undefined when either is unset. Read
 * without braid's own `-c user.*`, so commits carry the person's identity when they have one.
 */
export const configuredIdentity = (executor: CommandExecutor.CommandExecutor, cwd: string): Effect.Effect<Identity | undefined> => {
  const read = (key: string) =>
    Process.run(safeArgv(["config", "--get", key]), { cwd, env: safeEnv, unconfined: true }).pipe(
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

/**
 * A git runner using the given executor, so its calls need nothing from the context.
 * `before` runs (synchronously) before each git process starts: the workspace puts the
 * repository's git files back there when an agent changed them (`gitGuard.ts`).
 */
export const make = (
  executor: CommandExecutor.CommandExecutor,
  identity: Identity,
  options: { readonly before?: () => void } = {}
): Git => {
  const exec: Git["exec"] = (args, execOptions) =>
    Effect.suspend(() => {
      started++
      options.before?.()
      return Process.run(argv(identity, args), {
        cwd: execOptions.cwd,
        env: env(identity),
        stdin: execOptions.stdin,
        unconfined: true
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

/** A full object id (SHA-1 or SHA-256), as git prints one. */
export const isObjectId = (text: string): boolean => OBJECT_ID.test(text)

/**
 * A branch's commit read from the common git directory's files (its loose ref, else
 * `packed-refs`), without starting git. `null` when the branch certainly does not exist (no
 * loose ref file, none in `packed-refs`); undefined when it cannot be read that way (a
 * reftable repository, a symbolic ref, anything unexpected): ask git then.
 */
export const readBranch = (commonDir: string, branch: string): string | null | undefined => readRef(commonDir, `refs/heads/${branch}`)

/** A ref's commit (`refs/…`), read as `readBranch` reads a branch: null when certainly absent, undefined when git must say. */
export const readRef = (commonDir: string, ref: string): string | null | undefined => {
  if (!ref.startsWith("refs/") || ref.split("/").some((part) => part === "" || part === "." || part === "..")) return undefined
  if (fs.statSync(commonDir, { throwIfNoEntry: false })?.isDirectory() !== true) return undefined
  if (fs.existsSync(path.join(commonDir, "reftable"))) return undefined
  let loose: string
  try {
    loose = fs.readFileSync(path.join(commonDir, ref), "utf8").trim()
  } catch (e) {
    // A missing file (or a missing folder on its way) is no loose ref; anything else is a question for git.
    const code = (e as NodeJS.ErrnoException).code
    if (code !== "ENOENT" && code !== "ENOTDIR") return undefined
    return packedRef(commonDir, ref)
  }
  return OBJECT_ID.test(loose) ? loose : undefined
}

const packedRef = (commonDir: string, ref: string): string | null | undefined => {
  let packed: string
  try {
    packed = fs.readFileSync(path.join(commonDir, "packed-refs"), "utf8")
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? null : undefined
  }
  for (const line of packed.split("\n")) {
    const space = line.indexOf(" ")
    if (space > 0 && line.slice(space + 1).trim() === ref) {
      const id = line.slice(0, space)
      return OBJECT_ID.test(id) ? id : undefined
    }
  }
  return null
}

/**
 * The commit a working tree's open merge brings in (the first line of its `MERGE_HEAD`), read
 * without starting git. `null` when no merge is open (no such file); undefined when it cannot
 * be read that way (ask git then).
 */
export const readMergeHead = (worktree: string): string | null | undefined => {
  const dirs = gitDirsOf(worktree)
  if (dirs === undefined) return undefined
  try {
    const first = fs.readFileSync(path.join(dirs.gitDir, "MERGE_HEAD"), "utf8").split("\n")[0]!.trim()
    return OBJECT_ID.test(first) ? first : undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? null : undefined
  }
}

/** The commit a working tree's HEAD is at (detached, or through its branch), read without starting git; undefined when it cannot be read so. */
export const readHead = (dirs: GitDirs): string | undefined => {
  const text = readText(path.join(dirs.gitDir, "HEAD"))?.trim()
  if (text === undefined) return undefined
  if (OBJECT_ID.test(text)) return text
  const ref = /^ref: refs\/heads\/(\S+)$/.exec(text)?.[1]
  return ref === undefined ? undefined : readBranch(dirs.commonDir, ref) ?? undefined
}

/**
 * A commit's parents and message, read from its loose object (zlib-deflated
 * `commit <size>\0<headers>\n\n<message>`) without starting git. Undefined when it is not a
 * loose object (packed), or anything could make git see it otherwise (grafts, a shallow
 * repository): ask git then.
 */
export const readCommit = (commonDir: string, id: string): { readonly parents: ReadonlyArray<string>; readonly message: string } | undefined => {
  if (!OBJECT_ID.test(id)) return undefined
  if (fs.existsSync(path.join(commonDir, "info", "grafts")) || fs.existsSync(path.join(commonDir, "shallow"))) return undefined
  let raw: Buffer
  try {
    raw = zlib.inflateSync(fs.readFileSync(path.join(commonDir, "objects", id.slice(0, 2), id.slice(2))))
  } catch {
    return undefined
  }
  const nul = raw.indexOf(0)
  const header = raw.subarray(0, nul).toString("latin1")
  if (nul < 0 || !/^commit \d+$/.test(header) || Number(header.slice(7)) !== raw.length - nul - 1) return undefined
  const text = raw.subarray(nul + 1).toString("utf8")
  const end = text.indexOf("\n\n")
  const headers = (end < 0 ? text : text.slice(0, end)).split("\n")
  // An encoding other than UTF-8 is git's to convert.
  if (headers.some((h) => h.startsWith("encoding ") && !/^encoding utf-?8$/i.test(h))) return undefined
  const parents = headers.filter((h) => h.startsWith("parent ")).map((h) => h.slice("parent ".length))
  return { parents, message: end < 0 ? "" : text.slice(end + 2) }
}

/** The ref a working tree's HEAD names (`refs/heads/…`), read from its git directory; undefined when detached or unreadable. */
export const readHeadRef = (gitDir: string): string | undefined =>
  /^ref: (\S+)\s*$/.exec(readText(path.join(gitDir, "HEAD")) ?? "")?.[1]
