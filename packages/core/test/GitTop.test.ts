/**
 * `Git.topOf`, which finds a repository's top from its `.git` entries without starting git:
 * where it answers, its answer is git's own (`git rev-parse --show-toplevel`); where git might
 * answer otherwise, it does not answer and the caller asks git.
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
