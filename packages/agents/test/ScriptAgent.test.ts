/**
 * The offline backends with real processes: the script agent, the command reviewer, the
 * script resolver and the registry that picks them — and a whole run over a real git
 * repository with them.
 */
import { Agent, GitWorkspace, MemoryWorkspace, Orchestrator, Plan, Progress, Review, RunState, Workspace } from "@braid/core"
import { Harness } from "@braid/testkit"
import type { CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CommandReviewer from "../src/CommandReviewer.js"
import * as Registry from "../src/Registry.js"
import * as ScriptAgent from "../src/ScriptAgent.js"
import * as ScriptResolver from "../src/ScriptResolver.js"

type PlanInput = Parameters<typeof Plan.decode>[0]

/** A fresh directory, removed after the test. */
const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `braid-${prefix}-`)))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Writes files (path → content) under a directory. */
const writeFiles = (dir: string, files: Record<string, string>) => {
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true })
    fs.writeFileSync(path.join(dir, p), content)
  }
}

/** A `Workspace.Files` over a plain directory: all the script agent needs of a workspace. */
const dirFiles = (dir: string | undefined): Workspace.Files => {
  const ops: Workspace.FileOps = {
    read: (p) => Effect.sync(() => (dir && fs.existsSync(path.join(dir, p)) ? fs.readFileSync(path.join(dir, p), "utf8") : undefined)),
    write: (p, content) => Effect.sync(() => writeFiles(dir!, { [p]: content })),
    remove: (p) => Effect.sync(() => fs.rmSync(path.join(dir!, p), { force: true })),
    list: () => Effect.sync(() => (dir ? (fs.readdirSync(dir, { recursive: true }) as Array<string>).sort() : []))
  }
  // No directory: files as the memory workspace has them.
  return dir === undefined ? { _tag: "InMemory", ...ops } : { _tag: "Worktree", dir, ...ops }
}

const stream: Plan.PlannedStream = { name: "api", type: "api", rank: 5, scope: [], agent: undefined, prompt: undefined, tasks: [] }

const request = (
  task: Partial<ConstructorParameters<typeof Plan.Task>[0]>,
  dir: string | undefined,
  extra: Partial<Agent.AttemptRequest> = {}
): Agent.AttemptRequest => ({
  runId: "run-1",
  projectName: "p",
  featureName: "f",
  plan: Effect.runSync(Plan.decode({ streams: [{ name: "api", type: "api" }], tasks: [{ id: "t1", title: "Task one", stream: "api" }] })),
  task: new Plan.Task({ id: "t1", title: "Task one", ...task }),
  stream,
  broughtIn: [],
  checks: [],
  denied: [],
  session: undefined,
  role: "api-developer",
  attempt: 1,
  feedback: undefined,
  earlier: [],
  files: dirFiles(dir),
  note: () => Effect.void,
  ...extra
})

/** Runs one attempt of the script agent with the plan directory `baseDir`. */
const attempt = (baseDir: string, req: Agent.AttemptRequest) =>
  Effect.flatMap(ScriptAgent.make({ baseDir }), (agent) => agent.attempt(req)).pipe(
    Effect.either,
    Effect.provide(NodeContext.layer)
  )

describe("ScriptAgent", () => {
  it.scopedLive("runs the task's script in the workspace with the attempt number and the latest feedback", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      const worktree = yield* tempDir("tree")
      writeFiles(planDir, {
        "scripts/work.mjs": `
          import fs from "node:fs"
          const feedback = process.env.BRAID_FEEDBACK
          const fromFile = fs.readFileSync(process.env.BRAID_FEEDBACK_FILE, "utf8")
          fs.writeFileSync("out.json", JSON.stringify({
            attempt: process.env.BRAID_ATTEMPT,
            feedback: feedback === "" ? null : JSON.parse(feedback),
            sameInFile: fromFile === feedback,
            feedbackFile: process.env.BRAID_FEEDBACK_FILE,
            cwd: process.cwd(),
            worktree: process.env.BRAID_WORKTREE,
            planDir: process.env.BRAID_PLAN_DIR,
            ids: [process.env.BRAID_RUN_ID, process.env.BRAID_STREAM, process.env.BRAID_STREAM_TYPE, process.env.BRAID_ROLE, process.env.BRAID_TASK_ID, process.env.BRAID_TASK_TITLE],
            inherited: process.env.PATH !== undefined
          }))
          console.log("working")
          console.log("wrote out.json on attempt " + process.env.BRAID_ATTEMPT)
          console.log("")
        `
      })
      const read = () => JSON.parse(fs.readFileSync(path.join(worktree, "out.json"), "utf8"))

      const first = yield* attempt(planDir, request({ run: { script: "scripts/work.mjs" } }, worktree))
      assert.isTrue(Either.isRight(first))
      assert.strictEqual(Either.getOrThrow(first).summary, "wrote out.json on attempt 1")
      const one = read()
      assert.strictEqual(one.attempt, "1")
      assert.isNull(one.feedback)
      assert.isTrue(one.sameInFile)
      assert.strictEqual(one.cwd, worktree)
      assert.strictEqual(one.worktree, worktree)
      assert.strictEqual(one.planDir, planDir)
      assert.deepStrictEqual(one.ids, ["run-1", "api", "api", "api-developer", "t1", "Task one"])
      assert.isTrue(one.inherited)

      const feedback = new RunState.ReviewRecord({ score: 40, passes: false, issues: ["tests exited 1\nexpected 2"], suggestions: ["make `tests` pass"], reviewer: "checks" })
      const second = yield* attempt(planDir, request({ run: { script: "scripts/work.mjs" } }, worktree, { attempt: 2, feedback }))
      assert.isTrue(Either.isRight(second))
      const two = read()
      assert.strictEqual(two.attempt, "2")
      assert.deepStrictEqual(two.feedback, { score: 40, issues: ["tests exited 1\nexpected 2"], suggestions: ["make `tests` pass"] })
      assert.isTrue(two.sameInFile)
      assert.isFalse(fs.existsSync(two.feedbackFile), "the feedback file is removed after the attempt")
    }))

  it.scopedLive("runs .sh scripts with sh and plain commands as an argv; the summary defaults to the command", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      const worktree = yield* tempDir("tree")
      writeFiles(planDir, { "make.sh": "echo \"attempt $BRAID_ATTEMPT\" > made.txt\n" })
      const sh = yield* attempt(planDir, request({ run: { script: "make.sh" } }, worktree))
      assert.strictEqual(Either.getOrThrow(sh).summary, "ran make.sh")
      assert.strictEqual(fs.readFileSync(path.join(worktree, "made.txt"), "utf8"), "attempt 1\n")

      const argv = yield* attempt(planDir, request({ run: [process.execPath, "-e", "require('fs').writeFileSync('argv.txt', 'x'); console.log('done it')"] }, worktree))
      assert.strictEqual(Either.getOrThrow(argv).summary, "done it")
      assert.isTrue(fs.existsSync(path.join(worktree, "argv.txt")))
    }))

  it.scopedLive("closes stdin: a script reading it finishes", () =>
    Effect.gen(function*() {
      const worktree = yield* tempDir("tree")
      const result = yield* attempt(worktree, request({ run: "cat" }, worktree))
      assert.strictEqual(Either.getOrThrow(result).summary, "ran cat")
    }))

  it.scopedLive("kills a script that outlives its timeout and says so", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      const worktree = yield* tempDir("tree")
      // The sleep runs as a child of the script: the whole process group must go.
      writeFiles(planDir, { "slow.sh": "sleep 60 &\necho $! > sleep.pid\nwait\n" })
      const started = Date.now()
      const result = yield* attempt(planDir, request({ run: { script: "slow.sh", timeoutSeconds: 1 } }, worktree))
      assert.isBelow(Date.now() - started, 15_000)
      const error = Either.flip(result).pipe(Either.getOrThrow)
      assert.strictEqual(error._tag, "AgentFailed")
      assert.strictEqual(error.agent, "script")
      assert.match(error.message, /timed out after 1 s/)
      const pid = Number(fs.readFileSync(path.join(worktree, "sleep.pid"), "utf8"))
      // Dead once gone or a zombie waiting for the init process to reap it.
      const alive = () => {
        try {
          process.kill(pid, 0)
        } catch {
          return false
        }
        const stat = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, "utf8") : ""
        return !/^\d+ \(.*\) Z/.test(stat)
      }
      for (let i = 0; i < 100 && alive(); i++) yield* Effect.sleep("50 millis")
      assert.isFalse(alive(), "the script's child was killed with it")
    }))

  it.scopedLive("a non-zero exit fails the attempt with the exit code and the output's tail", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      const worktree = yield* tempDir("tree")
      writeFiles(planDir, { "fail.sh": "echo 'compiling'\necho 'error: missing semicolon' >&2\nexit 3\n" })
      const result = yield* attempt(planDir, request({ run: { script: "fail.sh" } }, worktree))
      const error = Either.flip(result).pipe(Either.getOrThrow)
      assert.strictEqual(error.taskId, "t1")
      assert.match(error.message, /exited 3/)
      assert.include(error.message, "compiling")
      assert.include(error.message, "error: missing semicolon")
    }))

  it.scopedLive("never hands task text to a shell", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      const worktree = yield* tempDir("tree")
      writeFiles(planDir, { "title.sh": "printf '%s' \"$BRAID_TASK_TITLE\" > title.txt\n" })
      const title = "Add $(touch pwned) and `touch pwned2`; touch pwned3"
      const viaScript = yield* attempt(planDir, request({ title, run: { script: "title.sh" } }, worktree))
      assert.isTrue(Either.isRight(viaScript))
      assert.strictEqual(fs.readFileSync(path.join(worktree, "title.txt"), "utf8"), title)
      // A `run` line is split into words, nothing is expanded.
      const viaLine = yield* attempt(planDir, request({ title, run: "echo $(touch pwned) ; touch pwned3" }, worktree))
      assert.strictEqual(Either.getOrThrow(viaLine).summary, "$(touch pwned) ; touch pwned3")
      for (const dir of [worktree, planDir, process.cwd()]) {
        for (const file of ["pwned", "pwned2", "pwned3"]) assert.isFalse(fs.existsSync(path.join(dir, file)), `${file} in ${dir}`)
      }
    }))

  it.scopedLive("needs a real directory, a `run`, and an existing script", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      const memory = yield* attempt(planDir, request({ run: "true" }, undefined))
      assert.match(Either.flip(memory).pipe(Either.getOrThrow).message, /needs a real workspace/)
      const noRun = yield* attempt(planDir, request({}, planDir))
      assert.match(Either.flip(noRun).pipe(Either.getOrThrow).message, /has no `run`/)
      const missing = yield* attempt(planDir, request({ run: { script: "nope.sh" } }, planDir))
      assert.match(Either.flip(missing).pipe(Either.getOrThrow).message, /nope\.sh does not exist/)
    }))
})

const node = (code: string) => [process.execPath, "-e", code] as [string, ...Array<string>]

/** Runs the command reviewer over a memory workspace whose stream "api" holds `files`. */
const reviewWith = (
  input: { checks?: ReadonlyArray<unknown>; planChecks?: ReadonlyArray<unknown>; commit?: string | null }
) =>
  Effect.gen(function*() {
    const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
    const run = yield* memory.service.prepare({ runId: "r1", streams: [{ name: "api" }], land: false })
    const checkout = yield* run.checkout("api")
    yield* checkout.files.write("answer.txt", "42\n")
    const change = yield* checkout.commitAttempt({ taskId: "t1", title: "Task one", attempt: 1 })
    const plan = yield* Plan.decode({
      streams: [{ name: "api", type: "api" }],
      tasks: [{ id: "t1", title: "Task one", stream: "api", ...(input.checks ? { checks: input.checks } : {}) }],
      ...(input.planChecks ? { checks: input.planChecks } : {})
    })
    const reviewer = yield* CommandReviewer.make
    return yield* reviewer.review({
      runId: "r1",
      task: plan.tasks.get("t1")!,
      stream: plan.streams[0]!,
      attempt: 1,
      threshold: 80,
      recorded: new RunState.AttemptDone({
        stream: "api",
        taskId: "t1",
        round: 0,
        attempt: 1,
        startedAt: "2026-11-24T10:00:00.000Z",
        durationMs: 5,
        commit: change.commit,
        files: change.files,
        summary: "did it",
        inputTokens: 0,
        outputTokens: 0,
        costUsd: 0,
        agent: null
      }),
      change: input.commit === undefined ? change : new Workspace.AttemptChange({ commit: input.commit, files: [] }),
      files: checkout.files,
      exec: checkout.exec,
      planChecks: plan.checks
    })
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

describe("CommandReviewer", () => {
  it.live("scores 100 when every check passes, task checks and plan checks alike", () =>
    Effect.gen(function*() {
      const review = yield* reviewWith({
        checks: [{ name: "answer", command: node("process.exit(require('fs').readFileSync('answer.txt','utf8').trim() === '42' ? 0 : 1)") }],
        planChecks: [node("process.exit(process.env.BRAID_TASK_ID === 't1' ? 0 : 1)")]
      })
      assert.strictEqual(review.score, 100)
      assert.deepStrictEqual(review.issues, [])
      assert.strictEqual(review.reviewer, "checks")
    }))

  it.live("scores a change with no checks 100", () =>
    Effect.gen(function*() {
      const review = yield* reviewWith({})
      assert.strictEqual(review.score, 100)
    }))

  it.live("scores failures below 50, one issue per failing check with its output, in order", () =>
    Effect.gen(function*() {
      const review = yield* reviewWith({
        checks: [
          { name: "lint", command: node("console.log('2 problems'); console.error('no-unused-vars'); process.exit(2)") },
          { name: "types", command: node("process.exit(0)") }
        ],
        planChecks: [{ name: "missing", command: ["definitely-not-a-program-braid"] }]
      })
      assert.strictEqual(review.score, Math.floor(49 * 1 / 3))
      assert.strictEqual(review.issues.length, 2)
      assert.match(review.issues[0]!, /^lint exited 2\n/)
      assert.include(review.issues[0]!, "2 problems")
      assert.include(review.issues[0]!, "no-unused-vars")
      assert.match(review.issues[1]!, /^missing exited 127/)
      assert.deepStrictEqual(review.suggestions, ["make `lint` pass", "make `missing` pass"])
      assert.isFalse(Review.passes(review, 50))
    }))

  it.live("scores an attempt that changed nothing 0 without running its checks", () =>
    Effect.gen(function*() {
      const review = yield* reviewWith({ checks: [node("process.exit(0)")], commit: null })
      assert.strictEqual(review.score, 0)
      assert.deepStrictEqual(review.issues, ["the attempt changed no files"])
    }))
})

describe("ScriptResolver", () => {
  const resolution = (dir: string | undefined, resolve: Plan.Plan["resolve"]) =>
    Effect.flatMap(ScriptResolver.make({ resolve }), (resolver) =>
      resolver.resolve({
        runId: "r1",
        stream: stream,
        against: [{ ...stream, name: "db" }, { ...stream, name: "ui" }],
        paths: ["a.txt", "src/b.txt"],
        files: dirFiles(dir)
      })).pipe(Effect.either, Effect.provide(NodeContext.layer))

  it.scopedLive("runs the plan's resolve command in the integration directory with the conflict described", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("integration")
      const plan = yield* Plan.decode({
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "t1", title: "t", stream: "api" }],
        resolve: node(
          "require('fs').writeFileSync('seen.json', JSON.stringify([process.env.BRAID_CONFLICT_PATHS, process.env.BRAID_STREAM, process.env.BRAID_AGAINST])); console.log('merged both')"
        )
      })
      const ok = yield* resolution(dir, plan.resolve)
      assert.strictEqual(Either.getOrThrow(ok).summary, "merged both")
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(dir, "seen.json"), "utf8")), ["a.txt\nsrc/b.txt", "api", "db,ui"])

      const failing = yield* Plan.decode({
        streams: [{ name: "api", type: "api" }],
        tasks: [{ id: "t1", title: "t", stream: "api" }],
        resolve: node("console.error('cannot merge a.txt'); process.exit(4)")
      })
      const failed = Either.flip(yield* resolution(dir, failing.resolve)).pipe(Either.getOrThrow)
      assert.strictEqual(failed._tag, "ResolutionFailed")
      assert.match(failed.message, /exited 4/)
      assert.include(failed.message, "cannot merge a.txt")
    }))

  it.live("without a `resolve` command, says what to set", () =>
    Effect.gen(function*() {
      const failed = Either.flip(yield* resolution(os.tmpdir(), undefined)).pipe(Either.getOrThrow)
      assert.match(failed.message, /set `resolve`/)
      assert.match(failed.message, /priority or manual/)
      assert.deepStrictEqual(failed.paths, ["a.txt", "src/b.txt"])
    }))
})

describe("Registry", () => {
  const checkWith = (
    input: PlanInput,
    baseDir: string,
    workspace: Layer.Layer<Workspace.Workspace, never, CommandExecutor.CommandExecutor>,
    options: Registry.Options = {}
  ) =>
    Effect.gen(function*() {
      const plan = yield* Plan.decode(input, "plan", baseDir)
      return yield* Effect.flatMap(Agent.AgentRegistry, (registry) => registry.check(plan)).pipe(
        Effect.either,
        // The mock backend is the testkit's: offered beside this package's, as the CLI does.
        Effect.provide(Registry.layer(plan, { backends: [...Registry.all, Harness.backend], ...options }).pipe(Layer.provide(workspace)))
      )
    })

  it.scopedLive("reports every problem at once, each with its path", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      writeFiles(planDir, { "ok.sh": "true\n", "tool": "#!/bin/sh\ntrue\n" })
      const result = yield* checkWith(
        {
          streams: [
            { name: "api", type: "api" },
            { name: "ui", type: "ui", agent: "mock" },
            { name: "docs", type: "docs", agent: "gpt-9000" }
          ],
          tasks: [
            { id: "a1", title: "fine", stream: "api", run: { script: "ok.sh" } },
            { id: "a2", title: "no run", stream: "api" },
            { id: "u1", title: "mock needs no run", stream: "ui" },
            { id: "a3", title: "missing", stream: "api", run: { script: "scripts/missing.mjs" } },
            { id: "a4", title: "not executable", stream: "api", run: { script: "tool" } },
            { id: "d1", title: "docs", stream: "docs" }
          ]
        },
        planDir,
        GitWorkspace.layer({ repo: planDir })
      )
      const error = Either.flip(result).pipe(Either.getOrThrow)
      assert.strictEqual(error._tag, "AgentUnavailable")
      assert.deepStrictEqual(error.problems.map((p) => p.path), ["streams[2].agent", "tasks[1].run", "tasks[3].run.script", "tasks[4].run.script"])
      assert.match(error.problems[0]!.message, /unknown agent "gpt-9000"/)
      assert.strictEqual(
        error.problems[1]!.message,
        "task \"a2\" has no `run` and stream \"api\" uses the script agent; add `run` or choose another agent"
      )
      assert.include(error.problems[2]!.message, path.join(planDir, "scripts/missing.mjs"))
      assert.match(error.problems[3]!.message, /not executable/)
      assert.include(error.message, "tasks[1].run")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("the caller's default backend applies to streams and plans that name none; the memory workspace cannot run scripts", () =>
    Effect.gen(function*() {
      const planDir = yield* tempDir("plan")
      const input = { streams: [{ name: "api", type: "api" }], tasks: [{ id: "a1", title: "t", stream: "api", run: "true" }] }
      const memory = Layer.effect(Workspace.Workspace, Effect.map(MemoryWorkspace.make(), (m) => m.service))
      const asMock = yield* checkWith(input, planDir, memory, { agent: "mock" })
      assert.isTrue(Either.isRight(asMock))
      const asScript = Either.flip(yield* checkWith(input, planDir, memory, { workspace: "memory" })).pipe(Either.getOrThrow)
      assert.deepStrictEqual(asScript.problems.map((p) => p.path), ["streams[0].agent"])
      assert.match(asScript.problems[0]!.message, /git worktree/)
      const unknown = Either.flip(yield* checkWith(input, planDir, memory, { agent: "nope" })).pipe(Either.getOrThrow)
      assert.deepStrictEqual(unknown.problems.map((p) => p.path), ["options.agent"])

      const plan = yield* Plan.decode({ ...input, agent: "mock", streams: [{ name: "api", type: "api", agent: "script" }, { name: "ui", type: "ui" }] })
      assert.strictEqual(Registry.backendOf(plan, plan.streams[0]!, { agent: "x" }), "script")
      assert.strictEqual(Registry.backendOf(plan, plan.streams[1]!, { agent: "x" }), "mock")
    }).pipe(Effect.provide(NodeContext.layer)))
})

/** A fresh git repository with one commit on `main`. */
const tempRepo = (files: Record<string, string>) =>
  Effect.map(tempDir("repo"), (dir) => {
    const git = (...args: Array<string>) =>
      execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@localhost", ...args], { cwd: dir, stdio: "pipe" })
    git("init", "--quiet", "--initial-branch=main")
    writeFiles(dir, files)
    git("add", "--all")
    git("commit", "--quiet", "-m", "base")
    return dir
  })

const gitOut = (repo: string, ...args: Array<string>) =>
  execFileSync("git", args, { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

const runPlan = (input: PlanInput, planDir: string, repo: string) =>
  Effect.gen(function*() {
    const plan = yield* Plan.decode(input, "plan", planDir)
    return yield* Orchestrator.run(plan, { runId: "e2e" }).pipe(
      Effect.provide(Layer.mergeAll(Registry.layer(plan), Progress.layerSilent).pipe(Layer.provideMerge(GitWorkspace.layer({ repo }))))
    )
  }).pipe(Effect.provide(NodeContext.layer))

describe("a run with the script agent over git", () => {
  it.scopedLive("retries a task with its check's output, records each attempt as a commit, and lands both streams", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo({ "README.md": "base\n" })
      const planDir = yield* tempDir("plan")
      writeFiles(planDir, {
        // Attempt 1 gets it wrong; attempt 2 reads the check's complaint from the feedback.
        "scripts/api.mjs": `
          import fs from "node:fs"
          fs.mkdirSync("api", { recursive: true })
          const feedback = process.env.BRAID_FEEDBACK === "" ? null : JSON.parse(process.env.BRAID_FEEDBACK)
          if (process.env.BRAID_ATTEMPT === "1") fs.writeFileSync("api/handler.txt", "broken\\n")
          else {
            fs.writeFileSync("api/handler.txt", "ok\\n")
            fs.writeFileSync("api/feedback.json", JSON.stringify(feedback))
          }
          console.log("api attempt " + process.env.BRAID_ATTEMPT)
        `,
        "scripts/check-api.mjs": `
          import fs from "node:fs"
          const text = fs.readFileSync("api/handler.txt", "utf8").trim()
          if (text !== "ok") { console.log("expected ok, got " + text); process.exit(1) }
        `,
        "scripts/docs.sh": "mkdir -p docs\nprintf 'docs for %s\\n' \"$BRAID_TASK_ID\" > docs/guide.md\n"
      })
      const report = yield* runPlan(
        {
          streams: [{ name: "api", type: "api" }, { name: "docs", type: "docs" }],
          tasks: [
            {
              id: "api-1",
              title: "Handler",
              stream: "api",
              run: { script: "scripts/api.mjs" },
              checks: [{ name: "api-check", command: [process.execPath, path.join(planDir, "scripts/check-api.mjs")] }]
            },
            { id: "docs-1", title: "Guide", stream: "docs", run: { script: "scripts/docs.sh" }, checks: ["test -f docs/guide.md"] }
          ],
          checks: [{ name: "readme", command: ["test", "-f", "README.md"] }],
          verify: [["test", "-f", "api/handler.txt"], ["test", "-f", "docs/guide.md"]]
        },
        planDir,
        repo
      )
      assert.strictEqual(report.status, "succeeded", JSON.stringify(report.mergeResult))
      const api = report.streamResults.find((s) => s.streamName === "api")!.results[0]!
      assert.strictEqual(api.status, "completed")
      assert.strictEqual(api.attempts.length, 2)
      const [first, second] = api.attempts
      assert.isBelow(first!.review!.score, report.qualityThreshold)
      assert.strictEqual(first!.review!.issues.length, 1)
      assert.match(first!.review!.issues[0]!, /^api-check exited 1\n/)
      assert.include(first!.review!.issues[0]!, "expected ok, got broken")
      assert.strictEqual(second!.review!.score, 100)
      assert.strictEqual(second!.summary, "api attempt 2")
      const docs = report.streamResults.find((s) => s.streamName === "docs")!.results[0]!
      assert.strictEqual(docs.status, "completed")
      assert.strictEqual(docs.attempts.length, 1)

      // Each attempt is a commit in the repository, holding what that attempt wrote.
      assert.strictEqual(gitOut(repo, "cat-file", "-t", first!.commit!).trim(), "commit")
      assert.strictEqual(gitOut(repo, "show", `${first!.commit}:api/handler.txt`), "broken\n")
      assert.strictEqual(gitOut(repo, "show", `${second!.commit}:api/handler.txt`), "ok\n")
      const fed = JSON.parse(gitOut(repo, "show", `${second!.commit}:api/feedback.json`))
      assert.include(fed.issues[0], "expected ok, got broken")

      // The target holds both streams' work.
      assert.isTrue(report.mergeResult.landed)
      assert.strictEqual(gitOut(repo, "show", "main:api/handler.txt"), "ok\n")
      assert.strictEqual(gitOut(repo, "show", "main:docs/guide.md"), "docs for docs-1\n")
      assert.strictEqual(gitOut(repo, "rev-parse", "main").trim(), report.mergeResult.commit)
    }))

  it.scopedLive("resolves a conflict between streams with the plan's resolve command", () =>
    Effect.gen(function*() {
      const repo = yield* tempRepo({ "shared.txt": "base\n" })
      const planDir = yield* tempDir("plan")
      writeFiles(planDir, {
        "scripts/edit.sh": "printf '%s\\n' \"$BRAID_STREAM\" > shared.txt\n",
        // Keeps both sides of every conflicted file, in the order they appear.
        "scripts/resolve.mjs": `
          import fs from "node:fs"
          for (const p of process.env.BRAID_CONFLICT_PATHS.split("\\n")) {
            const kept = fs.readFileSync(p, "utf8").split("\\n").filter((l) => !/^(<{7}|={7}|>{7})/.test(l))
            fs.writeFileSync(p, kept.join("\\n"))
          }
          console.log("kept both sides for " + process.env.BRAID_STREAM + " against " + process.env.BRAID_AGAINST)
        `
      })
      const report = yield* runPlan(
        {
          streams: [{ name: "api", type: "api", priority: "high" }, { name: "ui", type: "ui" }],
          tasks: [
            { id: "api-1", title: "api", stream: "api", run: { script: "scripts/edit.sh" } },
            { id: "ui-1", title: "ui", stream: "ui", run: { script: "scripts/edit.sh" } }
          ],
          resolve: [process.execPath, path.join(planDir, "scripts/resolve.mjs")]
        },
        planDir,
        repo
      )
      assert.strictEqual(report.status, "succeeded", JSON.stringify(report.conflictReport))
      assert.strictEqual(report.conflictReport.conflicts.length, 1)
      const conflict = report.conflictReport.conflicts[0]!
      assert.strictEqual(conflict.outcome, "resolved")
      assert.include(conflict.detail, "script-resolver")
      const landed = gitOut(repo, "show", "main:shared.txt")
      assert.include(landed, "api")
      assert.include(landed, "ui")
      assert.notInclude(landed, "<<<<<<<")
    }))
})
