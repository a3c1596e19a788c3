/**
 * The baseline: the same schedule as braid's dispatch written with plain Promises — a
 * bounded pool of `maxParallel`, each stream's tasks one after another, a task waiting for
 * the tasks it depends on (without holding a slot), one immediate agent call and one review
 * per task, the agent writing one file into its stream's map, and at the end the streams'
 * changes merged into one map. No Effect, no schemas: the floor braid is measured against.
 */

/** A counting semaphore; waiters are served first come, first served. */
const makePool = (size) => {
  let available = size
  const waiters = []
  return {
    acquire: () => available > 0 ? (available--, Promise.resolve()) : new Promise((resolve) => waiters.push(resolve)),
    release: () => {
      const next = waiters.shift()
      if (next === undefined) available++
      else next()
    }
  }
}

const deferred = () => {
  let resolve
  const promise = new Promise((r) => (resolve = r))
  return { promise, resolve }
}

/** Runs a plan document (the same document braid decodes) with immediate agents. */
export const runBaseline = async (doc, base = { "README.md": "base\n" }) => {
  const threshold = doc.qualityThreshold ?? 80
  const pool = makePool(doc.maxParallel ?? 5)
  const streams = doc.streams.map((s) => ({ name: s.name, tasks: [] }))
  const byName = new Map(streams.map((s) => [s.name, s]))
  for (const task of doc.tasks) byName.get(task.stream).tasks.push(task)
  const settled = new Map(doc.tasks.map((t) => [t.id, deferred()]))

  const agent = async (request) => {
    const path = `${request.stream}/${request.task.id}.txt`
    request.files.set(path, `${request.task.title}\nattempt 1\n`)
    request.touched.add(path)
    return { summary: `${request.task.id}: attempt 1` }
  }
  const reviewer = async (_request) => ({ score: 100, issues: [], suggestions: [] })

  const runStream = async (stream) => {
    const files = new Map(Object.entries(base))
    const results = []
    const earlier = []
    for (const task of stream.tasks) {
      const deps = await Promise.all((task.dependsOn ?? []).map((d) => settled.get(d).promise))
      const blocking = deps.find((d) => d.status !== "completed" && d.status !== "needs-review")
      let result
      if (blocking !== undefined) {
        result = { taskId: task.id, status: "skipped", attempts: [], error: `dependency ${blocking.taskId} ${blocking.status}` }
      } else {
        await pool.acquire()
        try {
          const started = Date.now()
          const touched = new Set()
          const output = await agent({ stream: stream.name, task, files, touched, earlier: earlier.slice() })
          const changed = [...touched].sort()
          const review = await reviewer({ task, output, files: changed })
          const passes = review.score >= threshold
          result = {
            taskId: task.id,
            title: task.title,
            status: passes ? "completed" : "needs-review",
            result: output.summary,
            attempts: [{ attempt: 1, summary: output.summary, changedFiles: changed, review: { ...review, passes } }],
            durationMs: Date.now() - started
          }
        } finally {
          pool.release()
        }
      }
      results.push(result)
      earlier.push({ taskId: task.id, title: task.title, status: result.status, summary: result.result ?? "" })
      settled.get(task.id).resolve(result)
    }
    return { stream: stream.name, results, files }
  }

  const outcomes = await Promise.all(streams.map(runStream))
  // The integration: every stream's changes over the base, in plan order.
  const integrated = new Map(Object.entries(base))
  for (const o of outcomes) for (const [p, v] of o.files) if (base[p] !== v) integrated.set(p, v)
  const tasks = outcomes.flatMap((o) => o.results)
  return {
    status: tasks.every((t) => t.status === "completed") ? "succeeded" : "needs-review",
    completed: tasks.filter((t) => t.status === "completed").length,
    files: integrated.size
  }
}
