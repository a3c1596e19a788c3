/**
 * The git workspace against real temporary repositories: what it leaves in git (branches,
 * worktrees, commits, refs), what it refuses, and what it never touches.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Scope } from "effect"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CommandSpec from "../src/run/CommandSpec.js"
import * as GitWorkspace from "../src/workspaces/GitWorkspace.js"
import * as Workspace from "../src/ports/Workspace.js"

const baseFiles: Record<string, string> = {
  "a.txt": "base\n",
  "b.txt": "bee\n",
  ".gitignore": "*.log\n"
}

/** Runs git as a user would (its own identity), returning stdout. */
const git = (cwd: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "user.name=user", "-c", "user.email=user@localhost", "-c", "core.hooksPath=/dev/null", ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    // So that looking (git status) does not itself rewrite the index we compare.
    env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" }
  })

const rev = (cwd: string, ref: string) => git(cwd, "rev-parse", "--verify", `${ref}^{commit}`).trim()

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-git-")))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const writeFile = (root: string, p: string, content: string) => {
  fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true })
  fs.writeFileSync(path.join(root, p), content)
}

/** A repository with `files` committed on `main`, checked out. */
const tempRepo = (files: Record<string, string> = baseFiles) =>
  Effect.map(tempDir, (dir) => {
    git(dir, "init", "--quiet", "--initial-branch=main")
    for (const [p, content] of Object.entries(files)) writeFile(dir, p, content)
    git(dir, "add", "--all")
    git(dir, "commit", "--quiet", "-m", "base")
    return dir
  })

/** Everything a run could change in a repository, to check that a refusal changed none of it. */
const repoState = (repo: string) => ({
  refs: git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
  worktrees: git(repo, "worktree", "list", "--porcelain"),
  status: git(repo, "status", "--porcelain", "--untracked-files=all", "--ignored"),
  exclude: fs.existsSync(path.join(repo, ".git/info/exclude")) ? fs.readFileSync(path.join(repo, ".git/info/exclude"), "utf8") : "",
  runFolder: fs.existsSync(path.join(repo, ".braid")),
  // Not even the index's stat cache is refreshed in the user's checkout.
  index: fs.existsSync(path.join(repo, ".git/index"))
    ? [fs.readFileSync(path.join(repo, ".git/index")).toString("base64"), fs.statSync(path.join(repo, ".git/index")).mtimeMs]
    : undefined
})

/** Whether a merge is open in a worktree. */
const mergeOpen = (dir: string) =>
  fs.existsSync(git(dir, "rev-parse", "--path-format=absolute", "--git-path", "MERGE_HEAD").trim())

const braidBranches = (repo: string) =>
  git(repo, "branch", "--list", "braid/*", "--format=%(refname:short)").split("\n").filter((l) => l !== "").sort()

const worktreePaths = (repo: string) =>
  git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree ")).map((l) =>
    l.slice("worktree ".length)
  )

/** The folder holding run `runId`'s checkouts, as the run recorded it (outside the repository by default). */
const runWorktrees = (repo: string, runId = "r1") =>
  fs.readFileSync(path.join(repo, ".braid/runs", runId, GitWorkspace.WORKTREES_RECORD), "utf8").trim()

const workspace = (options: GitWorkspace.Options) => Effect.map(GitWorkspace.make(options), (m) => m.service)

const attempt = (taskId: string, n = 1, title = `do ${taskId}`) => ({ taskId, title, attempt: n })

/** Prepares run r1 with these streams, each writing and committing its files; `release` closes the run's scope. */
const withStreams = (repo: string, edits: Record<string, Record<string, string>>, land = true, keepWorktrees = false) =>
  Effect.gen(function*() {
    const wsOf = yield* workspace({ repo })
    const run = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(run, Exit.void))
    const ws = yield* wsOf.prepare({ runId: "r1", streams: Object.keys(edits).map((name) => ({ name })), land, keepWorktrees }).pipe(
      Scope.extend(run)
    )
    for (const [stream, files] of Object.entries(edits)) {
      for (const [p, content] of Object.entries(files)) yield* (yield* ws.checkout(stream)).files.write(p, content)
      yield* (yield* ws.checkout(stream)).commitAttempt(attempt(`${stream}-task`))
    }
    return { ws, prepared: ws, release: Scope.close(run, Exit.void) }
  })

const refusalOf = (error: Workspace.WorkspaceError): Workspace.WorkspaceRefused => {
  assert.strictEqual(error._tag, "WorkspaceRefused", `expected a refusal, got ${error._tag}: ${error.message}`)
  return error as Workspace.WorkspaceRefused
}

const test = (title: string, body: () => Effect.Effect<void, unknown, Scope.Scope | NodeContext.NodeContext>) =>
  it.scopedLive(title, () => body().pipe(Effect.provide(NodeContext.layer)), 60_000)

describe("GitWorkspace", () => {
  describe("prepare", () => {
    test("creates one branch and one worktree per stream from the base commit", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }, { name: "ui" }, { name: "db" }], land: true })
        assert.deepStrictEqual({ base: ws.base, target: ws.target, targetAt: ws.targetAt }, { base: rev(repo, "main"), target: "main", targetAt: rev(repo, "main") })
        // Nothing is made before a stream's checkout is asked for.
        assert.deepStrictEqual(braidBranches(repo), [])
        for (const stream of ["api", "ui", "db"]) yield* ws.checkout(stream)

        assert.deepStrictEqual(braidBranches(repo), ["braid/r1/api", "braid/r1/db", "braid/r1/ui"])
        const listing = git(repo, "worktree", "list", "--porcelain")
        for (const stream of ["api", "ui", "db"]) {
          const dir = path.join(runWorktrees(repo), stream)
          assert.include(listing, `worktree ${dir}\nHEAD ${ws.base}\nbranch refs/heads/braid/r1/${stream}\n`)
          assert.strictEqual(Workspace.directoryOf((yield* ws.checkout(stream)).files), dir)
          assert.strictEqual(fs.readFileSync(path.join(dir, "a.txt"), "utf8"), "base\n")
        }
        // The user's checkout is where it was.
        assert.strictEqual(git(repo, "symbolic-ref", "--short", "HEAD").trim(), "main")
      }))

    test("hides the run folder through .git/info/exclude and leaves .gitignore alone", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        fs.writeFileSync(path.join(repo, ".git/info/exclude"), "# user's own\n*.tmp")
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: true })
        const exclude = fs.readFileSync(path.join(repo, ".git/info/exclude"), "utf8")
        assert.include(exclude, "*.tmp\n")
        assert.include(exclude.split("\n"), "/.braid/")
        assert.strictEqual(fs.readFileSync(path.join(repo, ".gitignore"), "utf8"), "*.log\n")
        assert.strictEqual(git(repo, "status", "--porcelain", "--untracked-files=all"), "")
        // A second run does not add the line again.
        const againOf = yield* workspace({ repo })
        const again = yield* againOf.prepare({ runId: "r2", streams: [{ name: "s1" }], land: false })
        assert.strictEqual(fs.readFileSync(path.join(repo, ".git/info/exclude"), "utf8"), exclude)
      }))

    test("a run's checkouts are outside the repository, under the cache folder, recorded in the run's folder and hidden from confined processes", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }, { name: "ui" }], land: false })
        const checkout = yield* ws.checkout("api")
        const dir = Workspace.directoryOf(checkout.files)!
        // vitest.setup.ts points XDG_CACHE_HOME at a folder of this test file's own.
        const cache = path.join(process.env.XDG_CACHE_HOME!, "braid", "worktrees")
        const root = yield* GitWorkspace.defaultWorktreesDir(repo)
        assert.strictEqual(path.dirname(root), cache)
        assert.match(path.basename(root), new RegExp(`^${path.basename(repo)}-[0-9a-f]{12}$`))
        assert.strictEqual(dir, path.join(root, "r1", "api"))
        assert.strictEqual(path.relative(repo, dir).split(path.sep)[0], "..", `${dir} is inside ${repo}`)
        assert.strictEqual(runWorktrees(repo), path.join(root, "r1"))
        assert.strictEqual(yield* GitWorkspace.worktreesOf({ top: repo, runId: "r1" }), path.join(root, "r1"))
        assert.strictEqual(fs.readFileSync(path.join(dir, "a.txt"), "utf8"), "base\n")
        // The other streams' checkouts are hidden from a confined process; its own is writable; tool homes stay in the run's folder.
        assert.isDefined(checkout.files._tag === "Worktree" ? checkout.files.confinement : undefined)
        if (checkout.files._tag !== "Worktree") return
        assert.deepStrictEqual(checkout.files.confinement!.writable, [dir])
        assert.includeMembers([...checkout.files.confinement!.hidden!], [path.join(repo, ".braid"), path.join(root, "r1")])
        assert.strictEqual(checkout.files.runDir, path.join(repo, ".braid/runs/r1"))
        // Nothing of the checkouts shows in the main checkout.
        assert.strictEqual(git(repo, "status", "--porcelain", "--untracked-files=all"), "")
      }))

    test("worktreesDir puts a run's checkouts where asked; prepared again, the run keeps the folder it recorded", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const chosen = yield* tempDir
        const first = yield* Effect.scoped(Effect.gen(function*() {
          const ws = yield* (yield* workspace({ repo, worktreesDir: chosen })).prepare({ runId: "r1", streams: [{ name: "s1" }], land: false, keepWorktrees: true })
          return Workspace.directoryOf((yield* ws.checkout("s1")).files)!
        }))
        assert.strictEqual(first, path.join(chosen, "r1", "s1"))
        assert.strictEqual(runWorktrees(repo), path.join(chosen, "r1"))
        const other = yield* tempDir
        const ws = yield* (yield* workspace({ repo, worktreesDir: other })).prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        assert.strictEqual(Workspace.directoryOf((yield* ws.checkout("s1")).files), first)
        // A new run goes where it is told now.
        const next = yield* (yield* workspace({ repo, worktreesDir: other })).prepare({ runId: "r2", streams: [{ name: "s1" }], land: false })
        assert.strictEqual(Workspace.directoryOf((yield* next.checkout("s1")).files), path.join(other, "r2", "s1"))
      }))

    test("refuses a worktreesDir inside the repository (but under its .braid)", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo, worktreesDir: "checkouts" })
        const error = yield* Effect.flip(wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false }))
        assert.include(refusalOf(error).message, `the worktrees folder ${path.join(repo, "checkouts", "r1")} is inside the repository`)
        assert.isFalse(fs.existsSync(path.join(repo, ".braid/runs/r1", GitWorkspace.WORKTREES_RECORD)))
      }))

    test("a run of the old layout (no record, checkouts in .braid/runs/<run>/worktrees) is prepared again in place and cleaned", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        // Made as braid made runs before the record: its checkouts moved where they then were, the record gone.
        yield* Effect.scoped(Effect.gen(function*() {
          const ws = yield* (yield* workspace({ repo })).prepare({ runId: "r1", streams: [{ name: "s1" }, { name: "s2" }], land: false, keepWorktrees: true })
          for (const stream of ["s1", "s2"]) {
            const c = yield* ws.checkout(stream)
            yield* c.files.write(`${stream}.txt`, `${stream}\n`)
            yield* c.commitAttempt(attempt(`${stream}-task`))
          }
        }))
        const legacy = path.join(repo, ".braid/runs/r1/worktrees")
        fs.mkdirSync(legacy, { recursive: true })
        for (const stream of ["s1", "s2"]) git(repo, "worktree", "move", path.join(runWorktrees(repo), stream), path.join(legacy, stream))
        fs.rmSync(path.join(repo, ".braid/runs/r1", GitWorkspace.WORKTREES_RECORD))
        assert.strictEqual(yield* GitWorkspace.worktreesOf({ top: repo, runId: "r1" }), legacy)

        yield* Effect.scoped(Effect.gen(function*() {
          const ws = yield* (yield* workspace({ repo })).prepare({ runId: "r1", streams: [{ name: "s1" }, { name: "s2" }], land: false, keepWorktrees: true })
          const c = yield* ws.checkout("s1")
          assert.strictEqual(Workspace.directoryOf(c.files), path.join(legacy, "s1"))
          assert.strictEqual(yield* c.files.read("s1.txt"), "s1\n")
        }))
        assert.deepStrictEqual(worktreePaths(repo).sort(), [repo, path.join(legacy, "s1"), path.join(legacy, "s2")].sort())

        fs.rmSync(path.join(repo, ".braid/runs/r1", GitWorkspace.WORKTREES_RECORD), { force: true })
        const cleaned = yield* GitWorkspace.cleanRun({ repo, runId: "r1" })
        assert.deepStrictEqual([...cleaned.worktrees].sort(), [path.join(legacy, "s1"), path.join(legacy, "s2")])
        assert.deepStrictEqual(worktreePaths(repo), [repo])
        assert.deepStrictEqual(braidBranches(repo), [])
        assert.isFalse(fs.existsSync(legacy))
      }))

    test("a run stopped half-way (a checkout it could not make) can be prepared again, taking over what exists", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        // A branch under braid/r1/s2/ makes creating braid/r1/s2 itself fail, after s1 was made.
        git(repo, "branch", "braid/r1/s2/blocker", "main")
        const wsOf = yield* workspace({ repo })
        const setup = { runId: "r1", streams: [{ name: "s1" }, { name: "s2" }], land: false }
        // As a process that stopped there leaves it: its worktrees stay.
        const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
          const first = yield* wsOf.prepare({ ...setup, keepWorktrees: true })
          yield* first.checkout("s1")
          yield* first.checkout("s2")
        })))
        assert.strictEqual(error._tag, "WorkspaceFailed")
        assert.include(braidBranches(repo), "braid/r1/s1")

        git(repo, "branch", "-D", "braid/r1/s2/blocker")
        const released = yield* Scope.make()
        const ws = yield* wsOf.prepare(setup).pipe(Scope.extend(released))
        yield* ws.checkout("s1")
        yield* ws.checkout("s2")
        assert.deepStrictEqual(braidBranches(repo), ["braid/r1/s1", "braid/r1/s2"])
        assert.strictEqual(worktreePaths(repo).length, 3)
        yield* Scope.close(released, Exit.void)
        assert.deepStrictEqual(worktreePaths(repo), [repo])
      }))

    test("the repository's hooks do not run for braid's checkouts and commits", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const marker = path.join(yield* tempDir, "hook-ran")
        for (const hook of ["pre-commit", "commit-msg", "post-checkout", "post-commit"]) {
          fs.writeFileSync(path.join(repo, ".git/hooks", hook), `#!/bin/sh\necho ${hook} >> ${marker}\nexit 1\n`, { mode: 0o755 })
        }
        const { ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        assert.isNotNull(yield* ws.branch("s1").head)
        assert.notStrictEqual(rev(repo, "braid/r1/s1"), rev(repo, "main"))
        assert.isFalse(fs.existsSync(marker))
      }))

    test("takes back over the worktrees of the same run left by an earlier process", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws: first } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        const commit = yield* first.branch("s1").head
        const secondOf = yield* workspace({ repo })
        const second = yield* secondOf.prepare({ runId: "r1", streams: [{ name: "s1" }, { name: "s2" }], land: true })
        yield* second.checkout("s2")
        assert.strictEqual(yield* second.branch("s1").head, commit)
        assert.strictEqual(yield* (yield* second.checkout("s1")).files.read("a.txt"), "one\n")
        assert.deepStrictEqual(braidBranches(repo), ["braid/r1/s1", "braid/r1/s2"])
      }))

    test("recreates a worktree of the run whose folder was deleted by hand, keeping its branch", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws: first } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        fs.rmSync(Workspace.directoryOf((yield* first.checkout("s1")).files)!, { recursive: true, force: true })
        const secondOf = yield* workspace({ repo })
        const second = yield* secondOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        assert.strictEqual(yield* (yield* second.checkout("s1")).files.read("a.txt"), "one\n")
        assert.strictEqual(worktreePaths(repo).length, 2)
      }))
  })

  describe("stream checkouts", () => {
    test("at most maxCheckouts are open: the one idle longest is closed to make room, one in use never is, and a stream reopened keeps its commits", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: ["s1", "s2", "s3"].map((name) => ({ name })), land: false, maxCheckouts: 2 })
        // The streams' own worktrees (a closed one may be parked for reuse under `.spare-…`, on no branch).
        const open = () =>
          worktreePaths(repo).map((p) => path.relative(runWorktrees(repo), p)).filter((p) => /^s\d$/.test(p)).sort()
        const use = <A, E>(stream: string, work: (checkout: Workspace.Checkout) => Effect.Effect<A, E>) =>
          Effect.scoped(Effect.flatMap(ws.checkout(stream), work))

        const s1Commit = yield* use("s1", (c) =>
          Effect.gen(function*() {
            assert.isTrue(c.opened)
            yield* c.files.write("one.txt", "1\n")
            return (yield* c.commitAttempt(attempt("t1"))).commit
          }))
        assert.isFalse(yield* use("s1", (c) => Effect.succeed(c.opened)), "still open: taken again, not reopened")
        // s2 is in use from here on.
        const busy = yield* Scope.make()
        yield* ws.checkout("s2").pipe(Scope.extend(busy))
        assert.deepStrictEqual(open(), ["s1", "s2"])

        // Room for s3: the idle s1 goes, never the busy s2.
        assert.isTrue(yield* use("s3", (c) => Effect.succeed(c.opened)))
        assert.deepStrictEqual(open(), ["s2", "s3"])
        // s1 again: s3 (idle) makes room; s1 is opened anew with its commit.
        yield* use("s1", (c) =>
          Effect.gen(function*() {
            assert.isTrue(c.opened)
            assert.deepStrictEqual(open(), ["s1", "s2"])
            assert.strictEqual(yield* c.files.read("one.txt"), "1\n")
            assert.strictEqual(yield* c.head, s1Commit)
          }))
        assert.strictEqual(rev(repo, "braid/r1/s1"), s1Commit)
        assert.deepStrictEqual(yield* ws.branch("s1").changedFiles, ["one.txt"])

        // s2 is given back after s1 was: s1 is the one idle longest, and it makes room for s3.
        yield* Scope.close(busy, Exit.void)
        yield* use("s3", () => Effect.void)
        assert.deepStrictEqual(open(), ["s2", "s3"])
      }))
  })

  describe("refusals change nothing", () => {
    test("a folder that is not a git repository", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const wsOf = yield* workspace({ repo: dir })
        const refusal = refusalOf(yield* Effect.flip(wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: true })))
        assert.strictEqual(refusal.reason, "not-a-repository")
        assert.include(refusal.message, dir)
        assert.deepStrictEqual(fs.readdirSync(dir), [])
      }))

    test("a folder that does not exist", () =>
      Effect.gen(function*() {
        const dir = path.join(yield* tempDir, "nowhere")
        const wsOf = yield* workspace({ repo: dir })
        const refusal = refusalOf(yield* Effect.flip(wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })))
        assert.strictEqual(refusal.reason, "not-a-repository")
        assert.include(refusal.message, dir)
        assert.isFalse(fs.existsSync(dir))
      }))

    test("an unknown base ref", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const before = repoState(repo)
        const wsOf = yield* workspace({ repo, base: "no-such-branch" })
        const refusal = refusalOf(yield* Effect.flip(wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: true })))
        assert.strictEqual(refusal.reason, "unknown-base")
        assert.include(refusal.message, "no-such-branch")
        assert.include(refusal.message, repo)
        assert.deepStrictEqual(repoState(repo), before)
        assert.deepStrictEqual(braidBranches(repo), [])
      }))

    test("a dirty working tree when the run will land, but not when it will not", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        fs.writeFileSync(path.join(repo, "a.txt"), "user's unsaved work\n")
        fs.writeFileSync(path.join(repo, "scratch.txt"), "untracked files do not count\n")
        const before = repoState(repo)
        const wsOf = yield* workspace({ repo })
        const refusal = refusalOf(yield* Effect.flip(wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: true })))
        assert.strictEqual(refusal.reason, "dirty-working-tree")
        assert.include(refusal.message, repo)
        assert.include(refusal.message, "a.txt")
        assert.notInclude(refusal.message, "scratch.txt")
        assert.deepStrictEqual(repoState(repo), before)

        const noLandingOf = yield* workspace({ repo })
        const noLanding = yield* noLandingOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        yield* noLanding.checkout("s1")
        assert.deepStrictEqual(braidBranches(repo), ["braid/r1/s1"])
        assert.strictEqual(fs.readFileSync(path.join(repo, "a.txt"), "utf8"), "user's unsaved work\n")
      }))

    test("a repository without any commit", () =>
      Effect.gen(function*() {
        const repo = yield* tempDir
        git(repo, "init", "--quiet", "--initial-branch=main")
        const before = repoState(repo)
        const wsOf = yield* workspace({ repo })
        const refusal = refusalOf(yield* Effect.flip(wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: true })))
        assert.strictEqual(refusal.reason, "invalid-option")
        assert.include(refusal.message, "no commits")
        assert.deepStrictEqual(repoState(repo), before)
      }))

    test("stream names that cannot be branches and folders, or clash with the integration", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const before = repoState(repo)
        for (const streams of [[{ name: "a/b" }], [{ name: "integration" }], [{ name: "s1" }, { name: "s1" }], [{ name: "x..y" }]]) {
          const wsOf = yield* workspace({ repo })
          const refusal = refusalOf(yield* Effect.flip(wsOf.prepare({ runId: "r1", streams, land: false })))
          assert.strictEqual(refusal.reason, "invalid-option")
        }
        assert.deepStrictEqual(repoState(repo), before)
      }))

    test("a target the base does not contain, when landing", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        git(repo, "branch", "side")
        git(repo, "commit", "--quiet", "--allow-empty", "-m", "main moves on")
        const before = repoState(repo)
        const wsOf = yield* workspace({ repo, base: "side", target: "main" })
        const refusal = refusalOf(yield* Effect.flip(wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: true })))
        assert.strictEqual(refusal.reason, "invalid-option")
        assert.include(refusal.message, "fast-forward")
        assert.deepStrictEqual(repoState(repo), before)
      }))

    it("a git older than 2.38 (checkGitVersion)", () => {
      assert.deepStrictEqual(GitWorkspace.checkGitVersion("git version 2.39.5\n"), Either.right({ major: 2, minor: 39, patch: 5 }))
      assert.isTrue(Either.isRight(GitWorkspace.checkGitVersion("git version 2.38.0")))
      assert.isTrue(Either.isRight(GitWorkspace.checkGitVersion("git version 2.39.3 (Apple Git-146)")))
      assert.isTrue(Either.isRight(GitWorkspace.checkGitVersion("git version 2.45.1.windows.1")))
      assert.isTrue(Either.isRight(GitWorkspace.checkGitVersion("git version 3.0.0")))
      for (const output of ["git version 2.37.1", "git version 1.9.5", "git version 2.3"]) {
        const result = GitWorkspace.checkGitVersion(output)
        assert.isTrue(Either.isLeft(result), output)
        if (Either.isLeft(result)) {
          assert.strictEqual(result.left.reason, "git-too-old")
          assert.include(result.left.message, output.slice("git version ".length))
          assert.include(result.left.message, "2.38")
        }
      }
      const garbled = GitWorkspace.checkGitVersion("command not found")
      assert.isTrue(Either.isLeft(garbled) && garbled.left.reason === "git-too-old")
    })
  })

  describe("attempts", () => {
    test("each attempt is one commit by braid with the step key as a trailer", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }], land: false })
        yield* (yield* ws.checkout("api")).files.write("src/login.ts", "export {}\n")
        const change = yield* (yield* ws.checkout("api")).commitAttempt(attempt("t1", 2, "Add login\nendpoint"))
        assert.strictEqual(change.commit, rev(repo, "braid/r1/api"))
        assert.deepStrictEqual(change.files, ["src/login.ts"])

        const [subject, author, committer, parent] = git(repo, "log", "-1", "--format=%s%n%an <%ae>%n%cn <%ce>%n%P", "braid/r1/api")
          .split("\n")
        assert.strictEqual(subject, "braid: t1 attempt 2 — Add login endpoint")
        // The repository's configured identity (here the machine's global one, if any), else braid's own.
        const configured = (key: string) => spawnSync("git", ["config", "--get", key], { cwd: repo, encoding: "utf8" }).stdout.trim()
        const expected = configured("user.name") !== "" && configured("user.email") !== ""
          ? `${configured("user.name")} <${configured("user.email")}>`
          : "braid <braid@localhost>"
        assert.strictEqual(author, expected)
        assert.strictEqual(committer, expected)
        assert.strictEqual(parent, rev(repo, "main"))
        assert.strictEqual(
          git(repo, "log", "-1", "--format=%(trailers:key=Braid-Step,valueonly)", "braid/r1/api").trim(),
          "stream/api/task/t1/attempt/2"
        )
      }))

    test("commits carry the configured author", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo, author: { name: "Bot", email: "bot@example.com" } })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        yield* (yield* ws.checkout("s1")).files.write("x.txt", "x\n")
        yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1"))
        assert.strictEqual(git(repo, "log", "-1", "--format=%an <%ae>", "braid/r1/s1").trim(), "Bot <bot@example.com>")
      }))

    test("an attempt that changed nothing makes no commit", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        // An ignored file is no change either.
        yield* (yield* ws.checkout("s1")).files.write("debug.log", "noise\n")
        const change = yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1"))
        assert.isNull(change.commit)
        assert.deepStrictEqual(change.files, [])
        assert.strictEqual(rev(repo, "braid/r1/s1"), rev(repo, "main"))
      }))

    test("an attempt whose agent committed by itself is recorded from git", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const dir = Workspace.directoryOf((yield* ws.checkout("s1")).files)!
        writeFile(dir, "committed.txt", "by the agent\n")
        git(dir, "add", "committed.txt")
        git(dir, "commit", "--quiet", "-m", "agent's own commit")
        writeFile(dir, "left.txt", "not committed by the agent\n")
        const change = yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1"))
        assert.strictEqual(change.commit, rev(repo, "braid/r1/s1"))
        assert.deepStrictEqual(change.files, ["committed.txt", "left.txt"])

        git(dir, "commit", "--quiet", "--allow-empty", "-m", "agent commits nothing")
        const next = yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1", 2))
        assert.isNull(next.commit)
      }))

    test("changed files come from git, whatever wrote them", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const dir = Workspace.directoryOf((yield* ws.checkout("s1")).files)!
        // Someone edits and commits in the worktree behind braid's back, and leaves a file uncommitted.
        git(dir, "mv", "a.txt", "renamed.txt")
        fs.rmSync(path.join(dir, "b.txt"))
        writeFile(dir, "new/file.txt", "new\n")
        git(dir, "add", "--all")
        git(dir, "commit", "--quiet", "-m", "by hand")
        writeFile(dir, "uncommitted.txt", "later\n")
        assert.deepStrictEqual(yield* ws.branch("s1").changedFiles, ["a.txt", "b.txt", "new/file.txt", "renamed.txt"])
      }))

    test("attempts in five worktrees commit in parallel", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const streams = ["s1", "s2", "s3", "s4", "s5"]
        const ws = yield* wsOf.prepare({ runId: "r1", streams: streams.map((name) => ({ name })), land: false })
        const changes = yield* Effect.all(
          streams.map((s) =>
            Effect.gen(function*() {
              yield* (yield* ws.checkout(s)).files.write(`${s}.txt`, `${s}\n`)
              yield* (yield* ws.checkout(s)).files.write("a.txt", `${s} was here\n`)
              return yield* (yield* ws.checkout(s)).commitAttempt(attempt(`${s}-t1`))
            })
          ),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(new Set(changes.map((c) => c.commit)).size, 5)
        for (const [i, s] of streams.entries()) {
          assert.strictEqual(changes[i]!.commit, rev(repo, `braid/r1/${s}`))
          assert.deepStrictEqual(yield* ws.branch(s).changedFiles, ["a.txt", `${s}.txt`])
        }
        git(repo, "fsck", "--no-progress")
      }))
  })

  describe("files", () => {
    test("list holds tracked and untracked files, not ignored or deleted ones", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const files = (yield* ws.checkout("s1")).files
        yield* files.write("z/new.txt", "new\n")
        yield* files.write("debug.log", "ignored\n")
        yield* files.remove("b.txt")
        assert.deepStrictEqual(yield* files.list(), [".gitignore", "a.txt", "z/new.txt"])
        assert.strictEqual(fs.readFileSync(path.join(Workspace.directoryOf(files)!, "z/new.txt"), "utf8"), "new\n")
      }))

    test("paths reaching outside the worktree are refused", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const outside = yield* tempDir
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const files = (yield* ws.checkout("s1")).files
        fs.symlinkSync(outside, path.join(Workspace.directoryOf(files)!, "link"))
        for (const p of ["../escape.txt", "x/../../escape.txt", path.join(outside, "abs.txt"), ".git/config", "link/through.txt"]) {
          const error = yield* Effect.flip(files.write(p, "nope"))
          assert.strictEqual(error._tag, "WorkspaceFailed", p)
        }
        assert.strictEqual((yield* Effect.flip(files.read("../a.txt")))._tag, "WorkspaceFailed")
        assert.deepStrictEqual(fs.readdirSync(outside), [])
        // Removing the link removes the link, not what it points to.
        yield* files.remove("link")
        assert.isTrue(fs.existsSync(outside))
      }))
  })

  describe("conflicts and merges", () => {
    /** Status and HEAD of every worktree, to check that probing touched none of them. */
    const treesState = (dirs: ReadonlyArray<string>) =>
      dirs.map((dir) => ({
        dir,
        head: rev(dir, "HEAD"),
        status: git(dir, "status", "--porcelain", "--untracked-files=all"),
        files: fs.readFileSync(path.join(dir, "a.txt"), "utf8")
      }))

    test("probeMerge reports the conflicting paths without touching any working tree", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, {
          s1: { "a.txt": "one\n" },
          s2: { "a.txt": "two\n", "b.txt": "two\n" },
          s3: { "c.txt": "sea\n" }
        })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        // Uncommitted work in a stream must survive a probe too.
        writeFile(Workspace.directoryOf((yield* ws.checkout("s2")).files)!, "wip.txt", "work in progress\n")
        const dirs = [repo, Workspace.directoryOf(ws.integration.files)!]
        for (const s of ["s1", "s2", "s3"]) dirs.push(Workspace.directoryOf((yield* ws.checkout(s)).files)!)
        const before = treesState(dirs)

        assert.deepStrictEqual(yield* ws.integration.probe("s2"), ["a.txt"])
        assert.deepStrictEqual(yield* ws.integration.probe("s3"), [])
        assert.deepStrictEqual(treesState(dirs), before)
        assert.isFalse(mergeOpen(Workspace.directoryOf(ws.integration.files)!))
      }))

    test("probeMerge sees a file deleted by one side and changed by the other", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" }, s2: {} })
        yield* (yield* ws.checkout("s2")).files.remove("a.txt")
        yield* (yield* ws.checkout("s2")).commitAttempt(attempt("t2"))
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        assert.deepStrictEqual(yield* ws.integration.probe("s2"), ["a.txt"])
      }))

    test("a conflict merged with no side stays open with markers in the file", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n" } })
        yield* ws.integration.begin()
        const first = yield* ws.integration.merge("s1", "none")
        assert.strictEqual(first._tag, "Merged")
        const dir = Workspace.directoryOf(ws.integration.files)!
        assert.strictEqual(rev(repo, "braid/r1/integration"), first._tag === "Merged" ? first.commit : "")
        assert.deepStrictEqual(git(dir, "log", "-1", "--format=%s%n%P").trim().split("\n"), [
          "braid: merge stream s1",
          `${rev(repo, "main")} ${rev(repo, "braid/r1/s1")}`
        ])

        const outcome = yield* ws.integration.merge("s2", "none")
        assert.deepStrictEqual(outcome, { _tag: "Conflicted", paths: ["a.txt"] })
        const text = fs.readFileSync(path.join(dir, "a.txt"), "utf8")
        assert.match(text, /^<<<<<<< .*\none\n=======\ntwo\n>>>>>>> .*\n$/)
        assert.strictEqual(git(dir, "diff", "--name-only", "--diff-filter=U").trim(), "a.txt")
        assert.isTrue(mergeOpen(dir))

        // While it is open, another merge is refused and nothing lands.
        assert.strictEqual((yield* Effect.flip(ws.integration.merge("s1", "none")))._tag, "WorkspaceFailed")
        assert.strictEqual((yield* Effect.flip(ws.landing.land))._tag, "WorkspaceFailed")
      }))

    test("concludeMerge refuses while markers remain, then commits the resolution as the merge", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        const before = rev(repo, "braid/r1/integration")
        yield* ws.integration.merge("s2", "none")

        assert.strictEqual((yield* Effect.flip(ws.integration.conclude("s1")))._tag, "WorkspaceFailed")
        const refusal = yield* Effect.flip(ws.integration.conclude("s2"))
        assert.strictEqual(refusal._tag, "ConflictMarkersRemain")
        assert.strictEqual(rev(repo, "braid/r1/integration"), before)

        yield* ws.integration.files.write("a.txt", "one, two\n")
        const commit = yield* ws.integration.conclude("s2")
        const dir = Workspace.directoryOf(ws.integration.files)!
        assert.strictEqual(commit, rev(repo, "braid/r1/integration"))
        assert.deepStrictEqual(git(dir, "log", "-1", "--format=%s%n%P").trim().split("\n"), [
          "braid: merge stream s2 (conflicts resolved)",
          `${before} ${rev(repo, "braid/r1/s2")}`
        ])
        assert.strictEqual(git(dir, "show", "HEAD:a.txt"), "one, two\n")
        assert.strictEqual(git(dir, "status", "--porcelain"), "")
      }))

    test("a side wins only the conflicting hunks; the rest of both sides is kept", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo({ "a.txt": "1\n2\n3\n4\n5\n6\n7\n8\n9\n" })
        const { ws } = yield* withStreams(repo, {
          s1: { "a.txt": "1 by s1\n2\n3\n4\n5\n6\n7\n8\n9\n" },
          s2: { "a.txt": "1 by s2\n2\n3\n4\n5\n6\n7\n8\n9 by s2\n" },
          s3: { "a.txt": "1 by s3\n2\n3\n4\n5 by s3\n6\n7\n8\n9\n" }
        })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        yield* ws.integration.merge("s2", "integration")
        assert.strictEqual(yield* ws.integration.files.read("a.txt"), "1 by s1\n2\n3\n4\n5\n6\n7\n8\n9 by s2\n")
        yield* ws.integration.merge("s3", "stream")
        assert.strictEqual(yield* ws.integration.files.read("a.txt"), "1 by s3\n2\n3\n4\n5 by s3\n6\n7\n8\n9 by s2\n")
      }))

    test("a conflict no side can settle (changed here, deleted there) is aborted with an explanation", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" }, s2: {} })
        yield* (yield* ws.checkout("s2")).files.remove("a.txt")
        yield* (yield* ws.checkout("s2")).commitAttempt(attempt("t2"))
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        const before = rev(repo, "braid/r1/integration")
        const error = yield* Effect.flip(ws.integration.merge("s2", "stream"))
        assert.strictEqual(error._tag, "WorkspaceFailed")
        assert.include(error.message, "a.txt")
        assert.include(error.message, "aborted")
        const dir = Workspace.directoryOf(ws.integration.files)!
        assert.strictEqual(rev(repo, "braid/r1/integration"), before)
        assert.strictEqual(git(dir, "status", "--porcelain"), "")
        assert.isFalse(mergeOpen(dir))
        // The same merge with no side opens it for a resolver.
        const open = yield* ws.integration.merge("s2", "none")
        assert.deepStrictEqual(open, { _tag: "Conflicted", paths: ["a.txt"] })
      }))

    test("beginIntegration twice reuses the integration worktree", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        const head = yield* ws.integration.head
        yield* ws.integration.begin()
        assert.strictEqual(yield* ws.integration.head, head)
        assert.strictEqual(worktreePaths(repo).length, 3)
      }))
  })

  describe("exec", () => {
    test("a command past its timeout is stopped and reported as timed out", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const result = yield* (yield* ws.checkout("s1")).exec(new CommandSpec.Command({ name: "sleep", argv: ["node", "-e", "setTimeout(() => {}, 20000)"], timeoutMs: 300 })
        )
        assert.isTrue(result.timedOut)
        assert.notStrictEqual(result.exitCode, 0)
      }))

    test("a command runs in the stream's worktree", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const wsOf = yield* workspace({ repo })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const result = yield* (yield* ws.checkout("s1")).exec(new CommandSpec.Command({ name: "pwd", argv: ["node", "-e", "process.stdout.write(process.cwd())"], timeoutMs: 30_000 })
        )
        assert.strictEqual(result.outputTail, Workspace.directoryOf((yield* ws.checkout("s1")).files))
      }))
  })

  describe("pushing", () => {
    test("pushes the integration to a remote branch fast-forward only: again is a no-op, a diverged branch is refused, a missing remote fails", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const bare = `${yield* tempDir}/origin.git`
        git(repo, "init", "--quiet", "--bare", bare)
        git(repo, "remote", "add", "origin", bare)
        git(repo, "push", "--quiet", "origin", "main")
        const { prepared, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        const integration = rev(repo, "braid/r1/integration")
        const pushed = yield* ws.landing.push({ remote: "origin", branch: "main" })
        assert.deepStrictEqual({ ...pushed }, { remote: "origin", branch: "main", commit: integration, previous: prepared.base })
        assert.strictEqual(rev(bare, "main"), integration)
        // The local target is not moved by a push.
        assert.strictEqual(rev(repo, "main"), prepared.base)
        assert.deepStrictEqual({ ...(yield* ws.landing.push({ remote: "origin", branch: "main" })) }, { ...pushed, previous: integration })
        const fresh = yield* ws.landing.push({ remote: "origin", branch: "braid/r1/integration" })
        assert.isNull(fresh.previous)
        assert.strictEqual(rev(bare, "braid/r1/integration"), integration)

        // Someone else's commit on the remote's branch: refused, never forced.
        const other = `${yield* tempDir}/other`
        git(repo, "clone", "--quiet", bare, other)
        writeFile(other, "b.txt", "theirs\n")
        git(other, "add", "--all")
        git(other, "commit", "--quiet", "-m", "theirs")
        git(other, "push", "--quiet", "origin", "HEAD:refs/heads/release")
        const theirs = rev(bare, "release")
        const rejected = yield* Effect.flip(ws.landing.push({ remote: "origin", branch: "release" }))
        assert.strictEqual(rejected._tag, "WorkspaceRefused")
        assert.strictEqual((rejected as Workspace.WorkspaceRefused).reason, "push-rejected")
        assert.match(rejected.message, /release on origin has commits .* braid never forces/)
        assert.strictEqual(rev(bare, "release"), theirs)

        const missing = yield* Effect.flip(ws.landing.push({ remote: "nowhere", branch: "main" }))
        assert.strictEqual(missing._tag, "WorkspaceFailed")
        assert.match(missing.message, /cannot reach the remote nowhere/)
      }))
  })

  describe("landing", () => {
    test("fast-forwards the target checked out in the main working tree, which follows", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { prepared, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" }, s2: { "c.txt": "sea\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        yield* ws.integration.merge("s2", "none")
        const integration = rev(repo, "braid/r1/integration")
        const landing = yield* ws.landing.land
        assert.deepStrictEqual(
          { ...landing },
          { target: "main", commit: integration, previous: prepared.base, fastForward: true }
        )
        assert.strictEqual(rev(repo, "main"), integration)
        assert.strictEqual(fs.readFileSync(path.join(repo, "a.txt"), "utf8"), "one\n")
        assert.strictEqual(fs.readFileSync(path.join(repo, "c.txt"), "utf8"), "sea\n")
        assert.strictEqual(git(repo, "status", "--porcelain"), "")
      }))

    test("moves a target that is not checked out with a compare-and-swap of its ref", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        git(repo, "checkout", "--quiet", "-b", "elsewhere")
        const wsOf = yield* workspace({ repo, base: "main" })
        const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "s1" }], land: true })
        assert.strictEqual(ws.target, "main")
        yield* (yield* ws.checkout("s1")).files.write("a.txt", "one\n")
        yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1"))
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        const landing = yield* ws.landing.land
        assert.strictEqual(rev(repo, "main"), landing.commit)
        assert.strictEqual(git(repo, "symbolic-ref", "--short", "HEAD").trim(), "elsewhere")
        assert.strictEqual(fs.readFileSync(path.join(repo, "a.txt"), "utf8"), "base\n")
      }))

    test("is refused when the target moved since prepare, and changes nothing", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { prepared, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        writeFile(repo, "b.txt", "someone else\n")
        git(repo, "commit", "--quiet", "-am", "meanwhile on main")
        const moved = rev(repo, "main")
        const integration = rev(repo, "braid/r1/integration")

        const refusal = refusalOf(yield* Effect.flip(ws.landing.land))
        assert.strictEqual(refusal.reason, "target-moved")
        assert.include(refusal.message, prepared.base)
        assert.include(refusal.message, moved)
        assert.strictEqual(rev(repo, "main"), moved)
        assert.strictEqual(rev(repo, "braid/r1/integration"), integration)
        assert.strictEqual(fs.readFileSync(path.join(repo, "a.txt"), "utf8"), "base\n")
      }))

    test("is refused when the checked-out target has uncommitted changes, which are kept", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { prepared, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        writeFile(repo, "b.txt", "unsaved\n")
        const refusal = refusalOf(yield* Effect.flip(ws.landing.land))
        assert.strictEqual(refusal.reason, "dirty-working-tree")
        assert.include(refusal.message, "b.txt")
        assert.strictEqual(rev(repo, "main"), prepared.base)
        assert.strictEqual(fs.readFileSync(path.join(repo, "b.txt"), "utf8"), "unsaved\n")
      }))
  })

  describe("release", () => {
    test("removes only the run's worktrees and the branches landed in the target", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const elsewhere = yield* tempDir
        const otherTree = path.join(elsewhere, "feature-tree")
        git(repo, "worktree", "add", "--quiet", "-b", "feature", otherTree, "main")
        git(repo, "branch", "braid/r0/s1", "main")
        writeFile(repo, "notes.txt", "the user's untracked notes\n")

        const { release, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" }, s2: { "c.txt": "sea\n" } })
        writeFile(Workspace.directoryOf((yield* ws.checkout("s2")).files)!, "leftover.txt", "uncommitted\n")
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        yield* ws.landing.land
        yield* release

        assert.deepStrictEqual(worktreePaths(repo), [repo, otherTree])
        // s1 is in main now; s2 never landed and keeps its work; the integration landed.
        assert.deepStrictEqual(braidBranches(repo), ["braid/r0/s1", "braid/r1/s2"])
        assert.include(git(repo, "branch", "--list", "feature"), "feature")
        assert.isTrue(fs.existsSync(path.join(otherTree, "a.txt")))
        assert.isFalse(fs.existsSync(runWorktrees(repo)))
        assert.strictEqual(fs.readFileSync(path.join(repo, "notes.txt"), "utf8"), "the user's untracked notes\n")
        assert.strictEqual(fs.readFileSync(path.join(repo, ".gitignore"), "utf8"), "*.log\n")
      }))

    test("keeps the integration and stream branches when nothing landed", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { release, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        yield* release
        assert.deepStrictEqual(worktreePaths(repo), [repo])
        assert.deepStrictEqual(braidBranches(repo), ["braid/r1/integration", "braid/r1/s1"])
      }))

    test("never deletes the branch of a worktree it keeps, one an earlier process kept included", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { prepared, release, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" }, s2: { "c.txt": "sea\n" } })
        // s1 is kept for a person to look at; the process ends.
        yield* ws.close("s1", { keep: true })
        yield* release
        const kept = path.join(runWorktrees(repo), "s1")
        assert.deepStrictEqual(worktreePaths(repo), [repo, kept])

        // The run is continued by another process that lands s1's work without opening it.
        const againOf = yield* workspace({ repo })
        const streams = [{ name: "s1" }, { name: "s2" }]
        const continued = yield* Scope.make()
        const again = yield* againOf.prepare({ runId: "r1", streams, land: true, resume: { base: prepared.base, targetAt: prepared.targetAt } }).pipe(
          Scope.extend(continued)
        )
        yield* again.integration.begin()
        yield* again.integration.merge("s1", "none")
        yield* again.integration.merge("s2", "none")
        yield* again.landing.land
        yield* Scope.close(continued, Exit.void)

        // The kept worktree still has its branch: git works in it, on the branch it had.
        assert.deepStrictEqual(worktreePaths(repo), [repo, kept])
        assert.deepStrictEqual(braidBranches(repo), ["braid/r1/s1"])
        assert.strictEqual(git(kept, "symbolic-ref", "--short", "HEAD").trim(), "braid/r1/s1")
        assert.strictEqual(git(kept, "status", "--porcelain"), "")
      }))

    test("with keepWorktrees leaves everything in place", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { release, ws } = yield* withStreams(repo, { s1: { "a.txt": "one\n" } }, true, true)
        yield* ws.integration.begin()
        yield* release
        assert.strictEqual(worktreePaths(repo).length, 3)
        assert.deepStrictEqual(braidBranches(repo), ["braid/r1/integration", "braid/r1/s1"])
      }))
  })

  describe("the journal's commits (pin)", () => {
    test("a moved branch is put back at the journaled commit, and what merges is that commit; a forged tip never does", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, { s1: { "own.txt": "own\n" } })
        const journaled = rev(repo, "braid/r1/s1")
        // Someone else's commit on the stream's branch, made behind braid's back.
        const tree = git(repo, "rev-parse", `${journaled}^{tree}`).trim()
        const forged = git(repo, "commit-tree", tree, "-p", journaled, "-m", "braid: s1-task attempt 2 — forged").trim()
        git(repo, "update-ref", "refs/heads/braid/r1/s1", forged)
        const found = yield* ws.branch("s1").pin(journaled)
        assert.include(found ?? "", "had been moved to")
        assert.strictEqual(rev(repo, "braid/r1/s1"), journaled)
        // Pinned again where it is: nothing to say.
        assert.isUndefined(yield* ws.branch("s1").pin(journaled))
        yield* ws.integration.begin()
        const merged = yield* ws.integration.merge("s1", "none")
        assert.strictEqual(merged._tag, "Merged")
        assert.deepStrictEqual(yield* ws.integration.missing([journaled, forged]), [forged])
      }))

    test("a journaled commit that no longer exists stops with an integrity error naming it", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo()
        const { ws } = yield* withStreams(repo, { s1: { "own.txt": "own\n" } })
        const gone = "0123456789abcdef0123456789abcdef01234567"
        const error = yield* Effect.flip(ws.branch("s1").pin(gone))
        assert.strictEqual(error._tag, "WorkspaceFailed")
        assert.strictEqual((error as Workspace.WorkspaceFailed).operation, "integrity")
        assert.include(error.message, `the commit ${gone} braid journaled for stream "s1" no longer exists`)
      }))
  })
})
