/**
 * A discrete-event model of braid's dispatch, to ask "what if" about the slot policy
 * without running the engine: streams run their tasks in order, a task waits for its
 * dependencies, then for one of `maxParallel` slots; waiting tasks are served by priority.
 *
 * Policies:
 * - "immediate": AgentSlots before the bench — a free slot is taken at once when nobody
 *   waits (so at the start the first streams in plan order take the slots), and a released
 *   slot goes to the best task already waiting, before the releasing stream's next task and
 *   the newly unblocked tasks have queued.
 * - "deferred": AgentSlots now — the same priorities, but a freed slot is handed out only
 *   after the tasks that the finished task made ready (its stream's next one, and those
 *   waiting on it) have queued: the grant waits two scheduler turns.
 * A function (stream, task) → priority array may replace the named priorities.
 * Priorities: "chain" (today's: longest chain in tasks, then stream rank, then name) or
 * "weighted" (longest chain in duration — an oracle the engine cannot know, the bound on
 * what good estimates could buy); `durations` may then be replaced by `estimates`.
 */
import { AgentSlots, ExecutionPlan } from "@braid/core"

// The engine's own ordering of priorities, so the model cannot drift from it.
const compare = AgentSlots.compare

export const simulate = (plan, durations, { policy = "deferred", priority = "chain", estimates = durations } = {}) => {
  const execution = ExecutionPlan.make(plan)
  const preds = ExecutionPlan.predecessors(plan)
  const succs = new Map()
  for (const [t, ps] of preds) for (const p of ps) (succs.get(p) ?? succs.set(p, []).get(p)).push(t)
  const weighted = new Map()
  const weightOf = (t) => {
    if (weighted.has(t)) return weighted.get(t)
    const w = estimates[t] + Math.max(0, ...(succs.get(t) ?? []).map(weightOf))
    weighted.set(t, w)
    return w
  }
  const priorityOf = typeof priority === "function" ? priority : (stream, task) => [
    -(priority === "weighted" ? weightOf(task.id) : execution.criticalPath.get(task.id) ?? 1),
    stream.rank,
    stream.name
  ]

  const done = new Set()
  const next = new Map(plan.streams.map((s) => [s.name, 0]))
  let available = plan.maxParallel
  let seq = 0
  const waiters = []
  // Sleeping agents: [end, registration order, stream, task].
  const running = []
  let now = 0

  const start = (w) => running.push([now + durations[w.task.id], seq++, w.stream, w.task])
  const enqueue = (stream, task) => {
    const w = { priority: priorityOf(stream, task), stream, task }
    if (policy === "immediate" && available > 0 && waiters.length === 0) {
      available--
      start(w)
      return
    }
    let i = waiters.length
    while (i > 0 && compare(waiters[i - 1].priority, w.priority) > 0) i--
    waiters.splice(i, 0, w)
  }
  const grant = () => {
    while (available > 0 && waiters.length > 0) {
      available--
      start(waiters.shift())
    }
  }
  const release = () => {
    if (policy === "immediate" && waiters.length > 0) start(waiters.shift())
    else available++
  }
  // A stream waits for its next task's dependencies one by one, in the order listed (as
  // Dispatch's `Effect.forEach` over `Deferred.await` does); a finished task wakes the
  // streams waiting on it in the order they began to wait.
  const waitingOn = new Map()
  const advance = (stream) => {
    const task = stream.tasks[next.get(stream.name)]
    if (task === undefined) return
    for (const d of plan.dependsOn.get(task.id) ?? []) {
      if (!done.has(d)) {
        ;(waitingOn.get(d) ?? waitingOn.set(d, []).get(d)).push(stream)
        return
      }
    }
    enqueue(stream, task)
  }

  for (const s of plan.streams) advance(s)
  if (policy !== "immediate") grant()
  while (running.length > 0) {
    // The test clock wakes sleeps in time order; among equal times, the latest registered first.
    running.sort((a, b) => a[0] - b[0] || b[1] - a[1])
    const [end, , stream, task] = running.shift()
    now = end
    release()
    done.add(task.id)
    const woken = waitingOn.get(task.id) ?? []
    waitingOn.delete(task.id)
    next.set(stream.name, next.get(stream.name) + 1)
    advance(stream)
    for (const s of woken) advance(s)
    if (policy === "deferred") grant()
  }
  return now
}
