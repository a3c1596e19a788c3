/**
 * Child process for section 2 (schedule quality). Input: { maxParallel, firstSeed, plans,
 * sanity }. For each seed: a random plan with heavy-tailed task durations, braid's exact
 * makespan under virtual time, the lower bound and the batch-barrier makespan, and what
 * the dispatch model (listsim.mjs) gives for braid's policy (to check the model), the
 * earlier slot policy, and duration-aware priorities. With `sanity`, also checks that
 * virtual time is exact and the analytic batch-barrier matches braid running the batches
 * one after another.
 */
import { Plan } from "@braid/core"
import { Effect } from "effect"
import { batchBarrier, lowerBound } from "./bounds.mjs"
import { report } from "./measure.mjs"
import { schedulePlan } from "./plans.mjs"
import { simulate } from "./listsim.mjs"
import { makeRng } from "./rng.mjs"
import { makespan } from "./virtual.mjs"

const input = JSON.parse(process.argv[2])
const decode = (doc) => Effect.runPromise(Plan.decode(doc, "bench"))

const rows = []
const started = performance.now()
for (let seed = input.firstSeed; seed < input.firstSeed + input.plans; seed++) {
  const { doc, durations } = schedulePlan({ seed, maxParallel: input.maxParallel })
  const plan = await decode(doc)
  const braid = await makespan(plan, durations)
  if (braid.status !== "succeeded") throw new Error(`seed ${seed}: run ${braid.status}`)
  const lb = lowerBound(plan, durations)
  const barrier = batchBarrier(plan, durations)
  // Estimates off by a lognormal factor (σ 0.5: within ×1.65 two times in three).
  const noise = makeRng(seed * 7919 + 17)
  const estimates = Object.fromEntries(Object.entries(durations).map(([id, ms]) => [id, ms * Math.exp(0.5 * noise.normal())]))
  // The same plan with each task's `effort` set to its estimate (seconds): braid then
  // weighs the critical path by it.
  const withEffort = await decode({ ...doc, tasks: doc.tasks.map((t) => ({ ...t, effort: Math.max(1, Math.round(estimates[t.id] / 1000)) })) })
  const braidEffort = await makespan(withEffort, durations)
  rows.push({
    seed,
    braidEffortMs: braidEffort.makespanMs,
    streams: plan.streams.length,
    tasks: plan.tasks.size,
    braidMs: braid.makespanMs,
    lowerBoundMs: lb.lowerBoundMs,
    criticalPathMs: lb.criticalPathMs,
    totalWorkMs: lb.totalWorkMs,
    barrierMs: barrier.makespanMs,
    batches: barrier.batches.length,
    modelMs: {
      current: simulate(plan, durations),
      immediate: simulate(plan, durations, { policy: "immediate" }),
      weighted: simulate(plan, durations, { priority: "weighted" }),
      estimated: simulate(plan, durations, { priority: "weighted", estimates })
    }
  })
}

// The worst plan against the lower bound: how close can any priority order get? The best of
// many random priority lists (same slot policy) bounds the optimum from above.
const worst = rows.reduce((a, r) => (r.braidMs / r.lowerBoundMs > a.braidMs / a.lowerBoundMs ? r : a))
{
  const { doc, durations } = schedulePlan({ seed: worst.seed, maxParallel: input.maxParallel })
  const plan = await decode(doc)
  const rng = makeRng(worst.seed)
  let best = worst.modelMs.weighted
  for (let i = 0; i < (input.randomLists ?? 2000); i++) {
    const keys = new Map([...plan.tasks.keys()].map((id) => [id, rng.next()]))
    best = Math.min(best, simulate(plan, durations, { priority: (_s, t) => [keys.get(t.id)] }))
  }
  worst.bestListMs = best
}

const sanity = []
if (input.sanity) {
  const check = (name, expected, actual) => sanity.push({ name, expectedMs: expected, actualMs: actual, ok: expected === actual })
  // Virtual time is exact: one stream runs its tasks back to back.
  {
    const durations = { a: 61_000, b: 7_000, c: 1_199_000, d: 10_000 }
    const plan = await decode({
      maxParallel: input.maxParallel,
      streams: [{ name: "s", type: "api" }],
      tasks: Object.keys(durations).map((id) => ({ id, title: id, stream: "s" }))
    })
    check("one stream: makespan = sum of its durations", 1_277_000, (await makespan(plan, durations)).makespanMs)
  }
  // Independent streams with a slot each finish with the longest stream.
  {
    const durations = {}
    const streams = []
    const tasks = []
    for (let s = 0; s < input.maxParallel; s++) {
      streams.push({ name: `s${s}`, type: "api" })
      for (let t = 0; t < 3; t++) {
        durations[`s${s}-${t}`] = (s + 1) * 10_000 + t * 1_000
        tasks.push({ id: `s${s}-${t}`, title: "t", stream: `s${s}` })
      }
    }
    const plan = await decode({ maxParallel: input.maxParallel, streams, tasks })
    const expected = Math.max(...streams.map((s) => tasks.filter((t) => t.stream === s.name).reduce((a, t) => a + durations[t.id], 0)))
    check("independent streams, one slot each: makespan = longest stream", expected, (await makespan(plan, durations)).makespanMs)
  }
  // The analytic batch-barrier equals braid running each batch as its own plan, in order.
  for (const seed of [input.firstSeed, input.firstSeed + 1]) {
    const { doc, durations } = schedulePlan({ seed, maxParallel: input.maxParallel })
    const plan = await decode(doc)
    const barrier = batchBarrier(plan, durations)
    let simulated = 0
    for (const batch of barrier.batches) {
      const inBatch = new Set(batch.streams)
      const ids = new Set(doc.tasks.filter((t) => inBatch.has(t.stream)).map((t) => t.id))
      const sub = await decode({
        maxParallel: input.maxParallel,
        streams: doc.streams.filter((s) => inBatch.has(s.name)),
        // Dependencies on earlier batches are already met; keep any inside the batch.
        tasks: doc.tasks.filter((t) => ids.has(t.id)).map((t) => ({ ...t, dependsOn: (t.dependsOn ?? []).filter((d) => ids.has(d)) }))
      })
      simulated += (await makespan(sub, Object.fromEntries([...ids].map((id) => [id, durations[id]])))).makespanMs
    }
    check(`seed ${seed}: analytic batch-barrier = braid run batch by batch`, barrier.makespanMs, simulated)
  }
}

report({
  maxParallel: input.maxParallel,
  rows,
  worst: { seed: worst.seed, braidMs: worst.braidMs, lowerBoundMs: worst.lowerBoundMs, weightedMs: worst.modelMs.weighted, bestListMs: worst.bestListMs },
  sanity,
  liveMs: +(performance.now() - started).toFixed(0)
})
