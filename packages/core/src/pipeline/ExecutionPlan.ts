/**
 * From a validated plan, a deterministic execution plan: streams grouped into batches that
 * respect cross-stream task dependencies (priority breaks ties, at most `maxParallel` per
 * batch), the order streams are integrated in, and each task's dispatch priority.
 *
 * Batches describe the shape of the work; dispatch does not wait at batch boundaries —
 * each task starts as soon as the tasks it depends on have finished and an agent slot is
 * free, so a slow stream never holds back an unrelated one.
 *
 * @since 0.1.0
 */
import * as CommandSpec from "../run/CommandSpec.js"
import * as Graph from "../internal/graph.js"
import * as Plan from "../run/Plan.js"
import * as Terminal from "../present/Terminal.js"

export interface Batch {
  readonly index: number
  readonly streams: ReadonlyArray<string>
}

export interface ExecutionPlan {
  readonly batches: ReadonlyArray<Batch>
  /** Streams in the order they are merged into the integration (dependencies first). */
  readonly integrationOrder: ReadonlyArray<string>
  /** stream → streams it waits on (through any task dependency) */
  readonly streamDependsOn: ReadonlyMap<string, ReadonlyArray<string>>
  /**
   * task id → weight of the longest chain that starts with it (itself included): each task
   * weighs its numeric `effort` when it has one, else 1. Dispatch serves the heaviest first.
   */
  readonly criticalPath: ReadonlyMap<string, number>
  /** The weight of the longest dependency chain of the whole plan (its length in tasks when no effort is given). */
  readonly criticalPathLength: number
  /** How many tasks that heaviest chain holds (the most, when chains weigh the same). */
  readonly criticalPathTasks: number
  /** Whether any task gives an `effort`, so the chain's weight is effort, not a count of tasks. */
  readonly weighted: boolean
}

const byRankThenName = (plan: Plan.Plan) => {
  const rank = new Map(plan.streams.map((s, i) => [s.name, [s.rank, i] as const]))
  return (a: string, b: string) => {
    const [ra, ia] = rank.get(a)!
    const [rb, ib] = rank.get(b)!
    return ra - rb || ia - ib
  }
}

/**
 * Every task's predecessors, each once: its `dependsOn` plus the task before it in its stream
 * (a plan often names that task in `dependsOn` too).
 */
export const predecessors = (plan: Plan.Plan): ReadonlyMap<string, ReadonlyArray<string>> => {
  const preds = new Map<string, ReadonlyArray<string>>()
  for (const stream of plan.streams) {
    stream.tasks.forEach((task, i) => {
      const list = new Set(plan.dependsOn.get(task.id) ?? [])
      if (i > 0) list.add(stream.tasks[i - 1]!.id)
      preds.set(task.id, [...list])
    })
  }
  return preds
}

/** The strongly connected components of the stream graph, numbered so that a component comes after every component it reaches. */
const streamComponents = (
  names: ReadonlyArray<string>,
  edges: (s: string) => Iterable<string>
): { readonly count: number; readonly of: ReadonlyMap<string, number>; readonly members: ReadonlyArray<ReadonlyArray<string>> } => {
  const members = Graph.components(names, edges)
  const of = new Map<string, number>()
  members.forEach((component, i) => component.forEach((v) => of.set(v, i)))
  return { count: members.length, of, members }
}

/** Builds the execution plan. Pure and deterministic. */
export const make = (plan: Plan.Plan): ExecutionPlan => {
  const compare = byRankThenName(plan)

  // stream → streams it depends on
  const deps = new Map<string, Set<string>>(plan.streams.map((s) => [s.name, new Set<string>()]))
  for (const [taskId, on] of plan.dependsOn) {
    const from = plan.streamOf.get(taskId)!
    for (const dep of on) {
      const to = plan.streamOf.get(dep)!
      if (to !== from) deps.get(from)!.add(to)
    }
  }

  // Levels of the stream graph: a stream's level is one more than the highest level of the
  // streams it waits on. Streams in a stream-level cycle (possible even when the task graph is
  // acyclic) wait on each other: they are one component (Tarjan, iterative) and share a level.
  // Linear in streams and edges, without recursion: plans may have thousands of streams.
  const names = plan.streams.map((s) => s.name)
  const component = streamComponents(names, (s) => deps.get(s)!)
  const componentLevel: Array<number> = []
  // Tarjan numbers components in reverse topological order: every component a stream waits on comes first.
  for (let c = 0; c < component.count; c++) {
    let lvl = 0
    for (const s of component.members[c]!) {
      for (const d of deps.get(s)!) {
        const other = component.of.get(d)!
        if (other !== c) lvl = Math.max(lvl, componentLevel[other]! + 1)
      }
    }
    componentLevel[c] = lvl
  }
  const byLevel: Array<Array<string>> = []
  for (const s of names) (byLevel[componentLevel[component.of.get(s)!]!] ??= []).push(s)

  const batches: Array<Batch> = []
  for (const level of byLevel) {
    if (level === undefined) continue
    const streams = level.sort(compare)
    for (let i = 0; i < streams.length; i += plan.maxParallel) {
      batches.push({ index: batches.length, streams: streams.slice(i, i + plan.maxParallel) })
    }
  }

  // A task's weight: its estimated effort when the plan gives a number, else one task.
  const weight = (id: string) => {
    return Plan.effortWeight(plan.tasks.get(id)?.effort)
  }
  // Heaviest chain of tasks starting at each task (successors through predecessors' inverse).
  const preds = predecessors(plan)
  const succs = new Map<string, Array<string>>()
  for (const [t, ps] of preds) for (const p of ps) (succs.get(p) ?? succs.set(p, []).get(p)!).push(t)
  const criticalPath = new Map<string, number>()
  // task → how many tasks its heaviest chain holds (the one criticalPath weighs).
  const chainTasks = new Map<string, number>()
  const longest = (t: string): number => {
    const known = criticalPath.get(t)
    if (known !== undefined) return known
    // Iterative to survive very long chains.
    const stack: Array<[string, boolean]> = [[t, false]]
    while (stack.length > 0) {
      const [node, expanded] = stack.pop()!
      if (criticalPath.has(node)) continue
      const next = succs.get(node) ?? []
      if (expanded) {
        let heaviest = 0
        let tasks = 0
        for (const n of next) {
          const w = criticalPath.get(n)!
          const c = chainTasks.get(n)!
          if (w > heaviest || (w === heaviest && c > tasks)) [heaviest, tasks] = [w, c]
        }
        criticalPath.set(node, weight(node) + heaviest)
        chainTasks.set(node, 1 + tasks)
      } else {
        stack.push([node, true])
        for (const n of next) if (!criticalPath.has(n)) stack.push([n, false])
      }
    }
    return criticalPath.get(t)!
  }
  let criticalPathLength = 0
  let criticalPathTasks = 0
  for (const t of plan.tasks.keys()) {
    const w = longest(t)
    const c = chainTasks.get(t)!
    if (w > criticalPathLength || (w === criticalPathLength && c > criticalPathTasks)) {
      ;[criticalPathLength, criticalPathTasks] = [w, c]
    }
  }
  let weighted = false
  for (const task of plan.tasks.values()) if (task.effort !== undefined) weighted = true

  return {
    batches,
    integrationOrder: batches.flatMap((b) => b.streams),
    streamDependsOn: new Map([...deps].map(([k, v]) => [k, [...v].sort(compare)])),
    criticalPath,
    criticalPathLength,
    criticalPathTasks,
    weighted
  }
}

/** What `braid plan` adds to a stream's rendering: who carries it out. */
export interface RenderDetails {
  /** The agent backend a stream's tasks are carried out by. */
  readonly backendOf?: ((stream: Plan.PlannedStream) => string) | undefined
}

/** The names of the checks that judge a task: its own, then the plan's. */
export const checkNamesOf = (plan: Plan.Plan, task: Plan.Task): Array<string> => [
  ...(task.checks ?? []).flatMap((spec) => {
    const command = CommandSpec.toCommand(spec)
    return typeof command === "string" ? [] : [command.name]
  }),
  ...plan.checks.map((c) => c.name)
]

const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`

/**
 * The plan's longest chain as a user counts it: in tasks, and when tasks give an `effort`, the
 * effort points it sums too (the weight dispatch serves first), never points called tasks.
 */
export const chainLine = (execution: ExecutionPlan): string => {
  const tasks = count(execution.criticalPathTasks, "task", "tasks")
  if (!execution.weighted) return `longest dependency chain: ${tasks}`
  const points = Math.round(execution.criticalPathLength * 100) / 100
  return `longest dependency chain (by effort): ${count(points, "effort point", "effort points")} over ${tasks}`
}

/**
 * A human-readable rendering for `braid plan`: the streams in dependency order (dispatch has
 * no barriers: each task starts once what it waits for has finished and a slot is free), each
 * with its agent backend, and each task with its checks and what it waits for.
 */
export const render = (plan: Plan.Plan, execution: ExecutionPlan, details: RenderDetails = {}): string => {
  const lines: Array<string> = []
  const preds = predecessors(plan)
  lines.push(`${plan.featureName} (${plan.projectName}): ${plan.tasks.size} tasks in ${plan.streams.length} streams`)
  lines.push(`quality threshold ${plan.qualityThreshold}, at most ${plan.maxParallel} agents at once, conflicts: ${plan.conflictStrategy}, on gate failure: ${plan.onGateFailure}`)
  lines.push(chainLine(execution))
  lines.push("")
  lines.push("streams in dependency order (each task starts once what it waits for has finished and an agent is free):")
  for (const name of execution.integrationOrder) {
    const stream = Plan.streamNamed(plan, name)!
    const waits = execution.streamDependsOn.get(name) ?? []
    const backend = details.backendOf?.(stream)
    lines.push(
      `  ${name} (${stream.type}, priority ${stream.rank}${backend !== undefined ? `, agent ${backend}` : ""})${
        waits.length > 0 ? `, waits on ${waits.join(", ")}` : ""
      }`
    )
    for (const task of stream.tasks) {
      const after = preds.get(task.id) ?? []
      const checks = checkNamesOf(plan, task)
      lines.push(`    - ${task.id}: ${task.title}`)
      lines.push(`        checks: ${checks.length > 0 ? checks.join(", ") : "none"}; waits for: ${after.length > 0 ? after.join(", ") : "nothing"}`)
    }
  }
  if (plan.verify.length > 0) {
    lines.push("")
    lines.push("verify:")
    for (const v of plan.verify) lines.push(`  - ${v.name}`)
  }
  lines.push("")
  lines.push(`integration order: ${execution.integrationOrder.join(" → ")}`)
  // Names and titles are the plan's text: printed with no control character a terminal would act on.
  return Terminal.safe(lines.join("\n"))
}
