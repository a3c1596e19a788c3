/**
 * braid benchmarks: `npm run bench` (builds the packages first), or `node bench/run.mjs`
 * after a build. Prints a table per section and writes bench/results.json.
 *
 *   --only=dispatch,schedule,git,agents,startup,cluster,plan,sandbox,environment   run some sections
 *   --quick                        fewer repetitions and plans (a smoke test, not for figures)
 *
 * Every measured case runs in its own `node --expose-gc` child process (bench/lib/*-case.mjs),
 * so each starts from an empty heap and its peak RSS is its own. See bench/README.md.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as YAML from "yaml"
import { runChild, startChild } from "./lib/child.mjs"
import { largePlan } from "./lib/plans.mjs"
import { mean, median, num, ratio, table } from "./lib/table.mjs"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",")
const wanted = (section) => only === undefined || only.includes(section)
const started = Date.now()
const log = (text = "") => process.stdout.write(`${text}\n`)
const progress = (text) => process.stderr.write(`  … ${text}\n`)

const gitVersion = (() => {
  try {
    return execFileSync("git", ["--version"]).toString().trim()
  } catch {
    return "git not found"
  }
})()
const results = {
  command: `node bench/run.mjs${args.length > 0 ? ` ${args.join(" ")}` : ""}`,
  startedAt: new Date(started).toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGb: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    git: gitVersion,
    platform: `${os.platform()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((l) => +l.toFixed(2))
  }
}
log(`braid benchmarks — ${results.machine.cpus} × ${results.machine.cpuModel}, ${results.machine.memoryGb} GB, node ${process.version}, ${gitVersion}`)
log(`load average at start: ${results.machine.loadAverageAtStart.join(" ")}${quick ? "   (--quick: smoke test, not for figures)" : ""}`)

// ---------------------------------------------------------------------------------------
// 1. Dispatch overhead
// ---------------------------------------------------------------------------------------

/** The variants measured per plan size; a journal-less build reports the journal as missing. */
const VARIANTS = [
  { key: "baseline", label: "baseline (plain Promises)", input: { variant: "baseline" } },
  { key: "braid", label: "braid, MemoryWorkspace", input: { variant: "braid", workspace: "memory" } },
  { key: "journal", label: "braid, MemoryWorkspace + file journal", input: { variant: "braid", workspace: "memory", journal: true } },
  { key: "light", label: "braid, light workspace (engine alone)", input: { variant: "braid", workspace: "light" } },
  { key: "light-journal", label: "braid, light workspace + file journal", input: { variant: "braid", workspace: "light", journal: true } }
]
const SIZES = [
  { tasks: 1_000, streams: 10 },
  { tasks: 1_000, streams: 100 },
  { tasks: 10_000, streams: 10 },
  { tasks: 10_000, streams: 100 }
]
const MAX_PARALLEL = 10

const dispatchSection = async () => {
  log()
  log(`1. Dispatch overhead — generated plans, 0–2 cross-stream dependencies a task, maxParallel ${MAX_PARALLEL},`)
  log("   agents and reviewers answer at once (Harness.make with no durations), progress silent")
  const cases = []
  for (const size of SIZES) {
    for (const v of VARIANTS) {
      // The MemoryWorkspace runs of 10,000 tasks take tens of seconds: once is enough.
      const slow = size.tasks > 1_000 && (v.key === "braid" || v.key === "journal")
      const repeat = quick || slow ? 1 : size.tasks > 1_000 && v.key !== "baseline" ? 2 : 3
      const runs = []
      let unavailable
      for (let i = 0; i < repeat; i++) {
        progress(`dispatch ${size.tasks}×${size.streams} ${v.key} (${i + 1}/${repeat})`)
        const r = await runChild("./dispatch-case.mjs", { ...v.input, ...size, maxParallel: MAX_PARALLEL, seed: 1 }, { timeoutMs: 600_000 })
        if (r.unavailable) {
          unavailable = r.unavailable
          break
        }
        if (r.status !== "succeeded" || r.completed !== size.tasks) throw new Error(`dispatch ${v.key}: ${JSON.stringify(r)}`)
        runs.push(r)
      }
      cases.push({
        ...size,
        variant: v.key,
        label: v.label,
        ...(unavailable
          ? { unavailable }
          : {
            runs: runs.length,
            wallMs: median(runs.map((r) => r.wallMs)),
            cpuMs: median(runs.map((r) => r.cpuMs)),
            usPerTask: (median(runs.map((r) => r.wallMs)) * 1000) / size.tasks,
            peakRssMb: Math.max(...runs.map((r) => r.maxRssMb)),
            sampledPeakRssMb: Math.max(...runs.map((r) => r.sampledRssMb)),
            decodeMs: runs[0].decodeMs,
            ...(runs[0].journal ? { journal: runs[0].journal } : {}),
            allWallMs: runs.map((r) => r.wallMs)
          })
      })
    }
  }
  for (const c of cases) {
    const base = cases.find((b) => b.variant === "baseline" && b.tasks === c.tasks && b.streams === c.streams)
    if (c.wallMs !== undefined && c.variant !== "baseline") c.ratioToBaseline = c.wallMs / base.wallMs
  }

  // What dominates the largest case, with and without the MemoryWorkspace.
  const profiles = {}
  for (const workspace of quick ? [] : ["memory", "light"]) {
    progress(`dispatch 10000×100 ${workspace} (CPU profile)`)
    const r = await runChild("./dispatch-case.mjs", { variant: "braid", workspace, profile: true, tasks: 10_000, streams: 100, maxParallel: MAX_PARALLEL, seed: 1 }, { timeoutMs: 600_000 })
    profiles[workspace] = { wallMs: r.wallMs, ...r.profile }
  }

  log()
  log(table(
    ["tasks × streams", "variant", "wall ms", "µs/task", "× baseline", "peak RSS MB", "runs"],
    cases.map((c, i) => [
      i % VARIANTS.length === 0 ? `${num(c.tasks)} × ${c.streams}` : "",
      c.label,
      ...(c.unavailable
        ? [c.unavailable, "", "", "", ""]
        : [num(c.wallMs, c.wallMs < 100 ? 1 : 0), num(c.usPerTask, c.usPerTask < 100 ? 1 : 0), c.ratioToBaseline ? `${num(c.ratioToBaseline, 1)}×` : "", num(c.peakRssMb), c.runs])
    ])
  ))
  const big = cases.find((c) => c.tasks === 10_000 && c.streams === 100 && c.variant === "braid")
  const bigLight = cases.find((c) => c.tasks === 10_000 && c.streams === 100 && c.variant === "light")
  const worstRatio = Math.max(...cases.filter((c) => c.variant === "braid").map((c) => c.ratioToBaseline))
  const targets = {
    withinThreeTimesBaseline: { met: worstRatio <= 3, worstRatio },
    tenThousandUnderThreeSeconds: { met: big.wallMs < 3000, wallMs: big.wallMs, lightWorkspaceWallMs: bigLight.wallMs },
    tenThousandUnder300Mb: { met: big.peakRssMb < 300, peakRssMb: big.peakRssMb, lightWorkspacePeakRssMb: bigLight.peakRssMb }
  }
  log()
  log(`targets: braid within 3× of baseline — ${targets.withinThreeTimesBaseline.met ? "met" : "missed"} (worst ${num(worstRatio, 0)}×);` +
    ` 10,000 × 100 under 3 s — ${targets.tenThousandUnderThreeSeconds.met ? "met" : "missed"} (${num(big.wallMs / 1000, 1)} s; engine alone ${num(bigLight.wallMs / 1000, 1)} s);` +
    ` under 300 MB — ${targets.tenThousandUnder300Mb.met ? "met" : "missed"} (${num(big.peakRssMb)} MB; engine alone ${num(bigLight.peakRssMb)} MB)`)
  for (const [workspace, p] of Object.entries(profiles)) {
    log(`CPU profile, 10,000 × 100, ${workspace === "memory" ? "MemoryWorkspace" : "light workspace"} (${num(p.totalMs)} ms sampled): ` +
      p.categories.slice(0, 5).map((c) => `${c.name} ${c.pct}%`).join(", "))
  }
  return { maxParallel: MAX_PARALLEL, cases, targets, profiles }
}

// ---------------------------------------------------------------------------------------
// 2. Schedule quality
// ---------------------------------------------------------------------------------------

const scheduleSection = async () => {
  const plans = quick ? 10 : 100
  const levels = [2, 5, 10]
  log()
  log(`2. Schedule quality — ${plans} random plans per maxParallel (4–12 streams × 2–8 tasks, random cross-stream`)
  log("   dependencies, task durations lognormal around 2 min within 10 s – 20 min), real Orchestrator under virtual time")
  // Virtual time does not depend on load, so two plans' worth of children run at once.
  const pending = levels.map((maxParallel) => ({ maxParallel }))
  const outcomes = new Map()
  const worker = async () => {
    for (let job = pending.shift(); job !== undefined; job = pending.shift()) {
      progress(`schedule maxParallel ${job.maxParallel} (${plans} plans)`)
      outcomes.set(job.maxParallel, await runChild("./schedule-case.mjs", { maxParallel: job.maxParallel, firstSeed: 1000, plans, sanity: true }, { timeoutMs: 600_000 }))
    }
  }
  await Promise.all([worker(), worker()])

  const summaries = levels.map((maxParallel) => {
    const { rows, sanity, liveMs, worst: hardest } = outcomes.get(maxParallel)
    const toLb = (ms, r) => ms / r.lowerBoundMs
    const braid = rows.map((r) => toLb(r.braidMs, r))
    const worst = rows.reduce((a, r) => (toLb(r.braidMs, r) > toLb(a.braidMs, a) ? r : a))
    const model = (key) => {
      const xs = rows.map((r) => toLb(r.modelMs[key], r))
      return { mean: mean(xs), worst: Math.max(...xs) }
    }
    return {
      maxParallel,
      plans: rows.length,
      meanToLowerBound: mean(braid),
      // With each task's effort given as an estimate of its duration (off by up to ×1.65).
      effortMeanToLowerBound: mean(rows.map((r) => toLb(r.braidEffortMs, r))),
      effortWorstToLowerBound: Math.max(...rows.map((r) => toLb(r.braidEffortMs, r))),
      effortWorseThanBarrier: rows.filter((r) => r.braidEffortMs > r.barrierMs).length,
      worstToLowerBound: Math.max(...braid),
      worstSeed: worst.seed,
      meanBarrierToLowerBound: mean(rows.map((r) => toLb(r.barrierMs, r))),
      worseThanBarrier: rows.filter((r) => r.braidMs > r.barrierMs).length,
      meanBraidToBarrier: mean(rows.map((r) => r.braidMs / r.barrierMs)),
      modelMatchesEngine: rows.filter((r) => r.modelMs.current === r.braidMs).length,
      model: { immediate: model("immediate"), weighted: model("weighted"), estimated: model("estimated") },
      hardest: {
        seed: hardest.seed,
        braid: hardest.braidMs / hardest.lowerBoundMs,
        weighted: hardest.weightedMs / hardest.lowerBoundMs,
        bestList: hardest.bestListMs / hardest.lowerBoundMs
      },
      sanity,
      liveMs,
      rows
    }
  })
  log()
  log(table(
    ["maxParallel", "plans", "mean braid/LB", "worst braid/LB", "mean barrier/LB", "braid/barrier", "worse than barrier"],
    summaries.map((s) => [s.maxParallel, s.plans, ratio(s.meanToLowerBound), `${ratio(s.worstToLowerBound)} (seed ${s.worstSeed})`, ratio(s.meanBarrierToLowerBound), ratio(s.meanBraidToBarrier), s.worseThanBarrier])
  ))
  log()
  log("with each task's `effort` set to an estimate of its duration (off by a lognormal factor, σ 0.5):")
  log(table(
    ["maxParallel", "mean braid/LB", "worst braid/LB", "worse than barrier"],
    summaries.map((s) => [s.maxParallel, ratio(s.effortMeanToLowerBound), ratio(s.effortWorstToLowerBound), s.effortWorseThanBarrier])
  ))
  const targets = {
    neverWorseThanBarrier: summaries.every((s) => s.worseThanBarrier === 0),
    meanWithin5Percent: summaries.every((s) => s.meanToLowerBound <= 1.05),
    worstWithin15Percent: summaries.every((s) => s.worstToLowerBound <= 1.15)
  }
  const sanity = summaries.flatMap((s) => s.sanity)
  log()
  log(`LB = max(critical path with durations, total work / maxParallel). Targets: never worse than barrier — ${targets.neverWorseThanBarrier ? "met" : "missed"};` +
    ` mean within 5% — ${targets.meanWithin5Percent ? "met" : "missed"}; worst within 15% — ${targets.worstWithin15Percent ? "met" : "missed"}`)
  log(`checks: ${sanity.filter((c) => c.ok).length}/${sanity.length} passed (virtual time exact; analytic batch-barrier = braid run batch by batch)` +
    (sanity.every((c) => c.ok) ? "" : ` — FAILED: ${sanity.filter((c) => !c.ok).map((c) => c.name).join("; ")}`))
  log(`dispatch model (bench/lib/listsim.mjs) reproduces braid's makespan on ${summaries.reduce((a, s) => a + s.modelMatchesEngine, 0)}/${summaries.reduce((a, s) => a + s.plans, 0)} plans; with it (mean / worst vs LB):`)
  log(table(
    ["maxParallel", "earlier slot policy", "duration-weighted chain (exact)", "(estimates within ×1.65)", "worst plan: braid / weighted / best of 2,000 lists"],
    summaries.map((s) => [
      s.maxParallel,
      ...["immediate", "weighted", "estimated"].map((k) => `${ratio(s.model[k].mean)} / ${ratio(s.model[k].worst)}`),
      `seed ${s.hardest.seed}: ${ratio(s.hardest.braid)} / ${ratio(s.hardest.weighted)} / ${ratio(s.hardest.bestList)}`
    ])
  ))
  return { plansPerLevel: plans, firstSeed: 1000, targets, summaries }
}

// ---------------------------------------------------------------------------------------
// 3. Git at scale
// ---------------------------------------------------------------------------------------

const gitSection = async () => {
  log()
  const source = fileURLToPath(new URL("../packages/core/src/workspaces/GitWorkspace.ts", import.meta.url))
  if (!fs.existsSync(source)) {
    log("3. git: GitWorkspace not available")
    return { available: false }
  }
  log("3. Git at scale — temporary repository (303 files), 5 tasks a stream writing 2–5 files each through the")
  log("   Files port into real worktrees, reviewers at once, maxParallel 5; overlaps and conflicts by design")
  const sizes = quick ? [10] : [10, 50]
  const runs = []
  for (const streams of sizes) {
    progress(`git ${streams} streams`)
    runs.push(await runChild("./git-case.mjs", { streams, tasksPerStream: 5, maxParallel: 5 }, { timeoutMs: 600_000 }))
  }
  for (const r of runs) if (r.status !== "succeeded" || !r.landed) throw new Error(`git ${r.streams}: ${r.status}`)
  log()
  const s = (ms) => num(ms / 1000, 1)
  log(table(
    ["streams", "tasks", "wall s", "prepare s", "stream-side ms/task", "commit ms/task", "git calls/task (stream-side)", "commit git calls", "overlap s", "probes s", "merges s", "integration s", "release s", "conflicts", "peak RSS MB"],
    runs.map((r) => [
      r.streams,
      r.tasks,
      s(r.wallMs),
      s(r.phasesMs.prepare),
      num(r.perTaskMs.streamSide),
      num(r.perTaskMs.commitAttempt),
      r.git.counted ? `${num(r.git.perTask, 1)} (${num(r.git.streamSidePerTask, 1)})` : "–",
      r.git.counted ? num(r.git.commitAttemptPerCall, 1) : "–",
      s(r.phasesMs.overlapDetection),
      s(r.phasesMs.probes),
      s(r.phasesMs.merges),
      s(r.integrationMs),
      s(r.phasesMs.release),
      `${r.conflicts} (${r.overlaps} overlaps)`,
      num(r.maxRssMb)
    ])
  ))
  const growth = runs.length === 2
    ? {
      streams: runs[1].streams / runs[0].streams,
      perTask: runs[1].perTaskMs.streamSide / runs[0].perTaskMs.streamSide,
      integration: runs[1].integrationMs / runs[0].integrationMs,
      prepare: runs[1].phasesMs.prepare / runs[0].phasesMs.prepare,
      release: runs[1].phasesMs.release / runs[0].phasesMs.release
    }
    : undefined
  const largest = runs.at(-1)
  log()
  if (growth) {
    log(`growth ${runs[0].streams} → ${runs[1].streams} streams (×${growth.streams}): stream-side git per task ×${ratio(growth.perTask, 2)},` +
      ` integration ×${ratio(growth.integration, 2)}, prepare ×${ratio(growth.prepare, 2)}, release ×${ratio(growth.release, 2)}`)
  }
  log(`target: integration for 50 streams under 30 s — ${largest.streams === 50 ? (largest.integrationMs < 30_000 ? "met" : "missed") : "not run"} (${s(largest.integrationMs)} s)`)
  // Before worktrees were opened per task and given back while waiting (commit 41a9849's
  // measurement): 50 streams held 51 checkouts, 68.9 MB, at their peak.
  for (const r of runs) {
    log(`checkouts at their peak, ${r.streams} streams (maxParallel 5): ${r.peakCheckouts ?? "?"} worktrees, ${num(r.peakCheckoutMb ?? 0, 1)} MB (sampled every 250 ms; before: 51 and 68.9 MB for 50 streams)`)
  }
  log("(ms summed over calls: stream-side calls overlap, up to maxParallel at once; integration calls run one at a time)")
  return { available: true, runs, growth }
}

// ---------------------------------------------------------------------------------------
// 4. Agents: the real claude binary against a scripted server
// ---------------------------------------------------------------------------------------

/** The two runs of the section; `quick` makes them smaller, with a shorter model delay. */
const AGENT_CASES = (quick) => [
  {
    name: "makespan",
    label: "makespan",
    streams: 4,
    tasksPerStream: quick ? 2 : 3,
    // A task that waits on another stream's second task: the critical path is four tasks long (three with --quick).
    dependsOn: quick ? { "s1-t1": ["s0-t1"] } : { "s1-t1": ["s0-t1"], "s3-t2": ["s2-t1"] },
    maxParallel: 4,
    server: { delayMs: quick ? 300 : 1000 },
    target: 1.1
  },
  {
    name: "limits",
    label: "limits (server takes 2 at once)",
    streams: 6,
    tasksPerStream: quick ? 1 : 2,
    dependsOn: quick ? {} : { "s1-t1": ["s0-t0"], "s4-t1": ["s3-t0"] },
    maxParallel: 6,
    limits: { anthropic: { backoffSeconds: 1 } },
    boundConcurrency: 2,
    server: { delayMs: quick ? 300 : 1000, maxInFlight: 2, retryAfterSeconds: 1 },
    target: 1.25
  }
]

/** max(critical path, work ÷ concurrency) of per-task durations: streams in order, plus `dependsOn`. */
const chainBound = (c, durations, concurrency) => {
  const finish = new Map()
  const finishOf = (id) => {
    if (finish.has(id)) return finish.get(id)
    const [, s, t] = /^s(\d+)-t(\d+)$/.exec(id).map(Number)
    const preds = [...(t > 0 ? [`s${s}-t${t - 1}`] : []), ...(c.dependsOn[id] ?? [])]
    const f = Math.max(0, ...preds.map(finishOf)) + durations[id]
    finish.set(id, f)
    return f
  }
  const ids = Object.keys(durations)
  const criticalPathMs = Math.max(...ids.map(finishOf))
  const totalWorkMs = ids.reduce((a, id) => a + durations[id], 0)
  return { criticalPathMs, totalWorkMs, concurrency, boundMs: Math.max(criticalPathMs, totalWorkMs / concurrency) }
}

/**
 * Each task's agent work without the time claude itself waited between 429s (its own
 * retries, inside one process): from the server's log, a 429 to a claude process and that
 * process's next request for the same turn.
 */
const workWithoutClaudeBackoff = (r) => {
  const turns = r.server.log
  const work = {}
  for (const t of r.claudeTries) {
    if (t.exit !== 0) continue
    const end = t.start + t.wallMs
    let waited = 0
    for (const e of turns) {
      if (e.answer !== 429 || e.taskId !== t.taskId || e.attempt !== t.attempt || e.at < t.start || e.at > end) continue
      const next = turns.find((n) => n.taskId === e.taskId && n.attempt === e.attempt && n.step === e.step && n.at > e.at)
      if (next !== undefined && next.at <= end) waited += next.at - e.at
    }
    work[t.taskId] = (work[t.taskId] ?? 0) + t.wallMs - waited
  }
  return work
}

const agentsSection = async () => {
  log()
  const claude = fileURLToPath(new URL("../node_modules/.bin/claude", import.meta.url))
  if (!fs.existsSync(claude)) {
    log("4. agents: claude not installed (node_modules/.bin/claude)")
    return { available: false }
  }
  const cases = AGENT_CASES(quick)
  log(`4. Agents — the real claude binary (${execFileSync(claude, ["--version"]).toString().trim()}) through Orchestrator.run over GitWorkspace, against a`)
  log(`   scripted Anthropic server in its own process answering each model turn after ${num(cases[0].server.delayMs)} ms; each attempt = a Write turn,`)
  log("   then a closing turn; each task's check is `test -f` of its file")
  const runs = []
  for (const c of cases) {
    progress(`agents ${c.name} (${c.streams * c.tasksPerStream} tasks over ${c.streams} streams)`)
    const server = await startChild("./agents-server.mjs", c.server)
    let r
    try {
      r = await runChild("./agents-case.mjs", {
        name: c.name,
        serverUrl: server.url,
        streams: c.streams,
        tasksPerStream: c.tasksPerStream,
        dependsOn: c.dependsOn,
        maxParallel: c.maxParallel,
        limits: c.limits,
        boundConcurrency: c.boundConcurrency,
        timeoutSeconds: 120
      }, { timeoutMs: 600_000 })
    } finally {
      const served = await server.stop()
      if (r !== undefined) r.server = served
    }
    if (r.unavailable) {
      log(`4. agents: ${r.unavailable}`)
      return { available: false, unavailable: r.unavailable }
    }
    if (r.failed) throw new Error(`agents ${c.name}: the run failed: ${r.failed}`)
    // The bound: the agents' work without claude's own waits between 429s (none unless the server refuses).
    const workMs = workWithoutClaudeBackoff(r)
    const bound = chainBound(c, workMs, c.boundConcurrency ?? c.maxParallel)
    runs.push({ ...c, ...r, workMs, boundOfWholeTries: r.bound, bound, ratio: r.wallMs / bound.boundMs, ratioOfWholeTries: r.wallMs / r.bound.boundMs })
  }

  const s = (ms) => num(ms / 1000, 1)
  const perAttempt = (ms, r) => ms / r.reviewedAttempts
  log()
  log(table(
    ["case", "tasks × streams", "maxParallel", "makespan s", "critical path s", "work ÷ c s", "bound s", "makespan / bound", "target", "failed", "429s", "braid waits"],
    runs.map((r) => [
      r.label,
      `${r.tasks} × ${r.streams}`,
      r.maxParallel,
      s(r.wallMs),
      s(r.bound.criticalPathMs),
      `${s(r.bound.totalWorkMs / r.bound.concurrency)} (c ${r.bound.concurrency})`,
      s(r.bound.boundMs),
      ratio(r.ratio, 2),
      `≤ ${ratio(r.target, 2)}`,
      r.failedTasks.length,
      r.server.rejected,
      r.providerWaited
    ])
  ))
  log()
  log(table(
    ["case", "braid engine CPU ms/attempt", "(while dispatching)", "git + checks ms/attempt", "agents CPU ms/attempt", "engine / agents", "(engine + git + checks) / agents", "git calls/attempt (stream-side)", "stream-side git ms/task", "commitAttempt git calls"],
    runs.map((r) => [
      r.label,
      num(perAttempt(r.cpu.engineMs, r)),
      num(perAttempt(r.cpu.engineStagesMs.dispatch, r)),
      num(perAttempt(r.cpu.braidChildrenMs, r)),
      num(perAttempt(r.cpu.agentsMs, r)),
      `${num((100 * r.cpu.engineMs) / r.cpu.agentsMs, 1)}%`,
      `${num((100 * (r.cpu.engineMs + r.cpu.braidChildrenMs)) / r.cpu.agentsMs, 1)}%`,
      r.git.counted ? `${num(r.git.calls / r.reviewedAttempts, 1)} (${num(r.git.streamSideCalls / r.reviewedAttempts, 1)})` : "–",
      num(r.git.streamSideMs / r.tasks),
      r.git.counted ? `${num(r.git.commitAttemptPerCall, 1)} a call` : "–"
    ])
  ))
  log()
  log("where the time went — per attempt (ms, mean): attempt started → claude started / claude's wall / claude ended → attempt finished")
  log("(its output read, strays, the attempt's commit) / the gate (the check) / settled → the stream's next attempt; per run (s): run started →")
  log("first attempt (prepare, first worktree), worktrees opened (count), last task settled → run finished (overlaps, merges, landing), release")
  const call = (r, name) => r.methods[name] ?? { calls: 0, ms: 0 }
  log(table(
    ["case", "→ claude", "claude wall", "→ finished", "commit", "gate", "→ next", "before first s", "worktrees opened (s)", "after last s", "release s"],
    runs.map((r) => [
      r.label,
      num(r.phasesMeanMs.beforeAgent),
      num(r.phasesMeanMs.agentWall),
      num(r.phasesMeanMs.afterAgent),
      num(call(r, "commitAttempt").ms / Math.max(1, call(r, "commitAttempt").calls)),
      num(r.phasesMeanMs.gate),
      num(r.phasesMeanMs.settledToNextAttempt),
      s(r.beforeFirstAttemptMs),
      `${call(r, "checkout").calls} (${s(call(r, "checkout").ms)})`,
      s(r.afterLastTaskMs),
      s(call(r, "release").ms)
    ])
  ))
  log()
  for (const r of runs) {
    const k = r.critical
    log(`${r.name}: the chain that ended last, ${k.tasks.join(" → ")}: ${s(r.wallMs)} s = claude ${s(k.agentsMs)} s + braid ${s(r.wallMs - k.agentsMs)} s` +
      ` (before its first attempt ${s(k.startMs)}, around claude's processes ${s(k.aroundAgentMs)}, gates ${s(k.gateMs)},` +
      ` between its tasks ${s(k.betweenTasksMs)}, after its last task ${s(k.endMs)})`)
  }
  const [makespan, limits] = runs
  const targets = {
    makespanWithin10Percent: { met: makespan.ratio <= 1.1, ratio: makespan.ratio },
    braidCpuUnder5PercentOfAgents: { met: makespan.cpu.engineMs < 0.05 * makespan.cpu.agentsMs, percent: (100 * makespan.cpu.engineMs) / makespan.cpu.agentsMs },
    limitsNoTaskFailed: { met: limits.failedTasks.length === 0, failed: limits.failedTasks },
    limitsNoGateRunUsed: { met: limits.tasksWithOneReviewedAttempt === limits.tasks, tasksWithOneReviewedAttempt: limits.tasksWithOneReviewedAttempt },
    limitsWithin25Percent: { met: limits.ratio <= 1.25, ratio: limits.ratio }
  }
  log()
  log("bound = max(critical path, work ÷ c) of the agents' work: each claude process's wall time (measured by /usr/bin/time), less the time it")
  log("waited itself between 429s; c = maxParallel, 2 in the limits case (what the server takes at once)")
  log(`targets: makespan within 10% of the bound — ${targets.makespanWithin10Percent.met ? "met" : "missed"} (${ratio(makespan.ratio, 2)});` +
    ` braid's CPU under 5% of the agents' — ${targets.braidCpuUnder5PercentOfAgents.met ? "met" : "missed"} (${num(targets.braidCpuUnder5PercentOfAgents.percent, 1)}%)`)
  log(`limits: ${limits.failedTasks.length === 0 ? "no task failed" : `FAILED: ${limits.failedTasks.map((t) => t.taskId).join(", ")}`};` +
    ` ${limits.tasksWithOneReviewedAttempt}/${limits.tasks} tasks passed on one reviewed attempt (no gate run used by a 429) — ${targets.limitsNoGateRunUsed.met ? "met" : "missed"};` +
    ` ${limits.server.rejected} 429s, ${limits.providerWaited} braid waits (ProviderWaited), ${limits.failedClaudeProcesses} claude processes gave up;` +
    ` within 25% of the bound at concurrency 2 — ${targets.limitsWithin25Percent.met ? "met" : "missed"} (${ratio(limits.ratio, 2)};` +
    ` ${ratio(limits.ratioOfWholeTries, 2)} against the whole tries' wall times)`)
  return { available: true, runs, targets }
}

// ---------------------------------------------------------------------------------------
// 5. Start-up: the braid command against `node -e 0`
// ---------------------------------------------------------------------------------------

/** Wall time of one command in its own process, in ms; throws when it fails. */
const timeCommand = (argv, cwd, env = process.env) => {
  const start = process.hrtime.bigint()
  const result = spawnSync(argv[0], argv.slice(1), { cwd, encoding: "utf8", env: { ...env, NO_COLOR: "1" } })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (result.status !== 0) throw new Error(`${argv.join(" ")}: exit ${result.status}\n${result.stderr}`)
  return ms
}

/**
 * The command packed and installed into a fresh prefix (offline, as install.test.ts does), its
 * start-up snapshot made by its first `braid runs` in `repo` and awaited: { bin, env, work,
 * snapshotMs }, or { why } when it could not be installed.
 */
const installedBraid = (repo) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-install-"))
  const prefix = path.join(work, "prefix")
  const home = path.join(work, "home")
  fs.mkdirSync(home)
  progress("packing and installing the command (about a minute)")
  const root = fileURLToPath(new URL("..", import.meta.url))
  const packed = spawnSync(process.execPath, [path.join(root, "scripts/pack-cli.mjs"), "--out", work], { cwd: root, encoding: "utf8" })
  if (packed.status !== 0) return { work, why: `pack-cli: ${packed.stderr.trim().split("\n").at(-1)}` }
  const tarball = packed.stdout.trim().split("\n").at(-1)
  const install = spawnSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--prefix", prefix, "-g", tarball], { cwd: work, encoding: "utf8" })
  if (install.status !== 0) return { work, why: `npm install: ${install.stderr.trim().split("\n").at(-1)}` }
  const bin = path.join(prefix, "bin", "braid")
  const env = {
    PATH: [path.join(prefix, "bin"), path.dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(path.delimiter),
    HOME: home,
    LANG: "C.UTF-8"
  }
  const started = Date.now()
  timeCommand([bin, "runs"], repo, env)
  const id = fs.readFileSync(path.join(prefix, "lib", "node_modules", "@braid", "cli", "dist", "braid.snapshot.js.id"), "utf8").trim()
  const record = path.join(home, ".cache", "braid", "snapshot", id, "braid.snapshot.node")
  while (!fs.existsSync(record) && Date.now() - started < 120_000) spawnSync("sleep", ["0.2"])
  if (!fs.existsSync(record)) return { work, why: "its first braid runs made no start-up snapshot within 120 s" }
  return { bin, env, work, snapshotMs: Date.now() - started }
}

const startupSection = async () => {
  log()
  const bin = fileURLToPath(new URL("../packages/cli/bin/braid", import.meta.url))
  const ordinary = fileURLToPath(new URL("../packages/cli/bin/braid.js", import.meta.url))
  log("5. Start-up — the built `braid` command (packages/cli/bin/braid, as npm links it) against `node -e 0`, each run its own")
  log("   process, in a temporary repository holding one finished run (script agent); the cases take turns, round after round,")
  log("   so that each round's cases meet the machine in the same state. The last two rows, for comparison: the ordinary command")
  log("   (node packages/cli/bin/braid.js), which starts runs and status without the start-up snapshot")
  if (!fs.existsSync(fileURLToPath(new URL("../packages/cli/dist/braid.snapshot", import.meta.url)))) {
    log("   (packages/cli/dist/braid.snapshot is missing: the build made no start-up snapshot, so bin/braid starts without it too)")
  }
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-startup-"))
  let installed
  try {
    const git = (...a) => execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...a], { cwd: repo })
    git("init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, "README.md"), "bench\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    const plan = path.join(repo, "plan.yaml")
    fs.writeFileSync(plan, "agent: script\nstreams:\n  - {name: s, type: docs}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, \"require('fs').writeFileSync('a.txt', 'a')\"]}\n")
    fs.appendFileSync(path.join(repo, ".git", "info", "exclude"), "plan.yaml\n")
    timeCommand([bin, "run", plan], repo)
    const repeat = quick ? 3 : 9
    // The command as users get it: packed (scripts/pack-cli.mjs) and installed into a fresh
    // prefix, with a HOME of its own; its first `braid runs` makes its start-up snapshot in the
    // background (bin/braid), which is awaited before timing.
    installed = installedBraid(repo)
    const cases = [
      { command: "node -e 0", argv: [process.execPath, "-e", "0"] },
      { command: "braid --help", argv: [bin, "--help"] },
      { command: "braid runs", argv: [bin, "runs"] },
      { command: "braid status", argv: [bin, "status"] },
      ...(installed.bin === undefined ? [] : [
        { command: "installed braid --help", argv: [installed.bin, "--help"], env: installed.env },
        { command: "installed braid runs", argv: [installed.bin, "runs"], env: installed.env },
        { command: "installed braid status", argv: [installed.bin, "status"], env: installed.env }
      ]),
      { command: "node bin/braid.js runs", argv: [process.execPath, ordinary, "runs"], comparison: true },
      { command: "node bin/braid.js status", argv: [process.execPath, ordinary, "status"], comparison: true }
    ]
    for (const c of cases) {
      progress(c.command)
      timeCommand(c.argv, repo, c.env) // warms the file-system cache; not counted
      c.runsMs = []
    }
    for (let round = 0; round < repeat; round++) {
      for (const c of cases) c.runsMs.push(timeCommand(c.argv, repo, c.env))
    }
    for (const c of cases) c.medianMs = median(c.runsMs)
    const node = cases[0].medianMs
    log()
    log(table(
      ["command", "median ms", "min ms", "max ms", "over node -e 0 ms", "runs"],
      cases.map((c) => [c.command, num(c.medianMs), num(Math.min(...c.runsMs)), num(Math.max(...c.runsMs)), c === cases[0] ? "" : num(c.medianMs - node), c.runsMs.length])
    ))
    const braidCases = cases.slice(1).filter((c) => c.comparison !== true)
    const met = braidCases.every((c) => c.medianMs < 300)
    const nearNode = braidCases.filter((c) => c.command !== "braid --help" && c.command !== "installed braid --help").every((c) => c.medianMs - node < 100)
    log()
    log(`target: braid --help, braid runs and braid status answer in under 0.3 s — ${met ? "met" : "missed"}` +
      ` (${braidCases.map((c) => `${c.command} ${num(c.medianMs / 1000, 2)} s`).join(", ")})`)
    log(`target: runs and status, installed or not, within 0.1 s of node -e 0 — ${nearNode ? "met" : "missed"}`)
    if (installed.bin === undefined) log(`   (the installed command was not measured: ${installed.why})`)
    else log(`   (installed from the tarball; its start-up snapshot made in the background by its first braid runs in ${num(installed.snapshotMs / 1000, 1)} s)`)
    return { available: true, cases, installed: installed.bin === undefined ? { why: installed.why } : { snapshotMs: installed.snapshotMs }, target: { under300Ms: met, within100MsOfNode: nearNode } }
  } finally {
    fs.rmSync(repo, { recursive: true, force: true })
    if (installed?.work !== undefined) fs.rmSync(installed.work, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// 6. Cluster
// ---------------------------------------------------------------------------------------

const clusterSection = async () => {
  const c = await import("./lib/cluster.mjs")
  log()
  const runs = quick ? 2 : 6
  const shape = { streams: 4, tasks: 3, sleepMs: 2000, maxParallel: 4 }
  log(`6. Cluster — ${runs} runs of ${shape.streams} streams × ${shape.tasks} tasks whose script agents sleep ${shape.sleepMs / 1000} s, submitted at once`)
  log("   (braid submit --wait) to 1, 2 and 3 `braid runner` processes with 2 slots each, on one Postgres and bare repositories as remotes;")
  log("   makespan from the first submit to the last run landed. Then one run with agents that answer at once: cluster against embedded.")
  const pg = await c.postgres()
  if (!pg.available) {
    log(`   skipped: ${pg.reason}`)
    return { available: false, reason: pg.reason }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-cluster-"))
  try {
    const plan = c.writePlan(path.join(dir, "plan"), shape)
    const cases = []
    for (const n of [1, 2, 3]) {
      progress(`${runs} runs on ${n} runner(s)`)
      const url = pg.database()
      const runners = []
      try {
        for (let i = 1; i <= n; i++) runners.push(await c.runner(url, path.join(dir, `n${n}`), `runner-${i}`, 2))
        const remotes = Array.from({ length: runs }, (_, i) => c.remote(path.join(dir, `n${n}`), `run-${i}`))
        const start = Date.now()
        await Promise.all(remotes.map((r, i) => c.finish([process.execPath, c.bin, "submit", plan, "--database", url, "--remote", r.remote, "--id", `run-${i}`, "--wait", "-q"])))
        const makespanMs = Date.now() - start
        const boundMs = Math.ceil((runs * shape.streams * shape.tasks) / (2 * n)) * shape.sleepMs
        cases.push({ runners: n, slots: 2 * n, makespanMs, boundMs })
      } finally {
        for (const r of runners) r.child.kill("SIGINT")
        await new Promise((resolve) => setTimeout(resolve, 500))
        for (const r of runners) r.child.kill("SIGKILL")
      }
    }
    const one = cases[0].makespanMs
    for (const k of cases) k.speedup = +(one / k.makespanMs).toFixed(2)
    log()
    log(table(
      ["runners", "slots", "makespan s", "bound s (sleeps / slots)", "speed-up vs 1 runner"],
      cases.map((k) => [k.runners, k.slots, num(k.makespanMs / 1000, 1), num(k.boundMs / 1000, 1), k.runners === 1 ? "1.00" : k.speedup.toFixed(2)])
    ))
    const met2 = cases[1].speedup >= 1.8
    const met3 = cases[2].speedup >= 2.6
    log()
    log(`targets: at least 1.8× with two runners — ${met2 ? "met" : "missed"} (${cases[1].speedup}×); at least 2.6× with three — ${met3 ? "met" : "missed"} (${cases[2].speedup}×)`)

    // The cluster's own overhead: the same plan, agents answering at once, one run, embedded and on one runner.
    progress("overhead per step: one run, embedded and in the cluster")
    const fast = c.writePlan(path.join(dir, "fast"), { ...shape, sleepMs: 0 })
    const repeat = quick ? 1 : 3
    const embeddedMs = []
    const clusterMs = []
    let steps = 0
    for (let i = 0; i < repeat; i++) {
      const { work } = c.remote(path.join(dir, "embedded"), `e-${i}`)
      const t0 = Date.now()
      await c.finish([process.execPath, c.bin, "run", fast, "--repo", work, "-q"])
      embeddedMs.push(Date.now() - t0)
    }
    const url = pg.database()
    const r = await c.runner(url, path.join(dir, "overhead"), "runner-1", 4)
    try {
      for (let i = 0; i < repeat; i++) {
        const { remote } = c.remote(path.join(dir, "overhead"), `o-${i}`)
        const t0 = Date.now()
        await c.finish([process.execPath, c.bin, "submit", fast, "--database", url, "--remote", remote, "--id", `o-${i}`, "--wait", "-q"])
        clusterMs.push(Date.now() - t0)
      }
      steps = c.journalRows(url) / repeat
    } finally {
      r.child.kill("SIGKILL")
    }
    const embedded = median(embeddedMs)
    const clustered = median(clusterMs)
    const tasks = shape.streams * shape.tasks
    log()
    log(table(
      ["engine", "one run, median s", "per task ms", "journal records per run"],
      [
        ["embedded (braid run, JSONL journal)", num(embedded / 1000, 2), num(embedded / tasks), ""],
        ["cluster (braid submit --wait, one runner)", num(clustered / 1000, 2), num(clustered / tasks), num(steps)]
      ]
    ))
    log()
    log(`cluster overhead: ${num((clustered - embedded) / tasks)} ms a task, ${num((clustered - embedded) / steps, 1)} ms a journal record, over the embedded engine`)
    return {
      available: true,
      shape: { runs, ...shape },
      cases,
      targets: { twoRunners: { speedup: cases[1].speedup, target: 1.8, met: met2 }, threeRunners: { speedup: cases[2].speedup, target: 2.6, met: met3 } },
      overhead: { embeddedMs, clusterMs, tasks, journalRecordsPerRun: steps, perTaskMs: (clustered - embedded) / tasks, perRecordMs: (clustered - embedded) / steps }
    }
  } finally {
    pg.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// 7. braid plan at the size limits
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// 8. Confinement
// ---------------------------------------------------------------------------------------

const sandboxSection = async () => {
  log()
  log("8. Confinement — what bubblewrap costs: per process start (Process.run of `true` and `node -e 0`, unconfined,")
  log("   confined, confined with one allowed endpoint so the network relay starts too; interleaved), and per attempt of the")
  log("   real claude (one stream of 4 tasks against the scripted server, confined and unconfined runs taking turns)")
  const starts = await runChild("./sandbox-case.mjs", { rounds: quick ? 10 : 60 })
  if (starts.unavailable) {
    log(`8. confinement: ${starts.unavailable}`)
    return { available: false, unavailable: starts.unavailable }
  }
  const rows = []
  const perStart = {}
  for (const [key, samples] of Object.entries(starts.samples)) {
    const [program, variant] = key.split(" · ")
    const base = median(starts.samples[`${program} · unconfined`])
    perStart[key] = { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), addedMs: median(samples) - base }
    rows.push([program, variant, num(median(samples), 1), num(Math.min(...samples), 1), num(Math.max(...samples), 1), variant === "unconfined" ? "" : num(median(samples) - base, 1)])
  }
  log()
  log(table(["program", "run", "median ms", "min", "max", "added (median)"], rows))
  const claude = fileURLToPath(new URL("../node_modules/.bin/claude", import.meta.url))
  const attempts = { confined: [], unconfined: [] }
  if (fs.existsSync(claude)) {
    const turns = quick ? 1 : 3
    for (let i = 0; i < turns; i++) {
      for (const confined of [false, true]) {
        progress(`confinement: claude run ${i + 1}/${turns}, ${confined ? "confined" : "unconfined"}`)
        const server = await startChild("./agents-server.mjs", { delayMs: 200 })
        let r
        try {
          r = await runChild("./agents-case.mjs", {
            name: `sandbox-${confined ? "on" : "off"}-${i}`,
            serverUrl: server.url,
            streams: 1,
            tasksPerStream: 4,
            dependsOn: {},
            maxParallel: 1,
            timeoutSeconds: 120,
            confined
          }, { timeoutMs: 600_000 })
        } finally {
          await server.stop()
        }
        if (r.failed) throw new Error(`confinement: the ${confined ? "confined" : "unconfined"} claude run failed: ${r.failed}`)
        attempts[confined ? "confined" : "unconfined"].push(r.wallMs / r.reviewedAttempts)
      }
    }
    const on = median(attempts.confined)
    const off = median(attempts.unconfined)
    log()
    log(table(["claude attempt", "median wall ms per attempt", "runs"], [
      ["unconfined", num(off), attempts.unconfined.map((m) => num(m)).join(" ")],
      ["confined", num(on), attempts.confined.map((m) => num(m)).join(" ")],
      ["added", `${num(on - off)} (${num((on / off - 1) * 100, 1)} %)`, ""]
    ]))
  }
  return { available: true, perStart, claudeAttempt: attempts }
}

// ---------------------------------------------------------------------------------------
// 9. Checkout environments
// ---------------------------------------------------------------------------------------

/** A mid-size project's dependencies (about 250 packages once installed), from the npm registry. */
const MID_SIZE = {
  dependencies: { express: "4.21.2", lodash: "4.17.21", "date-fns": "3.6.0", zod: "3.23.8", axios: "1.7.9", commander: "12.1.0", yaml: "2.6.1" },
  devDependencies: { eslint: "8.57.1", typescript: "5.6.3", prettier: "3.3.3" }
}

const environmentSection = async () => {
  log()
  log("9. Checkout environments — `npm ci` of a mid-size project (about 250 packages; the npm cache warm, as a user's is) in")
  log("   every checkout of a run (setup: npm ci), against a shared node_modules (built by npm ci in the first checkout, copied")
  log("   into the others); 4 streams one after another, unconfined; the time braid's report gives each checkout's environment,")
  log("   and the disk its node_modules takes")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-env-"))
  const bin = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url))
  const du = (p) => Number(execFileSync("du", ["-sk", p], { encoding: "utf8" }).split(/\s/)[0]) * 1024
  try {
    const project = path.join(dir, "project")
    fs.mkdirSync(project)
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "mid", version: "1.0.0", private: true, ...MID_SIZE }, null, 2))
    fs.writeFileSync(path.join(project, ".gitignore"), "node_modules\n")
    const npmEnv = { ...process.env, npm_config_cache: path.join(dir, "npm-cache"), npm_config_audit: "false", npm_config_fund: "false" }
    // The lock file, and a warm npm cache (one install before anything is measured).
    const locked = spawnSync("npm", ["install", "--silent"], { cwd: project, env: npmEnv, encoding: "utf8", timeout: 600_000 })
    if (locked.status !== 0) {
      const why = `npm install from the registry failed (${(locked.stderr || "").trim().split("\n").at(-1) ?? locked.status}): no figures`
      log(`9. environments: ${why}`)
      return { available: false, unavailable: why }
    }
    const packages = fs.readdirSync(path.join(project, "node_modules")).length
    fs.rmSync(path.join(project, "node_modules"), { recursive: true })
    const clones = spawnSync("sh", ["-c", `echo x > ${dir}/a && cp --reflink=always ${dir}/a ${dir}/b`]).status === 0
    const runs = {}
    for (const variant of ["every checkout", "shared"]) {
      progress(`environments: ${variant}`)
      const repo = path.join(dir, variant.replace(" ", "-"))
      fs.cpSync(project, repo, { recursive: true })
      const git = (...a) => execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...a], { cwd: repo })
      git("init", "-q", "-b", "main")
      git("add", "-A")
      git("commit", "-q", "-m", "base")
      const plan = path.join(dir, `${variant.replace(" ", "-")}.yaml`)
      const environment = variant === "shared"
        ? "environment: { share: [{ path: node_modules, key: [package-lock.json], build: [npm, ci, --silent] }] }"
        : "environment: { setup: [[npm, ci, --silent]] }"
      fs.writeFileSync(plan, [
        "projectName: bench",
        "featureName: environments",
        "maxParallel: 1",
        environment,
        "streams:",
        ...[1, 2, 3, 4].map((i) => `  - { name: s${i}, type: api }`),
        "tasks:",
        ...[1, 2, 3, 4].map((i) => `  - { id: t${i}, title: T${i}, stream: s${i}, run: [node, -e, "require('fs').writeFileSync('t${i}.txt', 'x')"] }`),
        ""
      ].join("\n"))
      const out = spawnSync(process.execPath, [bin, "run", plan, "--repo", repo, "--json", "--quiet", "--sandbox", "off", "--keep-worktrees"], {
        env: { ...npmEnv, XDG_CACHE_HOME: path.join(dir, `cache-${variant.replace(" ", "-")}`) },
        encoding: "utf8",
        timeout: 1_200_000
      })
      if (out.status !== 0) throw new Error(`environments (${variant}): braid run exited ${out.status}: ${out.stderr}`)
      const report = JSON.parse(out.stdout)
      const checkouts = report.environments.filter((e) => e.stream !== null)
      const worktrees = execFileSync("git", ["worktree", "list", "--porcelain"], { cwd: repo, encoding: "utf8" })
        .split("\n").filter((l) => l.startsWith("worktree ")).map((l) => l.slice(9)).filter((w) => w !== repo)
      runs[variant] = {
        ms: checkouts.map((e) => e.durationMs),
        from: checkouts.map((e) => e.shared[0]?.from ?? "setup"),
        diskBytes: du(path.join(worktrees[0], "node_modules"))
      }
      execFileSync(process.execPath, [bin, "clean", report.runId, "--repo", repo], { env: npmEnv })
    }
    const every = runs["every checkout"]
    const shared = runs.shared
    const cold = median(every.ms)
    const cached = median(shared.ms.filter((_, i) => shared.from[i] === "cache"))
    log()
    log(table(["setup per checkout", "checkout 1", "2", "3", "4", "median of the cached ones"], [
      ["npm ci in every checkout", ...every.ms.map((m) => num(m)), ""],
      ["shared node_modules", ...shared.ms.map((m, i) => `${num(m)} (${shared.from[i]})`), num(cached)]
    ]))
    log(`   a cached checkout's setup: ${num(cached)} ms, ${num((cached / cold) * 100, 1)} % of npm ci's ${num(cold)} ms (goal under 10 %)`)
    log(`   disk per checkout: node_modules ${num(every.diskBytes / 2 ** 20, 1)} MB with npm ci, ${num(shared.diskBytes / 2 ** 20, 1)} MB copied from the cache` +
      ` (${packages} top-level packages); this filesystem ${clones ? "clones blocks (reflink): a copy shares them" : "cannot clone blocks (no reflink): a copy takes the full size"}`)
    return { available: true, packages, reflink: clones, everyCheckout: every, shared, coldMs: cold, cachedMs: cached, cachedShare: cached / cold }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const planSection = async () => {
  log()
  const bin = fileURLToPath(new URL("../packages/cli/bin/braid", import.meta.url))
  log("7. braid plan at the size limits — the built command (packages/cli/bin/braid) reading, validating, scheduling and checking")
  log("   generated plans of 10,000 streams or 10,000 tasks (bench/lib/plans.mjs largePlan) in a temporary repository, as a")
  log("   user runs it (preflight included); the bundled example beside them. Wall time from spawn to exit; the cases take turns.")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-plan-"))
  try {
    const repo = path.join(dir, "repo")
    fs.mkdirSync(repo)
    const git = (...a) => execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...a], { cwd: repo })
    git("init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, "README.md"), "bench\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    const write = (name, text) => {
      const file = path.join(dir, name)
      fs.writeFileSync(file, text)
      return { file, bytes: Buffer.byteLength(text) }
    }
    const example = fileURLToPath(new URL("../examples/checkout-flow/plan.yaml", import.meta.url))
    const cases = [
      { name: "bundled example (5 tasks, YAML)", file: example, bytes: fs.statSync(example).size, exit: 0 },
      { name: "10,000 streams, a chain (JSON)", ...write("wide.json", JSON.stringify(largePlan("wide"))), exit: 0 },
      { name: "10,000 streams, a chain (YAML)", ...write("wide.yaml", YAML.stringify(largePlan("wide"))), exit: 0 },
      { name: "10,000 tasks, dense (JSON)", ...write("dense.json", JSON.stringify(largePlan("dense"))), exit: 0 },
      { name: "10,000 tasks, dense (YAML)", ...write("dense.yaml", YAML.stringify(largePlan("dense"))), exit: 0 },
      { name: "10,000 tasks, dense, a cycle (JSON, refused)", ...write("cycle.json", JSON.stringify(largePlan("cycle"))), exit: 2 }
    ]
    // The CPU time of the command and the processes it waited for (git), from this process's
    // children's times in /proc (Linux; clock ticks of 10 ms): less at the mercy of the machine's load than wall time.
    const childrenCpuMs = () => {
      try {
        const fields = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")
        return (Number(fields[13]) + Number(fields[14])) * 10
      } catch {
        return undefined
      }
    }
    const time = (c) => {
      const cpu = childrenCpuMs()
      const start = process.hrtime.bigint()
      const result = spawnSync(bin, ["plan", c.file], { cwd: repo, encoding: "utf8", maxBuffer: 256 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } })
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      if (result.status !== c.exit) throw new Error(`braid plan ${c.file}: exit ${result.status}, expected ${c.exit}\n${result.stderr.slice(0, 2000)}`)
      c.cpuMs?.push(cpu === undefined ? NaN : childrenCpuMs() - cpu)
      return ms
    }
    const repeat = quick ? 2 : 5
    for (const c of cases) {
      progress(c.name)
      time(c) // warms the file-system cache; not counted
      c.runsMs = []
      c.cpuMs = []
    }
    for (let round = 0; round < repeat; round++) for (const c of cases) c.runsMs.push(time(c))
    for (const c of cases) {
      c.medianMs = median(c.runsMs)
      c.medianCpuMs = median(c.cpuMs)
    }
    log()
    log(table(
      ["plan", "file KB", "median s", "min s", "max s", "CPU s (median)", "runs"],
      cases.map((c) => [
        c.name,
        num(c.bytes / 1024),
        num(c.medianMs / 1000, 2),
        num(Math.min(...c.runsMs) / 1000, 2),
        num(Math.max(...c.runsMs) / 1000, 2),
        Number.isNaN(c.medianCpuMs) ? "–" : num(c.medianCpuMs / 1000, 2),
        c.runsMs.length
      ])
    ))
    const large = cases.slice(1)
    const met = large.every((c) => c.medianMs < 2000)
    log()
    log(`target: braid plan of a 10,000-stream or 10,000-task plan answers in under 2 s — ${met ? "met" : "missed"}` +
      ` (slowest: ${large.reduce((a, b) => (a.medianMs > b.medianMs ? a : b)).name}, ${num(Math.max(...large.map((c) => c.medianMs)) / 1000, 2)} s)`)
    return { available: true, cases: cases.map(({ file, ...c }) => ({ ...c, file: path.basename(file) })), target: { under2s: met } }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (wanted("dispatch")) results.dispatch = await dispatchSection()
if (wanted("schedule")) results.schedule = await scheduleSection()
if (wanted("git")) results.git = await gitSection()
if (wanted("agents")) results.agents = await agentsSection()
if (wanted("startup")) results.startup = await startupSection()
if (wanted("cluster")) results.cluster = await clusterSection()
if (wanted("plan")) results.plan = await planSection()
if (wanted("sandbox")) results.sandbox = await sandboxSection()
if (wanted("environment")) results.environment = await environmentSection()

results.durationMs = Date.now() - started
results.machine.loadAverageAtEnd = os.loadavg().map((l) => +l.toFixed(2))
const out = fileURLToPath(new URL("./results.json", import.meta.url))
// With --only, the sections not run keep their figures from the last run that had them.
const SECTIONS = ["dispatch", "schedule", "git", "agents", "startup", "cluster", "plan", "sandbox", "environment"]
if (only !== undefined && fs.existsSync(out)) {
  const previous = JSON.parse(fs.readFileSync(out, "utf8"))
  const kept = SECTIONS.filter((k) => !wanted(k) && previous[k] !== undefined)
  for (const k of kept) results[k] = previous[k]
  if (kept.length > 0) results.keptFromEarlierRuns = { sections: kept, note: "figures of sections not run by this command, from bench/results.json as it was" }
}
fs.writeFileSync(`${out}.tmp`, `${JSON.stringify(results, null, 2)}\n`)
fs.renameSync(`${out}.tmp`, out)
log()
log(`done in ${num(results.durationMs / 1000, 0)} s (load average at end: ${results.machine.loadAverageAtEnd.join(" ")}); wrote bench/results.json`)
