/**
 * The processes an agent started, wherever they went. An agent's tools start processes of
 * their own, often in their own process group (claude's Bash tool does), and those outlive
 * a kill of the agent's group and get reparented when their parent dies. What they keep is
 * their environment: every agent process is started with `BRAID_AGENT=<runId>/<stream>/<task>/<attempt>`,
 * which its descendants inherit. This module finds processes by that marker (and their
 * descendants, for the ones that cleared their environment) and ends them: SIGTERM, a grace
 * period, SIGKILL. Linux `/proc` only; elsewhere nothing is found and nothing is ended.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import { readdirSync, readFileSync } from "node:fs"

/** The environment variable that names the attempt a process belongs to. */
export const MARKER = "BRAID_AGENT"

/** The marker of one attempt's processes: `<runId>/<stream>/<task>/<attempt>`. */
export const markerOf = (at: { readonly runId: string; readonly stream: string; readonly taskId: string; readonly attempt: number }): string =>
  `${at.runId}/${at.stream}/${at.taskId}/${at.attempt}`

/** One running process, named by its pid and the kernel's start time (together: this process, never a later one reusing the pid). */
export interface Found {
  readonly pid: number
  readonly startTime: string
  /** The program's name as the kernel has it (`/proc/<pid>/comm`, at most 15 characters). */
  readonly command: string
  /** Its `BRAID_AGENT` value, when it carries one (a descendant that cleared its environment has none). */
  readonly marker: string | undefined
}

interface Stat {
  readonly pid: number
  readonly ppid: number
  readonly state: string
  readonly startTime: string
  readonly command: string
}

const readStat = (pid: number): Stat | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command (field 2) is in parentheses and may hold spaces or ")": count after the last ")".
    const close = text.lastIndexOf(")")
    const fields = text.slice(close + 2).split(" ")
    return {
      pid,
      command: text.slice(text.indexOf("(") + 1, close),
      state: fields[0]!,
      ppid: Number(fields[1]),
      startTime: fields[19]!
    }
  } catch {
    return undefined
  }
}

/**
 * The start time of a process as the kernel records it (field 22 of `/proc/<pid>/stat`, in
 * clock ticks since boot). Undefined when the process is gone, is a zombie (it has exited and
 * only waits to be reaped), or the system has no `/proc`.
 */
export const startTimeOf = (pid: number): string | undefined => {
  const stat = readStat(pid)
  return stat === undefined || stat.state === "Z" || stat.state === "X" ? undefined : stat.startTime
}

/** Whether the process named by pid and start time still runs (a zombie does not). */
export const isRunning = (process: { readonly pid: number; readonly startTime: string }): boolean =>
  process.startTime !== "" && startTimeOf(process.pid) === process.startTime

const markerIn = (pid: number): string | undefined => {
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, "latin1")
    const prefix = `${MARKER}=`
    for (const entry of environ.split("\0")) if (entry.startsWith(prefix)) return entry.slice(prefix.length)
  } catch {
    // Gone, or another user's process: not ours either way.
  }
  return undefined
}

const allProcesses = (): Array<Stat> => {
  let names: Array<string>
  try {
    names = readdirSync("/proc")
  } catch {
    return []
  }
  const stats: Array<Stat> = []
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    const stat = readStat(Number(name))
    if (stat !== undefined && stat.state !== "Z" && stat.state !== "X") stats.push(stat)
  }
  return stats
}

/** What to look for: processes whose marker `marker` accepts, and processes descending from `roots`. */
export interface Query {
  /** Accepts a `BRAID_AGENT` value (an exact attempt, or every attempt of a run). */
  readonly marker?: ((value: string) => boolean) | undefined
  /** Processes whose descendants are wanted too (they are included themselves when still running). */
  readonly roots?: ReadonlyArray<{ readonly pid: number; readonly startTime?: string | undefined }> | undefined
  /**
   * Only marked processes this process started: its descendants, and orphans reparented to
   * one of its ancestors (init, a subreaper). Another braid's processes that happen to carry
   * the same marker (tests reuse run ids) are still held by that braid, and are left alone.
   */
  readonly ownOnly?: boolean | undefined
  /**
   * Only processes started at or after this start time (clock ticks, as `startTimeOf` gives):
   * nothing started before the agent can be one it started, and their environments need not
   * be read (the sweep after every attempt stays cheap on a busy machine).
   */
  readonly startedSince?: string | undefined
}

/**
 * Every running process the query names, with all of their descendants (found by parent
 * pid), never this process itself. Reads `/proc`; empty where there is none.
 */
export const find = (query: Query): Array<Found> => {
  const stats = allProcesses()
  const children = new Map<number, Array<Stat>>()
  for (const stat of stats) {
    const list = children.get(stat.ppid)
    if (list === undefined) children.set(stat.ppid, [stat])
    else list.push(stat)
  }
  const byPid = new Map(stats.map((s) => [s.pid, s]))
  const wanted = new Map<number, Stat>()
  const markers = new Map<number, string | undefined>()
  const markerOfPid = (pid: number) => {
    if (!markers.has(pid)) markers.set(pid, markerIn(pid))
    return markers.get(pid)
  }
  const ancestors = new Set<number>()
  for (let at = byPid.get(process.pid); at !== undefined && !ancestors.has(at.ppid); at = byPid.get(at.ppid)) {
    ancestors.add(at.ppid)
  }
  const own = (stat: Stat, value: string) => {
    // Up to the topmost process carrying the same marker: who holds it?
    let top = stat
    const seen = new Set([stat.pid])
    for (;;) {
      const parent = byPid.get(top.ppid)
      if (parent === undefined || seen.has(parent.pid) || markerOfPid(parent.pid) !== value) break
      seen.add(parent.pid)
      top = parent
    }
    return top.ppid === process.pid || ancestors.has(top.ppid) || !byPid.has(top.ppid)
  }
  const since = query.startedSince === undefined ? undefined : Number(query.startedSince)
  if (query.marker !== undefined) {
    for (const stat of stats) {
      if (since !== undefined && Number(stat.startTime) < since) continue
      const value = markerOfPid(stat.pid)
      if (value !== undefined && query.marker(value) && (query.ownOnly !== true || own(stat, value))) wanted.set(stat.pid, stat)
    }
  }
  for (const root of query.roots ?? []) {
    const stat = byPid.get(root.pid)
    if (stat !== undefined && (root.startTime === undefined || root.startTime === stat.startTime)) wanted.set(stat.pid, stat)
  }
  // Descendants: those that cleared their environment still have a parent among the found.
  const queue = [...wanted.values()]
  while (queue.length > 0) {
    for (const child of children.get(queue.pop()!.pid) ?? []) {
      if (wanted.has(child.pid)) continue
      wanted.set(child.pid, child)
      queue.push(child)
    }
  }
  wanted.delete(process.pid)
  return [...wanted.values()].map((s) => ({ pid: s.pid, startTime: s.startTime, command: s.command, marker: markerOfPid(s.pid) }))
}

/** Processes of any attempt of a run (`<runId>/…`), and their descendants. */
export const findOfRun = (runId: string): Array<Found> => find({ marker: (value) => value.startsWith(`${runId}/`) })

const signal = (target: { readonly pid: number; readonly startTime: string }, name: NodeJS.Signals) => {
  // Checked right before the signal: a pid reused by an unrelated process is left alone.
  if (!isRunning(target)) return
  try {
    process.kill(target.pid, name)
  } catch {
    // Gone meanwhile, or not ours to signal.
  }
}

const POLL = Duration.millis(50)

const waitGone = <A extends { readonly pid: number; readonly startTime: string }>(
  targets: ReadonlyArray<A>,
  within: Duration.Duration
): Effect.Effect<Array<A>> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(within)
    let left = targets.filter(isRunning)
    while (left.length > 0 && Date.now() < deadline) {
      yield* Effect.sleep(POLL)
      left = left.filter(isRunning)
    }
    return left
  })

/**
 * Ends processes: SIGTERM to each, then SIGKILL to those still running after `grace`. Each is
 * signalled only while its pid still has the start time it was found with. Returns the
 * processes that were running when it began (the ones it ended).
 */
export const end = <A extends { readonly pid: number; readonly startTime: string }>(
  targets: ReadonlyArray<A>,
  grace: Duration.DurationInput = Duration.seconds(5)
): Effect.Effect<Array<A>> =>
  Effect.gen(function*() {
    const running = targets.filter(isRunning)
    if (running.length === 0) return running
    for (const target of running) signal(target, "SIGTERM")
    const stubborn = yield* waitGone(running, Duration.decode(grace))
    for (const target of stubborn) signal(target, "SIGKILL")
    // SIGKILL cannot be refused; give the kernel a moment so callers see them gone.
    if (stubborn.length > 0) yield* waitGone(stubborn, Duration.seconds(2))
    return running
  })
