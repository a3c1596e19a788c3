/**
 * braid's own git cannot be hijacked through the repository it works in, and no symbolic link
 * leading outside the repository is committed. On real repositories: a `core.fsmonitor`
 * script, an alias or a hook — in the repository's config before the run, or written there by
 * an agent during an attempt — never runs from braid's git; what an agent changes in
 * `.git/config`, `.git/hooks` and `.git/info` fails its attempt, named, and is put back byte
 * for byte; links to `/etc/passwd` fail the attempt that made them, links inside stay.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Agent from "../src/ports/Agent.js"
import * as ConflictResolver from "../src/ports/ConflictResolver.js"
import * as GitWorkspace from "../src/workspaces/GitWorkspace.js"
import * as Git from "../src/internal/git.js"
import * as Links from "../src/internal/links.js"
import * as Orchestrator from "../src/pipeline/Orchestrator.js"
import * as Plan from "../src/run/Plan.js"
import * as Process from "../src/system/Process.js"
import * as Progress from "../src/ports/Progress.js"
import * as Review from "../src/ports/Review.js"
import * as Workspace from "../src/ports/Workspace.js"

/** Git as the test itself runs it: never the repository's fsmonitor or hooks. */
const git = (cwd: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "user.name=user", "-c", "user.email=user@localhost", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" }
  })

interface Repo {
  readonly dir: string
  /** The repository's `.git`. */
  readonly gitDir: string
  /** Created by any of the planted programs, should one ever run. */
  readonly marker: string
  /** A script that creates the marker. */
  readonly script: string
}

const tempRepo = Effect.acquireRelease(
  Effect.sync((): Repo => {
    const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-guard-")))
    const dir = path.join(root, "repo")
    fs.mkdirSync(path.join(dir, "src"), { recursive: true })
    git(dir, "init", "--quiet", "--initial-branch=main")
    fs.writeFileSync(path.join(dir, "src", "a.txt"), "a\n")
    fs.writeFileSync(path.join(dir, "README.md"), "readme\n")
    git(dir, "add", "--all")
    git(dir, "commit", "--quiet", "-m", "base")
    const marker = path.join(root, "pwned")
    const script = path.join(root, "evil.sh")
    fs.writeFileSync(script, `#!/bin/sh\necho "$0 $*" >> '${marker}'\nexit 1\n`, { mode: 0o755 })
    return { dir, gitDir: path.join(dir, ".git"), marker, script }
  }),
  (repo) => Effect.sync(() => fs.rmSync(path.dirname(repo.dir), { recursive: true, force: true }))
)

/** The repository's git files an agent could plant something in, byte for byte (the inert hook samples aside). */
const gitFiles = (gitDir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (relative: string) => {
    if (relative.endsWith(".sample")) return
    const full = path.join(gitDir, relative)
    const st = fs.lstatSync(full, { throwIfNoEntry: false })
    if (st === undefined) return
    if (st.isDirectory()) for (const name of fs.readdirSync(full).sort()) walk(`${relative}/${name}`)
    else out[relative] = `${(st.mode & 0o777).toString(8)} ${fs.readFileSync(full).toString("base64")}`
  }
  walk("config")
  walk("hooks")
  walk("info")
  return out
}

const test = (title: string, body: () => Effect.Effect<void, unknown, Scope.Scope | NodeContext.NodeContext>) =>
  it.scopedLive(title, () => body().pipe(Effect.provide(NodeContext.layer)), 120_000)

/** Runs a node script as an agent would, in `cwd`. */
const agent = (cwd: string, script: string) =>
  Effect.flatMap(Process.run([process.execPath, "-e", script], { cwd }), (r) =>
    r.exitCode === 0 ? Effect.void : Effect.die(new Error(`the agent script failed: ${r.stderr}`)))

/** An agent script that plants `core.fsmonitor` and an alias in the repository's config and a post-commit hook, finding `.git` as an agent would. */
const planting = (repo: Repo) =>
  `const fs = require("node:fs"), path = require("node:path")
const common = require("node:child_process").execFileSync("git", ["rev-parse", "--path-format=absolute", "--git-common-dir"], { encoding: "utf8" }).trim()
fs.appendFileSync(path.join(common, "config"), "[core]\\n\\tfsmonitor = ${repo.script}\\n[alias]\\n\\tci = !${repo.script}\\n")
fs.writeFileSync(path.join(common, "hooks", "post-commit"), "#!/bin/sh\\n${repo.script}\\n", { mode: 0o755 })`

/** One attempt of a script agent in the stream's worktree, then braid's commit of it. */
const attemptIn = (ws: Workspace.Run, stream: string, script: string, attempt: number) =>
  Effect.scoped(Effect.flatMap(ws.checkout(stream), (checkout) =>
    Effect.zipRight(
      agent(Workspace.directoryOf(checkout.files)!, script),
      Effect.either(checkout.commitAttempt({ taskId: `${stream}-1`, title: stream, attempt }))
    )))

const links = (pairs: Record<string, string>) =>
  Object.entries(pairs).map(([p, t]) => `require("node:fs").symlinkSync(${JSON.stringify(t)}, ${JSON.stringify(p)})`).join("\n")

describe("braid's git and the repository's .git", () => {
  it("every git process names a builtin, with the forced configuration first; diffs run no external diff or textconv", () => {
    const argv = GitWorkspace.safeGitArgv(["-C", "/r", "show", "--format=", "HEAD"])
    assert.strictEqual(argv[0], "git")
    for (const setting of ["core.fsmonitor=false", "core.hooksPath=/dev/null", "core.useReplaceRefs=false", "protocol.ext.allow=never"]) {
      assert.strictEqual(argv[argv.indexOf(setting) - 1], "-c", setting)
    }
    assert.deepStrictEqual(argv.slice(-7), ["-C", "/r", "show", "--no-ext-diff", "--no-textconv", "--format=", "HEAD"])
    assert.deepStrictEqual(Git.safeArgs(["--version"]).slice(-1), ["--version"])
    // An alias, or a program a git-<name> on the PATH would be: braid never asks for one.
    assert.throws(() => Git.safeArgs(["st"]), /only git's builtins/)
    assert.throws(() => Git.safeArgs(["difftool"]), /only git's builtins/)
    assert.throws(() => Git.safeArgs(["-c", "x=y"]), /only git's builtins/)
  })

  test("a core.fsmonitor script and aliases in the repository's config never run from braid's git, through a whole run of operations", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      git(repo.dir, "config", "core.fsmonitor", repo.script)
      git(repo.dir, "config", "alias.st", `!${repo.script}`)
      git(repo.dir, "config", "alias.add", `!${repo.script}`)
      fs.writeFileSync(path.join(repo.gitDir, "hooks", "pre-commit"), `#!/bin/sh\n${repo.script}\n`, { mode: 0o755 })
      // The planted script is live: a person's plain git runs it.
      execFileSync("git", ["status", "--porcelain"], { cwd: repo.dir, stdio: "ignore", env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" } })
      assert.isTrue(fs.existsSync(repo.marker), "the fsmonitor script runs for a plain git status")
      fs.rmSync(repo.marker)
      const config = fs.readFileSync(path.join(repo.gitDir, "config"))

      const { service: wsOf } = yield* GitWorkspace.make({ repo: repo.dir })
      // Released by hand below (its git processes count too).
      const run = yield* Scope.make()
      const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }, { name: "ui" }], land: true }).pipe(Scope.extend(run))
      yield* ws.checkout("api")
      yield* ws.checkout("ui")
      yield* (yield* ws.checkout("api")).files.write("api.txt", "api\n")
      const api = yield* (yield* ws.checkout("api")).commitAttempt({ taskId: "api-1", title: "api", attempt: 1 })
      yield* (yield* ws.checkout("ui")).files.write("ui.txt", "ui\n")
      yield* (yield* ws.checkout("ui")).absorb(api.commit!, "api-1")
      yield* (yield* ws.checkout("ui")).commitAttempt({ taskId: "ui-1", title: "ui", attempt: 1 })
      yield* ws.branch("api").diff(["api.txt"])
      yield* ws.integration.begin()
      assert.strictEqual((yield* ws.integration.merge("api", "none"))._tag, "Merged")
      assert.strictEqual((yield* ws.integration.merge("ui", "none"))._tag, "Merged")
      yield* ws.landing.land
      yield* Scope.close(run, Exit.void)

      assert.isFalse(fs.existsSync(repo.marker), fs.existsSync(repo.marker) ? fs.readFileSync(repo.marker, "utf8") : "")
      assert.deepStrictEqual(git(repo.dir, "ls-tree", "--name-only", "main").split("\n").filter((l) => l !== ""), [
        "README.md",
        "api.txt",
        "src",
        "ui.txt"
      ])
      // The user's configuration is theirs: braid forces its own per call and changes nothing there.
      assert.deepStrictEqual(fs.readFileSync(path.join(repo.gitDir, "config")), config)
    }))

  test("an agent writing core.fsmonitor, an alias and a hook into the repository's .git fails its attempt, named, and everything is put back byte for byte", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const { service: wsOf } = yield* GitWorkspace.make({ repo: repo.dir })
      const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }], land: false })
      yield* ws.checkout("api")
      const before = gitFiles(repo.gitDir)
      const found = yield* Effect.scoped(Effect.gen(function*() {
        yield* (yield* ws.checkout("api")).attempting
        yield* agent(Workspace.directoryOf((yield* ws.checkout("api")).files)!, `${planting(repo)}\nfs.writeFileSync("own.txt", "mine\\n")`)
        return yield* (yield* ws.checkout("api")).strays
      }))
      assert.strictEqual(found.length, 1)
      assert.strictEqual(found[0]!.where, "repository's .git")
      assert.deepStrictEqual(found[0]!.paths, ["config", "hooks/post-commit"])
      assert.match(found[0]!.note ?? "", /put config, hooks\/post-commit back as they were when the run started/)
      assert.deepStrictEqual(gitFiles(repo.gitDir), before)
      const error = new Workspace.ChangesOutsideWorktree({ stream: "api", taskId: "api-1", attempt: 1, found })
      assert.match(error.message, /repository's \.git: config, hooks\/post-commit \(braid put config, hooks\/post-commit back/)
      // Reported once.
      assert.deepStrictEqual(yield* Effect.scoped(Effect.zipRight((yield* ws.checkout("api")).attempting, (yield* ws.checkout("api")).strays)), [])
      // braid's own commit afterwards runs neither the fsmonitor script nor the hook.
      yield* (yield* ws.checkout("api")).commitAttempt({ taskId: "api-1", title: "api", attempt: 2 })
      assert.isFalse(fs.existsSync(repo.marker))
    }))

  test("a change is put back before braid's next git process, and told to every attempt whose agent was at work then; not to one that was not", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const { service: wsOf } = yield* GitWorkspace.make({ repo: repo.dir })
      const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }, { name: "ui" }, { name: "docs" }], land: false })
      for (const s of ["api", "ui", "docs"]) yield* ws.checkout(s)
      const before = gitFiles(repo.gitDir)
      const config = path.join(repo.gitDir, "config")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* (yield* ws.checkout("api")).attempting
        yield* (yield* ws.checkout("ui")).attempting
        yield* agent(Workspace.directoryOf((yield* ws.checkout("api")).files)!, planting(repo))
        // Another stream's commit comes first: the config is already put back when its git starts.
        yield* (yield* ws.checkout("docs")).files.write("docs.txt", "docs\n")
        yield* (yield* ws.checkout("docs")).commitAttempt({ taskId: "docs-1", title: "docs", attempt: 1 })
        assert.isFalse(fs.existsSync(repo.marker))
        assert.deepStrictEqual(gitFiles(repo.gitDir), before)
        const api = yield* (yield* ws.checkout("api")).strays
        const ui = yield* (yield* ws.checkout("ui")).strays
        assert.deepStrictEqual(api.map((f) => [f.where, f.paths]), [["repository's .git", ["config", "hooks/post-commit"]]])
        assert.deepStrictEqual(ui.map((f) => [f.where, f.paths]), [["repository's .git", ["config", "hooks/post-commit"]]])
        assert.match(api[0]!.note ?? "", /the agents of stream ui were at work too/)
        assert.match(ui[0]!.note ?? "", /the agents of stream api were at work too/)
      }))
      // With no agent at work (a person, a resolver), it is put back and no attempt is blamed.
      fs.appendFileSync(config, "[core]\n\tfsmonitor = /bin/false\n")
      yield* ws.branch("api").head
      yield* (yield* ws.checkout("api")).files.write("x.txt", "x\n")
      yield* (yield* ws.checkout("api")).commitAttempt({ taskId: "api-1", title: "api", attempt: 1 })
      assert.deepStrictEqual(gitFiles(repo.gitDir), before)
      assert.deepStrictEqual(yield* Effect.scoped(Effect.zipRight((yield* ws.checkout("api")).attempting, (yield* ws.checkout("api")).strays)), [])
    }))

  test("info/ files, a hook made executable, a replaced hooks folder and config.worktree are found and put back", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const hooks = path.join(repo.gitDir, "hooks")
      fs.writeFileSync(path.join(hooks, "pre-push"), "#!/bin/sh\nexit 0\n", { mode: 0o644 })
      const { service: wsOf } = yield* GitWorkspace.make({ repo: repo.dir })
      const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }], land: false })
      yield* ws.checkout("api")
      const before = gitFiles(repo.gitDir)
      const elsewhere = path.join(path.dirname(repo.dir), "elsewhere")
      fs.mkdirSync(elsewhere)
      const found = yield* Effect.scoped(Effect.gen(function*() {
        yield* (yield* ws.checkout("api")).attempting
        fs.writeFileSync(path.join(repo.gitDir, "info", "attributes"), "* filter=evil\n")
        fs.appendFileSync(path.join(repo.gitDir, "info", "exclude"), "secret/\n")
        fs.writeFileSync(path.join(repo.gitDir, "config.worktree"), "[core]\n\tfsmonitor = /bin/true\n")
        fs.chmodSync(path.join(hooks, "pre-push"), 0o755)
        // The hooks folder moved away and a link put in its place.
        fs.renameSync(hooks, path.join(elsewhere, "hooks"))
        fs.symlinkSync(path.join(elsewhere, "hooks"), hooks)
        return yield* (yield* ws.checkout("api")).strays
      }))
      assert.strictEqual(found.length, 1)
      assert.includeMembers([...found[0]!.paths], ["config.worktree", "hooks", "hooks/pre-push", "info/attributes", "info/exclude"])
      assert.isTrue(fs.lstatSync(hooks).isDirectory())
      assert.deepStrictEqual(gitFiles(repo.gitDir), before)
      assert.isFalse(fs.existsSync(path.join(repo.gitDir, "config.worktree")))
    }))
})

describe("symbolic links leading out of the repository", () => {
  it("judges a link from its own folder, through the other links of the commit", () => {
    const none = () => undefined
    assert.isTrue(Links.leadsOut("passwd-link", "/etc/passwd", none))
    assert.isTrue(Links.leadsOut("shadow-link", "../../../../../../../../etc/shadow", none))
    assert.isTrue(Links.leadsOut("a/b/up", "../../..", none))
    assert.isTrue(Links.leadsOut("win", "C:\\Windows", none))
    assert.isFalse(Links.leadsOut("ok-link", "src/a.txt", none))
    assert.isFalse(Links.leadsOut("a/b/link", "../../src/a.txt", none))
    assert.isFalse(Links.leadsOut("a/dangling", "missing/file", none))
    // `here -> .` at the top: `here/..` climbs out of the repository, as the file system would.
    const links: Record<string, string> = { here: "." }
    assert.isTrue(Links.leadsOut("sneaky", "here/../etc/passwd", (p) => links[p]))
    // A link into a deeper folder: `..` after it climbs from there.
    const deep: Record<string, string> = { d: "x/y/z" }
    assert.isFalse(Links.leadsOut("fine", "d/../../a.txt", (p) => deep[p]))
    // A loop never resolves: judged as leading out.
    const loop: Record<string, string> = { l1: "l2", l2: "l1" }
    assert.isTrue(Links.leadsOut("l3", "l1/x", (p) => loop[p]))
  })

  test("an attempt making passwd-link -> /etc/passwd and shadow-link -> ../../…/etc/shadow fails, naming both; nothing of it is committed", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const { service: wsOf } = yield* GitWorkspace.make({ repo: repo.dir })
      const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }], land: false })
      yield* ws.checkout("api")
      const head = yield* ws.branch("api").head
      const result = yield* attemptIn(
        ws,
        "api",
        `${links({ "passwd-link": "/etc/passwd", "shadow-link": "../../../../../../../../etc/shadow", "ok-link": "src/a.txt" })}
require("node:fs").writeFileSync("work.txt", "work\\n")`,
        1
      )
      assert.strictEqual(result._tag, "Left")
      const error = (result as { left: Workspace.WorkspaceError }).left
      assert.instanceOf(error, Workspace.OutwardSymlink)
      assert.deepStrictEqual((error as Workspace.OutwardSymlink).links, [
        { path: "passwd-link", target: "/etc/passwd" },
        { path: "shadow-link", target: "../../../../../../../../etc/shadow" }
      ])
      assert.match(error.message, /passwd-link -> \/etc\/passwd, shadow-link -> \.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/shadow/)
      // The attempt's changes are gone, its branch did not move.
      const dir = Workspace.directoryOf((yield* ws.checkout("api")).files)!
      for (const name of ["passwd-link", "shadow-link", "ok-link", "work.txt"]) assert.isFalse(fs.existsSync(path.join(dir, name)) || isLink(path.join(dir, name)))
      assert.strictEqual(yield* ws.branch("api").head, head)
      assert.strictEqual(git(repo.dir, "log", "--all", "--format=%H", "--", "passwd-link", "shadow-link"), "")
      // The next attempt starts clean and records its own work.
      const next = yield* attemptIn(ws, "api", links({ "ok-link": "src/a.txt" }), 2)
      assert.strictEqual(next._tag, "Right")
    }))

  test("links inside the repository are committed as links", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const { service: wsOf } = yield* GitWorkspace.make({ repo: repo.dir })
      const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }], land: false })
      yield* ws.checkout("api")
      const result = yield* attemptIn(ws, "api", `require("node:fs").mkdirSync("docs")\n${links({ "ok-link": "src/a.txt", "docs/readme": "../README.md" })}`, 1)
      assert.strictEqual(result._tag, "Right")
      const change = (result as { right: Workspace.AttemptChange }).right
      assert.deepStrictEqual(change.files, ["docs/readme", "ok-link"])
      assert.match(git(repo.dir, "ls-tree", "-r", change.commit!, "--", "ok-link"), /^120000 blob /)
    }))

  test("an outward link the agent committed by itself fails too, and its commits are dropped from the branch", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const { service: wsOf } = yield* GitWorkspace.make({ repo: repo.dir })
      const ws = yield* wsOf.prepare({ runId: "r1", streams: [{ name: "api" }], land: false })
      yield* ws.checkout("api")
      const head = yield* ws.branch("api").head
      const result = yield* attemptIn(
        ws,
        "api",
        `${links({ "passwd-link": "/etc/passwd" })}
const git = (...a) => require("node:child_process").execFileSync("git", ["-c", "user.name=a", "-c", "user.email=a@b", "-c", "core.hooksPath=/dev/null", ...a])
git("add", "passwd-link"); git("commit", "-qm", "mine")
require("node:fs").writeFileSync("later.txt", "later\\n")`,
        1
      )
      assert.strictEqual(result._tag, "Left")
      assert.deepStrictEqual(((result as { left: Workspace.WorkspaceError }).left as Workspace.OutwardSymlink).links, [
        { path: "passwd-link", target: "/etc/passwd" }
      ])
      const dir = Workspace.directoryOf((yield* ws.checkout("api")).files)!
      assert.strictEqual(git(dir, "rev-parse", "HEAD").trim(), head)
      assert.isFalse(isLink(path.join(dir, "passwd-link")))
    }))
})

describe("a whole run", () => {
  /** A script agent: each task's script (node) runs in its stream's worktree. */
  const scriptAgents = (scripts: Record<string, string>) =>
    Layer.mergeAll(
      Layer.succeed(Agent.AgentRegistry, {
        check: () => Effect.void,
        forStream: () => ({
          name: "script",
          attempt: (request: Agent.AttemptRequest) =>
            Process.run([process.execPath, "-e", scripts[request.task.id] ?? ""], { cwd: Workspace.directoryOf(request.files)! }).pipe(
              Effect.orDie,
              Effect.map((r) => new Agent.AttemptOutput({ summary: `exit ${r.exitCode}` })),
              Effect.provide(NodeContext.layer)
            )
        })
      }),
      Layer.succeed(Review.Reviewer, {
        review: () => Effect.succeed(new Review.Review({ score: 100, issues: [], suggestions: [], reviewer: "test" }))
      }),
      Layer.succeed(ConflictResolver.ConflictResolver, {
        name: "none",
        resolve: (r) => Effect.fail(new ConflictResolver.ResolutionFailed({ paths: r.paths, message: "no resolver" }))
      }),
      Progress.layerSilent
    )

  const twoStreams = Plan.decode({
    maxParallel: 1,
    streams: [{ name: "api", type: "api" }, { name: "ui", type: "ui" }],
    tasks: [{ id: "api-1", title: "api", stream: "api" }, { id: "ui-1", title: "ui", stream: "ui" }]
  })

  test("the attempt that wrote into .git fails, named; the honest one completes; the user's .git is as it was, and nothing planted ever ran", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const before = gitFiles(repo.gitDir)
      const base = git(repo.dir, "rev-parse", "main").trim()
      const report = yield* Orchestrator.run(yield* twoStreams, { runId: "r1" }).pipe(
        Effect.provide(Layer.mergeAll(
          scriptAgents({
            "api-1": `${planting(repo)}\nfs.writeFileSync("api.txt", "api\\n")`,
            "ui-1": `require("node:fs").writeFileSync("ui.txt", "ui\\n")`
          }),
          GitWorkspace.layer({ repo: repo.dir })
        ))
      )
      const result = (stream: string) => report.streamResults.find((r) => r.streamName === stream)!.results[0]!
      assert.strictEqual(result("api").status, "failed")
      assert.match(result("api").error ?? "", /repository's \.git: config, hooks\/post-commit \(braid put config, hooks\/post-commit back/)
      assert.strictEqual(result("api").attempts.length, 1)
      assert.strictEqual(result("ui").status, "completed")
      assert.isFalse(fs.existsSync(repo.marker))
      // As it was, but for braid's own line excluding its run folder.
      const after = gitFiles(repo.gitDir)
      assert.match(fs.readFileSync(path.join(repo.gitDir, "info", "exclude"), "utf8"), /\n\/\.braid\/\n$/)
      assert.deepStrictEqual({ ...after, "info/exclude": "" }, { ...before, "info/exclude": "" })
      assert.strictEqual(git(repo.dir, "log", "--all", "--format=%H", "--", "api.txt"), "")
      assert.strictEqual(git(repo.dir, "rev-parse", "main").trim(), base)
    }))

  test("an attempt committing outward links fails, naming each path and target; a run with only inward links lands them", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const base = git(repo.dir, "rev-parse", "main").trim()
      const report = yield* Orchestrator.run(yield* twoStreams, { runId: "r1" }).pipe(
        Effect.provide(Layer.mergeAll(
          scriptAgents({
            "api-1": links({ "passwd-link": "/etc/passwd", "shadow-link": "../../../../../../../../etc/shadow" }),
            "ui-1": links({ "ok-link": "src/a.txt" })
          }),
          GitWorkspace.layer({ repo: repo.dir })
        ))
      )
      const result = (stream: string) => report.streamResults.find((r) => r.streamName === stream)!.results[0]!
      assert.strictEqual(result("api").status, "failed")
      assert.match(result("api").error ?? "", /symbolic links leading outside the repository: passwd-link -> \/etc\/passwd, shadow-link -> (\.\.\/){8}etc\/shadow/)
      assert.strictEqual(result("api").attempts.length, 1)
      assert.match(result("api").attempts[0]!.summary, /^failed: .*passwd-link/)
      assert.isNull(result("api").attempts[0]!.commit)
      assert.strictEqual(result("ui").status, "completed")
      assert.strictEqual(git(repo.dir, "log", "--all", "--format=%H", "--", "passwd-link", "shadow-link"), "")
      assert.strictEqual(git(repo.dir, "rev-parse", "main").trim(), base)

      const fine = yield* tempRepo
      const landed = yield* Orchestrator.run(yield* twoStreams, { runId: "r2" }).pipe(
        Effect.provide(Layer.mergeAll(
          scriptAgents({ "api-1": links({ "ok-link": "src/a.txt" }), "ui-1": `require("node:fs").mkdirSync("docs")\n${links({ "docs/readme": "../README.md" })}` }),
          GitWorkspace.layer({ repo: fine.dir })
        ))
      )
      assert.isTrue(landed.mergeResult.landed)
      assert.match(git(fine.dir, "ls-tree", "-r", "main", "--", "ok-link", "docs/readme"), /^120000 blob \w+\tdocs\/readme\n120000 blob \w+\tok-link\n$/)
    }))
})

const isLink = (file: string) => fs.lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() === true
