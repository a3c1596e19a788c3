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
import * as CommandSpec from "../src/run/CommandSpec.js"
import * as GitWorkspace from "../src/workspaces/GitWorkspace.js"
import * as MemoryWorkspace from "../src/workspaces/MemoryWorkspace.js"
import * as Workspace from "../src/ports/Workspace.js"

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
    const ws = yield* (yield* Workspace.Workspace).prepare({ runId: "r1", streams: Object.keys(edits).map((name) => ({ name })), land: true })
    for (const [stream, files] of Object.entries(edits)) {
      for (const [p, content] of Object.entries(files)) yield* (yield* ws.checkout(stream)).files.write(p, content)
      yield* (yield* ws.checkout(stream)).commitAttempt(attempt(`${stream}-task`))
    }
    return { ws, prepared: ws }
  })

const contract = (name: string, makeLayer: MakeLayer) =>
  describe(`Workspace contract: ${name}`, () => {
    const test = (title: string, body: () => Effect.Effect<void, unknown, Workspace.Workspace | Scope.Scope>) =>
      it.scopedLive(title, () =>
        body().pipe(
          Effect.provide(makeLayer()),
          Effect.provide(NodeContext.layer)
        ), 60_000)

    test("an attempt's files are committed and reported as the stream's changes", () =>
      Effect.gen(function*() {
        const ws = yield* (yield* Workspace.Workspace).prepare({ runId: "r1", streams: [{ name: "s1" }, { name: "s2" }], land: true })
        assert.strictEqual(ws.target, "main")
        assert.strictEqual(yield* ws.branch("s1").head, ws.base)

        const files = (yield* ws.checkout("s1")).files
        assert.strictEqual(yield* files.read("a.txt"), "base\n")
        assert.strictEqual(yield* files.read("missing.txt"), undefined)
        yield* files.write("a.txt", "one\n")
        yield* files.write("deep/new/d.txt", "dee\n")
        yield* files.remove("b.txt")
        assert.deepStrictEqual(yield* files.list(), ["a.txt", "deep/new/d.txt", "src/c.txt"])

        const change = yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1"))
        assert.isNotNull(change.commit)
        assert.deepStrictEqual(change.files, ["a.txt", "b.txt", "deep/new/d.txt"])
        assert.strictEqual(yield* ws.branch("s1").head, change.commit)
        assert.deepStrictEqual(yield* ws.branch("s1").changedFiles, ["a.txt", "b.txt", "deep/new/d.txt"])

        // The other stream did not see any of it.
        assert.strictEqual(yield* (yield* ws.checkout("s2")).files.read("a.txt"), "base\n")
        assert.deepStrictEqual(yield* ws.branch("s2").changedFiles, [])
        assert.strictEqual(yield* ws.branch("s2").head, ws.base)
      }))

    test("an attempt that changed nothing records no commit", () =>
      Effect.gen(function*() {
        const ws = yield* (yield* Workspace.Workspace).prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        const change = yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1"))
        assert.deepStrictEqual({ commit: change.commit, files: change.files }, { commit: null, files: [] })
        // Writing a file back with the same content is no change either.
        yield* (yield* ws.checkout("s1")).files.write("a.txt", "base\n")
        assert.isNull((yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1", 2))).commit)
        assert.strictEqual(yield* ws.branch("s1").head, ws.base)
        assert.deepStrictEqual(yield* ws.branch("s1").changedFiles, [])
      }))

    test("successive attempts accumulate in the stream", () =>
      Effect.gen(function*() {
        const ws = yield* (yield* Workspace.Workspace).prepare({ runId: "r1", streams: [{ name: "s1" }], land: false })
        yield* (yield* ws.checkout("s1")).files.write("a.txt", "one\n")
        const first = yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1"))
        yield* (yield* ws.checkout("s1")).files.write("b.txt", "two\n")
        const second = yield* (yield* ws.checkout("s1")).commitAttempt(attempt("t1", 2))
        assert.notStrictEqual(second.commit, first.commit)
        assert.deepStrictEqual(second.files, ["b.txt"])
        assert.deepStrictEqual(yield* ws.branch("s1").changedFiles, ["a.txt", "b.txt"])
      }))

    test("probeMerge finds no conflict between streams changing different files, and the path they both changed", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({
          s1: { "a.txt": "one\n" },
          s2: { "b.txt": "two\n" },
          s3: { "a.txt": "three\n", "src/c.txt": "see\n" }
        })
        yield* ws.integration.begin()
        assert.deepStrictEqual(yield* ws.integration.probe("s1"), [])
        assert.deepStrictEqual(yield* ws.integration.probe("s3"), [])
        const merged = yield* ws.integration.merge("s1", "none")
        assert.strictEqual(merged._tag, "Merged")
        assert.deepStrictEqual(yield* ws.integration.probe("s2"), [])
        assert.deepStrictEqual(yield* ws.integration.probe("s3"), ["a.txt"])
        // Probing changed nothing: the integration still holds only s1's change.
        const integration = ws.integration.files
        assert.strictEqual(yield* integration.read("a.txt"), "one\n")
        assert.strictEqual(yield* integration.read("src/c.txt"), "sea\n")
      }))

    test("merging without a side stops at the conflict with markers; concluding needs them gone", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n", "b.txt": "two\n" } })
        yield* ws.integration.begin()
        const first = yield* ws.integration.merge("s1", "none")
        assert.strictEqual(first._tag, "Merged")
        const before = yield* ws.integration.head

        const outcome = yield* ws.integration.merge("s2", "none")
        assert.deepStrictEqual(outcome, { _tag: "Conflicted", paths: ["a.txt"] })
        const integration = ws.integration.files
        const conflicted = yield* integration.read("a.txt")
        assert.isTrue(Workspace.hasConflictMarkers(conflicted ?? ""))
        assert.include(conflicted, "one")
        assert.include(conflicted, "two")
        assert.strictEqual(yield* integration.read("b.txt"), "two\n")
        assert.strictEqual(yield* ws.integration.head, before)

        const refusal = yield* Effect.flip(ws.integration.conclude("s2"))
        assert.strictEqual(refusal._tag, "ConflictMarkersRemain")
        assert.deepStrictEqual(refusal._tag === "ConflictMarkersRemain" ? refusal.paths : [], ["a.txt"])

        yield* integration.write("a.txt", "one and two\n")
        const commit = yield* ws.integration.conclude("s2")
        assert.strictEqual(yield* ws.integration.head, commit)
        assert.notStrictEqual(commit, before)
        assert.strictEqual(yield* integration.read("a.txt"), "one and two\n")
        assert.strictEqual(yield* integration.read("b.txt"), "two\n")
        assert.deepStrictEqual(yield* ws.integration.probe("s2"), [])
      }))

    test("concluding when no merge of that stream is open fails", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        const error = yield* Effect.flip(ws.integration.conclude("s1"))
        assert.strictEqual(error._tag, "WorkspaceFailed")
      }))

    test("merging with the integration side keeps the integration's hunk", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n", "b.txt": "two\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        const outcome = yield* ws.integration.merge("s2", "integration")
        assert.strictEqual(outcome._tag, "Merged")
        assert.strictEqual(outcome._tag === "Merged" ? outcome.commit : "", yield* ws.integration.head)
        assert.strictEqual(yield* ws.integration.files.read("a.txt"), "one\n")
        assert.strictEqual(yield* ws.integration.files.read("b.txt"), "two\n")
      }))

    test("merging with the stream side takes the stream's hunk", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "a.txt": "two\n", "b.txt": "two\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "stream")
        const outcome = yield* ws.integration.merge("s2", "stream")
        assert.strictEqual(outcome._tag, "Merged")
        assert.strictEqual(yield* ws.integration.files.read("a.txt"), "two\n")
        assert.strictEqual(yield* ws.integration.files.read("b.txt"), "two\n")
      }))

    test("a command in a stream runs among that stream's files", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: {} })
        const s1 = yield* (yield* ws.checkout("s1")).exec(catFile("a.txt"))
        assert.strictEqual(s1.exitCode, 0)
        assert.isFalse(s1.timedOut)
        assert.strictEqual(s1.outputTail, "one")
        const s2 = yield* (yield* ws.checkout("s2")).exec(catFile("a.txt"))
        assert.strictEqual(s2.outputTail, "base")
        const env = yield* (yield* ws.checkout("s1")).exec(command(["node", "-e", "process.stdout.write(process.env.BRAID_TEST ?? 'unset')"]),
          { BRAID_TEST: "set" }
        )
        assert.strictEqual(env.outputTail, "set")
        const failing = yield* (yield* ws.checkout("s1")).exec(command(["node", "-e", "process.exit(3)"]))
        assert.strictEqual(failing.exitCode, 3)
      }))

    test("a program that does not exist is a failed command (exit 127), not a workspace failure", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: {} })
        const result = yield* (yield* ws.checkout("s1")).exec(command(["braid-no-such-program-xyz"]))
        assert.strictEqual(result.exitCode, 127)
        assert.notStrictEqual(result.outputTail, "")
      }))

    test("a command in the integration sees the merged files", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        const result = yield* ws.integration.exec(catFile("a.txt"))
        assert.strictEqual(result.outputTail, "one")
      }))

    test("landing advances the target to the integration", () =>
      Effect.gen(function*() {
        const { prepared, ws } = yield* streamsWith({ s1: { "a.txt": "one\n" }, s2: { "b.txt": "two\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        yield* ws.integration.merge("s2", "none")
        const integration = yield* ws.integration.head
        const landing = yield* ws.landing.land
        assert.deepStrictEqual(
          { target: landing.target, commit: landing.commit, previous: landing.previous, fastForward: landing.fastForward },
          { target: "main", commit: integration, previous: prepared.base, fastForward: true }
        )
      }))

    test("absorbing conflicting work leaves the merge open with markers; markers refuse concluding; a resolution concludes it", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ db: { "shared.txt": "from db\n" }, api: { "shared.txt": "from api\n" } })
        const dbHead = yield* ws.branch("db").head
        const apiHead = yield* ws.branch("api").head
        assert.include(yield* ws.branch("db").diff(["shared.txt"]), "+from db")
        const opened = yield* (yield* ws.checkout("api")).absorb(dbHead, "db-task from stream db")
        assert.deepStrictEqual(opened, { _tag: "Conflicted", paths: ["shared.txt"] })
        const marked = (yield* (yield* ws.checkout("api")).files.read("shared.txt")) ?? ""
        assert.isTrue(Workspace.hasConflictMarkers(marked), marked)
        const refused = yield* Effect.flip((yield* ws.checkout("api")).concludeAbsorb("db-task from stream db"))
        assert.strictEqual(refused._tag, "ConflictMarkersRemain")
        yield* (yield* ws.checkout("api")).files.write("shared.txt", "from api\nfrom db\n")
        const head = yield* (yield* ws.checkout("api")).concludeAbsorb("db-task from stream db")
        assert.notStrictEqual(head, apiHead)
        assert.strictEqual(yield* ws.branch("api").head, head)
        assert.deepStrictEqual(yield* (yield* ws.checkout("api")).absorb(dbHead, "again"), { _tag: "Absorbed", commit: null })
        // The merge is not the stream's own change.
        assert.deepStrictEqual(yield* ws.branch("api").changedFiles, ["shared.txt"])
      }))

    test("absorbing conflicting work with a side keeps that side's hunks; discard drops an open merge", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ db: { "shared.txt": "from db\n" }, api: { "shared.txt": "from api\n" }, ui: { "shared.txt": "from ui\n" } })
        const dbHead = yield* ws.branch("db").head
        const uiHead = yield* ws.branch("ui").head
        const theirs = yield* (yield* ws.checkout("api")).absorb(dbHead, "db", "theirs")
        assert.strictEqual(theirs._tag, "Absorbed")
        assert.strictEqual(yield* (yield* ws.checkout("api")).files.read("shared.txt"), "from db\n")
        const apiHead = yield* ws.branch("api").head
        assert.strictEqual((yield* (yield* ws.checkout("api")).absorb(uiHead, "ui"))._tag, "Conflicted")
        yield* (yield* ws.checkout("api")).discard
        assert.strictEqual(yield* (yield* ws.checkout("api")).files.read("shared.txt"), "from db\n")
        assert.strictEqual(yield* ws.branch("api").head, apiHead)
        assert.strictEqual((yield* (yield* ws.checkout("api")).absorb(uiHead, "ui", "ours"))._tag, "Absorbed")
        assert.strictEqual(yield* (yield* ws.checkout("api")).files.read("shared.txt"), "from db\n")
      }))

    test("absorbing another stream's work brings its files in without making them this stream's changes", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ db: { "db.txt": "orders\n" }, api: {} })
        const dbHead = yield* ws.branch("db").head
        const absorbed = yield* (yield* ws.checkout("api")).absorb(dbHead, "db-task from stream db")
        assert.strictEqual(absorbed._tag, "Absorbed")
        assert.isNotNull(absorbed._tag === "Absorbed" ? absorbed.commit : null)
        assert.strictEqual(yield* (yield* ws.checkout("api")).files.read("db.txt"), "orders\n")
        assert.deepStrictEqual(yield* (yield* ws.checkout("api")).absorb(dbHead, "db-task from stream db"), { _tag: "Absorbed", commit: null })
        yield* (yield* ws.checkout("api")).files.write("api.txt", "checkout\n")
        const change = yield* (yield* ws.checkout("api")).commitAttempt(attempt("api-task", 2))
        assert.deepStrictEqual(change.files, ["api.txt"])
        assert.deepStrictEqual(yield* ws.branch("api").changedFiles, ["api.txt"])
        assert.deepStrictEqual(yield* ws.branch("db").changedFiles, ["db.txt"])
        // Integration in dependency order: both merge cleanly, the result has both.
        yield* ws.integration.begin()
        assert.strictEqual((yield* ws.integration.merge("db", "none"))._tag, "Merged")
        assert.deepStrictEqual(yield* ws.integration.probe("api"), [])
        assert.strictEqual((yield* ws.integration.merge("api", "none"))._tag, "Merged")
        assert.strictEqual(yield* ws.integration.files.read("api.txt"), "checkout\n")
        assert.strictEqual(yield* ws.integration.files.read("db.txt"), "orders\n")
      }))

    test("an attempt cut off before its commit is discarded; a recorded attempt is found again", () =>
      Effect.gen(function*() {
        const { ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        const found = yield* (yield* ws.checkout("s1")).findAttempt({ taskId: "s1-task", attempt: 1 })
        assert.deepStrictEqual(found?.files, ["a.txt"])
        assert.strictEqual(found?.commit, yield* ws.branch("s1").head)
        assert.isUndefined(yield* (yield* ws.checkout("s1")).findAttempt({ taskId: "s1-task", attempt: 2 }))
        yield* (yield* ws.checkout("s1")).files.write("a.txt", "half-written\n")
        yield* (yield* ws.checkout("s1")).files.write("new.txt", "stray\n")
        yield* (yield* ws.checkout("s1")).discard
        assert.strictEqual(yield* (yield* ws.checkout("s1")).files.read("a.txt"), "one\n")
        assert.isUndefined(yield* (yield* ws.checkout("s1")).files.read("new.txt"))
      }))

    test("beginIntegration with restart goes back to the base", () =>
      Effect.gen(function*() {
        const { prepared, ws } = yield* streamsWith({ s1: { "a.txt": "one\n" } })
        yield* ws.integration.begin()
        yield* ws.integration.merge("s1", "none")
        assert.notStrictEqual(yield* ws.integration.head, prepared.base)
        yield* ws.integration.begin()
        assert.strictEqual(yield* ws.integration.files.read("a.txt"), "one\n")
        yield* ws.integration.begin({ restart: true })
        assert.strictEqual(yield* ws.integration.files.read("a.txt"), "base\n")
      }))
  })

contract("memory", () => MemoryWorkspace.layer({ base: baseFiles }))

contract("git", () => Layer.unwrapScoped(Effect.map(tempRepo, (repo) => GitWorkspace.layer({ repo }))))
