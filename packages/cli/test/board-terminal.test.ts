/**
 * The live board, as a person sees it: the built `braid run` on the bundled example under a
 * real pseudo-terminal (tmux), its screen read at several moments of the run — streams at
 * work and waiting, the integration, the final summary — and, in a small terminal, every line
 * cut to its width and the streams that do not fit summed up. The agents are slowed through
 * the example's BRAID_EXAMPLE_DELAY_MS so the moments can be caught.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(__dirname, "../../..")
const bin = path.join(root, "packages/cli/dist/bin.js")
const example = path.join(root, "examples/checkout-flow")
const socket = `braid-board-${process.pid}`

const tmux = (...args: Array<string>) => execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" })
const screen = (session: string) => tmux("capture-pane", "-p", "-t", session)
const history = (session: string) => tmux("capture-pane", "-p", "-S", "-", "-t", session)

const git = (repo: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" })

const exampleRepo = () => {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), "braid-board-"))
  fs.cpSync(path.join(example, "project"), repo, { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "start")
  return repo
}

/** Waits until the screen satisfies `ok` (polling; the test's own timeout bounds it). */
const until = async (session: string, ok: (text: string) => boolean, what: string) => {
  for (let i = 0; i < 600; i++) {
    const text = screen(session)
    if (ok(text)) return text
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`the board never showed ${what}; last screen:\n${screen(session)}`)
}

const start = (session: string, width: number, height: number, command: string, env: Record<string, string>) => {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")
  tmux("new-session", "-d", "-s", session, "-x", String(width), "-y", String(height), `env ${vars} ${command}; echo "EXIT=$?"; sleep 600`)
}

describe("braid run on a terminal: the live board", () => {
  it("shows every stream's role, backend, task, attempt, score and waits, the integration, and a final summary; redrawn in place", async () => {
    const repo = exampleRepo()
    try {
      start("wide", 140, 40, `${process.execPath} ${bin} run ${path.join(example, "plan.yaml")} --repo ${repo}`, {
        BRAID_EXAMPLE_DELAY_MS: "1500",
        TERM: "xterm-256color",
        NO_COLOR: "1"
      })
      // Moment 1: streams at work and streams waiting for what they depend on.
      const early = await until(
        "wide",
        (s) => /database\s+database-engineer\s+script\s+db-1\s+1\/3\s+–\s+agent working/.test(s) && s.includes("waits for api-1"),
        "agents at work and a dependency wait"
      )
      assert.match(early, /api\s+api-developer\s+script\s+api-1\s+–\s+–\s+waits for db-1/, early)
      assert.match(early, /testing\s+test-engineer\s+script\s+test-1\s+–\s+–\s+waits for api-1/)
      assert.include(early, "integration  waits for the streams")
      // Moment 2: api's first attempt was scored below the threshold and it is on its second.
      const retry = await until("wide", (s) => /api\s+api-developer\s+script\s+api-1\s+2\/3\s+0<80/.test(s), "api-1 on attempt 2 after scoring 0 < 80")
      assert.include(retry, "attempt 1 scored 0 < 80")
      // Moment 3: the end — integration with the conflict resolved, verification, landing, the summary.
      const end = await until("wide", (s) => s.includes("EXIT="), "the end of the run")
      assert.include(end, "EXIT=0")
      assert.match(end, /integration\s+landed [0-9a-f]{10} on main · merged 5\/5 · conflict api↔ui src\/routes.js: resolved · verify passed 1\/1/)
      assert.match(end, /SUCCEEDED: 5\/5 completed, 0 need review, 0 failed, 0 skipped · 1 conflict\(s\) · verification passed\n/, end)
      assert.match(end, /^landed [0-9a-f]{10} on main · 0 tokens · \$0\.0000 · [\d.]+ s$/m, end)
      for (const s of ["database", "api", "ui", "testing", "docs"]) assert.match(end, new RegExp(`^${s}\\s`, "m"))
      // Redrawn in place: the board's header is on the screen once, not once per frame.
      const all = history("wide")
      assert.strictEqual(all.split("\n").filter((l) => /^stream\s+role\s+backend/.test(l)).length, 1, all)
      assert.strictEqual(all.split("\n").filter((l) => /^braid \d{8}-/.test(l)).length, 1, all)
    } finally {
      tmux("kill-session", "-t", "wide")
      fs.rmSync(repo, { recursive: true, force: true })
    }
  }, 90_000)

  it("in a narrow, short terminal: every line cut to the width, the streams that do not fit summed up", async () => {
    const repo = exampleRepo()
    try {
      start("small", 60, 8, `${process.execPath} ${bin} run ${path.join(example, "plan.yaml")} --repo ${repo}`, {
        BRAID_EXAMPLE_DELAY_MS: "300",
        TERM: "xterm-256color"
      })
      const during = await until("small", (s) => s.includes("more stream"), "the streams that do not fit")
      const end = await until("small", (s) => s.includes("EXIT="), "the end of the run")
      for (const text of [during, end]) {
        for (const line of text.split("\n")) assert.isAtMost([...line].length, 60, line)
      }
      assert.match(during, /… \d more streams? \(/)
      assert.include(end, "EXIT=0")
    } finally {
      tmux("kill-session", "-t", "small")
      fs.rmSync(repo, { recursive: true, force: true })
    }
  }, 90_000)
})
