/**
 * What braid reads from git's files without starting git (`Git.topOf`, `readBranch`,
 * `readHead`, `readCommit`, `readMergeHead`): where it answers, its answer is git's own; where
 * git might answer otherwise, it does not answer and the caller asks git.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Git from "../src/internal/git.js"

const git = (cwd: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd, encoding: "utf8", env: { ...process.env, GIT_DIR: undefined } }).trim()

const gitsTop = (dir: string) => git(dir, "rev-parse", "--show-toplevel")

/** A repository with one commit and a nested folder, under a fresh temporary folder. */
const repository = () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "braid-top-"))
  const repo = path.join(tmp, "repo")
  fs.mkdirSync(path.join(repo, "src", "deep"), { recursive: true })
  git(tmp, "init", "-q", "-b", "main", repo)
  fs.writeFileSync(path.join(repo, "src", "deep", "a.txt"), "a\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return { tmp, repo }
}

describe("Git.topOf", () => {
  it("is git's answer at the top, in a nested folder, in a linked worktree and through a symbolic link", () => {
    const { repo, tmp } = repository()
    try {
      for (const dir of [repo, path.join(repo, "src", "deep")]) assert.strictEqual(Git.topOf(dir, {}), gitsTop(dir))
      const linked = path.join(tmp, "linked")
      git(repo, "worktree", "add", "-q", "-b", "side", linked)
      fs.mkdirSync(path.join(linked, "src", "deep"), { recursive: true })
      assert.strictEqual(Git.topOf(path.join(linked, "src", "deep"), {}), gitsTop(path.join(linked, "src", "deep")))
      assert.strictEqual(Git.topOf(linked, {}), linked)
      const link = path.join(tmp, "link")
      fs.symlinkSync(path.join(repo, "src"), link)
      assert.strictEqual(Git.topOf(link, {}), gitsTop(link))
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })

  it("leaves the answer to git where git might answer otherwise", () => {
    const { repo, tmp } = repository()
    try {
      // An environment that moves the repository.
      assert.strictEqual(Git.topOf(repo, { GIT_DIR: path.join(repo, ".git") }), undefined)
      assert.strictEqual(Git.topOf(repo, { GIT_CEILING_DIRECTORIES: tmp }), undefined)
      // Inside the .git folder itself.
      assert.strictEqual(Git.topOf(path.join(repo, ".git", "refs"), {}), undefined)
      // A .git that is not a repository (no HEAD).
      const fake = path.join(tmp, "fake")
      fs.mkdirSync(path.join(fake, ".git"), { recursive: true })
      assert.strictEqual(Git.topOf(fake, {}), undefined)
      // Per-worktree configuration, which may name another working tree.
      git(repo, "config", "extensions.worktreeConfig", "true")
      assert.strictEqual(Git.topOf(repo, {}), undefined)
      git(repo, "config", "--unset", "extensions.worktreeConfig")
      assert.strictEqual(Git.topOf(repo, {}), repo)
      // A repository owned by another user (git refuses it without safe.directory).
      if (process.getuid?.() === 0) {
        fs.chownSync(repo, 4321, 4321)
        assert.strictEqual(Git.topOf(repo, {}), undefined)
        fs.chownSync(repo, 0, 0)
      }
      // A configuration naming another working tree.
      git(repo, "config", "core.worktree", tmp)
      assert.strictEqual(Git.topOf(repo, {}), undefined)
      // No repository at all above the folder.
      assert.strictEqual(Git.topOf(path.join(tmp, "missing"), {}), undefined)
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })
})

describe("git's files read without git", () => {
  it("a branch's commit, or null for no such branch (loose, packed, deleted); a symbolic ref is git's to answer", () => {
    const { repo, tmp } = repository()
    try {
      const common = path.join(repo, ".git")
      const head = git(repo, "rev-parse", "HEAD")
      assert.strictEqual(Git.readBranch(common, "main"), head)
      assert.strictEqual(Git.readBranch(common, "nope"), null)
      assert.strictEqual(Git.readBranch(common, "braid/run/stream"), null)
      git(repo, "branch", "braid/run/stream")
      git(repo, "pack-refs", "--all")
      assert.isFalse(fs.existsSync(path.join(common, "refs", "heads", "braid", "run", "stream")))
      assert.strictEqual(Git.readBranch(common, "braid/run/stream"), head)
      git(repo, "branch", "-D", "braid/run/stream")
      assert.strictEqual(Git.readBranch(common, "braid/run/stream"), null)
      git(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
      assert.strictEqual(Git.readBranch(common, "alias"), undefined)
      // Any ref under refs/, as the cluster's clones read their remote-tracking refs.
      git(repo, "update-ref", "refs/remotes/origin/main", head)
      assert.strictEqual(Git.readRef(common, "refs/remotes/origin/main"), head)
      assert.strictEqual(Git.readRef(common, "refs/remotes/origin/gone"), null)
      assert.strictEqual(Git.readRef(common, "refs/heads/../../config"), undefined)
      assert.strictEqual(Git.readRef(path.join(repo, "README.md"), "refs/heads/main"), undefined)
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })

  it("a commit's parents and message are git's own, in a linked worktree too; a packed commit is git's to read", () => {
    const { repo, tmp } = repository()
    try {
      const linked = path.join(tmp, "linked")
      git(repo, "worktree", "add", "-q", "-b", "side", linked)
      fs.writeFileSync(path.join(linked, "b.txt"), "b\n")
      git(linked, "add", "-A")
      git(linked, "commit", "-q", "-m", "subject line", "-m", "Braid-Step: stream/s/task/t/attempt/1\nBraid-Agent: script")
      git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
      for (const dir of [linked, repo]) {
        const dirs = Git.gitDirsOf(dir)!
        const head = Git.readHead(dirs)
        assert.strictEqual(head, git(dir, "rev-parse", "HEAD"))
        const read = Git.readCommit(dirs.commonDir, head!)!
        assert.deepStrictEqual(read.parents, git(dir, "log", "-1", "--format=%P", "HEAD").split(" "))
        assert.strictEqual(read.message, execFileSync("git", ["log", "-1", "--format=%B", "HEAD"], { cwd: dir, encoding: "utf8" }).slice(0, -1))
      }
      // Detached, the commit itself.
      git(linked, "checkout", "-q", "--detach", "HEAD~0")
      assert.strictEqual(Git.readHead(Git.gitDirsOf(linked)!), git(linked, "rev-parse", "HEAD"))
      git(repo, "gc", "-q")
      assert.isUndefined(Git.readCommit(path.join(repo, ".git"), git(repo, "rev-parse", "HEAD")))
      assert.isUndefined(Git.readCommit(path.join(repo, ".git"), "not-an-id"))
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })

  it("the commit an open merge brings in, or null when none is open", () => {
    const { repo, tmp } = repository()
    try {
      git(repo, "checkout", "-q", "-b", "other")
      fs.writeFileSync(path.join(repo, "src", "deep", "a.txt"), "other\n")
      git(repo, "commit", "-q", "-am", "other")
      const other = git(repo, "rev-parse", "HEAD")
      git(repo, "checkout", "-q", "main")
      fs.writeFileSync(path.join(repo, "src", "deep", "a.txt"), "main\n")
      git(repo, "commit", "-q", "-am", "main")
      assert.strictEqual(Git.readMergeHead(repo), null)
      try {
        git(repo, "merge", "-q", "other")
      } catch {
        // The conflict leaves the merge open.
      }
      assert.strictEqual(Git.readMergeHead(repo), other)
      git(repo, "merge", "--abort")
      assert.strictEqual(Git.readMergeHead(repo), null)
      assert.isUndefined(Git.readMergeHead(path.join(tmp, "not-a-repo")))
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })
})
