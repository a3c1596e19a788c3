#!/usr/bin/env node
// `npm run demo`: copies the example project into a fresh temporary git repository, runs
// `braid run` on it with the bundled plan, and prints where the repository and report are.
//
// `npm run demo -- --agent claude-code` runs the same plan with the real `claude` binary in
// every stream, offline: claude talks to the bundled scripted model (./model.mjs) on 127.0.0.1.
// `npm run demo -- --agent llm` does the same with braid's own `llm` backend (@effect/ai), and
// `--reviewer composite` adds the scripted model as the judge of every attempt.
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

console.log(`braid demo: repository ${repo}`)
const args = process.argv.slice(2)
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

console.log(`braid demo: running braid run ${path.relative(process.cwd(), plan)} --repo ${repo} ${args.join(" ")}\n`)
// Asynchronous, so the scripted model in this process keeps answering while braid runs.
const run = await new Promise((resolve) => {
  const child = spawn(process.execPath, [braid, "run", plan, "--repo", repo, "--report", report, ...args], { stdio: "inherit", env })
  child.on("close", (status) => resolve({ status }))
})
await model?.close()

console.log(`\nbraid demo: the repository is ${repo}`)
console.log(`braid demo: the report is ${report}`)
console.log(`\n$ git -C ${repo} log --graph --oneline main`)
console.log(git("log", "--graph", "--oneline", "main"))
process.exit(run.status ?? 1)
