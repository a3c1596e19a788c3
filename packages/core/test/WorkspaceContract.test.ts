/**
 * One contract, every implementation: the same scenarios and the same assertions run over
 * the in-memory workspace and the git workspace (a fresh temporary repository per test).
 */
import type { CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CommandSpec from "../src/CommandSpec.js"
import * as GitWorkspace from "../src/GitWorkspace.js"
import * as MemoryWorkspace from "../src/MemoryWorkspace.js"
import * as Workspace from "../src/Workspace.js"

const baseFiles: Record<string, string> = {
  "a.txt": "base\n",
  "b.txt": "bee\n",
  "src/c.txt": "sea\n"
}

/** A fresh repository with `baseFiles` committed on `main`, removed after the test. */
const tempRepo = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-contract-")))
    const git = (...args: Array<string>) =>
      execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@localhost", ...args], { cwd: dir, stdio: "pipe" })
    git("init", "--quiet", "--initial-branch=main")
    for (const [p, content] of Object.entries(baseFiles)) {
      fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true })
      fs.writeFileSync(path.join(dir, p), content)
    }
    git("add", "--all")
    git("commit", "--quiet", "-m", "base")
    return dir
  }),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

type MakeLayer = () => Layer.Layer<Workspace.Workspace, never, CommandExecutor.CommandExecutor | Scope.Scope>

const command = (argv: [string, ...Array<string>]) => new CommandSpec.Command({ name: argv.join(" "), argv, timeoutMs: 30_000 })

const catFile = (file: string) =>
  command(["node", "-e", `process.stdout.write(require('fs').readFileSync(${JSON.stringify(file)}, 'utf8'))`])

const attempt = (taskId: string, n = 1) => ({ taskId, title: `do ${taskId}`, attempt: n })

/** Prepares a run with the given streams and writes one set of files in each, committed. */
const streamsWith = (edits: Record<string, Record<string, string>>) =>
  Effect.gen(function*() {
    const ws = yield* Workspace.Workspace
    const prepared = yield* ws.prepare({ runId: "r1", streams: Object.keys(edits).map((name) => ({ name })), land: true })
    for (const [stream, files] of Object.entries(edits)) {
      for (const [p, content] of Object.entries(files)) yield* ws.files(stream).write(p, content)
      yield* ws.commitAttempt(stream, attempt(`${stream}-task`))
    }
    return { ws, prepared }
  })

const contract = (name: string, makeLayer: MakeLayer) =>
  describe(`Workspace contract: ${name}`, () => {
    const test = (title: string, body: () => Effect.Effect<void, unknown, Workspace.Workspace>) =>
      it.scopedLive(title, () =>
        body().pipe(
          Effect.provide(makeLayer()),
          Effect.provide(NodeContext.layer)
        ), 60_000)

    test("an attempt's files are committed and reported as the stream's changes", () =>
      Effect.gen(function*() {
        const ws = yield* Workspace.Workspace
        const prepared = yield* ws.prepare({ runId: "r1", streams: [{ name: "s1" }, { name: "s2" }], land: true })
        assert.strictEqual(prepared.target, "main")
        assert.strictEqual(yield* ws.head(Workspace.streamLocation("s1")), prepared.base)

        const files = ws.files("s1")
        assert.strictEqual(yield* files.read("a.txt"), "base\n")
        assert.strictEqual(yield* files.read("missing.txt"), undefined)
        yield* files.write("a.txt", "one\n")
        yield* files.write("deep/new/d.txt", "dee\n")
        yield* files.remove("b.txt")
        assert.deepStrictEqual(yield* files.list(), ["a.txt", "deep/new/d.txt", "src/c.txt"])

        const change = yield* ws.commitAttempt("s1", attempt("t1"))
        assert.isNotNull(change.commit)
        assert.deepStrictEqual(change.files, ["a.txt", "b.txt", "deep/new/d.txt"])
        assert.strictEqual(yield* ws.head(Workspace.streamLocation("s1")), change.commit)
        assert.deepStrictEqual(yield* ws.changedFiles("s1"), ["a.txt", "b.txt", "deep/new/d.txt"])

        // The other stream did not see any of it.
        assert.strictEqual(yield* ws.files("s2").read("a.txt"), "base\n")
        assert.deepStrictEqual(yield* ws.changedFiles("s2"), [])
        assert.strictEqual(yield* ws.head(Workspace.streamLocation("s2")), prepared.base)
      }))

    test("an attempt that changed nothing records no commit", () =>
      Effect.gen(function*() {
        const ws = yield* Workspace.Workspace
        const prepared = yield* ws.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const change = yield* ws.commitAttempt("s1", attempt("t1"))
        assert.deepStrictEqual({ commit: change.commit, files: change.files }, { commit: null, files: [] })
        // Writing a file back with the same content is no change either.
        yield* ws.files("s1").write("a.txt", "base\n")
        assert.isNull((yield* ws.commitAttempt("s1", attempt("t1", 2))).commit)
        assert.strictEqual(yield* ws.head(Workspace.streamLocation("s1")), prepared.base)
        assert.deepStrictEqual(yield* ws.changedFiles("s1"), [])
      }))

    test("successive attempts accumulate in the stream", () =>
      Effect.gen(function*() {
        const ws = yield* Workspace.Workspace
        yield* ws.prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        yield* ws.files("s1").write("a.txt", "one\n")
        const first = yield* ws.commitAttempt("s1", attempt("t1"))
        yield* ws.files("s1").write("b.txt", "two\n")
        const second = yield* ws.commitAttempt("s1", attempt("t1", 2))
        assert.notStrictEqual(second.commit, first.commit)
        assert.deepStrictEqual(second.files, ["b.txt"])
        assert.deepStrictEqual(yield* ws.changedFiles("s1"), ["a.txt", "b.txt"])
      }))

    test("probeMerge finds no conflict between streams changing different files, and the path they both changed", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({
          s1: { "a.txt": "one\n" },
          s2: { "b.txt": "two\n" },
          s3: { "a.txt": "three\n", "src/c.txt": "see\n" }
        })
        yield* ws.beginIntegration()
        assert.deepStrictEqual(yield* ws.probeMerge("s1"), [])
        assert.deepStrictEqual(yield* ws.probeMerge("s3"), [])
        const merged = yield* ws.mergeStream("s1", "none")
        assert.strictEqual(merged._tag, "Merged")
        assert.deepStrictEqual(yield* ws.probeMerge("s2"), [])
        assert.deepStrictEqual(yield* ws.probeMerge("s3"), ["a.txt"])
        // Probing changed nothing: the integration still holds only s1's change.
        const integration = ws.integrationFiles()
        assert.strictEqual(yield* integration.read("a.txt"), "one\n")
        assert.strictEqual(yield* integration.read("src/c.txt"), "sea\n")
      }))

    test("merging without a side stops at the conflict with markers; concluding needs them gone", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n", "b.txt": "two\n" } })
        yield* ws.beginIntegration()
        const first = yield* ws.mergeStream("s1", "none")
        assert.strictEqual(first._tag, "Merged")
        const before = yield* ws.head(Workspace.integrationLocation)

        const outcome = yield* ws.mergeStream("s2", "none")
        assert.deepStrictEqual(outcome, { _tag: "Conflicted", paths: ["a.txt"] })
        const integration = ws.integrationFiles()
        const conflicted = yield* integration.read("a.txt")
        assert.isTrue(Workspace.hasConflictMarkers(conflicted ?? ""))
        assert.include(conflicted, "one")
        assert.include(conflicted, "two")
        assert.strictEqual(yield* integration.read("b.txt"), "two\n")
        assert.strictEqual(yield* ws.head(Workspace.integrationLocation), before)

        const refusal = yield* Effect.flip(ws.concludeMerge("s2"))
        assert.strictEqual(refusal._tag, "ConflictMarkersRemain")
        assert.deepStrictEqual(refusal._tag === "ConflictMarkersRemain" ? refusal.paths : [], ["a.txt"])

        yield* integration.write("a.txt", "one and two\n")
        const commit = yield* ws.concludeMerge("s2")
        assert.strictEqual(yield* ws.head(Workspace.integrationLocation), commit)
        assert.notStrictEqual(commit, before)
        assert.strictEqual(yield* integration.read("a.txt"), "one and two\n")
        assert.strictEqual(yield* integration.read("b.txt"), "two\n")
        assert.deepStrictEqual(yield* ws.probeMerge("s2"), [])
      }))

    test("concluding when no merge of that stream is open fails", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        yield* ws.beginIntegration()
        const error = yield* Effect.flip(ws.concludeMerge("s1"))
        assert.strictEqual(error._tag, "WorkspaceFailed")
      }))

    test("merging with the integration side keeps the integration's hunk", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n", "b.txt": "two\n" } })
        yield* ws.beginIntegration()
        yield* ws.mergeStream("s1", "none")
        const outcome = yield* ws.mergeStream("s2", "integration")
        assert.strictEqual(outcome._tag, "Merged")
        assert.strictEqual(outcome._tag === "Merged" ? outcome.commit : "", yield* ws.head(Workspace.integrationLocation))
        assert.strictEqual(yield* ws.integrationFiles().read("a.txt"), "one\n")
        assert.strictEqual(yield* ws.integrationFiles().read("b.txt"), "two\n")
      }))

    test("merging with the stream side takes the stream's hunk", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n", "b.txt": "two\n" } })
        yield* ws.beginIntegration()
        yield* ws.mergeStream("s1", "stream")
        const outcome = yield* ws.mergeStream("s2", "stream")
        assert.strictEqual(outcome._tag, "Merged")
        assert.strictEqual(yield* ws.integrationFiles().read("a.txt"), "two\n")
        assert.strictEqual(yield* ws.integrationFiles().read("b.txt"), "two\n")
      }))

    test("a command in a stream runs among that stream's files", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: {} })
        const s1 = yield* ws.exec(Workspace.streamLocation("s1"), catFile("a.txt"))
        assert.strictEqual(s1.exitCode, 0)
        assert.isFalse(s1.timedOut)
        assert.strictEqual(s1.outputTail, "one")
        const s2 = yield* ws.exec(Workspace.streamLocation("s2"), catFile("a.txt"))
        assert.strictEqual(s2.outputTail, "base")
        const env = yield* ws.exec(
          Workspace.streamLocation("s1"),
          command(["node", "-e", "process.stdout.write(process.env.BRAID_TEST ?? 'unset')"]),
          { BRAID_TEST: "set" }
        )
        assert.strictEqual(env.outputTail, "set")
        const failing = yield* ws.exec(Workspace.streamLocation("s1"), command(["node", "-e", "process.exit(3)"]))
        assert.strictEqual(failing.exitCode, 3)
      }))

    test("a program that does not exist is a failed command (exit 127), not a workspace failure", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: {} })
        const result = yield* ws.exec(Workspace.streamLocation("s1"), command(["braid-no-such-program-xyz"]))
        assert.strictEqual(result.exitCode, 127)
        assert.notStrictEqual(result.outputTail, "")
      }))

    test("a command in the integration sees the merged files", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        yield* ws.beginIntegration()
        yield* ws.mergeStream("s1", "none")
        const result = yield* ws.exec(Workspace.integrationLocation, catFile("a.txt"))
        assert.strictEqual(result.outputTail, "one")
      }))

    test("landing advances the target to the integration", () =>
      Effect.gen(function*() {
        const { prepared, ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "b.txt": "two\n" } })
        yield* ws.beginIntegration()
        yield* ws.mergeStream("s1", "none")
        yield* ws.mergeStream("s2", "none")
        const integration = yield* ws.head(Workspace.integrationLocation)
        const landing = yield* ws.land()
        assert.deepStrictEqual(
          { target: landing.target, commit: landing.commit, previous: landing.previous, fastForward: landing.fastForward },
          { target: "main", commit: integration, previous: prepared.base, fastForward: true }
        )
        yield* ws.release({ keepWorktrees: false })
      }))

    test("absorbing conflicting work leaves the merge open with markers; markers refuse concluding; a resolution concludes it", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ db: { "shared.txt": "from db\n" }, api: { "shared.txt": "from api\n" } })
        const dbHead = yield* ws.head(Workspace.streamLocation("db"))
        const apiHead = yield* ws.head(Workspace.streamLocation("api"))
        assert.include(yield* ws.diff("db", ["shared.txt"]), "+from db")
        const opened = yield* ws.absorb("api", dbHead, "db-task from stream db")
        assert.deepStrictEqual(opened, { _tag: "Conflicted", paths: ["shared.txt"] })
        const marked = (yield* ws.files("api").read("shared.txt")) ?? ""
        assert.isTrue(Workspace.hasConflictMarkers(marked), marked)
        const refused = yield* Effect.flip(ws.concludeAbsorb("api", "db-task from stream db"))
        assert.strictEqual(refused._tag, "ConflictMarkersRemain")
        yield* ws.files("api").write("shared.txt", "from api\nfrom db\n")
        const head = yield* ws.concludeAbsorb("api", "db-task from stream db")
        assert.notStrictEqual(head, apiHead)
        assert.strictEqual(yield* ws.head(Workspace.streamLocation("api")), head)
        assert.deepStrictEqual(yield* ws.absorb("api", dbHead, "again"), { _tag: "Absorbed", commit: null })
        // The merge is not the stream's own change.
        assert.deepStrictEqual(yield* ws.changedFiles("api"), ["shared.txt"])
      }))

    test("absorbing conflicting work with a side keeps that side's hunks; discard drops an open merge", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ db: { "shared.txt": "from db\n" }, api: { "shared.txt": "from api\n" }, ui: { "shared.txt": "from ui\n" } })
        const dbHead = yield* ws.head(Workspace.streamLocation("db"))
        const uiHead = yield* ws.head(Workspace.streamLocation("ui"))
        const theirs = yield* ws.absorb("api", dbHead, "db", "theirs")
        assert.strictEqual(theirs._tag, "Absorbed")
        assert.strictEqual(yield* ws.files("api").read("shared.txt"), "from db\n")
        const apiHead = yield* ws.head(Workspace.streamLocation("api"))
        assert.strictEqual((yield* ws.absorb("api", uiHead, "ui"))._tag, "Conflicted")
        yield* ws.discard("api")
        assert.strictEqual(yield* ws.files("api").read("shared.txt"), "from db\n")
        assert.strictEqual(yield* ws.head(Workspace.streamLocation("api")), apiHead)
        assert.strictEqual((yield* ws.absorb("api", uiHead, "ui", "ours"))._tag, "Absorbed")
        assert.strictEqual(yield* ws.files("api").read("shared.txt"), "from db\n")
      }))

    test("absorbing another stream's work brings its files in without making them this stream's changes", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ db: { "db.txt": "orders\n" }, api: {} })
        const dbHead = yield* ws.head(Workspace.streamLocation("db"))
        const absorbed = yield* ws.absorb("api", dbHead, "db-task from stream db")
        assert.strictEqual(absorbed._tag, "Absorbed")
        assert.isNotNull(absorbed._tag === "Absorbed" ? absorbed.commit : null)
        assert.strictEqual(yield* ws.files("api").read("db.txt"), "orders\n")
        assert.deepStrictEqual(yield* ws.absorb("api", dbHead, "db-task from stream db"), { _tag: "Absorbed", commit: null })
        yield* ws.files("api").write("api.txt", "checkout\n")
        const change = yield* ws.commitAttempt("api", attempt("api-task", 2))
        assert.deepStrictEqual(change.files, ["api.txt"])
        assert.deepStrictEqual(yield* ws.changedFiles("api"), ["api.txt"])
        assert.deepStrictEqual(yield* ws.changedFiles("db"), ["db.txt"])
        // Integration in dependency order: both merge cleanly, the result has both.
        yield* ws.beginIntegration()
        assert.strictEqual((yield* ws.mergeStream("db", "none"))._tag, "Merged")
        assert.deepStrictEqual(yield* ws.probeMerge("api"), [])
        assert.strictEqual((yield* ws.mergeStream("api", "none"))._tag, "Merged")
        assert.strictEqual(yield* ws.integrationFiles().read("api.txt"), "checkout\n")
        assert.strictEqual(yield* ws.integrationFiles().read("db.txt"), "orders\n")
      }))

    test("an attempt cut off before its commit is discarded; a recorded attempt is found again", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        const found = yield* ws.findAttempt("s1", { taskId: "s1-task", attempt: 1 })
        assert.deepStrictEqual(found?.files, ["a.txt"])
        assert.strictEqual(found?.commit, yield* ws.head(Workspace.streamLocation("s1")))
        assert.isUndefined(yield* ws.findAttempt("s1", { taskId: "s1-task", attempt: 2 }))
        yield* ws.files("s1").write("a.txt", "half-written\n")
        yield* ws.files("s1").write("new.txt", "stray\n")
        yield* ws.discard("s1")
        assert.strictEqual(yield* ws.files("s1").read("a.txt"), "one\n")
        assert.isUndefined(yield* ws.files("s1").read("new.txt"))
      }))

    test("beginIntegration with restart goes back to the base", () =>
      Effect.gen(function*() {
        const { prepared, ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        yield* ws.beginIntegration()
        yield* ws.mergeStream("s1", "none")
        assert.notStrictEqual(yield* ws.head(Workspace.integrationLocation), prepared.base)
        yield* ws.beginIntegration()
        assert.strictEqual(yield* ws.integrationFiles().read("a.txt"), "one\n")
        yield* ws.beginIntegration({ restart: true })
        assert.strictEqual(yield* ws.integrationFiles().read("a.txt"), "base\n")
      }))
  })

contract("memory", () => MemoryWorkspace.layer({ base: baseFiles }))

contract("git", () => Layer.unwrapScoped(Effect.map(tempRepo, (repo) => GitWorkspace.layer({ repo }))))
