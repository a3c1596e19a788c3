/**
 * The git `Workspace`: one branch and worktree per stream under the repository's run
 * folder, one commit per attempt, conflict checks with `git merge-tree` (no working tree
 * touched), an integration worktree where streams are merged one at a time, and a
 * fast-forward-only landing on the target branch.
 *
 * @since 0.1.0
 */
// By path, not @effect/platform's index, which would initialise every platform module at start-up (ARCHITECTURE.md).
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect, Either, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type * as CommandSpec from "./CommandSpec.js"
import * as Confinement from "./internal/confinement.js"
import * as Git from "./internal/git.js"
import * as GitIndex from "./internal/gitIndex.js"
import * as Links from "./internal/links.js"
import * as Snapshot from "./internal/snapshot.js"
import * as Process from "./Process.js"
import * as Workspace from "./Workspace.js"

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
  /** Where runs keep their worktrees; relative to the repository's top (default `<repo>/.braid`). */
  readonly runFolder?: string
}

/** A git version as `git --version` reports it. */
export interface GitVersion {
  readonly major: number
  readonly minor: number
  readonly patch: number
}

/** The oldest git with `merge-tree --write-tree`, which probing conflicts needs. */
export const minimumGitVersion: GitVersion = { major: 2, minor: 38, patch: 0 }

/** Reads `git --version` output and refuses a git older than {@link minimumGitVersion}. */
export const checkGitVersion = (versionOutput: string): Either.Either<GitVersion, Workspace.WorkspaceRefused> => {
  const minimum = `${minimumGitVersion.major}.${minimumGitVersion.minor}`
  const match = /git version (\d+)\.(\d+)(?:\.(\d+))?/.exec(versionOutput)
  if (match === null) {
    return Either.left(
      new Workspace.WorkspaceRefused({
        reason: "git-too-old",
        message: `could not read a git version from "${versionOutput.trim()}"; braid needs git ${minimum} or newer`
      })
    )
  }
  const version = { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0) }
  const tooOld = version.major < minimumGitVersion.major ||
    (version.major === minimumGitVersion.major && version.minor < minimumGitVersion.minor)
  return tooOld
    ? Either.left(
      new Workspace.WorkspaceRefused({
        reason: "git-too-old",
        message: `git ${version.major}.${version.minor}.${version.patch} is too old: braid needs git ${minimum} or newer ` +
          `(for merge-tree --write-tree)`
      })
    )
    : Either.right(version)
}

/** A branch and the worktree it is checked out in. */
interface Tree {
  readonly branch: string
  readonly dir: string
}

/** A stream's tree and the commit its last attempt was recorded at. */
interface StreamTree extends Tree {
  recorded: string
  /** The commit the journal holds for the stream (`pin`): while braid has not moved the branch since, it is what integrates. */
  pinned?: string | undefined
}

/** The stream's journaled commit, while braid has recorded nothing after it. */
const pinnedOf = (tree: StreamTree): string | undefined => tree.pinned !== undefined && tree.pinned === tree.recorded ? tree.pinned : undefined

/** What `prepare` established; the rest of the service works from it. */
interface Run {
  readonly runId: string
  /** The main working tree (the repository's top). */
  readonly top: string
  readonly runFolder: string
  readonly worktrees: string
  readonly lock: Effect.Semaphore
  readonly base: string
  readonly target: string
  /** The target's commit when the run started, or when it last landed: landing compares against it. */
  targetAtStart: string
  readonly streams: Map<string, StreamTree>
  integration: Tree | undefined
  /** Worktrees this run created or took back over; release removes these and nothing else. */
  readonly owned: Array<Tree>
  open: { readonly stream: string; readonly paths: ReadonlyArray<string> } | undefined
  landed: string | undefined
  /** Streams whose worktree stays for a person to look at (closed with `keep`). */
  readonly kept: Set<string>
  /**
   * Checkouts a closed stream left for the next stream to open: moving one and switching its
   * branch rewrites only the files that differ, where a new worktree writes the whole tree.
   * They are among `owned`, so release removes them.
   */
  readonly spares: Array<Tree>
}

/** At most this many closed checkouts wait to be reused. */
const MAX_SPARES = 2
/** The folder name of a parked checkout under the run's worktrees folder. */
const SPARE_PREFIX = ".spare-"

const INTEGRATION_DIR = "_integration"
const INTEGRATION_BRANCH = "integration"

const refused = (reason: Workspace.WorkspaceRefused["reason"], message: string) =>
  new Workspace.WorkspaceRefused({ reason, message })

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

/** Remote URLs may carry credentials (`https://user:token@host`): never repeated in a message. */
const redactUrl = (text: string) => text.replace(/(\w+:\/\/)[^/\s@]+@/g, "$1***@")

const failure = (operation: string, message: string) => new Workspace.WorkspaceFailed({ operation, message })

const isInside = (root: string, candidate: string): boolean => {
  const rel = path.relative(root, candidate)
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))
}

const realpath = (p: string) => Effect.promise(() => fs.realpath(p).catch(() => path.resolve(p)))

const exists = (p: string) => Effect.promise(() => fs.lstat(p).then(() => true, () => false))

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

const isMissing = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code
  return code === "ENOENT" || code === "ENOTDIR"
}

/** A name is used as one path segment and one ref component: keep it plain. */
const nameProblem = (what: string, name: string): string | undefined =>
  name === "" || name === "." || name === ".." || /[/\\\0]/.test(name) || name.startsWith("-")
    ? `${what} "${name}" cannot name a branch and a folder (no "/", "\\", leading "-", "." or "..")`
    : undefined

/** Who braid's commits are made by when the repository configures no `user.name`/`user.email`. */
export const braidIdentity: Git.Identity = { name: "braid", email: "braid@localhost" }

/** Builds a git workspace. Its methods need nothing from the context. */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    // Read by every git call: once the repository is known, its configured author replaces braid's own.
    const identity: { name: string; email: string } = { ...(options.author ?? braidIdentity) }
    // Before every git process: the repository's git files as they were at prepare (an agent may have changed them).
    const git = Git.make(executor, identity, { before: () => confinement.checkRepository() })
    const repo = path.resolve(options.repo ?? process.cwd())
    let run: Run | undefined
    /** The repository's common git directory, once known: branch heads are read from its files. */
    let commonDirKnown: string | undefined
    const confinement = Confinement.make({
      status: (dir) => git.ok(Snapshot.statusArgs, { cwd: dir, operation: "strays" }),
      discard: (stream) => Effect.suspend(() => dropChanges(stream))
    })

    const prepared = (operation: string) =>
      Effect.suspend(() =>
        run === undefined
          ? Effect.fail(failure(operation, "the workspace has not been prepared (call prepare first)"))
          : Effect.succeed(run)
      )

    const streamTree = (operation: string, stream: string) =>
      Effect.flatMap(prepared(operation), (r) => {
        const tree = r.streams.get(stream)
        return tree === undefined
          ? Effect.fail(failure(operation, `no workspace for stream "${stream}" in run ${r.runId}`))
          : Effect.succeed(tree)
      })

    const integrationTree = (operation: string) =>
      Effect.flatMap(prepared(operation), (r) =>
        r.integration === undefined
          ? Effect.fail(failure(operation, `the integration of run ${r.runId} has not begun`))
          : Effect.succeed(r.integration))

    /** The commit a ref points at, or undefined when there is no such ref. */
    const resolveCommit = (ref: string, cwd: string) =>
      Effect.suspend(() => {
        // A branch head is read from git's files when it can be (no git process): a run asks often.
        const read = commonDirKnown !== undefined && ref.startsWith("refs/heads/")
          ? Git.readBranch(commonDirKnown, ref.slice("refs/heads/".length))
          : undefined
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

    const mergeHead = (dir: string) => resolveCommit("MERGE_HEAD", dir)

    /**
     * Makes sure `branch` is checked out in a worktree at `dir`: creates both from `start`,
     * or takes back over what an earlier process of the same run left. Runs under the lock.
     */
    const ensureWorktree = (r: { top: string }, tree: Tree, start: string) =>
      Effect.gen(function*() {
        const wanted = yield* realpath(tree.dir)
        const present = yield* exists(tree.dir)
        let stale = false
        for (const entry of yield* listWorktrees(r.top)) {
          if ((yield* realpath(entry.path)) !== wanted) continue
          if (present && entry.branch === `refs/heads/${tree.branch}`) return
          // Registered at our path but its folder was deleted by hand: re-adding needs --force.
          stale = stale || !present
        }
        const existing = yield* resolveCommit(`refs/heads/${tree.branch}`, r.top)
        const force = stale ? ["--force"] : []
        const args = existing === undefined
          // --no-track: parallel adds would otherwise race on .git/config.
          ? ["worktree", "add", "--quiet", ...force, "--no-track", "-b", tree.branch, tree.dir, start]
          : ["worktree", "add", "--quiet", ...force, tree.dir, tree.branch]
        yield* git.ok(args, { cwd: r.top, operation: "worktree add" })
      })

    /** Adds the run folder to `info/exclude` of the repository (never the user's .gitignore). */
    const excludeRunFolder = (top: string, runFolder: string) =>
      Effect.gen(function*() {
        if (!isInside(top, runFolder) || runFolder === top) return
        const commonDir = Git.firstLine(
          yield* git.ok(["rev-parse", "--path-format=absolute", "--git-common-dir"], { cwd: top, operation: "rev-parse" })
        )
        const pattern = `/${path.relative(top, runFolder).split(path.sep).join("/")}/`
        const file = path.join(commonDir, "info", "exclude")
        yield* Effect.tryPromise({
          try: async () => {
            const current = await fs.readFile(file, "utf8").catch((e) => isMissing(e) ? "" : Promise.reject(e))
            const lines = current.split("\n").map((l) => l.trim())
            if (lines.includes(pattern) || lines.includes(pattern.slice(1))) return
            await fs.mkdir(path.dirname(file), { recursive: true })
            const separator = current === "" || current.endsWith("\n") ? "" : "\n"
            await fs.appendFile(file, `${separator}# braid's run folder (worktrees, journal)\n${pattern}\n`)
          },
          catch: Workspace.failed("exclude run folder")
        })
      })

    const filesAt = (root: () => Effect.Effect<string, Workspace.WorkspaceFailed>, dir: string | undefined): Workspace.Files => {
      const at = (operation: string, relative: string, followLeaf = true) =>
        Effect.flatMap(root(), (r) =>
          Effect.tryPromise({
            try: () => resolveInside(r, relative, followLeaf),
            catch: Workspace.failed(operation)
          }))
      return {
        dir,
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
            const cwd = yield* root()
            // Tracked files plus untracked ones git does not ignore, minus tracked files deleted
            // from disk; an open merge lists a conflicted path once per stage, hence the dedupe.
            const present = yield* git.ok(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
              cwd,
              operation: "files.list"
            })
            const deleted = new Set(Git.splitZ(yield* git.ok(["ls-files", "-z", "--deleted"], { cwd, operation: "files.list" })))
            return Git.sortedUnique(Git.splitZ(present).filter((p) => !deleted.has(p)))
          })
      }
    }

    const dirOf = (operation: string, location: Workspace.Location) =>
      location._tag === "Stream"
        ? Effect.map(streamTree(operation, location.stream), (t) => t.dir)
        : Effect.map(integrationTree(operation), (t) => t.dir)

    /**
     * Every refusal of `prepare`, read-only: git's version, the repository, the names, the base
     * and target, and (when landing) a clean main checkout. `check` runs these alone.
     */
    const checks = Effect.fn("GitWorkspace.check")(function*(setup: Workspace.RunSetup) {
      const version = yield* git.exec(["--version"], { cwd: os.tmpdir() }).pipe(
        // No git at all is the extreme case of a git too old.
        Effect.mapError((e) =>
          refused("git-too-old", `git ${minimumGitVersion.major}.${minimumGitVersion.minor} or newer is required: ${e.message}`)
        )
      )
      yield* checkGitVersion(version.stdout)

      const isDirectory = yield* Effect.promise(() => fs.stat(repo).then((s) => s.isDirectory(), () => false))
      if (!isDirectory) return yield* refused("not-a-repository", `${repo} is not a directory, so not a git repository`)
      const topLevel = yield* git.exec(["rev-parse", "--show-toplevel"], { cwd: repo })
      if (topLevel.exitCode !== 0) {
        return yield* refused(
          "not-a-repository",
          `${repo} is not inside a git repository with a working tree: ${Process.tail(topLevel.stderr, 3)}`
        )
      }
      const top = Git.firstLine(topLevel.stdout)
      const runFolder = path.resolve(top, options.runFolder ?? ".braid")

      for (const problem of [
        nameProblem("run id", setup.runId),
        ...setup.streams.map((s) => nameProblem("stream", s.name))
      ]) {
        if (problem !== undefined) return yield* refused("invalid-option", problem)
      }
      const names = setup.streams.map((s) => s.name)
      const once = new Set<string>()
      const duplicate = names.find((n) => once.has(n) || (once.add(n), false))
      if (duplicate !== undefined) return yield* refused("invalid-option", `stream "${duplicate}" is listed twice`)
      if (names.includes(INTEGRATION_BRANCH) || names.includes(INTEGRATION_DIR)) {
        return yield* refused(
          "invalid-option",
          `a stream cannot be called "${INTEGRATION_BRANCH}" or "${INTEGRATION_DIR}": braid/${setup.runId}/${INTEGRATION_BRANCH} is the run's integration branch`
        )
      }
      // A name of letters, digits, "_" and "-" (not leading, nameProblem above) is valid in a ref by git's
      // rules; git is asked about the others and about the run id, one process each (plans may have thousands of streams).
      for (const name of [...names.filter((n) => !/^[A-Za-z0-9_-]+$/.test(n)), INTEGRATION_BRANCH]) {
        const check = yield* git.exec(["check-ref-format", `refs/heads/braid/${setup.runId}/${name}`], { cwd: top })
        if (check.exitCode !== 0) {
          return yield* refused("invalid-option", `braid/${setup.runId}/${name} is not a valid branch name`)
        }
      }

      const current = yield* git.exec(["symbolic-ref", "--quiet", "--short", "HEAD"], { cwd: top })
      const currentBranch = current.exitCode === 0 ? Git.firstLine(current.stdout) : undefined
      if (options.base === undefined && (yield* resolveCommit("HEAD", top)) === undefined) {
        return yield* refused(
          "invalid-option",
          `the repository at ${top} has no commits yet${currentBranch === undefined ? "" : ` (${currentBranch} is unborn)`}; ` +
            `braid needs a commit to start the streams from`
        )
      }
      const baseRef = options.base ?? currentBranch ?? "HEAD"
      // A resumed run starts from the base it recorded, wherever the base ref is now.
      const base = setup.resume !== undefined
        ? yield* resolveCommit(setup.resume.base, top)
        : baseRef.startsWith("-")
        ? undefined
        : yield* resolveCommit(baseRef, top)
      if (base === undefined) {
        return yield* refused("unknown-base", `base "${baseRef}" is not a commit in the repository at ${top}`)
      }
      const baseBranch = baseRef.startsWith("refs/heads/") ? baseRef.slice("refs/heads/".length) : baseRef
      const baseIsBranch = baseRef !== "HEAD" && (yield* resolveCommit(`refs/heads/${baseBranch}`, top)) !== undefined
      const target = options.target ?? (baseIsBranch ? baseBranch : undefined)
      if (target === undefined) {
        return yield* refused(
          "invalid-option",
          `base "${baseRef}" is not a branch, so there is no default target: pass the branch to land on as target`
        )
      }
      const targetHead = target.startsWith("-") ? undefined : yield* resolveCommit(`refs/heads/${target}`, top)
      if (targetHead === undefined) {
        return yield* refused("invalid-option", `target branch "${target}" does not exist in the repository at ${top}`)
      }
      if (setup.land) {
        if (setup.resume === undefined && !(yield* isAncestor(targetHead, base, top))) {
          return yield* refused(
            "invalid-option",
            `base "${baseRef}" (${base}) does not contain target "${target}" (${targetHead}): the result could never fast-forward ${target}`
          )
        }
        const holders = (yield* listWorktrees(top)).filter((e) => e.branch === `refs/heads/${target}`)
        for (const dir of [top, ...holders.map((h) => h.path).filter((p) => p !== top)]) {
          const dirty = yield* dirtyPaths(dir, runFolder)
          if (dirty.length > 0) {
            return yield* refused(
              "dirty-working-tree",
              `the working tree at ${dir} has uncommitted changes (${dirty.slice(0, 5).join(", ")}${
                dirty.length > 5 ? ", …" : ""
              }); commit or stash them before a run that lands on ${target}`
            )
          }
        }
      }

      return { top, runFolder, base, target, targetHead, names }
    })

    const prepare = Effect.fn("GitWorkspace.prepare")(function*(setup: Workspace.RunSetup) {
      if (run !== undefined) {
        if (run.runId !== setup.runId) {
          return yield* refused("invalid-option", `this workspace is already prepared for run ${run.runId}, not ${setup.runId}`)
        }
        const r = run
        const ready = setup.openStreams === false
          ? setup.streams.every((s) => r.streams.has(s.name))
          : setup.streams.every((s) => r.owned.some((t) => t === r.streams.get(s.name)))
        if (ready) {
          return { base: r.base, target: r.target, targetAt: r.targetAtStart } satisfies Workspace.Prepared
        }
        // An earlier prepare stopped half-way, or asks for more streams: do it again; what
        // exists already is taken over, not recreated.
      }

      // Checks first: nothing below changes the repository until every one has passed.
      const { base, names, runFolder, target, targetHead, top } = yield* checks(setup)
      if (options.author === undefined) Object.assign(identity, (yield* Git.configuredIdentity(executor, top)) ?? braidIdentity)
      const worktrees = path.join(runFolder, "runs", setup.runId, "worktrees")
      const streams = new Map<string, StreamTree>(
        names.map((name) => [name, { branch: `braid/${setup.runId}/${name}`, dir: path.join(worktrees, name), recorded: base }])
      )
      // Checkouts an earlier process of this run left on no branch (parked for reuse, or cut
      // off while being moved between streams) hold nothing the journal needs: every attempt
      // is committed on its stream's branch. They go, so a stream's folder is free again.
      for (const entry of yield* listWorktrees(top)) {
        if (entry.branch === undefined && isInside(worktrees, entry.path) && entry.path !== worktrees) {
          yield* git.ok(["worktree", "remove", "--force", entry.path], { cwd: top, operation: "prepare" })
        }
      }
      // Leftovers of this run from an earlier process are taken over, but a branch of this
      // run checked out somewhere else is not ours to move.
      const entries = yield* listWorktrees(top)
      for (const tree of streams.values()) {
        const holder = entries.find((e) => e.branch === `refs/heads/${tree.branch}`)
        if (holder !== undefined && (yield* realpath(holder.path)) !== (yield* realpath(tree.dir))) {
          return yield* refused("invalid-option", `branch ${tree.branch} is already checked out at ${holder.path}`)
        }
        const occupied = yield* Effect.promise(() => fs.readdir(tree.dir).then((e) => e.length > 0, () => false))
        if (holder === undefined && occupied) {
          return yield* refused("invalid-option", `${tree.dir} already exists and is not the worktree of ${tree.branch}`)
        }
      }

      const commonDir = Git.firstLine(
        yield* git.ok(["rev-parse", "--path-format=absolute", "--git-common-dir"], { cwd: top, operation: "rev-parse" })
      )
      const lock = Git.lockFor(yield* realpath(commonDir))
      const earlier = run
      yield* lock.withPermits(1)(excludeRunFolder(top, runFolder))
      // A run asks for stream worktrees when their stream has work (`openStream`), not here:
      // it holds about as many checkouts as agents at work, whatever its number of streams.
      // On a second prepare, keep what the first one made that this one does not list (the
      // integration), so release still removes it.
      const owned: Array<Tree> = earlier === undefined
        ? []
        : earlier.owned.filter((t) => ![...streams.values()].some((s) => s.dir === t.dir))
      const known = new Map(earlier?.streams ?? [])
      for (const [name, tree] of streams) known.set(name, tree)
      yield* lock.withPermits(1)(
        Effect.gen(function*() {
          if (setup.openStreams === false) return
          for (const tree of streams.values()) {
            yield* ensureWorktree({ top }, tree, base)
            // A worktree taken over may already hold attempts: the next one starts from its head.
            tree.recorded = yield* branchHead("prepare", tree.branch, top)
            owned.push(tree)
          }
        })
      ).pipe(
        // Whatever was created before a failure is still the run's: release can remove it.
        Effect.ensuring(Effect.sync(() => {
          run = {
            runId: setup.runId,
            top,
            runFolder,
            worktrees,
            lock,
            base,
            target,
            targetAtStart: setup.resume?.targetAt ?? targetHead,
            streams: known,
            integration: earlier?.integration,
            owned,
            open: undefined,
            landed: undefined,
            kept: earlier?.kept ?? new Set(),
            spares: earlier?.spares ?? []
          }
        }))
      )
      commonDirKnown = commonDir
      // The repository's config, hooks and info/ as they are now (after excludeRunFolder) are what
      // every later git process of the run gets: a change an agent makes is put back and reported.
      yield* confinement.guardRepository(commonDir)
      // Made now rather than with the first worktree, so that it is part of the main checkout's snapshot.
      yield* Effect.promise(() => fs.mkdir(worktrees, { recursive: true }).catch(() => undefined))
      // What is dirty in the main checkout now is the user's: only what changes later is an agent's.
      yield* confinement.watchMain(
        top,
        (relative) => relative === ".braid" || relative.startsWith(".braid/") || isInside(runFolder, path.join(top, relative))
      )
      if (setup.openStreams !== false) {
        for (const [name, tree] of streams) {
          yield* confinement.watchStream(name, tree.dir, false)
          noteIndex(name, tree.dir)
        }
      }
      return { base, target, targetAt: setup.resume?.targetAt ?? targetHead } satisfies Workspace.Prepared
    })

    const commitAttempt = Effect.fn("GitWorkspace.commitAttempt")(function*(
      stream: string,
      attempt: Workspace.AttemptToRecord
    ) {
      const tree = yield* streamTree("commitAttempt", stream)
      return yield* confinement.occupied(stream, recordAttempt(tree, stream, attempt))
    })

    /** The stat of each open stream's index file when braid last wrote it (an agent may stage or refresh it since). */
    const indexWritten = new Map<string, string>()
    const noteIndex = (stream: string, dir: string) => {
      const dirs = Git.gitDirsOf(dir)
      if (dirs === undefined) indexWritten.delete(stream)
      else indexWritten.set(stream, Snapshot.fingerprint(dirs.gitDir, "index"))
    }

    /**
     * Two git processes for an attempt that changed files (`git add --all`, `git commit`),
     * none for one that changed nothing. The checked-out branch and its head are read from
     * git's files; whether anything changed, from the worktree's stats; what changed, from the
     * index before and after the add. When an agent staged or committed by itself, git is
     * asked instead (a diff or two more).
     */
    const recordAttempt = (tree: StreamTree, stream: string, attempt: Workspace.AttemptToRecord) =>
      Effect.gen(function*() {
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
        if (ownHead && confinement.untouched(stream)) return new Workspace.AttemptChange({ commit: null, files: [] })
        // The index as braid left it (only then is it the head's tree) is compared with the index after the add.
        const oidBytes = before === undefined ? 0 : before.length / 2
        const indexFile = dirs === undefined ? undefined : `${dirs.gitDir}/index`
        const trusted = ownHead && dirs !== undefined && indexWritten.get(stream) === Snapshot.fingerprint(dirs.gitDir, "index")
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
          noteIndex(stream, cwd)
          yield* confinement.committed(stream)
          return yield* new Workspace.OutwardSymlink({ stream, taskId: attempt.taskId, attempt: attempt.attempt, links: outward })
        }
        if (changed.length > 0) yield* commitStaged(cwd, stream, attempt)
        const commit = yield* branchHead("commitAttempt", tree.branch, cwd)
        noteIndex(stream, cwd)
        yield* confinement.committed(stream)
        tree.recorded = commit
        return files.length === 0
          ? new Workspace.AttemptChange({ commit: null, files: [] })
          : new Workspace.AttemptChange({ commit, files })
      })

    const commitStaged = (
      cwd: string,
      stream: string,
      attempt: Workspace.AttemptToRecord
    ) => {
      const title = attempt.title.replace(/\s+/g, " ").trim()
      return git.ok([
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

    const strays = Effect.fn("GitWorkspace.strays")(function*(stream: string) {
      yield* prepared("strays")
      return yield* confinement.strays(stream)
    })

    const pin = Effect.fn("GitWorkspace.pin")(function*(stream: string, commit: string, keep?: Workspace.AttemptId) {
      const r = yield* prepared("pin")
      const tree = yield* streamTree("pin", stream)
      const found = yield* resolveCommit(`refs/heads/${tree.branch}`, r.top)
      if (found === commit) {
        tree.recorded = commit
        tree.pinned = commit
        return undefined
      }
      if (keep !== undefined && found !== undefined) {
        const [parents = "", body = ""] = (yield* git.ok(["log", "-1", "--format=%P%x00%B", found], { cwd: r.top, operation: "pin" })).split("\0")
        const step = `Braid-Step: ${Workspace.attemptStep(stream, keep)}`
        if (parents.trim().split(" ")[0] === commit && body.split("\n").some((l) => l.trim() === step)) return undefined
      }
      const there = yield* git.exec(["cat-file", "-e", `${commit}^{commit}`], { cwd: r.top })
      if (there.exitCode !== 0) {
        return yield* failure(
          "integrity",
          `the commit ${commit} braid journaled for stream "${stream}" no longer exists in the repository ${r.top}: ` +
            `that work cannot be integrated, so nothing of run ${r.runId} lands (restore the object from a clone or backup, then braid resume ${r.runId})`
        )
      }
      const subject = found === undefined ? "" : Git.firstLine((yield* git.exec(["log", "-1", "--no-show-signature", "--format=%s", found], { cwd: r.top })).stdout)
      yield* r.lock.withPermits(1)(git.ok(
        ["update-ref", "-m", "braid: put back at the journaled commit", `refs/heads/${tree.branch}`, commit],
        { cwd: r.top, operation: "pin" }
      ))
      // A checkout of the branch follows it: its files become the journaled commit's.
      if (r.owned.includes(tree) && (yield* exists(tree.dir))) {
        yield* confinement.occupied(stream, Effect.gen(function*() {
          yield* git.ok(["reset", "--quiet", "--hard", commit], { cwd: tree.dir, operation: "pin" })
          noteIndex(stream, tree.dir)
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

    const missingFromIntegration = Effect.fn("GitWorkspace.missingFromIntegration")(function*(commits: ReadonlyArray<string>) {
      const r = yield* prepared("missingFromIntegration")
      const integration = yield* integrationTree("missingFromIntegration")
      const head = yield* branchHead("missingFromIntegration", integration.branch, r.top)
      const missing: Array<string> = []
      for (const c of commits) {
        const held = c === head || (yield* git.exec(["merge-base", "--is-ancestor", c, head], { cwd: r.top })).exitCode === 0
        if (!held) missing.push(c)
      }
      return missing
    })

    const changedFiles = Effect.fn("GitWorkspace.changedFiles")(function*(stream: string) {
      const r = yield* prepared("changedFiles")
      const tree = yield* streamTree("changedFiles", stream)
      const head = pinnedOf(tree) ?? (yield* resolveCommit(`refs/heads/${tree.branch}`, r.top))
      if (head === undefined) return []
      // The stream's own commits only: --first-parent skips the work absorbed from the
      // streams it depends on (merged in), which is theirs, not this stream's.
      // --no-renames: a renamed file is two changed paths, both of which can conflict.
      const out = yield* git.ok(
        ["log", "--first-parent", "--no-merges", "--no-renames", "--no-ext-diff", "--format=", "--name-only", "-z", `${r.base}..${head}`],
        { cwd: r.top, operation: "changedFiles" }
      )
      return Git.sortedUnique(Git.splitZ(out).map((p) => p.replace(/^\n+/, "")).filter((p) => p !== ""))
    })

    const absorb = (stream: string, commit: string, reason: string, side: Workspace.AbsorbSide = "none") =>
      confinement.occupied(stream, absorbInto(stream, commit, reason, side))

    // Paths each stream's open absorb merge conflicted in (what `concludeAbsorb` checks for markers).
    const openAbsorbs = new Map<string, ReadonlyArray<string>>()

    const absorbInto = Effect.fn("GitWorkspace.absorb")(function*(stream: string, commit: string, reason: string, side: Workspace.AbsorbSide) {
      const r = yield* prepared("absorb")
      const tree = yield* streamTree("absorb", stream)
      const cwd = tree.dir
      const head = yield* branchHead("absorb", tree.branch, r.top)
      if (yield* isAncestor(commit, head, r.top)) return { _tag: "Absorbed", commit: null } as const
      const strategy = side === "ours" ? ["-X", "ours"] : side === "theirs" ? ["-X", "theirs"] : []
      const args = ["merge", "--no-ff", "--no-log", "--no-edit", "-m", `braid: bring in ${reason}`, ...strategy, commit]
      const result = yield* git.exec(args, { cwd })
      if (result.exitCode !== 0) {
        const paths = yield* unmergedPaths(cwd)
        if (paths.length > 0 && side === "none") {
          // Left open for a resolver: `concludeAbsorb` commits it, `discard` drops it.
          openAbsorbs.set(stream, paths)
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
      const next = yield* branchHead("absorb", tree.branch, r.top)
      noteIndex(stream, cwd)
      // The merge is not an attempt: the next attempt's change starts after it.
      tree.recorded = next
      return { _tag: "Absorbed", commit: next } as const
    })

    const concludeAbsorb = (stream: string, reason: string) => confinement.occupied(stream, concludeAbsorbIn(stream, reason))

    const concludeAbsorbIn = Effect.fn("GitWorkspace.concludeAbsorb")(function*(stream: string, reason: string) {
      const r = yield* prepared("concludeAbsorb")
      const tree = yield* streamTree("concludeAbsorb", stream)
      const cwd = tree.dir
      if ((yield* mergeHead(cwd)) === undefined) return yield* failure("concludeAbsorb", `no merge is open in ${cwd}`)
      const paths = Git.sortedUnique([...(openAbsorbs.get(stream) ?? []), ...(yield* unmergedPaths(cwd))])
      const files = service.files(stream)
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
      openAbsorbs.delete(stream)
      const next = yield* branchHead("concludeAbsorb", tree.branch, r.top)
      noteIndex(stream, cwd)
      tree.recorded = next
      return next
    })

    const diff = Effect.fn("GitWorkspace.diff")(function*(stream: string, paths: ReadonlyArray<string>) {
      const r = yield* prepared("diff")
      const tree = yield* streamTree("diff", stream)
      const head = pinnedOf(tree) ?? (yield* resolveCommit(`refs/heads/${tree.branch}`, r.top)) ?? r.base
      if (paths.length === 0) return ""
      return yield* git.ok(["diff", "--no-color", "--no-ext-diff", "--no-renames", r.base, head, "--", ...paths], { cwd: r.top, operation: "diff" })
    })

    const discard = (stream: string) => confinement.occupied(stream, dropChanges(stream))

    const dropChanges = Effect.fn("GitWorkspace.discard")(function*(stream: string) {
      const tree = yield* streamTree("discard", stream)
      const cwd = tree.dir
      if ((yield* mergeHead(cwd)) !== undefined) yield* git.ok(["merge", "--abort"], { cwd, operation: "discard" })
      yield* git.ok(["reset", "--quiet", "--hard", "HEAD"], { cwd, operation: "discard" })
      // Untracked files the cut-off attempt created; ignored files (dependencies) stay.
      yield* git.ok(["clean", "-fdq"], { cwd, operation: "discard" })
      openAbsorbs.delete(stream)
      noteIndex(stream, cwd)
    })

    const findAttempt = Effect.fn("GitWorkspace.findAttempt")(function*(
      stream: string,
      attempt: Workspace.AttemptId
    ) {
      const tree = yield* streamTree("findAttempt", stream)
      const cwd = tree.dir
      const message = yield* git.ok(["log", "-1", "--format=%B%x00%P", "HEAD"], { cwd, operation: "findAttempt" })
      const [body = "", parents = ""] = message.split("\0")
      const step = `Braid-Step: ${Workspace.attemptStep(stream, attempt)}`
      if (!body.split("\n").some((l) => l.trim() === step)) return undefined
      const commit = Git.firstLine(yield* git.ok(["rev-parse", "HEAD"], { cwd, operation: "findAttempt" }))
      const parent = parents.trim().split(" ")[0]!
      const files = Git.sortedUnique(Git.splitZ(
        yield* git.ok(["diff", "--name-only", "--no-renames", "--no-ext-diff", "-z", parent, commit], { cwd, operation: "findAttempt" })
      ))
      tree.recorded = commit
      return new Workspace.AttemptChange({ commit, files })
    })

    const head = Effect.fn("GitWorkspace.head")(function*(location: Workspace.Location) {
      const r = yield* prepared("head")
      const tree = location._tag === "Stream" ? yield* streamTree("head", location.stream) : yield* integrationTree("head")
      // A stream that never had work has no branch yet: it is at the base.
      // An open stream is where braid last recorded it (a ref moved by anyone else is not its work).
      if (location._tag === "Stream" && r.owned.includes(tree)) return (tree as StreamTree).recorded
      if (location._tag === "Stream") return (yield* resolveCommit(`refs/heads/${tree.branch}`, r.top)) ?? r.base
      return yield* branchHead("head", tree.branch, r.top)
    })

    const exec = Effect.fn("GitWorkspace.exec")(function*(
      location: Workspace.Location,
      command: CommandSpec.Command,
      env?: Record<string, string>
    ) {
      const cwd = yield* dirOf("exec", location)
      const started = Date.now()
      const outcome = yield* Process.run(command.argv, { cwd, env, timeoutMs: command.timeoutMs }).pipe(
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

    const beginIntegration = Effect.fn("GitWorkspace.beginIntegration")(function*(
      beginOptions?: { readonly restart: boolean }
    ) {
      const r = yield* prepared("beginIntegration")
      let tree = r.integration
      if (tree === undefined) {
        tree = { branch: `braid/${r.runId}/${INTEGRATION_BRANCH}`, dir: path.join(r.worktrees, INTEGRATION_DIR) }
        yield* r.lock.withPermits(1)(ensureWorktree(r, tree, r.base))
        r.integration = tree
        r.owned.push(tree)
      }
      const cwd = tree.dir
      // A merge left open is not abandoned here: it may be a person's resolution of a conflict
      // (the merge step decides, see `mergeState`).
      if (beginOptions?.restart === true) {
        if ((yield* mergeHead(cwd)) !== undefined) yield* git.ok(["merge", "--abort"], { cwd, operation: "beginIntegration" })
        r.open = undefined
        yield* r.lock.withPermits(1)(git.ok(["reset", "--quiet", "--hard", r.base], { cwd, operation: "beginIntegration" }))
      }
    })

    const probeMerge = Effect.fn("GitWorkspace.probeMerge")(function*(stream: string) {
      const r = yield* prepared("probeMerge")
      const integration = yield* integrationTree("probeMerge")
      const tree = yield* streamTree("probeMerge", stream)
      // git 2.39 also exits 1 for a ref it cannot resolve, so resolve both first.
      const ours = yield* branchHead("probeMerge", integration.branch, r.top)
      const theirs = pinnedOf(tree) ?? (yield* branchHead("probeMerge", tree.branch, r.top))
      const args = ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs]
      const result = yield* git.exec(args, { cwd: r.top })
      if (result.exitCode === 0) return []
      const fields = Git.splitZ(result.stdout)
      if (result.exitCode !== 1 || fields.length === 0) {
        return yield* failure("probeMerge", Git.describeFailure(args, r.top, result))
      }
      // The first field is the (conflicted) tree's id; the conflicted paths follow.
      return Git.sortedUnique(fields.slice(1))
    })

    const mergeStream = Effect.fn("GitWorkspace.mergeStream")(function*(stream: string, side: Workspace.MergeSide) {
      const r = yield* prepared("mergeStream")
      const integration = yield* integrationTree("mergeStream")
      const tree = yield* streamTree("mergeStream", stream)
      const cwd = integration.dir
      if ((yield* mergeHead(cwd)) !== undefined) {
        return yield* failure(
          "mergeStream",
          `a merge${r.open === undefined ? "" : ` of stream "${r.open.stream}"`} is still open in ${cwd}; conclude it first`
        )
      }
      const theirs = pinnedOf(tree) ?? (yield* branchHead("mergeStream", tree.branch, r.top))
      const strategy = side === "integration" ? ["-X", "ours"] : side === "stream" ? ["-X", "theirs"] : []
      const args = [
        "merge",
        "--no-ff",
        "--no-log",
        "--no-squash",
        "--no-edit",
        "-m",
        `braid: merge stream ${stream}`,
        ...strategy,
        theirs
      ]
      const result = yield* git.exec(args, { cwd })
      if (result.exitCode === 0) {
        return { _tag: "Merged", commit: yield* branchHead("mergeStream", integration.branch, r.top) } as const
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
      r.open = { stream, paths }
      return { _tag: "Conflicted", paths } as const
    })

    const concludeMerge = Effect.fn("GitWorkspace.concludeMerge")(function*(stream: string) {
      const r = yield* prepared("concludeMerge")
      const integration = yield* integrationTree("concludeMerge")
      const tree = yield* streamTree("concludeMerge", stream)
      const cwd = integration.dir
      const merging = yield* mergeHead(cwd)
      const theirs = pinnedOf(tree) ?? (yield* branchHead("concludeMerge", tree.branch, r.top))
      if (merging === undefined || merging !== theirs) {
        return yield* failure(
          "concludeMerge",
          merging === undefined ? `no merge is open in ${cwd}` : `the merge open in ${cwd} is not of stream "${stream}"`
        )
      }
      const paths = Git.sortedUnique([...(r.open?.stream === stream ? r.open.paths : []), ...(yield* unmergedPaths(cwd))])
      const files = integrationFiles()
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
      r.open = undefined
      return yield* branchHead("concludeMerge", integration.branch, r.top)
    })

    const land = Effect.fn("GitWorkspace.land")(function*() {
      const r = yield* prepared("land")
      const integration = yield* integrationTree("land")
      if ((yield* mergeHead(integration.dir)) !== undefined) {
        return yield* failure("land", `a merge is still open in ${integration.dir}; conclude it before landing`)
      }
      const next = yield* branchHead("land", integration.branch, r.top)
      return yield* r.lock.withPermits(1)(Effect.gen(function*() {
        const previous = yield* branchHead("land", r.target, r.top)
        if (previous === next && r.targetAtStart !== next && (yield* isAncestor(r.targetAtStart, next, r.top))) {
          // Landed already by an earlier process of this run that stopped before recording it.
          r.landed = next
          return new Workspace.Landing({ target: r.target, commit: next, previous: r.targetAtStart, fastForward: true })
        }
        if (!(yield* isAncestor(previous, next, r.top))) {
          return yield* refused(
            "target-moved",
            previous !== r.targetAtStart
              ? `target ${r.target} moved since the run started: it was ${r.targetAtStart}, it is now ${previous}; nothing was landed`
              : `the integration ${integration.branch} (${next}) does not contain ${r.target} (${previous}): landing would not be a fast-forward`
          )
        }
        const holder = (yield* listWorktrees(r.top)).find((e) => e.branch === `refs/heads/${r.target}`)
        if (holder !== undefined) {
          // The user's checkout follows the branch: a fast-forward merge there, not a ref
          // update behind its back.
          const dirty = yield* dirtyPaths(holder.path, r.runFolder)
          if (dirty.length > 0) {
            return yield* refused(
              "dirty-working-tree",
              `${r.target} is checked out at ${holder.path}, which has uncommitted changes (${dirty.slice(0, 5).join(", ")}); nothing was landed`
            )
          }
          yield* git.ok(["merge", "--quiet", "--ff-only", "--no-edit", next], { cwd: holder.path, operation: "land" })
        } else {
          // Compare-and-swap: fails if the branch moved since it was read.
          yield* git.ok(
            ["update-ref", "-m", `braid: land run ${r.runId}`, `refs/heads/${r.target}`, next, previous],
            { cwd: r.top, operation: "land" }
          )
        }
        const landed = yield* branchHead("land", r.target, r.top)
        if (landed !== next) {
          return yield* failure("land", `${r.target} is at ${landed} after landing, expected ${next}`)
        }
        r.targetAtStart = next
        r.landed = next
        return new Workspace.Landing({ target: r.target, commit: next, previous, fastForward: true })
      }))
    })

    const release = Effect.fn("GitWorkspace.release")(function*(releaseOptions: Workspace.ReleaseOptions) {
      const r = run
      if (r === undefined || releaseOptions.keepWorktrees) return
      const keep = (tree: Tree) =>
        (tree === r.integration && releaseOptions.keepIntegration === true) ||
        [...r.kept].some((name) => r.streams.get(name)?.dir === tree.dir)
      yield* r.lock.withPermits(1)(Effect.gen(function*() {
        const registered = new Set<string>()
        for (const entry of yield* listWorktrees(r.top)) registered.add(yield* realpath(entry.path))
        for (const tree of r.owned) {
          if (keep(tree)) continue
          if ((yield* exists(tree.dir)) && registered.has(yield* realpath(tree.dir))) {
            // --force: an attempt may have left uncommitted files, or a merge may be open.
            yield* git.ok(["worktree", "remove", "--force", tree.dir], { cwd: r.top, operation: "release" })
          }
        }
        // Drops the entries whose folder is gone (ours removed by hand); locked worktrees,
        // git's way of protecting one on removable media, are left alone by git.
        yield* git.ok(["worktree", "prune"], { cwd: r.top, operation: "release" })
        const target = yield* resolveCommit(`refs/heads/${r.target}`, r.top)
        // A worktree kept for a person keeps its branch checked out: the branch stays too. So does
        // the branch of any worktree still there (one an earlier process kept): update-ref would
        // delete it under that worktree, leaving it on a branch that does not exist.
        const checkedOut = new Set((yield* listWorktrees(r.top)).map((e) => e.branch))
        const branches = [...r.streams].filter(([name]) => !r.kept.has(name)).map(([, t]) => t.branch)
        // Until something landed, the integration branch is the only record of the merges.
        if (r.integration !== undefined && r.landed !== undefined) branches.push(r.integration.branch)
        for (const branch of branches) {
          if (checkedOut.has(`refs/heads/${branch}`)) continue
          const sha = yield* resolveCommit(`refs/heads/${branch}`, r.top)
          if (sha === undefined || target === undefined || !(yield* isAncestor(sha, target, r.top))) continue
          // Delete only if it still points where we checked: a branch moved meanwhile is kept.
          yield* git.ok(["update-ref", "-d", `refs/heads/${branch}`, sha], { cwd: r.top, operation: "release" })
        }
      }))
      const stays = r.owned.filter(keep)
      r.owned.length = 0
      r.owned.push(...stays)
      r.spares.length = 0
      if (r.integration !== undefined && !stays.includes(r.integration)) r.integration = undefined
      // Only if empty: anything else in it is not ours to delete.
      yield* Effect.promise(() => fs.rmdir(r.worktrees).catch(() => undefined))
    })

    let spareCount = 0
    const openStream = Effect.fn("GitWorkspace.openStream")(function*(stream: string) {
      const r = yield* prepared("openStream")
      const tree = yield* streamTree("openStream", stream)
      if (r.owned.includes(tree)) return
      const present = yield* exists(tree.dir)
      const spare = present ? undefined : r.spares.pop()
      if (spare !== undefined) {
        yield* r.lock.withPermits(1)(Effect.gen(function*() {
          r.owned.splice(r.owned.indexOf(spare), 1)
          yield* git.ok(["worktree", "move", spare.dir, tree.dir], { cwd: r.top, operation: "openStream" })
          const existing = yield* resolveCommit(`refs/heads/${tree.branch}`, r.top)
          yield* git.ok(
            existing === undefined
              ? ["checkout", "--quiet", "--force", "--no-track", "-b", tree.branch, r.base]
              : ["checkout", "--quiet", "--force", tree.branch],
            { cwd: tree.dir, operation: "openStream" }
          )
          // As pristine as a new worktree: nothing of the stream that used it stays, ignored files included.
          yield* git.ok(["clean", "-fdxq"], { cwd: tree.dir, operation: "openStream" })
        }))
      } else {
        yield* r.lock.withPermits(1)(ensureWorktree(r, tree, r.base))
      }
      r.owned.push(tree)
      r.kept.delete(stream)
      // The next attempt's change starts from the branch head.
      tree.recorded = yield* branchHead("openStream", tree.branch, r.top)
      // Taken over from an earlier process: what it did not commit is dropped (the attempt
      // runs again), and so is a merge it left open.
      if (present) yield* discard(stream)
      // From now on what changes in it while no attempt of its own runs is an agent's stray.
      yield* confinement.watchStream(stream, tree.dir, !present)
      noteIndex(stream, tree.dir)
    })

    const closeStream = Effect.fn("GitWorkspace.closeStream")(function*(stream: string, closeOptions: { readonly keep: boolean }) {
      const r = yield* prepared("closeStream")
      const tree = yield* streamTree("closeStream", stream)
      yield* confinement.unwatch(stream)
      indexWritten.delete(stream)
      if (closeOptions.keep) {
        r.kept.add(stream)
        return
      }
      const at = r.owned.indexOf(tree)
      if (at < 0) return
      yield* r.lock.withPermits(1)(Effect.gen(function*() {
        if (!(yield* exists(tree.dir))) return
        if (r.spares.length < MAX_SPARES) {
          // Parked for the next stream to open, on no branch (the stream's branch stays free for
          // any other checkout, after a crash too); its uncommitted files go when it is reused.
          const spare = { branch: "", dir: path.join(r.worktrees, `${SPARE_PREFIX}${process.pid}-${spareCount++}`) }
          yield* git.ok(["checkout", "--quiet", "--detach"], { cwd: tree.dir, operation: "closeStream" })
          yield* git.ok(["worktree", "move", tree.dir, spare.dir], { cwd: r.top, operation: "closeStream" })
          r.spares.push(spare)
          r.owned.push(spare)
        } else {
          // --force: a cut-off attempt may have left uncommitted files.
          yield* git.ok(["worktree", "remove", "--force", tree.dir], { cwd: r.top, operation: "closeStream" })
        }
      }))
      r.owned.splice(r.owned.indexOf(tree), 1)
      r.kept.delete(stream)
    })

    const mergeState = Effect.fn("GitWorkspace.mergeState")(function*(stream: string) {
      const r = yield* prepared("mergeState")
      const integration = yield* integrationTree("mergeState")
      const tree = yield* streamTree("mergeState", stream)
      const theirs = pinnedOf(tree) ?? (yield* resolveCommit(`refs/heads/${tree.branch}`, r.top))
      const ours = yield* branchHead("mergeState", integration.branch, r.top)
      const merging = yield* mergeHead(integration.dir)
      let open: string | undefined
      if (merging !== undefined) {
        for (const [name, t] of r.streams) {
          if ((pinnedOf(t) ?? (yield* resolveCommit(`refs/heads/${t.branch}`, r.top))) === merging) open = name
        }
        open ??= "(unknown)"
      }
      return {
        merged: theirs !== undefined && (theirs === r.base || (yield* isAncestor(theirs, ours, r.top))),
        open
      } satisfies Workspace.MergeState
    })

    const abortMerge = Effect.fn("GitWorkspace.abortMerge")(function*() {
      const r = yield* prepared("abortMerge")
      const integration = yield* integrationTree("abortMerge")
      if ((yield* mergeHead(integration.dir)) !== undefined) {
        yield* git.ok(["merge", "--abort"], { cwd: integration.dir, operation: "abortMerge" })
      }
      r.open = undefined
    })

    const catchUp = Effect.fn("GitWorkspace.catchUp")(function*() {
      const r = yield* prepared("catchUp")
      const integration = yield* integrationTree("catchUp")
      const target = yield* branchHead("catchUp", r.target, r.top)
      const ours = yield* branchHead("catchUp", integration.branch, r.top)
      if (yield* isAncestor(target, ours, r.top)) return null
      const cwd = integration.dir
      const args = ["merge", "--no-ff", "--no-log", "--no-edit", "-m", `braid: bring in ${r.target} (it moved since the run started)`, target]
      const result = yield* git.exec(args, { cwd })
      if (result.exitCode !== 0) {
        const paths = yield* unmergedPaths(cwd)
        if ((yield* mergeHead(cwd)) !== undefined) yield* git.ok(["merge", "--abort"], { cwd, operation: "catchUp" })
        return yield* failure(
          "catchUp",
          paths.length > 0
            ? `${r.target} moved and its new commits conflict with the run in ${paths.join(", ")}; merge ${r.target} into ${integration.branch} by hand (in ${cwd}), then run braid land again`
            : Git.describeFailure(args, cwd, result)
        )
      }
      return yield* branchHead("catchUp", integration.branch, r.top)
    })

    const push = Effect.fn("GitWorkspace.push")(function*(request: { readonly remote: string; readonly branch: string }) {
      const r = yield* prepared("push")
      const integration = yield* integrationTree("push")
      const commit = yield* branchHead("push", integration.branch, r.top)
      const ref = `refs/heads/${request.branch}`
      const where = `${request.branch} on ${request.remote}`
      const remoteHead = (yield* git.exec(["ls-remote", "--", request.remote, ref], { cwd: r.top }))
      if (remoteHead.exitCode !== 0) {
        return yield* failure("push", redactUrl(`cannot reach the remote ${request.remote}: ${oneLine(remoteHead.stderr).slice(0, 400)}`))
      }
      const previous = remoteHead.stdout.split("\n").map((l) => l.split("\t")).find((f) => f[1] === ref)?.[0] ?? null
      if (previous === commit) return new Workspace.Pushed({ remote: request.remote, branch: request.branch, commit, previous })
      // No `+` and no --force: git itself refuses anything but a fast-forward.
      const pushed = yield* git.exec(["push", "--porcelain", "--no-verify", "--", request.remote, `${commit}:${ref}`], { cwd: r.top })
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

    const integrationFiles = (): Workspace.Files =>
      filesAt(() => Effect.map(integrationTree("files"), (t) => t.dir), run?.integration?.dir)

    const service: Workspace.Service = {
      kind: "git",
      prepare,
      openStream,
      closeStream,
      mergeState,
      abortMerge,
      catchUp,
      files: (stream) => filesAt(() => Effect.map(streamTree("files", stream), (t) => t.dir), run?.streams.get(stream)?.dir),
      commitAttempt,
      attempting: confinement.attempting,
      strays,
      pin,
      missingFromIntegration,
      absorb,
      concludeAbsorb,
      diff,
      discard,
      findAttempt,
      changedFiles,
      head,
      exec,
      beginIntegration,
      probeMerge,
      mergeStream,
      integrationFiles,
      concludeMerge,
      land,
      push,
      release
    }
    return { service, check: checks }
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
    const git = Git.make(executor, { name: "braid", email: "braid@localhost" })
    const result = yield* git.exec(["rev-parse", "--show-toplevel"], { cwd: dir })
    if (result.exitCode !== 0) return yield* refused("not-a-repository", `${dir} is not inside a git repository`)
    return Git.firstLine(result.stdout)
  })

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
    const worktreesDir = path.join(runFolder, "runs", options.runId, "worktrees")
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
      yield* Effect.promise(() => fs.rm(worktreesDir, { recursive: true, force: true }))
      return { worktrees: removed, branches: branches.map((b) => b.replace(/^refs\/heads\//, "")) } satisfies Cleaned
    }))
  })
