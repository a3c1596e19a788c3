/**
 * Confinement on real repositories: what an attempt's agent (a script run in its stream's
 * worktree) writes outside that worktree is found — in the main checkout, or in the worktree
 * of another stream with no attempt in progress — and nothing of it lands; what the user had
 * changed before the run is not the agent's. Also how many git processes an attempt costs.
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
import * as Orchestrator from "../src/pipeline/Orchestrator.js"
import * as Plan from "../src/run/Plan.js"
import * as Process from "../src/system/Process.js"
import * as Progress from "../src/ports/Progress.js"
import * as Review from "../src/ports/Review.js"
import * as Workspace from "../src/ports/Workspace.js"

const git = (cwd: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "user.name=user", "-c", "user.email=user@localhost", ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" }
  })

const tempRepo = Effect.acquireRelease(
  Effect.sync(() => {
    const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-confine-")))
    git(repo, "init", "--quiet", "--initial-branch=main")
    fs.mkdirSync(path.join(repo, "src"))
    fs.writeFileSync(path.join(repo, "src", "app.ts"), "export const app = 1\n")
    fs.writeFileSync(path.join(repo, "README.md"), "readme\n")
    fs.writeFileSync(path.join(repo, ".gitignore"), "*.log\nnode_modules/\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "base")
    return repo
  }),
  (repo) => Effect.sync(() => fs.rmSync(repo, { recursive: true, force: true }))
)

/** A workspace prepared for run r1 with these streams, their worktrees open. */
const prepared = (repo: string, streams: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { service: wsOf } = yield* GitWorkspace.make({ repo })
    const ws = yield* wsOf.prepare({ runId: "r1", streams: streams.map((name) => ({ name })), land: false })
    for (const name of streams) yield* ws.checkout(name)
    return ws
  })

/**
 * One attempt of a script agent: `node -e script` in the stream's worktree (which it is told
 * in `BRAID_WORKTREE`, the main checkout in `MAIN`), then the confinement check the gate makes.
 */
const attempt = (ws: Workspace.Run, repo: string, stream: string, script: string) =>
  Effect.scoped(Effect.gen(function*() {
    yield* (yield* ws.checkout(stream)).attempting
    const dir = Workspace.directoryOf((yield* ws.checkout(stream)).files)!
    const result = yield* Process.run([process.execPath, "-e", script], { cwd: dir, env: { BRAID_WORKTREE: dir, MAIN: repo } })
    assert.strictEqual(result.exitCode, 0, result.stderr)
    return yield* (yield* ws.checkout(stream)).strays
  }))

const test = (title: string, body: () => Effect.Effect<void, unknown, Scope.Scope | NodeContext.NodeContext>) =>
  it.scopedLive(title, () => body().pipe(Effect.provide(NodeContext.layer)), 60_000)

const write = (file: string, text: string) => `require("node:fs").writeFileSync(${file}, ${JSON.stringify(text)})`

describe("confinement (git)", () => {
  test("an agent writing into the main checkout is found, naming the file; what it wrote is not committed", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const ws = yield* prepared(repo, ["api"])
      const found = yield* attempt(
        ws,
        repo,
        "api",
        `${write(`require("node:path").join(process.env.MAIN, "stray.txt")`, "oops\n")}
${write(`require("node:path").join(process.env.MAIN, "src", "app.ts")`, "changed\n")}
${write(`"own.txt"`, "mine\n")}`
      )
      assert.deepStrictEqual(found, [{ where: "main checkout", paths: ["src/app.ts", "stray.txt"] }])
      // Reported once: the next look finds nothing new.
      assert.deepStrictEqual(yield* (yield* ws.checkout("api")).strays, [])
      // The main checkout is the user's: braid leaves what was written there for them to see.
      assert.strictEqual(fs.readFileSync(path.join(repo, "stray.txt"), "utf8"), "oops\n")
      assert.strictEqual(git(repo, "log", "--all", "--format=%H", "--", "stray.txt"), "")
    }))

  test("a write into the main checkout is told to every agent at work when it appeared, never to one that started after it", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const ws = yield* prepared(repo, ["writer", "early", "late"])
      const begin = (stream: string) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          yield* Scope.extend((yield* ws.checkout(stream)).attempting, scope)
          return scope
        })
      const writer = yield* begin("writer")
      const early = yield* begin("early")
      fs.writeFileSync(path.join(repo, "intrusion.txt"), "the writer's\n")
      const late = yield* begin("late")
      fs.writeFileSync(path.join(Workspace.directoryOf((yield* ws.checkout("late")).files)!, "own.txt"), "mine\n")
      // It finished first, but started after the write: not its deed.
      assert.deepStrictEqual(yield* (yield* ws.checkout("late")).strays, [])
      yield* Scope.close(late, Exit.void)
      const alongside = (s: string) => `the agents of stream ${s} were at work too when it appeared, and which one made it cannot be told`
      assert.deepStrictEqual(yield* (yield* ws.checkout("early")).strays, [{ where: "main checkout", paths: ["intrusion.txt"], note: alongside("writer"), alongside: ["writer"] }])
      yield* Scope.close(early, Exit.void)
      assert.deepStrictEqual(yield* (yield* ws.checkout("writer")).strays, [{ where: "main checkout", paths: ["intrusion.txt"], note: alongside("early"), alongside: ["early"] }])
      yield* Scope.close(writer, Exit.void)
      // A change with no agent at work is nobody's attempt's.
      fs.writeFileSync(path.join(repo, "the-user.txt"), "a person's edit\n")
      assert.deepStrictEqual(yield* attempt(ws, repo, "late", write(`"more.txt"`, "more\n")), [])
    }))

  test("a user's own changes from before the run are not reported, but an agent changing them again is", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      fs.writeFileSync(path.join(repo, "README.md"), "the user's edit\n")
      fs.writeFileSync(path.join(repo, "notes.txt"), "the user's notes\n")
      fs.writeFileSync(path.join(repo, "debug.log"), "ignored\n")
      const ws = yield* prepared(repo, ["api"])
      assert.deepStrictEqual(yield* attempt(ws, repo, "api", write(`"a.txt"`, "a\n")), [])
      // Writing an ignored file is not a change git would record either.
      assert.deepStrictEqual(yield* attempt(ws, repo, "api", write(`process.env.MAIN + "/debug.log"`, "more\n")), [])
      const found = yield* attempt(ws, repo, "api", write(`process.env.MAIN + "/notes.txt"`, "the agent's notes, longer\n"))
      assert.deepStrictEqual(found, [{ where: "main checkout", paths: ["notes.txt"] }])
    }))

  test("an agent writing into an idle stream's worktree is found; what it wrote is removed there, so it never lands", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const ws = yield* prepared(repo, ["api", "ui"])
      const ui = Workspace.directoryOf((yield* ws.checkout("ui")).files)!
      const found = yield* attempt(
        ws,
        repo,
        "api",
        write(`require("node:path").join(process.env.BRAID_WORKTREE, "..", "ui", "src", "app.ts")`, "hijacked\n")
      )
      assert.deepStrictEqual(found, [{ where: "worktree of stream ui", paths: ["src/app.ts"] }])
      assert.strictEqual(fs.readFileSync(path.join(ui, "src", "app.ts"), "utf8"), "export const app = 1\n")
      // ui's next attempt records nothing of it.
      const change = yield* (yield* ws.checkout("ui")).commitAttempt({ taskId: "ui-1", title: "nothing", attempt: 1 })
      assert.isNull(change.commit)
    }))

  test("a stream with an attempt in progress is left alone; once it is over, its own changes are not strays", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const ws = yield* prepared(repo, ["api", "ui"])
      const ui = Workspace.directoryOf((yield* ws.checkout("ui")).files)!
      const found = yield* Effect.scoped(Effect.gen(function*() {
        yield* (yield* ws.checkout("ui")).attempting
        // ui's own agent at work, and its review leaving a file behind after the commit.
        fs.writeFileSync(path.join(ui, "page.ts"), "page\n")
        yield* (yield* ws.checkout("ui")).commitAttempt({ taskId: "ui-1", title: "page", attempt: 1 })
        fs.writeFileSync(path.join(ui, "coverage.txt"), "from a check\n")
        return yield* attempt(ws, repo, "api", write(`"api.ts"`, "api\n"))
      }))
      assert.deepStrictEqual(found, [])
      assert.deepStrictEqual(yield* attempt(ws, repo, "api", write(`"api2.ts"`, "api\n")), [])
    }))

  test("an attempt costs two git processes (add, commit), none when it changed nothing; looking for strays none", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo
      const ws = yield* prepared(repo, ["api", "ui", "docs"])
      const files = (yield* ws.checkout("api")).files
      const count = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.gen(function*() {
          const before = GitWorkspace.gitCalls()
          const value = yield* effect
          return [value, GitWorkspace.gitCalls() - before] as const
        })
      const look = Effect.scoped(Effect.zipRight((yield* ws.checkout("api")).attempting, (yield* ws.checkout("api")).strays))
      // The first looks may ask git about what prepare itself touched a moment before its snapshots.
      for (let i = 0; i < 3; i++) yield* look
      const [, strays] = yield* count(look)
      assert.strictEqual(strays, 0)
      yield* files.write("src/new.ts", "new\n")
      yield* files.write("src/app.ts", "changed\n")
      const [change, commit] = yield* count((yield* ws.checkout("api")).commitAttempt({ taskId: "t1", title: "one", attempt: 1 }))
      assert.deepStrictEqual(change.files, ["src/app.ts", "src/new.ts"])
      assert.strictEqual(commit, 2)
      const [head, heads] = yield* count(ws.branch("api").head)
      assert.strictEqual(head, change.commit)
      assert.strictEqual(heads, 0)
      const [nothing, unchanged] = yield* count((yield* ws.checkout("api")).commitAttempt({ taskId: "t1", title: "one", attempt: 2 }))
      assert.isNull(nothing.commit)
      assert.strictEqual(unchanged, 0)
      // An agent that staged by itself: git tells what changed (one more process), and it is still right.
      yield* files.write("src/staged.ts", "staged\n")
      git(Workspace.directoryOf(files)!, "add", "src/staged.ts")
      yield* files.write("src/later.ts", "later\n")
      const [both, fallback] = yield* count((yield* ws.checkout("api")).commitAttempt({ taskId: "t1", title: "one", attempt: 3 }))
      assert.deepStrictEqual(both.files, ["src/later.ts", "src/staged.ts"])
      assert.strictEqual(fallback, 3)
    }))

  describe("a whole run", () => {
    /** A script agent: each task's script (node) runs in its stream's worktree, told the main checkout in `MAIN`. */
    const scriptAgents = (repo: string, scripts: Record<string, string>) =>
      Layer.mergeAll(
        Layer.succeed(Agent.AgentRegistry, {
          check: () => Effect.void,
          forStream: () => ({
            name: "script",
            attempt: (request: Agent.AttemptRequest) =>
              Process.run([process.execPath, "-e", scripts[request.task.id] ?? ""], {
                cwd: Workspace.directoryOf(request.files)!,
                env: { MAIN: repo }
              }).pipe(
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

    test("an agent alone at work writing into the main checkout fails its task, naming the file, and nothing of it lands", () =>
      Effect.gen(function*() {
        const repo = yield* tempRepo
        const base = git(repo, "rev-parse", "main").trim()
        const plan = yield* Plan.decode({
          streams: [{ name: "api", type: "api" }, { name: "ui", type: "ui" }],
          // ui-1 waits for api-1, so api-1's agent is alone at work: the deed is certainly its own.
          tasks: [{ id: "api-1", title: "api", stream: "api" }, { id: "ui-1", title: "ui", stream: "ui", dependsOn: ["api-1"] }]
        })
        const report = yield* Orchestrator.run(plan, { runId: "r1" }).pipe(
          Effect.provide(Layer.mergeAll(
            scriptAgents(repo, {
              "api-1": `${write(`"api.ts"`, "api\n")}; ${write(`process.env.MAIN + "/stray.txt"`, "oops\n")}`,
              "ui-1": write(`"ui.ts"`, "ui\n")
            }),
            GitWorkspace.layer({ repo })
          ))
        )
        const api = report.streamResults.find((r) => r.streamName === "api")!.results[0]!
        assert.strictEqual(api.status, "failed")
        assert.match(api.error ?? "", /changed files outside stream "api"'s worktree: main checkout: stray\.txt/)
        // The attempt is recorded (what the agent spent stays in the report), never as reviewed or committed work.
        assert.strictEqual(api.attempts.length, 1)
        assert.isNull(api.attempts[0]!.review)
        assert.isNull(api.attempts[0]!.commit)
        assert.match(api.attempts[0]!.summary, /^failed: .*stray\.txt/)
        // Nothing of the attempt was committed anywhere, and nothing landed.
        assert.strictEqual(git(repo, "log", "--all", "--format=%H", "--", "api.ts", "stray.txt"), "")
        assert.isFalse(report.mergeResult.landed)
        assert.strictEqual(git(repo, "rev-parse", "main").trim(), base)
      }))
  })
})
