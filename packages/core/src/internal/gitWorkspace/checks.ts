/**
 * The refusals of a git workspace, found before anything is created: git's version, the
 * repository, the names, the base and target, and (when landing) a clean main checkout.
 *
 * @internal
 */
import { Effect, Either } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as Process from "../../system/Process.js"
import * as Workspace from "../../ports/Workspace.js"
import * as Git from "../git.js"
import * as Repo from "./repo.js"
import { INTEGRATION_BRANCH, INTEGRATION_DIR, refused } from "./repo.js"

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

/** A name is used as one path segment and one ref component: keep it plain. */
const nameProblem = (what: string, name: string): string | undefined =>
  name === "" || name === "." || name === ".." || /[/\\\0]/.test(name) || name.startsWith("-")
    ? `${what} "${name}" cannot name a branch and a folder (no "/", "\\", leading "-", "." or "..")`
    : undefined

/**
 * Every refusal of `prepare`, read-only: git's version, the repository, the names, the base
 * and target, and (when landing) a clean main checkout. `check` runs these alone.
 */
export const checks = Effect.fn("GitWorkspace.check")(function*(
  repo: Repo.Repo,
  dir: string,
  options: { readonly base?: string | undefined; readonly target?: string | undefined; readonly runFolder?: string | undefined },
  setup: Workspace.RunSetup
) {
  const { dirtyPaths, git, isAncestor, listWorktrees, resolveCommit } = repo
  const version = yield* git.exec(["--version"], { cwd: os.tmpdir() }).pipe(
    // No git at all is the extreme case of a git too old.
    Effect.mapError((e) =>
      refused("git-too-old", `git ${minimumGitVersion.major}.${minimumGitVersion.minor} or newer is required: ${e.message}`)
    )
  )
  yield* checkGitVersion(version.stdout)

  const isDirectory = yield* Effect.promise(() => fs.stat(dir).then((s) => s.isDirectory(), () => false))
  if (!isDirectory) return yield* refused("not-a-repository", `${dir} is not a directory, so not a git repository`)
  const topLevel = yield* git.exec(["rev-parse", "--show-toplevel"], { cwd: dir })
  if (topLevel.exitCode !== 0) {
    return yield* refused(
      "not-a-repository",
      `${dir} is not inside a git repository with a working tree: ${Process.tail(topLevel.stderr, 3)}`
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

