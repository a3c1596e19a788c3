/**
 * What the `braid draft` tests share: the bundled example's project in a fresh repository with a
 * plan folder beside it, an environment for the scripted model, the repository's state as
 * drafting must leave it, and the drafts the scripted model answers with.
 */
import type { ScriptedServer } from "@braid/testkit"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { git, root } from "./Braid.js"

export const MODEL_KEY = "sk-ant-test-PLANTED-draft"

/** The bundled example's project in a fresh repository, and a folder outside it for the plan and its config. */
export const setUp = () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-draft-")))
  const repo = path.join(dir, "repo")
  const plans = path.join(dir, "plans")
  fs.cpSync(path.join(root, "examples/checkout-flow/project"), repo, { recursive: true })
  fs.mkdirSync(plans)
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "start")
  // The drafting agent's settings, as a user keeps them beside their plans.
  fs.writeFileSync(path.join(plans, "braid.config.yaml"), "agent: llm\nagents:\n  llm: { provider: anthropic, model: claude-sonnet-4-5, timeoutSeconds: 60 }\n")
  return { dir, repo, plans, out: path.join(plans, "plan.yaml") }
}

/** braid's environment: no inherited model or GitHub variables, the scripted server's URL. */
export const envOf = (vars: Record<string, string>): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(ANTHROPIC_|OPENAI_|CLAUDE_|BRAID_|GITHUB_)/.test(k)) env[k] = v
  return { ...env, ANTHROPIC_API_KEY: MODEL_KEY, ...vars }
}

/** Everything about a repository drafting must leave as it was: work tree, index, refs, config, worktrees. */
export const stateOf = (repo: string): string => {
  const files = fs.readdirSync(repo, { recursive: true, encoding: "utf8" }).filter((f) => !f.startsWith(".git/") && f !== ".git").sort()
  const hash = createHash("sha256")
  for (const f of files) {
    const full = path.join(repo, f)
    hash.update(f)
    if (fs.lstatSync(full).isFile()) hash.update(fs.readFileSync(full))
  }
  return [
    hash.digest("hex"),
    git(repo, "status", "--porcelain", "--untracked-files=all", "--ignored"),
    git(repo, "ls-files", "-s", "--debug"),
    git(repo, "for-each-ref"),
    fs.readFileSync(path.join(repo, ".git", "config"), "utf8"),
    git(repo, "worktree", "list", "--porcelain"),
    git(repo, "stash", "list")
  ].join("\n---\n")
}

export const fenced = (yaml: string) => `Here is the plan.\n\n\`\`\`yaml\n${yaml}\`\`\`\n`

/** A plan for the example's checkout feature, in the seed's shape, from the project's real commands. */
export const GOOD = `projectName: checkout-service
featureName: checkout-flow
qualityThreshold: 80
maxParallel: 3
environment:
  copy: [.env]
  share:
    - { path: node_modules, key: [package-lock.json], build: [npm, ci, --offline] }
checks: [[npm, test]]
verify:
  - { name: unit tests, command: [npm, test], timeoutSeconds: 300 }
streams:
  - { name: api, type: api, scope: "src/", priority: 1 }
  - { name: testing, type: testing, scope: "test/", priority: 2 }
  - { name: docs, type: docs, scope: "README.md", priority: 3 }
tasks:
  - id: api-1
    title: POST /checkout computes the order total
    stream: api
    streamType: api
    description: Add a checkout route in src/routes.js that prices the cart with money-format.
    acceptanceCriteria: [total is price times quantity, an empty cart is a 400]
    effort: M
  - id: test-1
    title: Tests for POST /checkout
    stream: testing
    streamType: testing
    dependsOn: [api-1]
    description: node --test cases for the checkout route.
    acceptanceCriteria: [the total and the empty cart are covered]
    effort: S
  - id: docs-1
    title: Document POST /checkout
    stream: docs
    streamType: docs
    dependsOn: [api-1]
    description: Describe the route in README.md.
    acceptanceCriteria: [the README names the route and its errors]
    effort: XS
`

/** A first draft with a misspelled field (tasks[0].titel) and a cycle (api-1 ⇄ test-1). */
export const BAD = GOOD
  .replace("    title: POST /checkout computes the order total\n", "    titel: POST /checkout computes the order total\n    title: POST /checkout\n")
  .replace("    stream: api\n    streamType: api\n", "    stream: api\n    streamType: api\n    dependsOn: [test-1]\n")

export const turnsOf = (server: ScriptedServer.Server) => server.requests.filter((r) => r.conversation !== undefined)


/** `setUp` for the real claude: a throwaway HOME, claude on PATH, `agent: claude-code` beside the plan. */
export const claudeSetUp = () => {
  const made = setUp()
  const home = path.join(made.dir, "home")
  fs.mkdirSync(home)
  fs.writeFileSync(path.join(made.plans, "braid.config.yaml"), "agent: claude-code\nagents:\n  claude-code: { timeoutSeconds: 60 }\n")
  const envWith = (vars: Record<string, string>) =>
    envOf({ HOME: home, PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${process.env.PATH ?? ""}`, ...vars })
  return { ...made, home, envWith }
}

/** The architect's prompts a scripted server was sent (not a tool's side requests), in order, with claude's session id. */
export const architectPrompts = (server: ScriptedServer.Server) =>
  server.requests.flatMap((r) =>
    r.conversation !== undefined && r.conversation.lastUserText.includes("You are the architect of")
      ? [{ text: r.conversation.lastUserText, session: String(r.headers["x-claude-code-session-id"]) }]
      : []
  )
