/**
 * The timeline of a run, from its journal: a row per stream with each attempt as a bar (its
 * start, duration, score and outcome), the waits before a task's first attempt — for tasks it
 * depends on, then for a free agent slot — as gaps, and the integration (each merge and the
 * conflict resolved in it, verification, landing) on a row of its own. `toHtml` draws it as one
 * self-contained page (inline CSS, SVG and a few lines of JS; nothing fetched) with the report
 * beneath.
 *
 * Times come from the journal: `Started.at`, each attempt's `startedAt` and duration, and the
 * time each entry was written (`at`): when a task settled, a stream merged, verification ended,
 * the run landed. A task's waits are derived: ready when the stream's previous task settled
 * (or the run or its retry round began), waiting on its dependencies until the last of them
 * settled, then on an agent slot (and its checkout) until its first attempt started.
 *
 * @since 0.3.0
 */
import * as Document from "./Document.js"
import * as RunReport from "./RunReport.js"
import * as RunState from "../run/RunState.js"

/** One attempt of a task. */
export interface AttemptBar {
  readonly stream: string
  readonly taskId: string
  readonly title: string
  readonly round: number
  readonly attempt: number
  readonly start: number
  readonly end: number
  readonly score: number | null
  readonly outcome: "passed" | "retried" | "needs-review" | "failed"
  readonly commit: string | null
  readonly files: number
  readonly summary: string
  /** The review's issues (first lines), what the next attempt was told. */
  readonly issues: ReadonlyArray<string>
}

/** Time a task spent ready in its stream's order but not at work: waiting for dependencies, for an agent slot, then opening its checkout and bringing in its dependencies' work. */
export interface Gap {
  readonly stream: string
  readonly taskId: string
  readonly kind: "dependency" | "slot" | "checkout"
  readonly start: number
  readonly end: number
  /** The tasks it waited for (dependency). */
  readonly on: ReadonlyArray<string>
}

/** A step of the integration. */
export interface Phase {
  readonly kind: "merge" | "conflict" | "verify" | "land" | "refused" | "stopped"
  readonly label: string
  readonly start: number
  readonly end: number
  readonly ok: boolean
  readonly detail: string
}

/** A task that settled without an attempt (skipped, or failed before its agent ran). */
export interface Marker {
  readonly stream: string
  readonly taskId: string
  readonly at: number
  readonly status: string
  readonly detail: string
}

/** The whole timeline (times in ms since the epoch). */
export interface Model {
  readonly runId: string
  readonly start: number
  readonly end: number
  readonly streams: ReadonlyArray<string>
  readonly attempts: ReadonlyArray<AttemptBar>
  readonly gaps: ReadonlyArray<Gap>
  readonly phases: ReadonlyArray<Phase>
  readonly markers: ReadonlyArray<Marker>
}

const firstLine = (s: string) => s.split("\n")[0]!.trim()

/**
 * The timeline of a run from its journal entries, with the plan's dependencies (`dependsOn`:
 * task → the tasks it waits for) and its streams in order.
 */
export const fromJournal = (
  entries: ReadonlyArray<RunState.FoldEntry>,
  plan: { readonly streams: ReadonlyArray<string>; readonly dependsOn: ReadonlyMap<string, ReadonlyArray<string>> }
): Model => fromState(RunState.fold(entries), plan)

/** The timeline of a run from its folded journal (`RunState.fold`), with the plan's streams and dependencies. */
export const fromState = (
  state: RunState.RunState,
  plan: { readonly streams: ReadonlyArray<string>; readonly dependsOn: ReadonlyMap<string, ReadonlyArray<string>> }
): Model => {
  let runId = ""
  let start = Number.NaN
  let end = Number.NaN
  const attempts: Array<AttemptBar> = []
  const gaps: Array<Gap> = []
  const phases: Array<Phase> = []
  const markers: Array<Marker> = []
  // When each task settled, per round (a dependency counts once it settled in any round before).
  const settledAt = new Map<string, number>()
  const roundStart = new Map<number, number>()
  const streamFree = new Map<string, number>()
  // The end of the integration's latest step: the next step starts there.
  let integrationAt = Number.NaN
  const lastSettled = () => Math.max(...[...streamFree.values()], start)
  const slotAt = new Map<string, number>()
  for (const entry of state.history) {
    const v = entry.value
    const at = entry.at !== undefined ? Date.parse(entry.at) : Number.NaN
    if (!Number.isNaN(at)) end = Number.isNaN(end) ? at : Math.max(end, at)
    switch (v._tag) {
      case "Started":
        runId = v.runId
        start = Date.parse(v.at)
        // Streams are dispatched once the workspace is prepared: when this step was journaled.
        roundStart.set(0, Number.isNaN(at) ? start : at)
        break
      case "RetryRequested":
        roundStart.set(v.round, Date.parse(v.at))
        for (const s of plan.streams) streamFree.set(s, Math.max(streamFree.get(s) ?? 0, Date.parse(v.at)))
        integrationAt = Number.NaN
        break
      case "TaskStarted":
        slotAt.set(`${v.round}/${v.taskId}`, Date.parse(v.at))
        break
      case "Settled": {
        const t = v.result
        const settled = Number.isNaN(at) ? start : at
        const ready = Math.max(streamFree.get(v.stream) ?? 0, roundStart.get(v.round) ?? start)
        const deps = plan.dependsOn.get(t.taskId) ?? []
        const depsAt = Math.max(ready, ...deps.map((d) => settledAt.get(d) ?? ready))
        const first = t.attempts[0] !== undefined ? Date.parse(t.attempts[0].startedAt) : undefined
        if (first !== undefined) {
          const waitedOn = deps.filter((d) => (settledAt.get(d) ?? 0) > ready)
          const depEnd = Math.min(depsAt, first)
          if (waitedOn.length > 0 && depEnd > ready) gaps.push({ stream: v.stream, taskId: t.taskId, kind: "dependency", start: ready, end: depEnd, on: waitedOn })
          const slotStart = Math.max(ready, depEnd)
          // Without the fact (journals of older versions) the slot wait runs to the first attempt.
          const slot = Math.min(first, Math.max(slotStart, slotAt.get(`${v.round}/${t.taskId}`) ?? first))
          if (slot > slotStart) gaps.push({ stream: v.stream, taskId: t.taskId, kind: "slot", start: slotStart, end: slot, on: [] })
          if (first > slot) gaps.push({ stream: v.stream, taskId: t.taskId, kind: "checkout", start: slot, end: first, on: [] })
        } else {
          markers.push({ stream: v.stream, taskId: t.taskId, at: settled, status: t.status, detail: t.error ?? "" })
        }
        for (const [i, a] of t.attempts.entries()) {
          const s = Date.parse(a.startedAt)
          const last = i === t.attempts.length - 1
          attempts.push({
            stream: v.stream,
            taskId: t.taskId,
            title: t.title,
            round: v.round,
            attempt: a.attempt,
            start: s,
            end: s + a.durationMs,
            score: a.review?.score ?? null,
            outcome: a.review === null
              ? "failed"
              : a.review.passes
              ? "passed"
              : !last
              ? "retried"
              : t.status === "failed" ? "failed" : "needs-review",
            commit: a.commit,
            files: a.changedFiles.length,
            summary: a.summary,
            issues: a.review?.issues.map(firstLine) ?? []
          })
        }
        settledAt.set(t.taskId, settled)
        streamFree.set(v.stream, settled)
        break
      }
      case "Merged": {
        const from = Number.isNaN(integrationAt) ? lastSettled() : integrationAt
        const to = Number.isNaN(at) ? from : at
        phases.push({
          kind: v.conflict !== null ? "conflict" : "merge",
          label: v.conflict !== null ? `${v.stream} (conflict resolved)` : v.stream,
          start: Math.min(from, to),
          end: to,
          ok: true,
          detail: v.conflict !== null
            ? `merged ${v.stream} at ${v.commit.slice(0, 10)}; conflict with ${v.conflict.streams.slice(1).join(", ")} in ${v.conflict.paths.join(", ")}: ${v.conflict.detail}`
            : `merged ${v.stream} at ${v.commit.slice(0, 10)}`
        })
        integrationAt = to
        break
      }
      case "Stopped": {
        const from = Number.isNaN(integrationAt) ? lastSettled() : integrationAt
        const to = Number.isNaN(at) ? from : at
        phases.push({ kind: "stopped", label: `${v.stream}: ${v.conflict.outcome}`, start: Math.min(from, to), end: to, ok: false, detail: v.conflict.detail })
        integrationAt = to
        break
      }
      case "Verified": {
        const to = Number.isNaN(at) ? lastSettled() : at
        const from = to - v.report.durationMs
        const ok = v.report.checks.filter((c) => c.exitCode === 0).length
        phases.push({
          kind: "verify",
          label: `verify ${v.report.passed ? "passed" : "FAILED"}`,
          start: from,
          end: to,
          ok: v.report.passed,
          detail: `${ok}/${v.report.checks.length} verify commands passed on ${v.report.commit?.slice(0, 10) ?? "?"}: ${v.report.checks.map((c) => `${c.name} (exit ${c.exitCode})`).join(", ")}`
        })
        integrationAt = to
        break
      }
      case "Landed": {
        const to = Number.isNaN(at) ? lastSettled() : at
        const from = Number.isNaN(integrationAt) ? to : Math.min(integrationAt, to)
        phases.push({
          kind: "land",
          label: `landed on ${v.landing.target}`,
          start: from,
          end: to,
          ok: true,
          detail: `${v.landing.target}: ${v.landing.previous.slice(0, 10)} → ${v.landing.commit.slice(0, 10)} (fast-forward)`
        })
        integrationAt = to
        break
      }
      case "LandingRefused": {
        const to = Number.isNaN(at) ? lastSettled() : at
        phases.push({ kind: "refused", label: "landing refused", start: Math.min(integrationAt || to, to), end: to, ok: false, detail: v.message })
        break
      }
      default:
        break
    }
  }
  if (Number.isNaN(start)) start = Math.min(...attempts.map((a) => a.start), end)
  const ends = [end, ...attempts.map((a) => a.end), ...phases.map((p) => p.end)].filter((n) => !Number.isNaN(n))
  return { runId, start, end: Math.max(start + 1, ...ends), streams: plan.streams, attempts, gaps, phases, markers }
}

const esc = Document.escapeHtml

const seconds = (ms: number) => ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`

/** The colours of attempts by outcome, and of phases (also the legend). */
const palette = {
  passed: "#2da44e",
  retried: "#d4a72c",
  "needs-review": "#e16f24",
  failed: "#cf222e",
  dependency: "#8c959f",
  slot: "#54aeff",
  checkout: "#c297ff",
  merge: "#8250df",
  conflict: "#bf3989",
  verify: "#1f883d",
  land: "#0969da",
  bad: "#cf222e"
} as const

const css = `
body{font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:24px auto;max-width:1180px;padding:0 16px}
h1{font-size:1.6em;border-bottom:1px solid #d1d9e0;padding-bottom:.3em}h2{font-size:1.3em;border-bottom:1px solid #d1d9e0;padding-bottom:.3em;margin-top:1.6em}h3{font-size:1.1em}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d1d9e0;padding:4px 10px;text-align:left;vertical-align:top}th{background:#f6f8fa}
code{background:#eff1f3;border-radius:4px;padding:.1em .35em;font:12px ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:#f6f8fa;padding:12px;overflow:auto;border-radius:6px}pre code{background:none;padding:0}
details{margin:6px 0}summary{cursor:pointer}
#timeline{border:1px solid #d1d9e0;border-radius:6px;padding:8px;overflow-x:auto}
#timeline svg{display:block}
#timeline .bar{cursor:pointer}#timeline .bar:hover,#timeline .bar.selected{stroke:#1f2328;stroke-width:2}
#timeline .label{font-size:12px;fill:#1f2328}#timeline .axis{font-size:11px;fill:#59636e}#timeline .score{font-size:11px;fill:#fff;font-weight:600;pointer-events:none}
#legend span{display:inline-block;margin-right:14px;font-size:12px}#legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
#detail{min-height:2.6em;margin:8px 0;padding:8px 12px;background:#f6f8fa;border-radius:6px;white-space:pre-wrap;font-size:13px}
`

// Click a bar: its details below the chart (hover shows them as the SVG <title> tooltip too).
const js = `
document.querySelectorAll('#timeline .bar').forEach(function(el){el.addEventListener('click',function(){
document.querySelectorAll('#timeline .bar.selected').forEach(function(s){s.classList.remove('selected')});
el.classList.add('selected');document.getElementById('detail').textContent=el.getAttribute('data-detail');});});
`

/** The timeline as an SVG drawing (rows, bars, gaps, axis). */
export const toSvg = (model: Model): string => {
  const labelW = 150
  const chartW = 960
  const rowH = 30
  const barH = 18
  const top = 24
  const rows = [...model.streams, "integration"]
  const height = top + rows.length * rowH + 10
  const span = Math.max(1, model.end - model.start)
  const x = (t: number) => labelW + ((t - model.start) / span) * chartW
  const w = (a: number, b: number) => Math.max(2, x(b) - x(a))
  const y = (row: string) => top + rows.indexOf(row) * rowH + (rowH - barH) / 2
  const out: Array<string> = []
  const labels: Array<string> = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + chartW + 20}" height="${height}" role="img" aria-label="timeline of run ${esc(model.runId)}">`)
  // Axis: about eight ticks at round seconds.
  const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].map((s) => s * 1000).find((s) => span / s <= 8) ?? 7_200_000
  for (let t = 0; t <= span; t += step) {
    out.push(`<line x1="${x(model.start + t)}" x2="${x(model.start + t)}" y1="${top - 4}" y2="${height - 6}" stroke="#eaeef2"/>`)
    out.push(`<text class="axis" x="${x(model.start + t)}" y="${top - 8}" text-anchor="middle">${esc(t === 0 ? "0 s" : seconds(t))}</text>`)
  }
  for (const [i, row] of rows.entries()) {
    const ry = top + i * rowH
    out.push(`<g class="row" data-row="${esc(row)}">`)
    if (i % 2 === 1) out.push(`<rect x="0" y="${ry}" width="${labelW + chartW + 20}" height="${rowH}" fill="#f6f8fa"/>`)
    out.push(`<text class="label" x="8" y="${ry + rowH / 2 + 4}">${esc(row)}</text></g>`)
  }
  for (const g of model.gaps) {
    const detail = g.kind === "dependency"
      ? `${g.taskId} waited ${seconds(g.end - g.start)} for ${g.on.join(", ")}`
      : g.kind === "slot"
      ? `${g.taskId} waited ${seconds(g.end - g.start)} for a free agent slot`
      : `${g.taskId}: ${seconds(g.end - g.start)} opening its stream's checkout and bringing in its dependencies' work`
    out.push(
      `<rect class="bar gap gap-${g.kind}" data-kind="gap" data-gap="${g.kind}" data-stream="${esc(g.stream)}" data-task="${esc(g.taskId)}" data-detail="${esc(detail)}" x="${x(g.start)}" y="${y(g.stream) + barH / 2 - 3}" width="${w(g.start, g.end)}" height="6" rx="3" fill="${palette[g.kind]}" opacity="0.55"><title>${esc(detail)}</title></rect>`
    )
  }
  for (const a of model.attempts) {
    const detail = [
      `${a.taskId} ${a.title} — attempt ${a.attempt}${a.round > 0 ? ` (retry round ${a.round})` : ""}: ${a.outcome}${a.score !== null ? `, score ${a.score}` : ""}`,
      `${seconds(a.end - a.start)}, commit ${a.commit?.slice(0, 10) ?? "none"}, ${a.files} file(s)`,
      a.summary,
      ...a.issues.map((i) => `issue: ${i}`)
    ].filter((l) => l !== "").join("\n")
    out.push(
      `<rect class="bar attempt outcome-${a.outcome}" data-kind="attempt" data-stream="${esc(a.stream)}" data-task="${esc(a.taskId)}" data-attempt="${a.attempt}" data-round="${a.round}" data-outcome="${a.outcome}" data-score="${a.score ?? ""}" data-detail="${esc(detail)}" x="${x(a.start)}" y="${y(a.stream)}" width="${w(a.start, a.end)}" height="${barH}" rx="3" fill="${palette[a.outcome]}"><title>${esc(detail)}</title></rect>`
    )
    const label = `${a.taskId}#${a.attempt}${a.score !== null ? ` ${a.score}` : ""}`
    if (w(a.start, a.end) > label.length * 6.5) out.push(`<text class="score" x="${x(a.start) + 4}" y="${y(a.stream) + barH - 5}">${esc(label)}</text>`)
  }
  for (const m of model.markers) {
    const detail = `${m.taskId}: ${m.status}${m.detail !== "" ? ` — ${m.detail}` : ""}`
    out.push(
      `<rect class="bar marker" data-kind="marker" data-stream="${esc(m.stream)}" data-task="${esc(m.taskId)}" data-detail="${esc(detail)}" x="${x(m.at) - 4}" y="${y(m.stream)}" width="8" height="${barH}" fill="${palette.dependency}"><title>${esc(detail)}</title></rect>`
    )
  }
  for (const p of model.phases) {
    const fill = !p.ok ? palette.bad : p.kind === "conflict" ? palette.conflict : p.kind === "verify" ? palette.verify : p.kind === "land" ? palette.land : palette.merge
    if (w(p.start, p.end) > p.label.length * 6.5) {
      labels.push(`<text class="score" x="${x(p.start) + 4}" y="${y("integration") + barH - 5}">${esc(p.label)}</text>`)
    }
    out.push(
      `<rect class="bar phase phase-${p.kind}" data-kind="phase" data-phase="${p.kind}" data-label="${esc(p.label)}" data-detail="${esc(`${p.label} (${seconds(p.end - p.start)}): ${p.detail}`)}" x="${x(p.start)}" y="${y("integration")}" width="${w(p.start, p.end)}" height="${barH}" rx="3" fill="${fill}"><title>${esc(`${p.label}: ${p.detail}`)}</title></rect>`
    )
  }
  out.push(...labels, "</svg>")
  return out.join("\n")
}

const legend = () =>
  `<div id="legend">${
    ([
      ["passed", "attempt passed"],
      ["retried", "below threshold, retried"],
      ["needs-review", "below threshold, needs review"],
      ["failed", "failed"],
      ["dependency", "waiting for a dependency"],
      ["slot", "waiting for an agent slot"],
      ["checkout", "opening the checkout, bringing in dependencies"],
      ["merge", "merge"],
      ["conflict", "merge with a conflict resolved"],
      ["verify", "verification"],
      ["land", "landing"]
    ] as const).map(([k, text]) => `<span><i style="background:${palette[k]}"></i>${esc(text)}</span>`).join("")
  }</div>`

/** One self-contained HTML page: the timeline, then the report (`RunReport.sections`). */
export const toHtml = (model: Model, report: RunReport.RunReport, sections: ReadonlyArray<RunReport.Section> = RunReport.sections): string =>
  [
    "<!doctype html>",
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">`,
    `<title>braid run ${esc(report.runId)}: ${esc(report.featureName)}</title><style>${css}</style></head><body>`,
    `<h1>braid run ${esc(report.runId)}: ${esc(report.featureName)} (${esc(report.projectName)})</h1>`,
    `<h2>Timeline</h2>`,
    `<p>${esc(`${report.status} · ${seconds(model.end - model.start)} · a row per stream: each attempt is a bar coloured by its outcome, with its score; thin bars are waits. Hover or click a bar for its details.`)}</p>`,
    legend(),
    `<div id="timeline">${toSvg(model)}</div>`,
    `<div id="detail">Click a bar for its details.</div>`,
    `<div id="report">${Document.toHtml(RunReport.toDocument(report, sections).slice(1))}</div>`,
    `<script>${js}</script>`,
    "</body></html>",
    ""
  ].join("\n")
