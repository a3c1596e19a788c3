#!/usr/bin/env node
// `npm run demo`: copies the example project into a fresh temporary git repository, runs
// `braid run` on it with the bundled plan, and prints where the repository and report are.
//
// `npm run demo -- --agent claude-code` runs the same plan with the real `claude` binary in
// every stream, offline: claude talks to the bundled scripted model (./model.mjs) on 127.0.0.1.
// `npm run demo -- --agent llm` does the same with braid's own `llm` backend (@effect/ai), and
// `--reviewer composite` adds the scripted model as the judge of every attempt.
// `npm run demo -- --github` runs it against a fake GitHub (a local REST server on 127.0.0.1,
// `FakeGitHub` from @braid/testkit) with a githubRepo, an issue per task and a tracking issue, and
// lands with `--land pr` through a local bare repository as `origin`; it prints what appears
// on the issues and the pull request.
// Any other arguments go to `braid run` as they are.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const braid = path.resolve(here, "../../packages/cli/dist/bin.js")
const plan = path.join(here, "plan.yaml")
const repo = fs.mkdtempSync(path.join(os.tmpdir(), "braid-demo-"))
const report = path.join(repo, "..", `${path.basename(repo)}-report.md`)

const git = (...args) =>
  execFileSync("git", ["-c", "user.name=braid demo", "-c", "user.email=demo@braid.invalid", ...args], {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0" }
  })

fs.cpSync(path.join(here, "project"), repo, { recursive: true })
git("init", "-q", "-b", "main")
git("add", "-A")
git("commit", "-q", "-m", "checkout-service: starting point")
// The project's .env (the shop's local settings) came along but is ignored by its .gitignore, as
// a real one is: the plan's environment copies it into every checkout (and installs
// money-format from its tarball there).

console.log(`braid demo: repository ${repo}`)
const withGitHub = process.argv.includes("--github")
const args = process.argv.slice(2).filter((a) => a !== "--github")
const agent = args[args.indexOf("--agent") + 1]
const env = { ...process.env }
let model
if (args.includes("--agent") && agent === "claude-code") {
  // Offline: the real claude binary, pointed at the bundled scripted model. No key is needed;
  // claude insists on one, so a placeholder that only the local server ever sees is given.
  model = await (await import("./model.mjs")).start(repo)
  Object.assign(env, { ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: "sk-ant-demo-offline" })
  delete env.ANTHROPIC_AUTH_TOKEN
  delete env.CLAUDE_CODE_OAUTH_TOKEN
  console.log(`braid demo: the real claude binary in every stream, against the scripted model on ${model.url}`)
} else if (args.includes("--agent") && agent === "llm") {
  // Offline: braid's llm backend (and any judge) against the bundled scripted model.
  model = await (await import("./model.mjs")).startLlm(repo)
  Object.assign(env, { ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: "sk-ant-demo-offline" })
  console.log(`braid demo: braid's llm backend in every stream, against the scripted model on ${model.url}`)
} else if (args.includes("--agent") && agent !== "script") {
  console.log(`braid demo: --agent ${agent} uses your own ${agent} setup (key, login, base URL): the bundled model speaks only to claude-code and llm`)
}

let runPlan = plan
let github
const issues = { "db-1": 1, "api-1": 2, "ui-1": 3, "test-1": 4, "docs-1": 5 }
const tracking = 10
if (withGitHub) {
  const { start } = await import("../../packages/testkit/dist/FakeGitHub.js")
  const token = "ghp_demoTokenNeverPrinted0000"
  github = await start({ repo: "acme/checkout-service", issues: [...Object.values(issues), tracking], token })
  // The remote braid pushes to: a local bare repository.
  const bare = `${repo}-origin.git`
  execFileSync("git", ["init", "-q", "--bare", "-b", "main", bare])
  git("remote", "add", "origin", bare)
  git("push", "-q", "origin", "main")
  // The bundled plan with a githubRepo, its tracking issue and an issue per task.
  const planDir = `${repo}-plan`
  fs.cpSync(here, planDir, { recursive: true, filter: (src) => !src.startsWith(path.join(here, "project")) })
  runPlan = path.join(planDir, "plan.yaml")
  fs.writeFileSync(
    runPlan,
    fs.readFileSync(plan, "utf8")
      .replace("featureName: checkout-flow", `featureName: checkout-flow\ngithubRepo: acme/checkout-service\ngithubIssueNumber: ${tracking}`)
      .replace(/^  - id: (\S+)$/gm, (line, id) => `${line}\n    githubIssueNumber: ${issues[id]}`)
  )
  Object.assign(env, { GITHUB_TOKEN: token, GITHUB_API_URL: github.url, BRAID_GITHUB_DEBOUNCE_MS: "200" })
  args.push("--land", "pr")
  console.log(`braid demo: a fake GitHub for acme/checkout-service on ${github.url}; issues #1-#5 (one per task), tracking issue #${tracking}; origin is ${bare}`)
}

console.log(`braid demo: running braid run ${path.relative(process.cwd(), runPlan)} --repo ${repo} ${args.join(" ")}\n`)
// Asynchronous, so the scripted model (and the fake GitHub) in this process keep answering while braid runs.
const run = await new Promise((resolve) => {
  const child = spawn(process.execPath, [braid, "run", runPlan, "--repo", repo, "--report", report, ...args], { stdio: "inherit", env })
  child.on("close", (status) => resolve({ status }))
})
await model?.close()

if (github !== undefined) {
  const indent = (text) => text.trimEnd().split("\n").map((l) => `    ${l}`).join("\n")
  console.log("\nbraid demo: what appeared on GitHub")
  for (const [n, issue] of github.state.issues) {
    console.log(`\n  issue #${n} (${issue.state}) labels: ${[...issue.labels].join(", ") || "none"}`)
    for (const c of issue.comments) console.log(`  comment ${c.id} (edited ${c.edits} times):\n${indent(c.body)}`)
  }
  for (const p of github.state.pulls) {
    console.log(`\n  pull request #${p.number} ${p.html_url} (${p.state}): ${p.head} → ${p.base}, labels: ${[...p.labels].join(", ")}`)
    console.log(`  title: ${p.title}`)
    console.log(`  body (${p.body.split("\n").length} lines), first lines:\n${indent(p.body.split("\n").slice(0, 12).join("\n"))}\n    …\n${indent(p.body.split("\n").slice(-6).join("\n"))}`)
  }
  for (const s of github.state.statuses) console.log(`\n  commit status on ${s.sha.slice(0, 10)}: ${s.context} ${s.state} (${s.description})`)
  console.log(`\n  ${github.state.requests.length} requests to the fake GitHub`)
  await github.close()
  console.log(`\n$ git -C ${repo}-origin.git branch`)
  console.log(execFileSync("git", ["-C", `${repo}-origin.git`, "branch"], { encoding: "utf8" }))
}

console.log(`\nbraid demo: the repository is ${repo}`)
console.log(`braid demo: the report is ${report}`)
console.log(`\n$ git -C ${repo} log --graph --oneline main`)
console.log(git("log", "--graph", "--oneline", "main"))
process.exit(run.status ?? 1)
