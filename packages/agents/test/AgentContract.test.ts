/**
 * One contract, every agent backend: the same scenarios and the same assertions run over each
 * backend in `Registry.all` and the testkit's mock, each attempt made straight through the backend's built agent in a
 * real git worktree — the real claude, codex and gemini against scripted model servers, the
 * aider stand-in, a stand-in program for the command and script backends, and the mock agent.
 * A scenario that cannot apply to a backend is skipped with the reason in its name.
 */
import { Agent, CommandSpec, MemoryWorkspace, Plan, RunState, Sandbox, Workspace } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Layer, Option, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Drivers from "./contract/Drivers.js"
import * as tool from "../src/internal/tool.js"
import * as Registry from "../src/Registry.js"

/** The pids of live processes carrying `BRAID_AGENT=<marker>`. */
const marked = (marker: string): Array<string> =>
  fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/environ`, "latin1").split("\0").includes(`BRAID_AGENT=${marker}`)
    } catch {
      return false
    }
  })

/** Changes in the worktree as git sees them, every untracked file listed. */
const status = (worktree: string) => Drivers.git(worktree, "status", "--porcelain", "--untracked-files=all")

/** A line of check output no prompt template would contain by chance. */
const CHECK_LINE = "AssertionError: greeting() returned 'hola', expected 'hello' (contract check 7f3a)"

/** The latest review of a retry: one failing check with its output. */
const failingReview = new RunState.ReviewRecord({
  score: 30,
  passes: false,
  issues: [`api-check exited 1\n${CHECK_LINE}`],
  suggestions: ["make `api-check` pass"],
  reviewer: "checks"
})

/** What a backend may use when it is built: none of these backends touches the workspace, but the port allows it. */
const buildLayer = Layer.effect(Workspace.Workspace, Effect.map(MemoryWorkspace.make(), (m) => m.service))

/** The backends under contract: this package's, and the mock the testkit adds (the CLI offers both). */
const backends = [...Registry.all, Harness.backend]

/** Everything one test needs: the backend set up, and a way to make attempts on its worktree. */
const setUp = (driver: Drivers.Driver, scenario: Drivers.Scenario) =>
  Effect.gen(function*() {
    const runId = `contract-${scenario}`
    const rig = yield* Drivers.rig(runId)
    const stage = yield* driver.stage(rig)
    const backend = Registry.find(driver.name, backends)
    if (backend === undefined) return yield* Effect.dieMessage(`no backend named ${driver.name} in Registry.all or the testkit`)
    const base = Drivers.git(rig.worktree, "rev-parse", "HEAD")

    /** Builds the backend's agent for a play, and the request for an attempt of the plan's one task. */
    const prepare = (play: Drivers.Play, extra: Partial<Agent.AttemptRequest> = {}) =>
      Effect.gen(function*() {
        const plan = yield* Plan.decode(
          {
            projectName: "shop",
            featureName: "greeting",
            agent: driver.name,
            agents: { [driver.name]: { ...stage.settings, ...play.settings } },
            streams: [{ name: "api", type: "api" }],
            tasks: [{ id: "api-1", title: "Greeting endpoint", stream: "api", description: "Add the greeting.", ...play.task }]
          },
          "plan.yaml",
          rig.root
        ).pipe(Effect.provideService(Plan.BackendFields, Registry.planFields(backends)), Effect.orDie)
        const built = yield* backend.make({ plan, settings: plan.agents[driver.name]! })
        const { notes, request } = Harness.firstAttempt(plan, rig.worktree, { runId, ...extra })
        return { agent: built.agent, request, notes, marker: tool.agentMarker(request) }
      }).pipe(Effect.provide(Layer.provideMerge(buildLayer, NodeContext.layer)))

    /** One attempt to its end. */
    const attempt = (play: Drivers.Play, extra: Partial<Agent.AttemptRequest> = {}) =>
      Effect.flatMap(prepare(play, extra), (p) => Effect.map(Effect.either(p.agent.attempt(p.request)), (outcome) => ({ ...p, outcome })))

    /** No planted key in what braid reports. */
    const keepsSecrets = (what: unknown) => {
      const text = JSON.stringify(what) + (what instanceof Error ? what.message : "")
      for (const secret of driver.secrets) assert.notInclude(text, secret)
    }
    return { rig, stage, base, prepare, attempt, keepsSecrets }
  })

const output = (outcome: Either.Either<Agent.AttemptOutput, Agent.AttemptError>) =>
  Either.getOrElse(outcome, (e) => assert.fail(`the attempt failed: ${e._tag}: ${e.message}`))

const error = (outcome: Either.Either<Agent.AttemptOutput, Agent.AttemptError>) =>
  Either.match(outcome, { onLeft: (e) => e, onRight: (o) => assert.fail(`the attempt succeeded: ${o.summary}`) })

/** Waits (live) until `done` holds, at most `seconds`. */
const until = (done: () => boolean, seconds: number, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + seconds * 1000
    while (!done()) {
      if (Date.now() > deadline) return assert.fail(`${what} did not happen within ${seconds} s`)
      yield* Effect.sleep(Duration.millis(100))
    }
  })

const TEST_TIMEOUT = 90_000

/** The real coding tools, run once more confined (the others run braid's own processes, confined the same way). */
const CONFINED_TOOLS: ReadonlySet<string> = new Set(["claude-code", "codex", "gemini"])
const bwrapMissing = Effect.runSync(Sandbox.unavailable()) !== undefined

describe("the backends are the registry's", () => {
  it("every backend in Registry.all, and the testkit's mock, has a driver in the contract", () => {
    assert.deepStrictEqual([...Drivers.all.map((d) => d.name)].sort(), backends.map((b) => b.name).sort())
  })
})

describe.each(Drivers.all.map((d) => [d.name, d] as const))("agent contract: %s", (_name, driver) => {
  /** A scenario, or a skip naming why it cannot apply to this backend. */
  const scenario = (name: Drivers.Scenario, title: string, body: () => Effect.Effect<void, unknown, Scope.Scope>) => {
    const why = driver.notApplicable[name]
    if (why !== undefined) it.skip(`${title} — not applicable: ${why}`, () => {})
    else it.scopedLive(title, body, TEST_TIMEOUT)
  }

  scenario("writes", "writes a file: it is in the worktree with its content, uncommitted; the output says what was done", () =>
    Effect.gen(function*() {
      const t = yield* setUp(driver, "writes")
      const content = "hello from the contract\n"
      const { notes, outcome } = yield* t.attempt(t.stage.writes("notes/hello.txt", content))
      const out = output(outcome)
      assert.strictEqual(fs.readFileSync(path.join(t.rig.worktree, "notes/hello.txt"), "utf8"), content)
      // Only that file: the tool left nothing of its own in the worktree, and committed nothing (braid commits).
      assert.strictEqual(status(t.rig.worktree), "?? notes/hello.txt")
      assert.strictEqual(Drivers.git(t.rig.worktree, "rev-parse", "HEAD"), t.base)
      assert.isNotEmpty(out.summary.trim())
      if (driver.reports.session) assert.isNotEmpty(out.sessionId ?? "", "the session or thread id")
      if (driver.reports.usage) assert.isAbove((out.usage?.inputTokens ?? 0) + (out.usage?.outputTokens ?? 0), 0, "tokens")
      if (driver.reports.process) assert.isTrue(notes.some((n) => n._tag === "Process"), "the tool's process was journaled")
      t.keepsSecrets(out)
    }))

  if (CONFINED_TOOLS.has(driver.name) && bwrapMissing) it.skip("writes a file confined by bubblewrap — bubblewrap is not available here", () => {})
  else if (CONFINED_TOOLS.has(driver.name)) {
    it.scopedLive("writes a file confined by bubblewrap: the real tool starts, reaches its model server and writes only its worktree", () =>
      Effect.gen(function*() {
        const t = yield* setUp(driver, "writes")
        const content = "hello from inside the sandbox\n"
        const repo = path.join(t.rig.root, "repo")
        // As a run's checkout: the worktree writable, the repository readable, the run folder and the home hidden.
        const policy = { writable: [t.rig.worktree], hidden: [t.rig.home, path.join(repo, ".braid")], readable: [repo] }
        const { outcome } = yield* Sandbox.within(policy)(t.attempt(t.stage.writes("notes/hello.txt", content)))
        const out = output(outcome)
        assert.strictEqual(fs.readFileSync(path.join(t.rig.worktree, "notes/hello.txt"), "utf8"), content)
        assert.strictEqual(status(t.rig.worktree), "?? notes/hello.txt")
        assert.isTrue(t.stage.reachedModel?.() ?? true, "the tool reached its model server from inside")
        t.keepsSecrets(out)
      }), TEST_TIMEOUT)
  }

  scenario("nothing", "changes nothing: the attempt succeeds and the worktree is as it was", () =>
    Effect.gen(function*() {
      const t = yield* setUp(driver, "nothing")
      const { outcome } = yield* t.attempt(t.stage.nothing())
      const out = output(outcome)
      assert.strictEqual(status(t.rig.worktree), "")
      assert.strictEqual(Drivers.git(t.rig.worktree, "rev-parse", "HEAD"), t.base)
      t.keepsSecrets(out)
    }))

  scenario("fails", "fails: a refused request or a non-zero exit is AgentFailed, neither a busy provider nor a success", () =>
    Effect.gen(function*() {
      const t = yield* setUp(driver, "fails")
      const { outcome } = yield* t.attempt(t.stage.fails!())
      const failure = error(outcome)
      assert.strictEqual(failure._tag, "AgentFailed", failure.message)
      assert.strictEqual((failure as Agent.AgentFailed).reason, "failed")
      assert.isNotEmpty(failure.message)
      t.keepsSecrets(failure)
    }))

  scenario("timeout", `times out: a tool that never finishes fails with reason "timeout" at the limit, and none of its processes is left`, () =>
    Effect.gen(function*() {
      const { limit, marker, outcome, t } = yield* Drivers.hangAtModel(
        driver.timeoutSeconds,
        (limit) => Effect.flatMap(setUp(driver, "timeout"), (t) => Effect.map(t.attempt(t.stage.hangs!(limit)), (a) => ({ t, ...a }))),
        ({ t }) => t.stage.reachedModel?.() ?? true
      )
      const failure = error(outcome)
      assert.strictEqual(failure._tag, "AgentFailed", failure.message)
      assert.strictEqual((failure as Agent.AgentFailed).reason, "timeout", failure.message)
      // The message names the limit (in seconds, or the milliseconds it was).
      assert.match(failure.message, new RegExp(`\\b(${limit} s|${limit * 1000} ms)\\b`))
      assert.deepStrictEqual(marked(marker), [], "processes of the attempt still running")
      assert.strictEqual(status(t.rig.worktree), "")
      if (t.stage.reachedModel !== undefined) assert.isTrue(t.stage.reachedModel(), `the tool had reached its model server within ${limit} s`)
    }))

  scenario("interrupted", "is interrupted: ending the attempt's fiber ends the tool, and none of its processes is left", () =>
    Effect.gen(function*() {
      const t = yield* setUp(driver, "interrupted")
      const play = t.stage.hangs!(60)
      const { agent, marker, request } = yield* t.prepare(play)
      const fiber = yield* Effect.fork(agent.attempt(request))
      const working = play.working ?? (() => marked(marker).length > 0)
      // A backend that starts no process of its own (llm) is at work once its model has the request.
      yield* until(() => working() && (!driver.reports.process || marked(marker).length > 0), 45, "the tool getting to work")
      // Bounded: a tool that ignores SIGTERM is killed after the grace period, well within this.
      const exit = yield* Fiber.interrupt(fiber).pipe(Effect.timeout(Duration.seconds(20)), Effect.option)
      assert.isTrue(Option.isSome(exit), "the interrupted attempt did not end")
      assert.isTrue(Option.isSome(exit) && Exit.isInterrupted(exit.value), "the attempt ended by its interruption")
      assert.deepStrictEqual(marked(marker), [], "processes of the attempt still running")
    }))

  scenario("busy", "meets a transient provider error: ProviderBusy (braid backs off and tries again), not a failure", () =>
    Effect.gen(function*() {
      const t = yield* setUp(driver, "busy")
      const { outcome } = yield* t.attempt(t.stage.busy!())
      const failure = error(outcome)
      assert.strictEqual(failure._tag, "ProviderBusy", failure.message)
      assert.isNotEmpty((failure as Agent.ProviderBusy).provider)
      if (t.stage.reachedModel !== undefined) assert.isTrue(t.stage.reachedModel(), "the busy answer came from the model server")
      assert.strictEqual(status(t.rig.worktree), "")
      t.keepsSecrets(failure)
    }))

  scenario("feedback", "sees the latest review's check output on its retry", () =>
    Effect.gen(function*() {
      const t = yield* setUp(driver, "feedback")
      const check = new CommandSpec.Command({ name: "api-check", argv: ["node", "--test"], timeoutMs: 60_000 })
      const { outcome } = yield* t.attempt(t.stage.echoFeedback!(), { attempt: 2, feedback: failingReview, checks: [check] })
      output(outcome)
      const received = t.stage.received!()
      assert.include(received, CHECK_LINE, "the failing check's output reached the tool")
    }))
})
