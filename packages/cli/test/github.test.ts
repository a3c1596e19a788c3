/**
 * GitHub sync and landing through a push or a pull request, as a user meets them: the built
 * `braid` runs the bundled example against a fake GitHub REST server on 127.0.0.1 (with a 403
 * rate limit and a 500 on the way) and a local bare repository as `origin`; braid is killed
 * mid-run and resumed; a rejected push is fixed and landed with `braid land`. A planted token
 * is searched for in every output, the journal and the report.
 */
import { FakeGitHub } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { braid, git, latestRun, type Outcome, root } from "./support/Braid.js"

const example = path.join(root, "examples/checkout-flow")
const TOKEN = `ghp_braidTEST${Math.random().toString(36).slice(2, 12)}planted`
const ISSUES: Record<string, number> = { "db-1": 1, "api-1": 2, "ui-1": 3, "test-1": 4, "docs-1": 5 }
const TRACKING = 10

/** The example project in a fresh repository with a bare `origin`, and the example plan with githubRepo and issue numbers. */
const setUp = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-github-"))
  const repo = path.join(dir, "repo")
  const bare = path.join(dir, "origin.git")
  fs.cpSync(path.join(example, "project"), repo, { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  execFileSync("git", ["init", "-q", "--bare", "-b", "main", bare])
  git(repo, "remote", "add", "origin", bare)
  git(repo, "push", "-q", "origin", "main")
  const planDir = path.join(dir, "plan")
  fs.cpSync(example, planDir, { recursive: true, filter: (src) => !src.startsWith(path.join(example, "project")) })
  const text = fs.readFileSync(path.join(example, "plan.yaml"), "utf8")
    .replace("featureName: checkout-flow", `featureName: checkout-flow\ngithubRepo: acme/shop\ngithubIssueNumber: ${TRACKING}`)
    .replace(/^  - id: (\S+)$/gm, (line, id: string) => `${line}\n    githubIssueNumber: ${ISSUES[id]}`)
  const plan = path.join(planDir, "plan.yaml")
  fs.writeFileSync(plan, text)
  return { dir, repo, bare, plan }
}

/** Every file under a folder, as text. */
const allText = (dir: string): string =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => fs.readFileSync(path.join(e.parentPath, e.name), "utf8"))
    .join("\n")

const braidComments = (issue: FakeGitHub.FakeIssue, runId: string) => issue.comments.filter((c) => c.body.includes(`<!-- braid:run=${runId} `))

describe("GitHub sync and landing modes", () => {
  it("--land pr: one comment per task issue edited in place, labels, summary, commit status and one pull request, through a 403, a 500, two crashes and resumes", async () => {
    const { bare, dir, plan, repo } = setUp()
    const github = await FakeGitHub.start({ repo: "acme/shop", issues: [...Object.values(ISSUES), TRACKING], token: TOKEN })
    try {
      // The first comment hits GitHub's rate limit (403, nothing left until the reset); a read fails with a 500.
      github.state.faults.push(
        { method: "POST", path: "/comments", status: 403, message: "API rate limit exceeded", headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 1) } },
        { method: "GET", path: /^\/issues\/\d+$/, status: 500, message: "Server Error" }
      )
      const env = { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: github.url, BRAID_GITHUB_DEBOUNCE_MS: "100" }
      const outputs: Array<Outcome> = []

      // Killed once api-1 (the task that needs two attempts) has settled …
      const first = await braid(["run", plan, "--repo", repo, "--land", "pr"], { ...env, BRAID_CRASH_AFTER_KEY: "stream/api/task/api-1" })
      outputs.push(first)
      assert.strictEqual(first.signal, "SIGKILL", first.stderr)
      const { dir: runDir, runId } = latestRun(repo)
      // … then again right after the pull request was opened and journaled, before the landing step was.
      const second = await braid(["resume", runId, "--repo", repo], { ...env, BRAID_CRASH_AFTER_KEY: "github/pull" })
      outputs.push(second)
      assert.strictEqual(second.signal, "SIGKILL", second.stderr)
      assert.strictEqual(github.state.pulls.length, 1)
      const edits = github.state.pulls[0]!.edits

      const last = await braid(["resume", runId, "--repo", repo], env)
      outputs.push(last)
      assert.strictEqual(last.code, 0, last.stderr)
      const report = JSON.parse(fs.readFileSync(path.join(runDir, "report.json"), "utf8"))
      assert.strictEqual(report.status, "succeeded")

      // One pull request, opened once and updated on resume, head = the pushed integration branch, base = main.
      assert.strictEqual(github.state.pulls.length, 1)
      const pull = github.state.pulls[0]!
      assert.isAbove(pull.edits, edits)
      assert.strictEqual(pull.head, `braid/${runId}/integration`)
      assert.strictEqual(pull.base, "main")
      assert.include(pull.body, `# braid run ${runId}`)
      assert.include(pull.body, "Closes #2")
      assert.isTrue(pull.labels.has("braid"))
      assert.strictEqual(report.mergeResult.pullRequest.url, pull.html_url)
      assert.include(last.stderr, `pull request: ${pull.html_url}`)
      const status = await braid(["status", runId, "--repo", repo])
      outputs.push(status)
      assert.include(status.stdout, `pull request #${pull.number} into main: ${pull.html_url}`)
      assert.notInclude(status.stdout, "continue with:")
      // The pushed branch holds the verified commit; main on the remote is untouched.
      const verified = report.integrationResult.commit as string
      assert.strictEqual(git(bare, "rev-parse", `refs/heads/braid/${runId}/integration`), verified)
      assert.strictEqual(git(bare, "rev-parse", "refs/heads/main"), git(repo, "rev-parse", "main"))

      // Each task issue: exactly one braid comment, edited as the task moved, with its latest state.
      for (const [taskId, n] of Object.entries(ISSUES)) {
        const issue = github.state.issues.get(n)!
        const mine = braidComments(issue, runId)
        assert.strictEqual(mine.length, 1, `issue #${n}: ${mine.length} comments`)
        assert.isAbove(mine[0]!.edits, 0, `issue #${n} comment never edited`)
        assert.include(mine[0]!.body, `<!-- braid:run=${runId} task=${taskId} -->`)
        assert.include(mine[0]!.body, "**Status:** completed")
        assert.deepStrictEqual([...issue.labels], ["braid:completed"], `issue #${n}`)
        // A pull request closes them when merged: nothing landed yet.
        assert.strictEqual(issue.state, "open", `issue #${n} closed before its work landed`)
      }
      const api = braidComments(github.state.issues.get(2)!, runId)[0]!.body
      assert.match(api, /\| 1 \| `[0-9a-f]{10}` \| \d+ \|/)
      assert.match(api, /\| 2 \| `[0-9a-f]{10}` \| 100 \(passes\) \|/)
      assert.include(api, "Latest feedback")
      // The tracking issue: one summary comment with the final state and the pull request.
      const summary = braidComments(github.state.issues.get(TRACKING)!, runId)
      assert.strictEqual(summary.length, 1)
      assert.include(summary[0]!.body, "**Status:** succeeded")
      assert.include(summary[0]!.body, pull.html_url)
      // The verification's commit status, on the verified (pushed) commit.
      assert.deepStrictEqual(
        github.state.statuses.map((s) => [s.sha, s.state, s.context]),
        [[verified, "success", "braid/verify"]]
      )
      // The 403 and the 500 were met, waited out and retried: no warning was left.
      assert.lengthOf(github.state.faults, 0)
      assert.isTrue(github.state.requests.some((r) => r.status === 403))
      assert.isTrue(github.state.requests.some((r) => r.status === 500))
      assert.deepStrictEqual(report.github.warnings, [])
      assert.strictEqual(report.github.statusPosted, verified)
      // Every request carried the token; none of braid's output, journal or report does.
      assert.isTrue(github.state.requests.every((r) => r.authorization === `Bearer ${TOKEN}`))
      for (const o of outputs) assert.notInclude(o.stdout + o.stderr, TOKEN)
      assert.notInclude(allText(runDir), TOKEN)
      assert.include(fs.readFileSync(path.join(runDir, "journal.jsonl"), "utf8"), "GitHubCommentNoted")
    } finally {
      await github.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it("--land push: a rejected push leaves the run resumable and the issues open; braid land pushes once the cause is fixed, then closes them", async () => {
    const { bare, dir, plan, repo } = setUp()
    const github = await FakeGitHub.start({ repo: "acme/shop", issues: [...Object.values(ISSUES), TRACKING], token: TOKEN })
    try {
      const env = { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: github.url, BRAID_GITHUB_DEBOUNCE_MS: "100" }
      // Someone else pushes to main on the remote meanwhile.
      const before = git(bare, "rev-parse", "main")
      const other = path.join(dir, "other")
      execFileSync("git", ["clone", "-q", bare, other])
      fs.writeFileSync(path.join(other, "NOTES.md"), "someone else's change\n")
      git(other, "add", "-A")
      git(other, "commit", "-q", "-m", "someone else")
      git(other, "push", "-q", "origin", "main")
      const theirs = git(bare, "rev-parse", "main")

      const run = await braid(["run", plan, "--repo", repo, "--land", "push", "--json"], env)
      assert.strictEqual(run.code, 1, run.stderr)
      const refused = JSON.parse(run.stdout)
      assert.isFalse(refused.mergeResult.landed)
      assert.match(refused.mergeResult.reason, /main on origin has commits .* the push was refused, braid never forces/)
      assert.strictEqual(git(bare, "rev-parse", "main"), theirs, "the remote's main was overwritten")
      for (const n of Object.values(ISSUES)) {
        assert.strictEqual(github.state.issues.get(n)!.state, "open", `issue #${n} closed though nothing landed`)
        assert.deepStrictEqual([...github.state.issues.get(n)!.labels], ["braid:completed"])
      }
      assert.lengthOf(github.state.statuses, 0)
      const { runId } = latestRun(repo)
      const status = await braid(["status", runId, "--repo", repo])
      assert.include(status.stdout, `continue with: braid land ${runId}`)

      // The cause is fixed (their commit is taken off main again); braid land pushes the verified commit.
      execFileSync("git", ["update-ref", "refs/heads/main", before, theirs], { cwd: bare })
      const landed = await braid(["land", runId, "--repo", repo, "--json"], env)
      assert.strictEqual(landed.code, 0, landed.stderr)
      const report = JSON.parse(landed.stdout)
      assert.isTrue(report.mergeResult.landed)
      assert.strictEqual(report.mergeResult.remote, "origin")
      assert.strictEqual(git(bare, "rev-parse", "main"), report.mergeResult.commit)
      assert.strictEqual(report.mergeResult.commit, report.integrationResult.commit)
      for (const n of Object.values(ISSUES)) {
        const issue = github.state.issues.get(n)!
        assert.strictEqual(issue.state, "closed", `issue #${n}`)
        assert.strictEqual(braidComments(issue, runId).length, 1, `issue #${n}`)
      }
      assert.deepStrictEqual(report.github.closed.sort(), Object.values(ISSUES).sort())
      assert.strictEqual(github.state.issues.get(TRACKING)!.state, "open")
      assert.deepStrictEqual(github.state.statuses.map((s) => [s.sha, s.state]), [[report.mergeResult.commit, "success"]])
      for (const o of [run, status, landed]) assert.notInclude(o.stdout + o.stderr, TOKEN)
    } finally {
      await github.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it("braid plan says whether sync will happen and why not; --land pr without it is refused; a GitHub that keeps failing is a warning, not a failure", async () => {
    const { dir, plan, repo } = setUp()
    const github = await FakeGitHub.start({ repo: "acme/shop", issues: [...Object.values(ISSUES), TRACKING], token: TOKEN })
    try {
      const noToken = { GITHUB_TOKEN: "", GITHUB_API_URL: github.url }
      const on = await braid(["plan", plan, "--repo", repo, "--land", "pr"], { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: github.url })
      assert.strictEqual(on.code, 0, on.stderr)
      assert.include(on.stdout, `GitHub sync: on (acme/shop via ${github.url})`)
      assert.include(on.stdout, "landing: pr to origin")
      const off = await braid(["plan", plan, "--repo", repo, "--no-github", "--json"], { GITHUB_TOKEN: TOKEN })
      assert.deepInclude(JSON.parse(off.stdout).github, { sync: false, reason: "--no-github" })
      const missing = await braid(["plan", plan, "--repo", repo, "--land", "pr"], noToken)
      assert.strictEqual(missing.code, 2)
      assert.include(missing.stdout, "GitHub sync: off (GITHUB_TOKEN is not set)")
      assert.include(missing.stderr, "--land: --land pr opens a pull request on githubRepo, but GitHub sync is off: GITHUB_TOKEN is not set")
      const refused = await braid(["run", plan, "--repo", repo, "--land", "pr"], noToken)
      assert.strictEqual(refused.code, 2)
      assert.include(refused.stderr, "braid: --land pr: it opens a pull request on githubRepo, but GitHub sync is off: GITHUB_TOKEN is not set")
      assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs")) && fs.readdirSync(path.join(repo, ".braid", "runs")).length > 0)
      for (const o of [on, off]) assert.notInclude(o.stdout + o.stderr, TOKEN)

      // Every comment answered with a 500, for good: the run lands anyway, with the warning in its output and report.
      github.state.faults.push({ method: "POST", path: "/comments", status: 500, times: 1000 })
      const run = await braid(["run", plan, "--repo", repo, "--json"], { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: github.url, BRAID_GITHUB_DEBOUNCE_MS: "100" })
      assert.strictEqual(run.code, 0, run.stderr)
      const report = JSON.parse(run.stdout)
      assert.isTrue(report.mergeResult.landed)
      assert.isNotEmpty(report.github.warnings)
      assert.match(report.github.warnings[0], /GitHub: commenting on #\d+: POST \/repos\/acme\/shop\/issues\/\d+\/comments answered 500/)
      assert.include(run.stderr, "braid: warning: GitHub: commenting on #")
      const md = await braid(["report", report.runId, "--repo", repo])
      assert.include(md.stdout, "## GitHub")
      assert.include(md.stdout, "- warning: GitHub: commenting on #")
      // Landed locally: issues closed; no commit status (the commit was not pushed anywhere GitHub sees).
      assert.strictEqual(github.state.issues.get(1)!.state, "closed")
      assert.lengthOf(github.state.statuses, 0)
      assert.notInclude(run.stdout + run.stderr + md.stdout, TOKEN)
    } finally {
      await github.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)
})
