/**
 * Child process for section 3 (git at scale). Input: { streams, tasksPerStream, maxParallel }.
 * Builds a temporary repository, runs a plan whose mocked agents write files through the
 * Workspace Files port into real worktrees (reviewers answer at once), and times every
 * GitWorkspace method through a proxy. Some streams overlap: every even stream edits its
 * own line of shared/config.ts (an overlap git merges cleanly), every fifth stream rewrites
 * shared/routes.ts (a textual conflict, resolved by the harness's resolver). Streams form
 * chains of five: the third task of each stream but the first of a chain depends on the
 * second task of the stream before it, so its workspace absorbs that stream's work.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { GitWorkspace, Orchestrator, Plan, Progress } from "@braid/core"
import { Harness } from "@braid/testkit"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { measure, report } from "./measure.mjs"
import * as TimedWorkspace from "./timed-workspace.mjs"

// The git call counter of packages/core/src/internal/git.ts (the same module instance GitWorkspace uses).
const gitModule = await import("../../packages/core/dist/internal/git.js").catch(() => ({}))
const gitCalls = typeof gitModule.calls === "function" ? gitModule.calls : undefined

const input = JSON.parse(process.argv[2])
const { streams, tasksPerStream, maxParallel } = input

const repo = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-git-"))
const git = (...args) =>
  execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], {
    cwd: repo,
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0" }
  })

// The base: a few hundred small files, so worktrees have something to check out.
const configLines = Array.from({ length: 3 * streams + 3 }, (_, i) => `export const setting${i} = ${i}`)
const write = (rel, text) => {
  fs.mkdirSync(path.dirname(path.join(repo, rel)), { recursive: true })
  fs.writeFileSync(path.join(repo, rel), text)
}
git("init", "--quiet", "-b", "main")
for (let m = 0; m < 20; m++) {
  for (let f = 0; f < 15; f++) write(`src/mod${m}/file${f}.ts`, `// module ${m} file ${f}\n${"export const x = 1\n".repeat(20)}`)
}
write("shared/config.ts", `${configLines.join("\n")}\n`)
write("shared/routes.ts", "export const routes = []\n")
write("README.md", "bench\n")
git("add", "--all")
git("commit", "--quiet", "-m", "base")

// The plan and what each task's agent writes.
const doc = { projectName: "bench", featureName: `git-${streams}`, maxParallel, conflictStrategy: "agent", streams: [], tasks: [] }
const script = { tasks: {} }
for (let s = 0; s < streams; s++) {
  doc.streams.push({ name: `s${s}`, type: "api" })
  for (let t = 0; t < tasksPerStream; t++) {
    const id = `s${s}-t${t}`
    const dependsOn = t === 2 && s % 5 !== 0 ? [`s${s - 1}-t1`] : []
    doc.tasks.push({ id, title: `Task ${id}`, stream: `s${s}`, ...(dependsOn.length > 0 ? { dependsOn } : {}) })
    const files = {
      [`streams/s${s}/task${t}.ts`]: `// ${id}\n${`export const v${t} = ${t}\n`.repeat(30)}`,
      [`streams/s${s}/NOTES.md`]: `# s${s}\n${Array.from({ length: t + 1 }, (_, k) => `- task ${k} done\n`).join("")}`,
      [`src/mod${s % 20}/file${t % 15}.ts`]: `// module ${s % 20} file ${t % 15}, changed by ${id}\n${"export const x = 2\n".repeat(20)}`
    }
    // Only the first stream on a module edits its files, so those changes never collide.
    if (s >= 20) delete files[`src/mod${s % 20}/file${t % 15}.ts`]
    if (t === tasksPerStream - 1 && s % 2 === 0) {
      const lines = [...configLines]
      lines[3 * s + 1] = `export const setting${3 * s + 1} = "s${s}"`
      files["shared/config.ts"] = `${lines.join("\n")}\n`
    }
    if (t === 0 && s % 5 === 0) files["shared/routes.ts"] = `export const routes = ["/s${s}"]\n`
    script.tasks[id] = [{ files }]
  }
}

// Peak disk used by the run's checkouts (worktrees): sampled with `du` while the run goes.
const worktreesDir = path.join(repo, ".braid", "runs", "bench", "worktrees")
const checkouts = { peakKb: 0, peakCount: 0 }
const sampleCheckouts = () => {
  try {
    const kb = Number(execFileSync("du", ["-sk", worktreesDir], { stdio: ["ignore", "pipe", "ignore"] }).toString().split("\t")[0])
    const count = fs.readdirSync(worktreesDir).length
    checkouts.peakKb = Math.max(checkouts.peakKb, kb)
    checkouts.peakCount = Math.max(checkouts.peakCount, count)
  } catch {
    // Not there yet, or gone already.
  }
}
const sampler = setInterval(sampleCheckouts, 250)

const marks = {}
const started = performance.now()
const mark = (name) => (marks[name] = +(performance.now() - started).toFixed(1))
const progress = Progress.layerCallback((e) => {
  if (e._tag === "TaskSettled") mark("lastTaskSettled")
  else if (e._tag === "StreamMerged") mark("lastStreamMerged")
  else if (e._tag === "Landed") mark("landed")
  else if (e._tag === "RunFinished") mark("finished")
  else if (e._tag === "RunStarted") mark("started")
})

const gitBefore = gitCalls?.() ?? 0
const trace = []
const result = await measure(() =>
  Effect.gen(function*() {
    const plan = yield* Plan.decode(doc, "bench")
    const harness = yield* Harness.make(script)
    const { service } = yield* GitWorkspace.make({ repo })
    const timing = TimedWorkspace.timed(service, { countSpawns: true, trace })
    const report = yield* Orchestrator.run(plan, { runId: "bench" }).pipe(
      Effect.provide(Layer.mergeAll(harness.layer, TimedWorkspace.layer(timing.service), progress))
    )
    return { report, totals: timing.totals, resolved: harness.calls.resolve.length }
  }).pipe(Effect.provide(NodeContext.layer), Effect.runPromise)
)
clearInterval(sampler)
const gitCounted = gitCalls !== undefined ? gitCalls() - gitBefore : undefined
const { report: run, totals, resolved } = result.value
const gitSpawned = TimedWorkspace.gitCallsOf(totals, Object.keys(totals)) + TimedWorkspace.outsideSpawns().git
const gitAll = gitCounted ?? gitSpawned
const sum = (...names) => +names.reduce((acc, n) => acc + (totals[n]?.ms ?? 0), 0).toFixed(1)
const STREAM_SIDE = TimedWorkspace.STREAM_SIDE
const INTEGRATION = ["beginIntegration", "probeMerge", "mergeStream", "concludeMerge", "integrationFiles.read", "integrationFiles.write", "integrationFiles.remove", "integrationFiles.list"]
const tasks = streams * tasksPerStream
const worktrees = Number(execFileSync("git", ["worktree", "list", "--porcelain"], { cwd: repo }).toString().split("\n").filter((l) => l.startsWith("worktree ")).length)
fs.rmSync(repo, { recursive: true, force: true })

report({
  streams,
  tasks,
  status: run.status,
  landed: run.mergeResult.landed,
  overlaps: run.conflictReport.overlaps.length,
  conflicts: run.conflictReport.conflicts.length,
  resolved,
  leftoverWorktrees: worktrees - 1,
  // Sampled every 250 ms: the most checkout disk and worktree folders the run held at once.
  peakCheckoutMb: +(checkouts.peakKb / 1024).toFixed(1),
  peakCheckouts: checkouts.peakCount,
  wallMs: result.wallMs,
  maxRssMb: result.maxRssMb,
  // Summed over calls; stream-side calls overlap (up to maxParallel at once), the rest run one at a time.
  phasesMs: {
    // Worktrees are made when a stream's task takes its checkout (checkout) and removed when the stream is
    // done (close): these calls overlap, so prepare and release are the wall time they took, overlaps once.
    prepare: TimedWorkspace.unionMs(trace, ["prepare", "checkout"]),
    streamSide: sum(...STREAM_SIDE),
    overlapDetection: sum("changedFiles"),
    probes: sum("probeMerge"),
    merges: sum(...INTEGRATION.filter((n) => n !== "probeMerge")),
    land: sum("land"),
    release: TimedWorkspace.unionMs(trace, ["release", "close"])
  },
  perTaskMs: {
    streamSide: +(sum(...STREAM_SIDE) / tasks).toFixed(1),
    commitAttempt: +(sum("commitAttempt") / tasks).toFixed(1),
    filesWrite: +(sum("files.write") / tasks).toFixed(1),
    absorb: +(sum("absorb") / tasks).toFixed(1)
  },
  integrationMs: sum(...INTEGRATION),
  // git processes braid started: in all (packages/core/src/internal/git.ts's counter, when it has one) and per
  // method (each process counted against the workspace method whose fiber started it).
  git: {
    counted: true,
    calls: gitAll,
    // What the spawn hook saw, to check the two agree.
    spawned: gitSpawned,
    perTask: +(gitAll / tasks).toFixed(1),
    streamSidePerTask: +(TimedWorkspace.gitCallsOf(totals, STREAM_SIDE) / tasks).toFixed(2),
    commitAttemptPerCall: TimedWorkspace.gitPerCall(totals, "commitAttempt"),
    outsideMethods: TimedWorkspace.outsideSpawns().git
  },
  wallPhasesMs: {
    dispatch: +((marks.lastTaskSettled ?? 0) - (marks.started ?? 0)).toFixed(1),
    detectionAndIntegration: +((marks.lastStreamMerged ?? 0) - (marks.lastTaskSettled ?? 0)).toFixed(1),
    landAndRelease: +((marks.finished ?? 0) - (marks.lastStreamMerged ?? 0)).toFixed(1)
  },
  methods: TimedWorkspace.rounded(totals)
})
