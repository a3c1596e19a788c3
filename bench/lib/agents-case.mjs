/**
 * Child process for section 4 (agents): a run of the real claude binary through
 * `Orchestrator.run` over `GitWorkspace` on a temporary repository, against a scripted
 * Anthropic server that runs in another process (bench/lib/agents-server.mjs). Input:
 * { name, serverUrl, streams, tasksPerStream, dependsOn: { task: [deps] }, maxParallel,
 *   limits?, boundConcurrency?, timeoutSeconds, profile?, confined? }. With `confined`, the run's
 * processes run in bubblewrap (section 8). With `profile`, the run is
 * CPU-profiled through the inspector and summarised (the engine's CPU then includes the profiler's).
 *
 * Set up as packages/agents/test/ClaudeCode.test.ts sets up a real-claude run: a throwaway
 * HOME, a planted fake key in ANTHROPIC_API_KEY, none of the user's claude variables, the
 * server's URL as the backend's `baseUrl`. Each task's agent writes one file; its check is
 * `test -f` of that file.
 *
 * claude runs through a wrapper (`/usr/bin/time`, exec'd by sh) that appends each claude
 * process's marker (BRAID_AGENT: run/stream/task/attempt), wall time, CPU and exit status to a
 * log: the agents' own wall time and CPU, exactly (time waits for claude, so claude's own
 * children are included). braid's CPU is this process's `process.cpuUsage()` over the run (the
 * engine) and the CPU of the children it reaped (`/proc/self/stat` cutime + cstime: git,
 * checks, and the agents, whose share is taken off).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { report } from "./measure.mjs"
import { lowerBound } from "./bounds.mjs"
import * as TimedWorkspace from "./timed-workspace.mjs"

const input = JSON.parse(process.argv[2])
const { name, serverUrl, streams, tasksPerStream, maxParallel } = input

const claudeLink = fileURLToPath(new URL("../../node_modules/.bin/claude", import.meta.url))
const TIME = "/usr/bin/time"
if (!fs.existsSync(claudeLink)) {
  report({ unavailable: "claude not installed (node_modules/.bin/claude)" })
  process.exit(0)
}
if (!fs.existsSync(TIME)) {
  report({ unavailable: `${TIME} not found (it measures each claude process)` })
  process.exit(0)
}
const claude = fs.realpathSync(claudeLink)

// A throwaway HOME and a planted key; none of the user's claude settings.
const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `braid-bench-agents-${name}-`)))
const home = path.join(tmp, "home")
const repo = path.join(tmp, "repo")
fs.mkdirSync(home)
fs.mkdirSync(repo)
for (const n of ["CLAUDE_CONFIG_DIR", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"]) delete process.env[n]
process.env.HOME = home
process.env.ANTHROPIC_API_KEY = "sk-ant-test-PLANTED-0000"

const git = (...args) =>
  execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], { cwd: repo, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } })
git("init", "--quiet", "-b", "main")
fs.writeFileSync(path.join(repo, "README.md"), "bench\n")
git("add", "--all")
git("commit", "--quiet", "-m", "base")

// claude, measured by time: one line per claude process.
const timeLog = path.join(tmp, "agents.log")
const wrapper = path.join(tmp, "claude")
fs.writeFileSync(
  wrapper,
  `#!/bin/sh\nexec ${TIME} -a -o '${timeLog}' -f "agent=$BRAID_AGENT wall=%e user=%U sys=%S exit=%x" '${claude}' "$@"\n`,
  { mode: 0o755 }
)

const fileOf = (stream, task) => `streams/${stream}/${task}.txt`
const doc = {
  projectName: "bench",
  featureName: `agents-${name}`,
  maxParallel,
  agent: "claude-code",
  agents: { "claude-code": { command: [wrapper], baseUrl: serverUrl, timeoutSeconds: input.timeoutSeconds } },
  ...(input.limits ? { limits: input.limits } : {}),
  streams: [],
  tasks: []
}
for (let s = 0; s < streams; s++) {
  doc.streams.push({ name: `s${s}`, type: "api" })
  for (let t = 0; t < tasksPerStream; t++) {
    const id = `s${s}-t${t}`
    const dependsOn = input.dependsOn[id] ?? []
    doc.tasks.push({
      id,
      title: `Task ${id}`,
      stream: `s${s}`,
      checks: [["test", "-f", fileOf(`s${s}`, id)]],
      ...(dependsOn.length > 0 ? { dependsOn } : {})
    })
  }
}

const core = await import("@braid/core")
const { GitWorkspace, Orchestrator, Plan, Progress } = core
const { Registry } = await import("@braid/agents")
const { NodeContext } = await import("@effect/platform-node")
const { Effect, Layer } = await import("effect")
// The git call counter of packages/core/src/internal/git.ts (the same module instance GitWorkspace uses).
const gitModule = await import("../../packages/core/dist/internal/git.js").catch(() => ({}))
const gitCalls = typeof gitModule.calls === "function" ? gitModule.calls : undefined

/** This process's CPU and its reaped children's, in ms (/proc/self/stat, clock ticks of 10 ms). */
const procTimes = () => {
  const stat = fs.readFileSync("/proc/self/stat", "utf8")
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const tick = 10
  return { self: (Number(f[11]) + Number(f[12])) * tick, children: (Number(f[13]) + Number(f[14])) * tick }
}

const Profile = await import("./profile.mjs")
const events = []
const trace = []
// The engine's CPU (ms) when the run reached each stage, to tell fixed costs from per-attempt ones.
const cpuAt = {}
const cpuNow = () => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1000
}
const progress = Progress.layerCallback((e) => {
  events.push(e)
  if (e._tag === "RunStarted") cpuAt.runStarted = cpuNow()
  else if (e._tag === "AttemptStarted") cpuAt.firstAttempt ??= cpuNow()
  else if (e._tag === "TaskSettled") cpuAt.lastSettled = cpuNow()
  else if (e._tag === "RunFinished") cpuAt.runFinished = cpuNow()
})
const plan = await Effect.runPromise(Plan.decode(doc, "bench"))
const gitBefore = gitCalls?.() ?? 0
const procBefore = procTimes()
const cpuBefore = process.cpuUsage()
cpuAt.start = (cpuBefore.user + cpuBefore.system) / 1000
const runPlan = () =>
  Effect.gen(function*() {
    const { service } = yield* GitWorkspace.make({ repo })
    const timing = TimedWorkspace.timed(service, { countSpawns: true, trace })
    const outcome = yield* Orchestrator.run(plan, { runId: "bench" }).pipe(
      Effect.provide(Layer.mergeAll(Registry.layer(plan).pipe(Layer.provideMerge(TimedWorkspace.layer(timing.service))), progress)),
      // `confined`: every process of a stream in bubblewrap, as `braid run --sandbox required` does.
      // The measuring wrapper and its log (in this case's temporary folder) stay reachable inside.
      (run) => input.confined ? Effect.provideService(run, core.Sandbox.Confinement, { network: [], readable: [tmp], writable: [tmp] }) : run,
      Effect.either
    )
    return { outcome, totals: timing.totals }
  }).pipe(Effect.provide(NodeContext.layer), Effect.runPromise)
// Timed without measure()'s RSS sampler: its timer would count as braid's CPU.
const wallStarted = performance.now()
const profiledRun = input.profile ? await Profile.profiled(runPlan) : undefined
const result = { value: profiledRun?.value ?? (await runPlan()), wallMs: +(performance.now() - wallStarted).toFixed(1) }
const profile = profiledRun ? Profile.summarise(profiledRun.profile, 25) : undefined
if (profiledRun && input.profileFile) fs.writeFileSync(input.profileFile, JSON.stringify(profiledRun.profile))
const cpuSplit = process.cpuUsage(cpuBefore)
cpuAt.end = cpuNow()
const procAfter = procTimes()
const gitTotal = gitCalls !== undefined ? gitCalls() - gitBefore : undefined
const { outcome, totals } = result.value
const gitSpawned = TimedWorkspace.gitCallsOf(totals, Object.keys(totals)) + TimedWorkspace.outsideSpawns().git
if (outcome._tag === "Left") {
  report({ name, failed: String(outcome.left?.message ?? outcome.left) })
  process.exit(0)
}
const run = outcome.right

// Each claude process: marker, wall, CPU, exit status.
const tries = fs.readFileSync(timeLog, "utf8").split("\n").flatMap((line) => {
  const m = /^agent=(\S*) wall=([\d.]+) user=([\d.]+) sys=([\d.]+) exit=(\d+)$/.exec(line)
  if (m === null) return []
  const [, marker, wall, user, sys, exit] = m
  const [, stream, taskId, attempt] = marker.split("/")
  return [{ marker, stream, taskId, attempt: Number(attempt), wallMs: Number(wall) * 1000, cpuMs: (Number(user) + Number(sys)) * 1000, exit: Number(exit) }]
})
const agentTries = tries.filter((t) => t.marker !== "")
// The k-th claude process of an attempt started at its k-th AgentProcess event.
for (const t of agentTries) {
  const k = agentTries.filter((x) => x.marker === t.marker).indexOf(t)
  const started = events.filter((e) => e._tag === "AgentProcess" && e.taskId === t.taskId && e.attempt === t.attempt)[k]
  t.start = started === undefined ? null : Date.parse(started.at)
}
const agentsCpuMs = tries.reduce((a, t) => a + t.cpuMs, 0)

const tasks = run.streamResults.flatMap((s) => s.results)
const attempts = tasks.flatMap((t) => t.attempts.map((a) => ({ taskId: t.taskId, ...a })))
const ms = (iso) => Date.parse(iso)
const of = (tag) => events.filter((e) => e._tag === tag)

// Agent work per task: the wall time of its successful claude processes (the task's slot time).
const work = {}
const claudeReported = {}
for (const t of plan.tasks.keys()) {
  work[t] = agentTries.filter((x) => x.taskId === t && x.exit === 0).reduce((a, x) => a + x.wallMs, 0)
  claudeReported[t] = attempts.filter((a) => a.taskId === t).reduce((a, x) => a + (x.agent?.durationMs ?? 0), 0)
}
const boundOf = (durations, concurrency) => {
  const { criticalPathMs, totalWorkMs } = lowerBound(plan, durations)
  return { criticalPathMs, totalWorkMs, concurrency, boundMs: Math.max(criticalPathMs, totalWorkMs / concurrency) }
}

// Where braid's time per attempt went, from the events (ms).
const phases = []
for (const started of of("AttemptStarted")) {
  const same = (e) => e.taskId === started.taskId && e.attempt === started.attempt
  const processes = of("AgentProcess").filter(same)
  const finished = of("AttemptFinished").find(same)
  const review = of("ReviewRecorded").find(same)
  const settled = of("TaskSettled").find((e) => e.taskId === started.taskId)
  const mine = agentTries.filter((x) => x.taskId === started.taskId && x.attempt === started.attempt)
  if (processes.length === 0 || finished === undefined || mine.length === 0) continue
  const lastProcess = processes.at(-1)
  phases.push({
    taskId: started.taskId,
    attempt: started.attempt,
    // Attempt started → the (first) claude process started: limiter, prompt, session note.
    beforeAgent: ms(processes[0].at) - ms(started.at),
    agentWall: mine.reduce((a, x) => a + x.wallMs, 0),
    // The last claude process ended → attempt finished: reading its output, the attempt's commit.
    afterAgent: ms(finished.at) - (ms(lastProcess.at) + mine.at(-1).wallMs),
    // Attempt finished → review recorded: the gate (the check).
    gate: review ? ms(review.at) - ms(finished.at) : null,
    settle: review && settled ? ms(settled.at) - ms(review.at) : null
  })
}
// Settled → the stream's next attempt started, when that next task waited on nothing else.
const nextGaps = []
for (let s = 0; s < streams; s++) {
  for (let t = 1; t < tasksPerStream; t++) {
    const prev = of("TaskSettled").find((e) => e.taskId === `s${s}-t${t - 1}`)
    const next = of("AttemptStarted").find((e) => e.taskId === `s${s}-t${t}` && e.attempt === 1)
    const waited = (input.dependsOn[`s${s}-t${t}`] ?? []).some((d) => {
      const settled = of("TaskSettled").find((e) => e.taskId === d)
      return settled && prev && ms(settled.at) > ms(prev.at)
    })
    if (prev && next && !waited) nextGaps.push(ms(next.at) - ms(prev.at))
  }
}
// The run's critical chain as it happened: from the task that settled last, back through whichever
// predecessor (the stream's previous task or a dependency) settled last, and where its time went.
const settledAt = (id) => ms(of("TaskSettled").find((e) => e.taskId === id)?.at ?? "")
const predecessorsOf = (id) => {
  const [, s, t] = /^s(\d+)-t(\d+)$/.exec(id).map(Number)
  return [...(t > 0 ? [`s${s}-t${t - 1}`] : []), ...(input.dependsOn[id] ?? [])]
}
const chain = []
for (let id = [...plan.tasks.keys()].reduce((a, b) => (settledAt(b) > settledAt(a) ? b : a)); id !== undefined;) {
  chain.unshift(id)
  id = predecessorsOf(id).reduce((a, b) => (a === undefined || settledAt(b) > settledAt(a) ? b : a), undefined)
}
const wallStartedAt = performance.timeOrigin + wallStarted
const critical = { tasks: chain, startMs: 0, agentsMs: 0, aroundAgentMs: 0, gateMs: 0, betweenTasksMs: 0, endMs: 0 }
let cursor = wallStartedAt
for (const id of chain) {
  const starts = of("AttemptStarted").filter((e) => e.taskId === id)
  const first = ms(starts[0].at)
  if (id === chain[0]) critical.startMs = first - cursor
  else critical.betweenTasksMs += first - cursor
  // All of the task's attempts: claude's processes, the rest around them, the gate after each.
  let claude = 0
  for (const t of agentTries.filter((x) => x.taskId === id)) claude += t.wallMs
  const finished = of("AttemptFinished").filter((e) => e.taskId === id)
  const gates = finished.reduce((a, f) => {
    const review = of("ReviewRecorded").find((r) => r.taskId === id && r.attempt === f.attempt)
    return a + (review ? ms(review.at) - ms(f.at) : 0)
  }, 0)
  critical.agentsMs += claude
  critical.gateMs += gates
  critical.aroundAgentMs += settledAt(id) - first - claude - gates
  cursor = settledAt(id)
}
critical.endMs = wallStartedAt + result.wallMs - cursor
for (const k of Object.keys(critical)) if (typeof critical[k] === "number") critical[k] = +critical[k].toFixed(0)

const mean = (xs) => (xs.length === 0 ? null : +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1))
const runStarted = of("RunStarted")[0]
const runFinished = of("RunFinished")[0]
const firstAttempt = Math.min(...of("AttemptStarted").map((e) => ms(e.at)))
const lastSettled = Math.max(...of("TaskSettled").map((e) => ms(e.at)))

const STREAM_SIDE = TimedWorkspace.STREAM_SIDE
const sum = (names, field = "ms") => names.reduce((a, n) => a + (totals[n]?.[field] ?? 0), 0)
const reviewed = attempts.filter((a) => a.review !== null).length
const childrenCpuMs = procAfter.children - procBefore.children
fs.rmSync(tmp, { recursive: true, force: true })

report({
  name,
  streams,
  tasks: tasks.length,
  maxParallel,
  status: run.status,
  landed: run.mergeResult.landed,
  taskStatuses: Object.fromEntries(tasks.map((t) => [t.taskId, t.status])),
  failedTasks: tasks.filter((t) => t.status !== "completed").map((t) => ({ taskId: t.taskId, status: t.status, error: t.error })),
  attempts: attempts.length,
  reviewedAttempts: reviewed,
  tasksWithOneReviewedAttempt: tasks.filter((t) => t.attempts.length === 1 && t.attempts[0].review !== null).length,
  claudeProcesses: agentTries.length,
  failedClaudeProcesses: agentTries.filter((t) => t.exit !== 0).length,
  providerWaited: of("ProviderWaited").length,
  providerWaits: of("ProviderWaited").map((e) => ({ taskId: e.taskId, failure: e.failure, waitMs: e.waitMs, concurrency: e.concurrency, message: e.message.slice(0, 200) })),
  wallMs: result.wallMs,
  runEventsMs: ms(runFinished.at) - ms(runStarted.at),
  // Run started → first attempt (preparing worktrees); last task settled → run finished (integration, landing).
  beforeFirstAttemptMs: firstAttempt - ms(runStarted.at),
  afterLastTaskMs: ms(runFinished.at) - lastSettled,
  agentWork: work,
  bound: boundOf(work, input.boundConcurrency ?? maxParallel),
  // The same bound from claude's own `duration_ms` (which leaves out its start-up).
  boundFromClaudeDuration: boundOf(claudeReported, input.boundConcurrency ?? maxParallel),
  // The chain of tasks that ended last, and where its time went: run start → its first attempt; claude's
  // processes; the rest of each attempt around them (output, commit, review bookkeeping); the gates; from
  // one task settled to the next started (worktree reopened, dependency absorbed); last settled → run returned.
  critical,
  phasesMeanMs: {
    beforeAgent: mean(phases.map((p) => p.beforeAgent)),
    agentWall: mean(phases.map((p) => p.agentWall)),
    afterAgent: mean(phases.map((p) => p.afterAgent)),
    gate: mean(phases.map((p) => p.gate).filter((x) => x !== null)),
    settle: mean(phases.map((p) => p.settle).filter((x) => x !== null)),
    settledToNextAttempt: mean(nextGaps)
  },
  phases,
  cpu: {
    engineMs: +((cpuSplit.user + cpuSplit.system) / 1000).toFixed(1),
    // Building the layers until the run started; run started → first attempt (preflight, prepare, first
    // worktrees); first attempt → last task settled (dispatch: the per-attempt work); → run finished
    // (overlaps, merges, landing); → returned (release).
    engineStagesMs: {
      setup: +(cpuAt.runStarted - cpuAt.start).toFixed(0),
      beforeFirstAttempt: +(cpuAt.firstAttempt - cpuAt.runStarted).toFixed(0),
      dispatch: +(cpuAt.lastSettled - cpuAt.firstAttempt).toFixed(0),
      afterLastTask: +(cpuAt.runFinished - cpuAt.lastSettled).toFixed(0),
      release: +(cpuAt.end - cpuAt.runFinished).toFixed(0)
    },
    engineUserMs: +(cpuSplit.user / 1000).toFixed(0),
    engineSystemMs: +(cpuSplit.system / 1000).toFixed(0),
    childrenMs: childrenCpuMs,
    agentsMs: +agentsCpuMs.toFixed(0),
    // git, checks, and the time wrapper's own few ms a claude process.
    braidChildrenMs: +(childrenCpuMs - agentsCpuMs).toFixed(0),
    claudeProcessCpuMs: agentTries.map((t) => +t.cpuMs.toFixed(0))
  },
  // git processes braid started: in all (packages/core/src/internal/git.ts's counter, when it has one) and per
  // workspace method (each process counted against the method whose fiber started it).
  git: {
    counted: true,
    calls: gitTotal ?? gitSpawned,
    spawned: gitSpawned,
    streamSideCalls: TimedWorkspace.gitCallsOf(totals, STREAM_SIDE),
    commitAttemptPerCall: TimedWorkspace.gitPerCall(totals, "commitAttempt"),
    straysPerCall: TimedWorkspace.gitPerCall(totals, "strays"),
    absorbPerCall: TimedWorkspace.gitPerCall(totals, "absorb"),
    openStreamPerCall: TimedWorkspace.gitPerCall(totals, "checkout"),
    streamSideMs: +sum(STREAM_SIDE).toFixed(1),
    commitAttemptMs: +sum(["commitAttempt"]).toFixed(1),
    // Processes started outside any workspace method: the claude processes (and their preflight), git if any.
    outsideMethods: TimedWorkspace.outsideSpawns()
  },
  maxRssMb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
  methods: TimedWorkspace.rounded(totals),
  // The run's events and workspace calls, epoch ms, for a timeline.
  timeline: [
    ...events.map((e) => ({ at: ms(e.at), event: e._tag, taskId: e.taskId, attempt: e.attempt, stream: e.stream })),
    ...trace.map((t) => ({ at: t.start, call: t.name, stream: t.stream, ms: +(t.end - t.start).toFixed(1) })),
    ...agentTries.map((t) => ({ at: t.start, claude: t.marker, wallMs: t.wallMs, exit: t.exit }))
  ].sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity)),
  // Every claude process: its attempt, start (epoch ms), wall, CPU, exit status.
  claudeTries: agentTries.map(({ taskId, attempt, start, wallMs, cpuMs, exit }) => ({ taskId, attempt, start, wallMs, cpuMs: +cpuMs.toFixed(0), exit })),
  preflightClaudeMs: tries.filter((t) => t.marker === "").map((t) => t.wallMs),
  ...(profile ? { profile } : {})
})
