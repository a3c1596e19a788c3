/**
 * What a run leaves for people and tools, from one run of the bundled example with its output
 * piped (as in CI): the plain progress lines on stderr, the `--events` NDJSON on stdout (every
 * line parses and validates), the Markdown report against a golden copy (run ids, times,
 * hashes and paths normalised), `braid report --json` validating against the RunReport
 * Schema, and the HTML timeline opened in a real headless Chromium, checked through its DOM.
 */
import { Progress, RunReport } from "@braid/core"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { worktreesOf } from "./support/Braid.js"

const root = path.resolve(__dirname, "../../..")
const bin = path.join(root, "packages/cli/dist/bin.js")
const example = path.join(root, "examples/checkout-flow")
const golden = path.join(__dirname, "golden/checkout-flow.report.md")
const chromium = "/usr/bin/chromium"

const braid = (args: Array<string>, cwd = root, env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", ...env } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}
const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" })

let tmp = ""
let repo = ""
let run: ReturnType<typeof braid>
let runId = ""

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "braid-report-"))
  repo = path.join(tmp, "repo")
  fs.cpSync(path.join(example, "project"), repo, { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "start")
  // Spawned without blocking the worker (a whole run holds it longer than vitest's RPC waits under load).
  run = await new Promise<ReturnType<typeof braid>>((resolve) => {
    const child = spawn(process.execPath, [bin, "run", path.join(example, "plan.yaml"), "--repo", repo, "--events", "--report", path.join(tmp, "report.md")], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", XDG_CACHE_HOME: path.join(tmp, "cache") },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })
  runId = fs.readdirSync(path.join(repo, ".braid/runs"))[0]!
}, 90_000)

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** The report with what changes from run to run replaced by placeholders. */
const normalise = (markdown: string) =>
  markdown
    // The run's checkouts are outside the repository (under the test's own cache folder).
    .replaceAll(worktreesOf(repo, runId), "<checkouts>")
    .replaceAll(runId, "<run>")
    .replaceAll(repo, "<repo>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
    .replace(/\b\d\d:\d\d:\d\d\b/g, "<clock>")
    .replace(/`[0-9a-f]{10}`/g, "`<commit>`")
    .replace(/\b\d+(\.\d+)? (ms|s)\b/g, "<duration>")
    .replace(/\b\d+ min \d+ s\b/g, "<duration>")
    .replace(/duration_ms:? [\d.]+/g, "duration_ms <n>")
    .replace(/:\d+:\d+\)/g, ":<line>)")
    // Which checkout builds node_modules first depends on timing: the section is checked on its own.
    .replace(/## Environments\n[\s\S]*?\n(?=## )/, "## Environments\n\n<environments>\n\n")
    // The merged suite's output comes in the order its files finish: kept out of the comparison.
    .replace(/(<details><summary><code>unit and end-to-end tests<\/code>[^\n]*\n\n```\n)[\s\S]*?\n```/, "$1<verify output>\n```")

describe("a run of the bundled example, piped", () => {
  it("exits 0 and prints one plain line per notable event on stderr, no escape codes", () => {
    assert.strictEqual(run.code, 0, run.stderr)
    assert.notInclude(run.stderr, "\u001b[")
    const lines = run.stderr.split("\n")
    assert.include(lines, "  api · api-1 · review 0 below threshold")
    assert.include(lines, "  testing · test-1 · waits for api-1")
    assert.include(lines, "integrating database, ui, api, testing, docs")
    assert.isTrue(lines.some((l) => /^conflict api ↔ ui: resolved \([0-9a-f]{10}\)$/.test(l)))
    assert.isTrue(lines.some((l) => /^SUCCEEDED: 5\/5 tasks completed.*; 0 tokens, \$0\.0000$/.test(l)))
  })

  it("prints every event as NDJSON on stdout: each line parses and validates as a RunEvent, stage by stage", () => {
    const lines = run.stdout.trim().split("\n")
    const tags: Array<string> = []
    for (const line of lines) {
      const { v, ...event } = JSON.parse(line) as { v: number; _tag: string }
      assert.strictEqual(v, Progress.EVENTS_VERSION)
      assert.isTrue(Either.isRight(Schema.decodeUnknownEither(Progress.RunEvent)(event)), line)
      tags.push(event._tag)
    }
    for (
      const tag of [
        "RunStarted",
        "TaskWaiting",
        "TaskStarted",
        "AttemptStarted",
        "AgentOutput",
        "AttemptFinished",
        "ReviewStarted",
        "ReviewRecorded",
        "TaskSettled",
        "IntegrationStarted",
        "ConflictDetected",
        "ConflictSettled",
        "StreamMerged",
        "VerificationStarted",
        "VerificationFinished",
        "Landed",
        "RunFinished"
      ]
    ) assert.include(tags, tag)
    const output = lines.map((l) => JSON.parse(l)).filter((e) => e._tag === "AgentOutput" && e.taskId === "api-1").map((e) => e.line)
    assert.deepStrictEqual(output, ["checkout endpoint written", "checkout endpoint fixed: totals multiply by quantity"])
  })

  it("writes a Markdown report a person can follow on GitHub, the same as the golden copy", () => {
    const written = fs.readFileSync(path.join(tmp, "report.md"), "utf8")
    // braid report renders the same text from the run's record.
    const again = braid(["report", runId, "--repo", repo])
    assert.strictEqual(again.code, 0, again.stderr)
    assert.strictEqual(again.stdout, written)
    const text = normalise(written)
    if (process.env.UPDATE_GOLDEN === "1") fs.writeFileSync(golden, text)
    assert.strictEqual(text, fs.readFileSync(golden, "utf8"))
    // Every checkout made ready (the plan's environment): one build of node_modules at least, the rest copies.
    const environments = /## Environments\n[\s\S]*?\n(?=## )/.exec(written)![0]
    for (const checkout of ["stream database", "stream api", "stream ui", "stream testing", "stream docs", "integration"]) {
      assert.match(environments, new RegExp(`\\| ${checkout} \\| [^|]+ \\| 1 file copied · node\\\\_modules from (a fresh build · ran npm ci --offline --no-audit --no-fund, |the cache · ran ).env from .env.example where missing \\|`), environments)
    }
    assert.include(environments, "from the cache")
    // What drove the retry, and the conflict, in words a reader follows.
    assert.include(written, "**Feedback that drove attempt 2** (the review of attempt 1 by checks: score 0, under the threshold of 80):")
    assert.include(written, "total must multiply price by quantity")
    assert.include(written, "- api and ui both changed `src/routes.js`")
    assert.include(written, "what the resolver did — script-resolver: kept both sides in src/routes.js")
    assert.match(written, /\| api \| ui \| `src\/routes.js` \| agent \| ✅ resolved \| `[0-9a-f]{10}` \|/)
  })

  it("braid report --json writes JSON that validates against the RunReport Schema; --md and --html write files; a missing folder is refused", () => {
    const json = path.join(tmp, "report.json")
    const md = path.join(tmp, "again.md")
    const html = path.join(tmp, "timeline.html")
    const r = braid(["report", runId, "--repo", repo, "--json", json, "--md", md, "--html", html])
    assert.strictEqual(r.code, 0, r.stderr)
    const decoded = Schema.decodeUnknownEither(RunReport.RunReport)(JSON.parse(fs.readFileSync(json, "utf8")))
    assert.isTrue(Either.isRight(decoded))
    assert.strictEqual(fs.readFileSync(md, "utf8"), fs.readFileSync(path.join(tmp, "report.md"), "utf8"))
    const page = fs.readFileSync(html, "utf8")
    // Self-contained: nothing to fetch.
    assert.notMatch(page, /<(script|link|img)[^>]+(src|href)=/)
    const missing = braid(["report", runId, "--repo", repo, "--html", path.join(tmp, "no/such/dir/t.html")])
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stderr, "--html")
    assert.isFalse(fs.existsSync(path.join(tmp, "no")))
  })

  it("the HTML timeline in a real headless browser draws every stream, attempt and integration phase", async (ctx) => {
    if (!fs.existsSync(chromium)) {
      if (process.env.CI === "true") throw new Error(`${chromium} is missing: .ci/run installs Debian's chromium package`)
      ctx.skip(`${chromium} is not installed (apt-get install -y chromium); CI installs it and runs this test`)
    }
    const html = path.join(tmp, "browser.html")
    assert.strictEqual(braid(["report", runId, "--repo", repo, "--html", html]).code, 0)
    const report = JSON.parse(fs.readFileSync(path.join(repo, ".braid/runs", runId, "report.json"), "utf8")) as RunReport.RunReport
    const { chromium: browser } = await import("playwright-core")
    const profile = fs.mkdtempSync(path.join(tmp, "profile-"))
    const context = await browser.launchPersistentContext(profile, {
      executablePath: chromium,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1220, height: 900 }
    })
    try {
      const page = await context.newPage()
      const requests: Array<string> = []
      page.on("request", (r) => void (r.url().startsWith("file:") ? undefined : requests.push(r.url())))
      await page.goto(`file://${html}`)
      // A row per stream, and the integration's.
      const rows = await page.locator("#timeline [data-row]").evaluateAll((els) => els.map((e) => e.getAttribute("data-row")))
      assert.deepStrictEqual(rows, [...report.streamResults.map((s) => s.streamName), "integration"])
      // Every attempt of every task is a bar, coloured by its outcome, with its score.
      for (const s of report.streamResults) {
        for (const t of s.results) {
          for (const a of t.attempts) {
            const bar = page.locator(`#timeline [data-kind="attempt"][data-task="${t.taskId}"][data-attempt="${a.attempt}"]`)
            assert.strictEqual(await bar.count(), 1, `${t.taskId} attempt ${a.attempt}`)
            assert.strictEqual(await bar.getAttribute("data-score"), String(a.review?.score ?? ""))
            assert.isAbove((await bar.boundingBox())!.width, 0)
          }
        }
      }
      assert.strictEqual(await page.locator('#timeline [data-kind="attempt"]').count(), 6)
      assert.strictEqual(await page.locator('#timeline [data-task="api-1"][data-attempt="1"]').getAttribute("data-outcome"), "retried")
      // Waits: test-1 and docs-1 waited for api-1.
      assert.strictEqual(await page.locator('#timeline [data-kind="gap"][data-gap="dependency"][data-task="test-1"]').count(), 1)
      // The integration: a merge per stream (api's with its conflict resolved), verification, landing.
      const phases = await page.locator('#timeline [data-kind="phase"]').evaluateAll((els) => els.map((e) => `${e.getAttribute("data-phase")} ${e.getAttribute("data-label")}`))
      assert.deepStrictEqual(phases, [
        "merge database",
        "merge ui",
        "conflict api (conflict resolved)",
        "merge testing",
        "merge docs",
        "verify verify passed",
        "land landed on main"
      ])
      // Details on click.
      await page.locator('#timeline [data-task="api-1"][data-attempt="1"]').click()
      const detail = await page.locator("#detail").textContent()
      assert.include(detail, "api-1 POST /checkout endpoint — attempt 1: retried, score 0")
      assert.include(detail, "issue: node --test test/api/ exited 1")
      // The report beneath, with its collapsible output.
      assert.strictEqual(await page.locator("#report h3#task-api-1").count(), 1)
      assert.isAbove(await page.locator("#report details").count(), 1)
      assert.deepStrictEqual(requests, [])
    } finally {
      await context.close()
    }
  }, 60_000)
})
