/**
 * Plan generators. Cross-stream dependencies always point at a stream with a lower index,
 * so the stream graph (and with it the task graph) has no cycles.
 */
import { makeRng } from "./rng.mjs"

const STREAM_TYPES = ["database", "api", "ui", "testing", "docs", "infrastructure"]

/**
 * The plan document for the dispatch-overhead cases: `tasks` spread evenly over `streams`;
 * each task depends on 0–2 random tasks of earlier streams at the same or an earlier position.
 */
export const overheadPlan = ({ tasks, streams, maxParallel, seed }) => {
  const rng = makeRng(seed)
  const perStream = Math.ceil(tasks / streams)
  const ids = []
  const doc = { projectName: "bench", featureName: `overhead-${tasks}x${streams}`, maxParallel, streams: [], tasks: [] }
  for (let s = 0; s < streams; s++) {
    doc.streams.push({ name: `s${s}`, type: STREAM_TYPES[s % STREAM_TYPES.length] })
    ids.push([])
  }
  let made = 0
  for (let p = 0; p < perStream; p++) {
    for (let s = 0; s < streams && made < tasks; s++, made++) {
      const id = `s${s}-t${p}`
      const dependsOn = []
      if (s > 0) {
        const n = rng.int(0, 2)
        for (let k = 0; k < n; k++) {
          const other = rng.int(0, s - 1)
          const at = rng.int(0, Math.min(p, ids[other].length - 1))
          const dep = ids[other][at]
          if (dep !== undefined && !dependsOn.includes(dep)) dependsOn.push(dep)
        }
      }
      ids[s].push(id)
      doc.tasks.push({ id, title: `Task ${id}`, stream: `s${s}`, ...(dependsOn.length > 0 ? { dependsOn } : {}) })
    }
  }
  return doc
}

/** Agent durations like real ones: lognormal, median about 2 minutes, clamped to 10 s – 20 min. */
export const agentDurationMs = (rng) => {
  const seconds = Math.exp(Math.log(120) + 0.9 * rng.normal())
  return Math.round(Math.min(1200, Math.max(10, seconds))) * 1000
}

/**
 * A random plan for the schedule-quality section: 4–12 streams × 2–8 tasks, random
 * cross-stream dependencies, and a duration per task (returned beside the document).
 */
export const schedulePlan = ({ seed, maxParallel }) => {
  const rng = makeRng(seed)
  const streams = rng.int(4, 12)
  const doc = { projectName: "bench", featureName: `schedule-${seed}`, maxParallel, streams: [], tasks: [] }
  const durations = {}
  const ids = []
  // A per-plan density of dependencies, so some plans are nearly independent and some tangled.
  const density = rng.next()
  for (let s = 0; s < streams; s++) {
    doc.streams.push({ name: `s${s}`, type: STREAM_TYPES[s % STREAM_TYPES.length], priority: rng.int(1, 5) })
    const count = rng.int(2, 8)
    ids.push([])
    for (let p = 0; p < count; p++) {
      const id = `s${s}-t${p}`
      const dependsOn = []
      if (s > 0 && rng.next() < density) {
        const n = rng.int(1, 2)
        for (let k = 0; k < n; k++) {
          const other = rng.int(0, s - 1)
          const dep = rng.pick(ids[other])
          if (!dependsOn.includes(dep)) dependsOn.push(dep)
        }
      }
      ids[s].push(id)
      durations[id] = agentDurationMs(rng)
      doc.tasks.push({ id, title: `Task ${id}`, stream: `s${s}`, ...(dependsOn.length > 0 ? { dependsOn } : {}) })
    }
  }
  return { doc, durations }
}

/**
 * The plans of the `braid plan` section: at the size limits (10,000 streams or tasks), every
 * task with a script and the plan with a check, as a real plan would have them.
 *   wide   — 10,000 streams of one task each, each task after the previous stream's (a 10,000-stream chain)
 *   dense  — 10,000 tasks in 100 streams, each depending on 1–5 random earlier tasks of any stream
 *   cycle  — dense, plus one dependency that closes a cycle through most of the plan (refused, exit 2)
 */
export const largePlan = (kind, seed = 1) => {
  const rng = makeRng(seed)
  const run = ["node", "-e", "0"]
  const base = { projectName: "bench", featureName: `plan-${kind}`, agent: "script", checks: [["node", "-e", "0"]] }
  if (kind === "wide") {
    return {
      ...base,
      streams: Array.from({ length: 10_000 }, (_, i) => ({ name: `s${i}`, type: STREAM_TYPES[i % STREAM_TYPES.length] })),
      tasks: Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, title: `Task ${i}`, stream: `s${i}`, run, ...(i > 0 ? { dependsOn: [`t${i - 1}`] } : {}) }))
    }
  }
  const tasks = []
  for (let i = 0; i < 10_000; i++) {
    const dependsOn = []
    for (let k = rng.int(1, 5); i > 0 && k > 0; k--) {
      const dep = `t${rng.int(0, i - 1)}`
      if (!dependsOn.includes(dep)) dependsOn.push(dep)
    }
    tasks.push({ id: `t${i}`, title: `Task ${i}`, stream: `s${i % 100}`, run, ...(dependsOn.length > 0 ? { dependsOn } : {}) })
  }
  if (kind === "cycle") tasks[0].dependsOn = ["t9999"]
  return { ...base, streams: Array.from({ length: 100 }, (_, i) => ({ name: `s${i}`, type: STREAM_TYPES[i % STREAM_TYPES.length] })), tasks }
}
