/**
 * The live board `braid run`, `resume`, `retry` and `land` show on a terminal: a pure fold of
 * run events into a board state (`initial`, `apply`) and a pure rendering of that state into
 * lines that fit the terminal (`render`). The terminal driver (`Board.terminal`) only redraws.
 *
 * @since 0.3.0
 */
import { Agent, type Plan, type Progress, RunReport, type RunState, Terminal } from "@braid/core"

/** What a board knows before any event: the plan's streams, their roles, backends and tasks. */
export interface Layout {
  readonly runId: string | undefined
  readonly title: string
  readonly threshold: number
  readonly maxParallel: number
  readonly streams: ReadonlyArray<{
    readonly name: string
    readonly role: string
    readonly backend: string
    readonly tasks: ReadonlyArray<string>
  }>
}

/** The board's layout from a plan, with the backend each stream runs. */
export const layoutOf = (plan: Plan.Plan, backendOf: (stream: Plan.PlannedStream) => string, runId?: string): Layout => ({
  runId,
  title: `${plan.featureName} (${plan.projectName})`,
  threshold: plan.qualityThreshold,
  maxParallel: plan.maxParallel,
  streams: plan.streams.map((s) => ({ name: s.name, role: Agent.roleOf(s), backend: backendOf(s), tasks: s.tasks.map((t) => t.id) }))
})

type TaskStatus = "completed" | "needs-review" | "failed" | "skipped"

/** What a stream is doing now. */
export type Activity =
  | { readonly _tag: "Pending" }
  | { readonly _tag: "WaitsForDependency"; readonly on: ReadonlyArray<string> }
  | { readonly _tag: "WaitsForSlot" }
  | { readonly _tag: "Preparing" }
  | { readonly _tag: "SettingUp" }
  | { readonly _tag: "Working" }
  | { readonly _tag: "Reviewing" }
  | { readonly _tag: "WaitsForProvider"; readonly provider: string; readonly until: number; readonly message: string }
  | { readonly _tag: "ProviderLimit"; readonly provider: string; readonly resetsAt: string | null }
  | { readonly _tag: "Finished" }

/** One stream's row. */
export interface StreamRow {
  readonly name: string
  readonly role: string
  readonly backend: string
  readonly tasks: ReadonlyArray<string>
  readonly current: string | undefined
  readonly attempt: number
  readonly lastScore: number | undefined
  readonly activity: Activity
  readonly settled: Readonly<Record<string, TaskStatus>>
  /** When the stream's first task got a slot, and when its last one settled (ms since the epoch). */
  readonly since: number | undefined
  readonly until: number | undefined
  readonly costUsd: number
  readonly tokens: number
  /** The latest line its agent printed (shown with --verbose). */
  readonly output: string | undefined
}

/** The integration's phases. */
export interface Integration {
  readonly phase: "pending" | "merging" | "verifying" | "landing" | "landed" | "refused" | "stopped" | "done"
  readonly order: ReadonlyArray<string>
  readonly merged: ReadonlyArray<string>
  readonly conflicts: ReadonlyArray<{ readonly streams: ReadonlyArray<string>; readonly paths: ReadonlyArray<string>; readonly outcome: string | undefined }>
  readonly verification: { readonly passed: boolean; readonly ok: number; readonly total: number } | undefined
  readonly landed: { readonly commit: string; readonly target: string } | undefined
  readonly refused: string | undefined
}

/** A notable event, as a line under the board. */
export interface Notable {
  readonly at: number
  readonly text: string
  readonly tone: Tone
}

/** The whole board. */
export interface BoardState {
  readonly runId: string | undefined
  readonly title: string
  readonly threshold: number
  readonly maxParallel: number
  readonly startedAt: number | undefined
  readonly streams: ReadonlyArray<StreamRow>
  readonly integration: Integration
  readonly notable: ReadonlyArray<Notable>
  readonly finished: string | undefined
  readonly finishedAt: number | undefined
}

/** How many notable events the board keeps. */
export const NOTABLE_KEPT = 50

/** The board before any event; a continued run starts from what its journal holds. */
export const initial = (layout: Layout, state?: RunState.RunState): BoardState => ({
  runId: layout.runId,
  title: layout.title,
  threshold: layout.threshold,
  maxParallel: layout.maxParallel,
  startedAt: undefined,
  streams: layout.streams.map((s) => {
    const settled: Record<string, TaskStatus> = {}
    let costUsd = 0
    let tokens = 0
    let lastScore: number | undefined
    let attempt = 0
    for (const id of s.tasks) {
      const t = state?.tasks.get(id)
      if (t === undefined) continue
      if (t.settled !== undefined) settled[id] = t.settled.status
      for (const a of t.attempts) {
        costUsd += a.costUsd
        tokens += a.inputTokens + a.outputTokens
        if (a.review !== null) lastScore = a.review.score
        attempt = a.attempt
      }
    }
    const done = s.tasks.every((id) => settled[id] !== undefined)
    return {
      ...s,
      current: s.tasks.find((id) => settled[id] === undefined) ?? s.tasks.at(-1),
      attempt: done ? attempt : 0,
      lastScore,
      activity: done && s.tasks.length > 0 ? { _tag: "Finished" } : { _tag: "Pending" },
      settled,
      since: undefined,
      until: undefined,
      costUsd,
      tokens,
      output: undefined
    }
  }),
  integration: { phase: "pending", order: [], merged: [], conflicts: [], verification: undefined, landed: undefined, refused: undefined },
  notable: [],
  finished: undefined,
  finishedAt: undefined
})

const short = (commit: string | null | undefined) => commit == null ? "no change" : commit.slice(0, 10)

/** Applies one event to the board (pure: a new state, the old one untouched). */
export const apply = (state: BoardState, event: Progress.RunEvent): BoardState => {
  const at = Date.parse(event.at)
  const notable = (text: string, tone: Tone = "plain"): BoardState => ({
    ...next,
    notable: [...next.notable, { at, text, tone }].slice(-NOTABLE_KEPT)
  })
  const stream = (name: string, f: (row: StreamRow) => StreamRow): BoardState => ({
    ...next,
    streams: next.streams.map((row) => row.name === name ? f(row) : row)
  })
  let next = state
  switch (event._tag) {
    case "RunStarted":
      next = { ...state, runId: event.runId, startedAt: at }
      return notable(`run ${event.runId}: ${event.tasks} tasks in ${event.streams.length} streams, landing on ${event.target}`)
    case "StreamStarted":
      if (state.startedAt === undefined) next = { ...state, startedAt: at }
      return next
    case "TaskWaiting":
      return stream(event.stream, (row) => ({
        ...row,
        current: event.taskId,
        attempt: 0,
        activity: event.for === "dependency" ? { _tag: "WaitsForDependency", on: event.on } : { _tag: "WaitsForSlot" }
      }))
    case "TaskStarted":
      return stream(event.stream, (row) => ({ ...row, current: event.taskId, since: row.since ?? at, activity: { _tag: "Preparing" } }))
    case "AttemptStarted":
      next = stream(event.stream, (row) => ({
        ...row,
        current: event.taskId,
        attempt: event.attempt,
        since: row.since ?? at,
        activity: { _tag: "Working" },
        output: undefined
      }))
      return event.attempt > 1 ? notable(`${event.stream} · ${event.taskId} · attempt ${event.attempt} started, with the review's feedback`) : next
    case "AgentOutput":
      return stream(event.stream, (row) => ({ ...row, output: event.line }))
    case "AttemptFinished":
      return stream(event.stream, (row) => ({
        ...row,
        costUsd: row.costUsd + (event.agent?.costUsd ?? 0),
        tokens: row.tokens + (event.agent !== undefined ? event.agent.inputTokens + event.agent.outputTokens : 0)
      }))
    case "ReviewStarted":
      return stream(event.stream, (row) => ({ ...row, activity: { _tag: "Reviewing" } }))
    case "ReviewRecorded":
      next = stream(event.stream, (row) => ({ ...row, lastScore: event.score }))
      return notable(
        `${event.stream} · ${event.taskId} · attempt ${event.attempt} scored ${event.score} ${event.passes ? "≥" : "<"} ${state.threshold}${
          !event.passes && event.issues.length > 0 ? `: ${event.issues[0]!.replace(/\s+/g, " ").trim()}` : ""
        }`,
        event.passes ? "good" : "warn"
      )
    case "ReviewRetried":
      return notable(`${event.stream} · ${event.taskId} · the reviewer failed, retrying: ${event.message}`, "warn")
    case "ProviderWaited":
      next = stream(event.stream, (row) => ({
        ...row,
        activity: { _tag: "WaitsForProvider", provider: event.provider, until: at + event.waitMs, message: event.message }
      }))
      return notable(`${event.stream} · ${event.taskId} · ${event.provider} busy (${event.message}); waiting ${seconds(event.waitMs)}, no gate run used`, "warn")
    case "ProviderLimitReached":
      next = stream(event.stream, (row) => ({ ...row, activity: { _tag: "ProviderLimit", provider: event.provider, resetsAt: event.resetsAt } }))
      return notable(`${event.provider} usage limit reached: ${event.message}${event.resetsAt !== null ? `; resets at ${event.resetsAt}` : ""}`, "bad")
    case "TaskSettled": {
      next = stream(event.stream, (row) => {
        const settled = { ...row.settled, [event.taskId]: event.status }
        const current = row.tasks.find((id) => settled[id] === undefined)
        return {
          ...row,
          settled,
          current: current ?? row.current,
          attempt: current === undefined ? row.attempt : 0,
          lastScore: event.score ?? row.lastScore,
          activity: current === undefined ? { _tag: "Finished" } : { _tag: "Pending" },
          until: current === undefined ? at : row.until
        }
      })
      const tone: Tone = event.status === "completed" ? "good" : event.status === "skipped" ? "dim" : "bad"
      return notable(
        `${event.stream} · ${event.taskId} · ${event.status}${event.score !== null ? ` (score ${event.score})` : ""}${
          event.error !== null && event.status !== "completed" ? `: ${event.error.replace(/\s+/g, " ").trim()}` : ""
        }`,
        tone
      )
    }
    case "StreamFinished":
      return stream(event.stream, (row) => ({ ...row, activity: { _tag: "Finished" }, until: row.until ?? at }))
    case "IntegrationStarted":
      next = { ...state, integration: { ...state.integration, phase: "merging", order: event.streams, merged: [] } }
      return next
    case "ConflictDetected":
      if (event.kind === "overlap") return notable(`overlap ${event.streams.join(" ↔ ")}: ${event.paths.join(", ")}`, "dim")
      next = {
        ...state,
        integration: { ...state.integration, conflicts: [...state.integration.conflicts, { streams: event.streams, paths: event.paths, outcome: undefined }] }
      }
      return notable(`conflict ${event.streams.join(" ↔ ")} in ${event.paths.join(", ")}`, "warn")
    case "ConflictSettled": {
      const conflicts = [...state.integration.conflicts]
      let i = conflicts.length - 1
      while (i >= 0 && conflicts[i]!.outcome !== undefined) i--
      const settled = { streams: event.streams, paths: event.paths, outcome: event.outcome }
      if (i >= 0) conflicts[i] = settled
      else conflicts.push(settled)
      next = {
        ...state,
        integration: { ...state.integration, conflicts, phase: event.outcome === "resolved" ? state.integration.phase : "stopped" }
      }
      return notable(`conflict ${event.streams.join(" ↔ ")} ${event.outcome} (${event.strategy}): ${event.detail.replace(/\s+/g, " ").trim()}`, event.outcome === "resolved" ? "good" : "bad")
    }
    case "StreamMerged":
      next = { ...state, integration: { ...state.integration, merged: [...state.integration.merged, event.stream] } }
      return notable(`merged ${event.stream} into the integration (${short(event.commit)})`)
    case "VerificationStarted":
      next = { ...state, integration: { ...state.integration, phase: "verifying" } }
      return notable(`verifying ${short(event.commit)}: ${event.commands.length === 0 ? "no verify commands" : event.commands.join(", ")}`)
    case "VerificationFinished": {
      const ok = event.checks.filter((c) => c.exitCode === 0).length
      next = {
        ...state,
        integration: { ...state.integration, phase: event.passed ? "landing" : "stopped", verification: { passed: event.passed, ok, total: event.checks.length } }
      }
      return event.checks.length === 0
        ? notable("verification: the plan has no verify commands")
        : notable(`verification ${event.passed ? "passed" : "FAILED"} (${ok}/${event.checks.length} commands)`, event.passed ? "good" : "bad")
    }
    case "Landed":
      next = { ...state, integration: { ...state.integration, phase: "landed", landed: { commit: event.commit, target: event.target } } }
      return notable(`landed ${short(event.commit)} on ${event.target}`, "good")
    case "LandingRefused":
      next = { ...state, integration: { ...state.integration, phase: "refused", refused: event.message } }
      return notable(`landing refused: ${event.message}`, "bad")
    case "RunFinished":
      next = {
        ...state,
        finished: event.status,
        finishedAt: at,
        integration: state.integration.phase === "landing" || state.integration.phase === "merging"
          ? { ...state.integration, phase: "done" }
          : state.integration
      }
      return notable(`run ${event.status}`, event.status === "succeeded" ? "good" : "bad")
    case "RunInterrupted":
      next = { ...state, finished: "interrupted", finishedAt: at }
      return notable(`run interrupted: ${event.reason}`, "bad")
    case "AgentSession":
    case "AgentProcess":
      return state
    case "EnvironmentStarted":
      return event.stream === null
        ? notable("setting up the integration's checkout")
        : stream(event.stream, (row) => ({ ...row, activity: { _tag: "SettingUp" } }))
    case "EnvironmentReady": {
      const r = event.record
      const where = r.stream ?? "integration"
      if (r.stream !== null) next = stream(r.stream, (row) => ({ ...row, activity: { _tag: "Preparing" } }))
      return notable(`${where} · checkout set up in ${seconds(r.durationMs)}: ${RunReport.environmentSummary(r)}`)
    }
    case "EnvironmentFailed":
      return notable(`${event.stream ?? "integration"} · setup FAILED: ${event.message.split("\n")[0]}`, "bad")
    case "NotificationFailed":
      return notable(`warning: notifier ${event.notifier} (${event.event}) failed: ${event.message}`, "warn")
  }
}


/** How a piece of text is shown when colour is on. */
export type Tone = "plain" | "good" | "warn" | "bad" | "dim" | "bold" | "accent"

type Segment = readonly [string, Tone]
type Line = ReadonlyArray<Segment>

const codes: Record<Tone, string> = { plain: "", good: "32", warn: "33", bad: "31", dim: "2", bold: "1", accent: "36" }

const seconds = (ms: number) => ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
const dollars = (usd: number) => `$${usd < 10 ? usd.toFixed(4) : usd.toFixed(2)}`

/** Cuts a line to `width` visible characters (an ellipsis marks the cut). */
const fit = (line: Line, width: number): Line => {
  const out: Array<Segment> = []
  let left = width
  for (const [text, tone] of line) {
    const chars = [...text]
    if (chars.length <= left) {
      out.push([text, tone])
      left -= chars.length
      continue
    }
    if (left > 0) out.push([`${chars.slice(0, Math.max(0, left - 1)).join("")}…`, tone])
    break
  }
  return out
}

const paint = (line: Line, color: boolean) =>
  line.map(([text, tone]) => color && codes[tone] !== "" ? `\u001b[${codes[tone]}m${text}\u001b[0m` : text).join("")

const pad = (text: string, width: number) => {
  const n = [...text].length
  return n >= width ? text : text + " ".repeat(width - n)
}

const activityText = (row: StreamRow, now: number): Segment => {
  const a = row.activity
  switch (a._tag) {
    case "Pending":
      return [row.current === undefined ? "no tasks" : "not started", "dim"]
    case "WaitsForDependency":
      return [`waits for ${a.on.join(", ")}`, "warn"]
    case "WaitsForSlot":
      return ["waits for an agent slot", "warn"]
    case "Preparing":
      return ["opening its checkout", "accent"]
    case "SettingUp":
      return ["setting up its checkout", "accent"]
    case "Working":
      return ["agent working", "accent"]
    case "Reviewing":
      return ["reviewing", "accent"]
    case "WaitsForProvider":
      return [`waits for ${a.provider} (busy) ${seconds(Math.max(0, a.until - now))}`, "warn"]
    case "ProviderLimit":
      return [`${a.provider} usage limit${a.resetsAt !== null ? `, resets ${a.resetsAt}` : ""}`, "bad"]
    case "Finished": {
      const statuses = row.tasks.map((id) => row.settled[id])
      const bad = statuses.filter((s) => s === "failed" || s === "needs-review").length
      const done = statuses.filter((s) => s === "completed").length
      const skipped = statuses.filter((s) => s === "skipped").length
      return bad > 0
        ? [`${bad} task${bad === 1 ? "" : "s"} ${statuses.includes("failed") ? "failed" : bad === 1 ? "needs review" : "need review"}`, "bad"]
        : done === 0
        ? [row.tasks.length === 0 ? "no tasks" : `not started${skipped > 0 ? ` (${skipped} skipped)` : ""}`, "dim"]
        : [`done (${done}/${row.tasks.length})`, "good"]
    }
  }
}

const integrationLine = (i: Integration, finished: boolean): Line => {
  const phase: Line = (() => {
    switch (i.phase) {
      case "pending":
        return [[finished ? "not reached" : "waits for the streams", "dim"]]
      case "merging":
        return [[`merging ${i.merged.length}/${i.order.length}`, "accent"]]
      case "verifying":
        return [["verifying", "accent"]]
      case "landing":
        return [["landing", "accent"]]
      case "landed":
        return [[`landed ${short(i.landed?.commit)} on ${i.landed?.target}`, "good"]]
      case "refused":
        return [["landing refused", "bad"]]
      case "stopped":
        return [["stopped", "bad"]]
      case "done":
        return [["done", "good"]]
    }
  })()
  const parts: Array<Segment> = [["integration  ", "bold"], ...phase]
  if (i.order.length > 0) parts.push([` · merged ${i.merged.length}/${i.order.length}`, "plain"])
  for (const c of i.conflicts) {
    parts.push([` · conflict ${c.streams.join("↔")} ${c.paths.join(",")}: ${c.outcome ?? "resolving"}`, c.outcome === undefined ? "warn" : c.outcome === "resolved" ? "good" : "bad"])
  }
  if (i.verification !== undefined) {
    parts.push(
      i.verification.total === 0
        ? [" · no verify commands", "plain"]
        : [` · verify ${i.verification.passed ? "passed" : "FAILED"} ${i.verification.ok}/${i.verification.total}`, i.verification.passed ? "good" : "bad"]
    )
  }
  return parts
}

/** The run's totals. */
export const totals = (state: BoardState) => {
  const count = (status: TaskStatus) => state.streams.reduce((n, s) => n + s.tasks.filter((id) => s.settled[id] === status).length, 0)
  return {
    tasks: state.streams.reduce((n, s) => n + s.tasks.length, 0),
    completed: count("completed"),
    needsReview: count("needs-review"),
    failed: count("failed"),
    skipped: count("skipped"),
    costUsd: state.streams.reduce((n, s) => n + s.costUsd, 0),
    tokens: state.streams.reduce((n, s) => n + s.tokens, 0)
  }
}

export interface RenderOptions {
  /** Terminal width: every line is cut to it. */
  readonly columns: number
  /** Lines the board may use; streams beyond it are summed up in one line. */
  readonly rows: number
  readonly color: boolean
  /** The time elapsed figures are measured to (ms since the epoch). */
  readonly now: number
  /** Show each working stream's latest agent output line. */
  readonly verbose: boolean
}

const rank = (row: StreamRow) => {
  switch (row.activity._tag) {
    case "Preparing":
    case "SettingUp":
    case "Working":
    case "Reviewing":
    case "WaitsForProvider":
    case "ProviderLimit":
      return 0
    case "WaitsForSlot":
    case "WaitsForDependency":
      return 1
    case "Pending":
      return 2
    case "Finished":
      return 3
  }
}

/** The board as lines (no trailing newline), each at most `columns` wide. */
export const render = (state: BoardState, options: RenderOptions): Array<string> => {
  const width = Math.max(10, options.columns)
  const now = state.finishedAt ?? options.now
  const t = totals(state)
  const lines: Array<Line> = []
  const elapsed = state.startedAt !== undefined ? seconds(now - state.startedAt) : "–"
  lines.push([
    ["braid ", "bold"],
    [`${state.runId ?? ""} ${state.title}`, "plain"],
    [` · ${t.completed + t.needsReview + t.failed + t.skipped}/${t.tasks} tasks settled · ${elapsed} · ${t.tokens} tokens · ${dollars(t.costUsd)}`, "plain"]
  ])
  const nameW = Math.min(16, Math.max(6, ...state.streams.map((s) => [...s.name].length)))
  const roleW = Math.min(20, Math.max(4, ...state.streams.map((s) => s.role.length)))
  const backendW = Math.min(12, Math.max(7, ...state.streams.map((s) => s.backend.length)))
  const taskW = Math.min(14, Math.max(4, ...state.streams.flatMap((s) => s.tasks.map((id) => [...id].length))))
  const row = (s: StreamRow): Line => {
    const [what, tone] = activityText(s, options.now)
    const score = s.lastScore === undefined ? "–" : `${s.lastScore}${s.lastScore >= state.threshold ? "≥" : "<"}${state.threshold}`
    const time = s.since === undefined ? "" : seconds((s.until ?? now) - s.since)
    return [
      [`${pad(s.name, nameW)} `, "bold"],
      [`${pad(s.role, roleW)} ${pad(s.backend, backendW)} `, "dim"],
      [`${pad(s.current ?? "–", taskW)} `, "plain"],
      [`${pad(s.attempt > 0 ? `${s.attempt}/3` : "–", 4)} `, "plain"],
      [`${pad(score, 7)} `, s.lastScore === undefined ? "dim" : s.lastScore >= state.threshold ? "good" : "warn"],
      [`${pad(what, 26)} `, tone],
      [`${pad(time, 8)} ${dollars(s.costUsd)}`, "dim"]
    ]
  }
  const header: Line = [[
    `${pad("stream", nameW)} ${pad("role", roleW)} ${pad("backend", backendW)} ${pad("task", taskW)} ${pad("try", 4)} ${pad("score", 7)} ${pad("status", 26)} ${pad("time", 8)} cost`,
    "dim"
  ]]
  const summary: Array<Line> = []
  if (state.finished !== undefined) {
    const i = state.integration
    summary.push([
      [`${state.finished.toUpperCase()}`, state.finished === "succeeded" ? "good" : "bad"],
      [
        `: ${t.completed}/${t.tasks} completed, ${t.needsReview} need review, ${t.failed} failed, ${t.skipped} skipped · ${i.conflicts.length} conflict(s) · verification ${
          i.verification === undefined || i.verification.total === 0 ? "not run" : i.verification.passed ? "passed" : "failed"
        }`,
        "plain"
      ]
    ])
    summary.push([[
      `${i.landed !== undefined ? `landed ${short(i.landed.commit)} on ${i.landed.target}` : `not landed${i.refused !== undefined ? `: ${i.refused}` : ""}`} · ${t.tokens} tokens · ${
        dollars(t.costUsd)
      } · ${seconds((state.finishedAt ?? now) - (state.startedAt ?? now))}`,
      "plain"
    ]])
  }
  // Rows: title, header, streams (+ output lines), integration, events title, events, summary.
  const fixed = 2 + 1 + summary.length
  const budget = Math.max(1, options.rows) - fixed
  const byRank = state.streams.map((s, i) => ({ s, i })).sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i)
  const perStream = (s: StreamRow) => options.verbose && s.output !== undefined && rank(s) === 0 ? 2 : 1
  let room = budget
  const shown = new Set<number>()
  for (const { i, s } of byRank) {
    const need = perStream(s)
    // Keep a line for "… more" when not every stream fits.
    const reserve = shown.size + 1 < state.streams.length ? 1 : 0
    if (need + reserve > room && !(shown.size === state.streams.length - 1 && need <= room)) break
    shown.add(i)
    room -= need
  }
  lines.push(header)
  for (const [i, s] of state.streams.entries()) {
    if (!shown.has(i)) continue
    lines.push(row(s))
    if (perStream(s) === 2) lines.push([[`${" ".repeat(nameW + 1)}│ ${s.output}`, "dim"]])
  }
  const hidden = state.streams.filter((_, i) => !shown.has(i))
  if (hidden.length > 0) {
    // A stream none of whose tasks ran (each skipped, or the run paused) did not finish: it never started.
    const done = hidden.filter((s) => s.activity._tag === "Finished" && s.tasks.some((id) => s.settled[id] !== undefined && s.settled[id] !== "skipped")).length
    const waiting = hidden.filter((s) => rank(s) === 1).length
    lines.push([[`… ${hidden.length} more stream${hidden.length === 1 ? "" : "s"} (${done} finished, ${waiting} waiting, ${hidden.length - done - waiting} not started)`, "dim"]])
    room -= 1
  }
  lines.push(integrationLine(state.integration, state.finished !== undefined))
  // The latest notable events in what room is left.
  const events = room > 1 ? state.notable.slice(-(room - 1)) : []
  if (events.length > 0) {
    lines.push([["latest", "dim"]])
    for (const e of events) {
      const clock = new Date(e.at).toISOString().slice(11, 19)
      lines.push([[`${clock} `, "dim"], [e.text, e.tone]])
    }
  }
  lines.push(...summary)
  // The plan's names and what agents print are escaped before the board adds its own colours.
  return lines.slice(0, Math.max(1, options.rows)).map((l) => paint(fit(l.map(([text, tone]) => [Terminal.safeLine(text), tone]), width), options.color))
}

/** Where the terminal driver writes, and how big it is (process.stderr, or a test's stand-in). */
export interface Screen {
  readonly write: (text: string) => void
  readonly columns: () => number
  readonly rows: () => number
}

/** The fewest milliseconds between two frames: bursts of events redraw once. */
export const FRAME_MS = 80

const SYNC_START = "\u001b[?2026h"
const SYNC_END = "\u001b[?2026l"

/**
 * The terminal driver: folds events into the board and redraws it in place — cursor up over
 * the previous frame, each line cleared and rewritten, inside one synchronized-output update so
 * the terminal shows whole frames only — at most once per `FRAME_MS`, and once a second for
 * the clocks. `close` draws the final frame and leaves it on the screen.
 */
export const terminal = (
  layout: Layout,
  options: { readonly screen: Screen; readonly color: boolean; readonly verbose: boolean; readonly state?: RunState.RunState | undefined }
) => {
  let state = initial(layout, options.state)
  let height = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let last = 0
  let closed = false
  const { screen } = options
  const draw = () => {
    timer = undefined
    last = Date.now()
    // One line fewer than the screen: the cursor rests on the line below the frame.
    const lines = render(state, {
      columns: Math.max(10, screen.columns() - 1),
      rows: Math.max(3, screen.rows() - 1),
      color: options.color,
      now: Date.now(),
      verbose: options.verbose
    })
    const up = height > 0 ? `\u001b[${height}A` : ""
    screen.write(`${SYNC_START}${up}${lines.map((l) => `\r\u001b[2K${l}`).join("\n")}\n\u001b[J${SYNC_END}`)
    height = lines.length
  }
  const schedule = () => {
    if (closed || timer !== undefined) return
    timer = setTimeout(draw, Math.max(0, FRAME_MS - (Date.now() - last)))
  }
  const restoreCursor = () => screen.write("\u001b[?25h")
  screen.write("\u001b[?25l")
  process.once("exit", restoreCursor)
  const clock = setInterval(schedule, 1000)
  clock.unref()
  schedule()
  return {
    publish: (event: Progress.RunEvent) => {
      state = apply(state, event)
      schedule()
    },
    close: () => {
      if (closed) return
      closed = true
      clearInterval(clock)
      if (timer !== undefined) clearTimeout(timer)
      draw()
      restoreCursor()
      process.removeListener("exit", restoreCursor)
    },
    state: () => state
  }
}
