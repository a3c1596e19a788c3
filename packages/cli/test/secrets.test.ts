/**
 * Credentials an agent prints never leave braid: the built `braid` runs two script agents that
 * print an Anthropic key, a GitHub token, an OpenAI project key, an AWS key pair and a private
 * key block on stdout and stderr, in their summaries and in a failure's output, with `-v`,
 * `--events`, `--report` and GitHub sync on (a fake GitHub). None of them is in anything braid
 * wrote or sent, and each is there as its marker instead.
 */
import { FakeGitHub } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { braid, newRepo } from "./support/Braid.js"

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
const from = (alphabet: string, n: number) => Array.from(randomBytes(n), (b) => alphabet[b % alphabet.length]).join("")

// Made for this run, so only braid's handling can hide them.
const anthropic = `sk-ant-api03-${from(`${ALNUM}_-`, 93)}AA`
const github = `ghp_${from(ALNUM, 36)}`
const openai = `sk-proj-${from(ALNUM, 74)}T3BlbkFJ${from(ALNUM, 74)}`
const awsId = `AKIA${from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}`
const awsSecret = from(`${ALNUM}+/`, 40)
const keyLines = Array.from({ length: 6 }, () => from(`${ALNUM}+/`, 64))
const pem = ["-----BEGIN RSA PRIVATE KEY-----", ...keyLines, "-----END RSA PRIVATE KEY-----"].join("\n")
/** What must appear nowhere: each key, and each line of the private key's body. */
const SECRETS = [anthropic, github, openai, awsId, awsSecret, ...keyLines]
const MARKERS = ["[redacted:anthropic-key]", "[redacted:github-token]", "[redacted:openai-key]", "[redacted:aws-access-key-id]", "[redacted:aws-secret-key]", "[redacted:private-key]"]

/** Prints every secret (one a line on stdout, one on stderr, the key block line by line), does its work, and sums up with keys. */
const printer = `#!/bin/sh
echo "using ANTHROPIC_API_KEY=${anthropic}"
echo "token ${github}" >&2
cat <<'KEY'
${pem}
KEY
echo "aws_access_key_id = ${awsId}"
echo "aws_secret_access_key = ${awsSecret}"
echo "keys" > keys.txt
echo "done with ${anthropic} ${github} ${openai}"
`

/** Prints them too, then fails: its output is the failure's message. */
const crasher = `#!/bin/sh
echo "auth with ${openai} and ${github}"
echo "${awsId} aws_secret_access_key=${awsSecret}" >&2
cat <<'KEY' >&2
${pem}
KEY
exit 1
`

const TOKEN = `ghp_braidTEST${from(ALNUM, 10)}planted`

/** Every file under a folder, as text. */
const allText = (dir: string): string =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => fs.readFileSync(path.join(e.parentPath, e.name), "utf8"))
    .join("\n")

const assertClean = (where: string, text: string) => {
  for (const secret of SECRETS) assert.notInclude(text, secret, `${where} holds a secret`)
}

describe("credentials an agent prints", () => {
  it("are in no output, journal, report, event or GitHub request; their markers are", async () => {
    const repo = newRepo("braid-secrets-")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-secrets-plan-"))
    const plans = path.join(dir, "plan")
    fs.mkdirSync(path.join(plans, "agents"), { recursive: true })
    fs.writeFileSync(path.join(plans, "agents", "printer.sh"), printer)
    fs.writeFileSync(path.join(plans, "agents", "crasher.sh"), crasher)
    const plan = path.join(plans, "plan.yaml")
    fs.writeFileSync(
      plan,
      [
        "projectName: secrets",
        "featureName: keys printed by agents",
        "githubRepo: acme/shop",
        "githubIssueNumber: 10",
        "streams:",
        "  - { name: keys, type: api }",
        "  - { name: crash, type: ui }",
        "tasks:",
        "  - { id: keys-1, title: Print keys, stream: keys, githubIssueNumber: 1, run: { script: agents/printer.sh } }",
        "  - { id: crash-1, title: Print keys and fail, stream: crash, githubIssueNumber: 2, run: { script: agents/crasher.sh } }",
        ""
      ].join("\n")
    )
    const fake = await FakeGitHub.start({ repo: "acme/shop", issues: [1, 2, 10], token: TOKEN })
    try {
      const env = { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: fake.url, BRAID_GITHUB_DEBOUNCE_MS: "50" }
      const markdown = path.join(dir, "report.md")
      const run = await braid(["run", plan, "--repo", repo, "-v", "--events", "--report", markdown], env)
      const runs = path.join(repo, ".braid", "runs")
      const runId = fs.readdirSync(runs)[0]!
      const runDir = path.join(runs, runId)
      const shown = await braid(["report", runId, "--repo", repo], env)
      // Its exit code is the run's (one task failed): the report itself is what matters here.
      assert.include(shown.stdout, `# braid run ${runId}`, shown.stderr)

      const journal = fs.readFileSync(path.join(runDir, "journal.jsonl"), "utf8")
      const report = fs.readFileSync(path.join(runDir, "report.json"), "utf8")
      const bodies = fake.state.requests.map((r) => r.body).join("\n")
      const sinks = {
        "stdout (--events)": run.stdout,
        "stderr (-v)": run.stderr,
        "the journal": journal,
        "report.json": report,
        "--report": fs.readFileSync(markdown, "utf8"),
        "braid report": shown.stdout,
        "GitHub request bodies": bodies
      }
      for (const [where, text] of Object.entries(sinks)) assertClean(where, text)
      assertClean(`${runDir}`, allText(runDir))
      assertClean("the output of braid report", shown.stderr)

      // The agents ran and their words were kept, each credential as its marker.
      const tasks = JSON.parse(report).streamResults.flatMap((s: { results: Array<{ taskId: string; status: string; result: string; error?: string }> }) => s.results)
      const keys = tasks.find((t: { taskId: string }) => t.taskId === "keys-1")
      assert.strictEqual(keys.status, "completed", run.stderr)
      assert.strictEqual(keys.result, "done with [redacted:anthropic-key] [redacted:github-token] [redacted:openai-key]")
      const crash = tasks.find((t: { taskId: string }) => t.taskId === "crash-1")
      assert.strictEqual(crash.status, "failed", run.stderr)
      assert.include(crash.error, "auth with [redacted:openai-key] and [redacted:github-token]")
      for (const marker of MARKERS) {
        assert.include(run.stderr, marker, "the -v lines")
        assert.include(run.stdout, marker, "the events")
        assert.include(journal, marker, "the journal")
      }
      for (const marker of ["[redacted:anthropic-key]", "[redacted:openai-key]", "[redacted:private-key]"]) assert.include(report, marker, "report.json")
      assert.include(shown.stdout, "[redacted:openai-key]", "braid report")
      // The private key's lines, printed one by one, are each hidden.
      const hidden = run.stderr.split("\n").filter((l) => l === "  keys · keys-1 │ [redacted:private-key]")
      assert.lengthOf(hidden, keyLines.length + 2, run.stderr)
      // GitHub got the comments, with the failure's words scrubbed.
      assert.isTrue(fake.state.requests.some((r) => r.method === "POST" && r.path.endsWith("/comments")))
      assert.include(bodies, "[redacted:", "GitHub request bodies")
    } finally {
      await fake.close()
      fs.rmSync(dir, { recursive: true, force: true })
      fs.rmSync(repo, { recursive: true, force: true })
    }
  }, 120_000)
})
