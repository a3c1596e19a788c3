#!/usr/bin/env node
// `npm run demo`: copies the example project into a fresh temporary git repository, runs
// `braid run` on it with the bundled plan, and prints where the repository and report are.
import { execFileSync, spawnSync } from "node:child_process"
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
console.log(`braid demo: running braid run ${path.relative(process.cwd(), plan)} --repo ${repo}\n`)
const run = spawnSync(process.execPath, [braid, "run", plan, "--repo", repo, "--report", report, ...process.argv.slice(2)], {
  stdio: "inherit"
})

console.log(`\nbraid demo: the repository is ${repo}`)
console.log(`braid demo: the report is ${report}`)
console.log(`\n$ git -C ${repo} log --graph --oneline main`)
console.log(git("log", "--graph", "--oneline", "main"))
process.exit(run.status ?? 1)
