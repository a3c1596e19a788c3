/**
 * Analytic schedules for a plan with known task durations: the lower bound no schedule can
 * beat, and the seed's batch-barrier schedule.
 */
import { ExecutionPlan } from "@braid/core"

/** Longest duration-weighted chain (stream order plus `dependsOn`), and the total work. */
export const lowerBound = (plan, durations) => {
  const preds = ExecutionPlan.predecessors(plan)
  const finish = new Map()
  const finishOf = (id) => {
    const known = finish.get(id)
    if (known !== undefined) return known
    let start = 0
    for (const p of preds.get(id) ?? []) start = Math.max(start, finishOf(p))
    const f = start + durations[id]
    finish.set(id, f)
    return f
  }
  let criticalPathMs = 0
  let totalWorkMs = 0
  for (const id of plan.tasks.keys()) {
    criticalPathMs = Math.max(criticalPathMs, finishOf(id))
    totalWorkMs += durations[id]
  }
  return {
    criticalPathMs,
    totalWorkMs,
    lowerBoundMs: Math.max(criticalPathMs, totalWorkMs / plan.maxParallel)
  }
}

/** Each batch of `ExecutionPlan.make(plan).batches` waits for its slowest stream. */
export const batchBarrier = (plan, durations) => {
  const execution = ExecutionPlan.make(plan)
  const streamWork = new Map(plan.streams.map((s) => [s.name, s.tasks.reduce((sum, t) => sum + durations[t.id], 0)]))
  const batches = execution.batches.map((b) => Math.max(...b.streams.map((s) => streamWork.get(s))))
  return { makespanMs: batches.reduce((a, b) => a + b, 0), batches: execution.batches, batchMs: batches }
}
