/**
 * GitHub progress sync: a subscriber of a run's `Progress` events that keeps the plan's
 * `githubRepo` up to date — one progress comment per task with a `githubIssueNumber` (edited
 * in place as the task moves), a status label, the run's summary comment on the plan's
 * tracking issue, the verification's commit status, and issues closed once the work landed.
 *
 * It never blocks or fails the run: `publish` only updates a model in memory; a background
 * fiber writes what changed (edits coalesced per comment, every `debounceMs`), and a GitHub
 * failure is a warning. Comments are found again by a hidden marker holding the run and task
 * id, and their ids are journaled as facts (`Steps.record`), so a restart or `resume` edits
 * the same comment and never posts a second one.
 *
 * @since 0.3.0
 */
import { Duration, Effect, Option, type Scope } from "effect"
import * as GitHub from "../ports/GitHub.js"
import type * as Plan from "../run/Plan.js"
import type * as Progress from "../ports/Progress.js"
import * as RunReport from "./RunReport.js"
import * as Secrets from "../system/Secrets.js"
import type * as RunState from "../run/RunState.js"
import type * as Steps from "../ports/Steps.js"

/** What the sync needs. */
export interface Options {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly github: GitHub.Service
  readonly steps: Steps.Service
  /** How long edits are coalesced before they are written (default 2 s). */
  readonly debounceMs?: number | undefined
  /** The most the final flush may take before what is left is dropped with a warning (default 60 s). */
  readonly finishTimeoutMs?: number | undefined
  /** The run's journal state when continuing a run, so the comments show earlier attempts. */
  readonly state?: RunState.RunState | undefined
  /** Called with each warning as it happens (the CLI prints it). */
  readonly onWarning?: ((message: string) => void) | undefined
}

/** What the sync did, for the report. */
export interface Outcome {
  readonly comments: ReadonlyArray<{ readonly issue: number; readonly subject: string; readonly url: string }>
  readonly closed: ReadonlyArray<number>
  readonly statusPosted: string | undefined
  readonly warnings: ReadonlyArray<string>
}

/** The running sync: its Progress subscriber, and the final flush. */
export interface Sync {
  readonly progress: Progress.Service
  /**
   * Brings every comment up to date with the run's final report, posts the commit status of
   * the verified commit (when it was pushed), closes the issues whose work landed and puts the
   * report into the pull request, then writes whatever is left, within `finishTimeoutMs`.
   */
  readonly finish: (report: RunReport.RunReport) => Effect.Effect<Outcome>
}

interface AttemptView {
  attempt: number
  commit: string | null | undefined
  files: number
  score: number | undefined
  passes: boolean | undefined
  issues: ReadonlyArray<string>
  suggestions: ReadonlyArray<string>
}

interface TaskView {
  readonly taskId: string
  readonly title: string
  readonly stream: string
  readonly issue: number | undefined
  status: "waiting" | "in-progress" | RunReport.TaskStatus
  attempts: Map<number, AttemptView>
  error: string | undefined
}

const labelOf = (status: TaskView["status"]): GitHub.StatusLabel | undefined => {
  switch (status) {
    case "waiting":
      return undefined
    case "in-progress":
      return "braid:in-progress"
    case "completed":
      return "braid:completed"
    case "needs-review":
      return "braid:needs-review"
    case "failed":
    case "skipped":
      return "braid:failed"
  }
}

const short = (commit: string | null | undefined) => commit === undefined ? "–" : commit === null ? "no change" : `\`${commit.slice(0, 10)}\``
const oneLine = (text: string) => text.replace(/\s+/g, " ").trim().slice(0, 400)

/** The body of a task's progress comment. */
export const taskBody = (runId: string, task: TaskView, threshold: number): string => {
  const lines = [
    GitHub.marker(runId, { taskId: task.taskId }),
    `### braid · ${task.taskId}: ${task.title}`,
    "",
    `**Status:** ${task.status} · stream \`${task.stream}\` · run \`${runId}\` · quality threshold ${threshold}`,
    ""
  ]
  const attempts = [...task.attempts.values()].sort((a, b) => a.attempt - b.attempt)
  if (attempts.length > 0) {
    lines.push("| attempt | commit | score |", "|---|---|---|")
    for (const a of attempts) {
      lines.push(`| ${a.attempt} | ${short(a.commit)} | ${a.score === undefined ? "reviewing…" : `${a.score}${a.passes === true ? " (passes)" : ""}`} |`)
    }
    const latest = attempts.filter((a) => a.score !== undefined && (a.issues.length > 0 || a.suggestions.length > 0)).at(-1)
    if (latest !== undefined) {
      lines.push("", `**Latest feedback** (review of attempt ${latest.attempt}, score ${latest.score}):`)
      for (const issue of latest.issues.slice(0, 10)) lines.push(`- ${oneLine(issue)}`)
      for (const s of latest.suggestions.slice(0, 5)) lines.push(`- suggestion: ${oneLine(s)}`)
    }
    const commit = attempts.map((a) => a.commit).filter((c) => typeof c === "string").at(-1)
    if (commit !== undefined) lines.push("", `**Commit:** \`${commit}\``)
  }
  if (task.error !== undefined) lines.push("", `**Error:** ${oneLine(task.error)}`)
  return lines.join("\n") + "\n"
}

/** The body of the run's summary comment on the plan's tracking issue. */
export const summaryBody = (runId: string, plan: Plan.Plan, tasks: ReadonlyArray<TaskView>, report: RunReport.RunReport | undefined, verified: string | undefined): string => {
  const lines = [GitHub.marker(runId, "summary"), `### braid run \`${runId}\`: ${plan.featureName} (${plan.projectName})`, ""]
  if (report !== undefined) {
    lines.push(`**Status:** ${report.status}`, "")
  } else {
    const settled = tasks.filter((t) => t.status !== "waiting" && t.status !== "in-progress").length
    lines.push(`**Status:** running · ${settled}/${tasks.length} tasks settled`, "")
  }
  lines.push("| task | issue | status | attempts | score |", "|---|---|---|---|---|")
  for (const t of tasks) {
    const scored = [...t.attempts.values()].filter((a) => a.score !== undefined).sort((a, b) => a.attempt - b.attempt)
    lines.push(`| ${t.taskId} | ${t.issue !== undefined ? `#${t.issue}` : "–"} | ${t.status} | ${t.attempts.size} | ${scored.at(-1)?.score ?? "–"} |`)
  }
  if (verified !== undefined) lines.push("", verified)
  if (report !== undefined) {
    const m = report.mergeResult
    lines.push("")
    if (m.pullRequest !== undefined) lines.push(`**Pull request:** ${m.pullRequest.url}`)
    else if (m.landed) lines.push(`**Landed** \`${m.commit?.slice(0, 10)}\` on \`${m.target}\`${m.remote !== undefined ? ` (pushed to ${m.remote})` : ""}.`)
    else lines.push(`**Not landed**${m.reason !== undefined ? `: ${m.reason}` : ""}.`)
  }
  return lines.join("\n") + "\n"
}

/** Starts the sync in the current scope (its writer fiber ends with it). */
export const make = (options: Options): Effect.Effect<Sync, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { github, plan, runId, steps } = options
    const warnings: Array<string> = []
    const warn = (message: string) => {
      const text = Secrets.scrub(message)
      if (warnings.includes(text)) return
      warnings.push(text)
      options.onWarning?.(text)
    }

    const tasks = new Map<string, TaskView>()
    for (const stream of plan.streams) {
      for (const t of stream.tasks) {
        tasks.set(t.id, {
          taskId: t.id,
          title: t.title,
          stream: stream.name,
          issue: t.githubIssueNumber,
          status: "waiting",
          attempts: new Map(),
          error: undefined
        })
      }
    }
    const fromResult = (view: TaskView, attempts: ReadonlyArray<RunReport.AttemptRecord>) => {
      for (const a of attempts) {
        view.attempts.set(a.attempt, {
          attempt: a.attempt,
          commit: a.commit,
          files: a.changedFiles.length,
          score: a.review?.score,
          passes: a.review?.passes,
          issues: a.review?.issues ?? [],
          suggestions: a.review?.suggestions ?? []
        })
      }
    }
    for (const [id, known] of options.state?.tasks ?? []) {
      const view = tasks.get(id)
      if (view === undefined) continue
      fromResult(view, known.settled?.attempts ?? known.attempts)
      if (known.settled !== undefined) {
        view.status = known.settled.status
        view.error = known.settled.error
      } else if (known.attempts.length > 0) view.status = "in-progress"
    }

    // What should be on GitHub (desired), and what braid last wrote there (written).
    const desired = new Map<string, { readonly issue: number; readonly subject: string; body: string }>()
    const written = new Map<string, string>()
    const ids = new Map<string, { readonly id: number; readonly url: string }>()
    const labels = new Map<number, GitHub.StatusLabel>()
    const labelled = new Map<number, GitHub.StatusLabel>()
    let verifiedLine: string | undefined
    let finalReport: RunReport.RunReport | undefined

    const refreshSummary = () => {
      if (plan.githubIssueNumber !== undefined) {
        desired.set(GitHub.keys.comment(plan.githubIssueNumber, "summary"), {
          issue: plan.githubIssueNumber,
          subject: "summary",
          body: summaryBody(runId, plan, [...tasks.values()], finalReport, verifiedLine)
        })
      }
    }
    const refresh = (view: TaskView) => {
      if (view.issue !== undefined) {
        desired.set(GitHub.keys.comment(view.issue, view.taskId), { issue: view.issue, subject: view.taskId, body: taskBody(runId, view, plan.qualityThreshold) })
        const label = labelOf(view.status)
        if (label !== undefined) labels.set(view.issue, label)
      }
      refreshSummary()
    }

    const onEvent = (event: Progress.RunEvent) => {
      const view = "taskId" in event ? tasks.get(event.taskId) : undefined
      switch (event._tag) {
        case "AttemptStarted":
          if (view === undefined) return
          view.status = "in-progress"
          view.error = undefined
          view.attempts.set(event.attempt, { attempt: event.attempt, commit: undefined, files: 0, score: undefined, passes: undefined, issues: [], suggestions: [] })
          return refresh(view)
        case "AttemptFinished": {
          if (view === undefined) return
          const a = view.attempts.get(event.attempt)
          view.attempts.set(event.attempt, { ...(a ?? { attempt: event.attempt, score: undefined, passes: undefined, issues: [], suggestions: [] }), commit: event.commit, files: event.files.length })
          return refresh(view)
        }
        case "ReviewRecorded": {
          if (view === undefined) return
          const a = view.attempts.get(event.attempt)
          view.attempts.set(event.attempt, {
            ...(a ?? { attempt: event.attempt, commit: undefined, files: 0 }),
            score: event.score,
            passes: event.passes,
            issues: event.issues,
            suggestions: event.suggestions
          })
          return refresh(view)
        }
        case "TaskSettled":
          if (view === undefined) return
          view.status = event.status
          view.error = event.error ?? undefined
          return refresh(view)
        case "VerificationFinished":
          verifiedLine = event.checks.length === 0
            ? "Verification: the plan has no verify commands."
            : `Verification ${event.passed ? "passed" : "**failed**"} on \`${event.commit?.slice(0, 10) ?? "?"}\` (${event.checks.filter((c) => c.exitCode === 0).length}/${event.checks.length} commands).`
          return refreshSummary()
        default:
          return
      }
    }

    const attempt = <A>(what: string, effect: Effect.Effect<A, GitHub.GitHubFailed>) =>
      effect.pipe(
        Effect.map(Option.some),
        Effect.catchAll((e) => Effect.sync(() => {
          warn(`GitHub: ${what}: ${e.message}`)
          return Option.none<A>()
        })),
        // A defect in the HTTP layer is still only a warning: the run must not fail for it.
        Effect.catchAllDefect((d) => Effect.sync(() => {
          warn(`GitHub: ${what}: ${String(d)}`)
          return Option.none<A>()
        }))
      )

    /** The comment's id: journaled, else found by its marker, else a new comment (journaled at once). */
    const commentFor = (key: string, want: { readonly issue: number; readonly subject: string; readonly body: string }) =>
      Effect.gen(function*() {
        const known = ids.get(key)
        if (known !== undefined) return Option.some({ ...known, created: false })
        const noted = deleted.has(key) ? Option.none() : yield* steps.recall(key, GitHub.CommentNoted)
        if (Option.isSome(noted)) {
          ids.set(key, { id: noted.value.commentId, url: noted.value.url })
          return Option.some({ id: noted.value.commentId, url: noted.value.url, created: false })
        }
        const mark = GitHub.marker(runId, want.subject === "summary" ? "summary" : { taskId: want.subject })
        const listed = yield* attempt(`reading the comments of #${want.issue}`, github.listComments(want.issue))
        if (Option.isNone(listed)) return Option.none()
        const found = listed.value.find((c) => c.body?.includes(mark) === true)
        const comment = found ?? Option.getOrUndefined(yield* attempt(`commenting on #${want.issue}`, github.createComment(want.issue, want.body)))
        if (comment === undefined) return Option.none()
        ids.set(key, { id: comment.id, url: comment.html_url })
        deleted.delete(key)
        yield* steps.record(key, GitHub.CommentNoted, new GitHub.CommentNoted({ issue: want.issue, commentId: comment.id, url: comment.html_url }))
        if (found === undefined) written.set(key, want.body)
        return Option.some({ id: comment.id, url: comment.html_url, created: found === undefined })
      })

    // A write that failed (after the client's own retries) waits for the final flush, so a
    // GitHub outage costs one failure per comment, not one per debounce tick.
    const parked = new Set<string>()
    const deleted = new Set<string>()
    let finishing = false
    const park = <A>(key: string, result: Option.Option<A>) => {
      if (Option.isNone(result)) parked.add(key)
      else parked.delete(key)
      return result
    }

    const writeComments = Effect.gen(function*() {
      for (const [key, want] of [...desired]) {
        if (written.get(key) === want.body || (parked.has(key) && !finishing)) continue
        const body = want.body
        const comment = park(key, yield* commentFor(key, want))
        if (Option.isNone(comment) || comment.value.created) continue
        let gone = false
        const edited = yield* attempt(
          `editing the comment on #${want.issue}`,
          github.updateComment(comment.value.id, body).pipe(
            Effect.tapError((e) => Effect.sync(() => void (gone = e.status === 404)))
          )
        )
        if (gone) {
          // Someone deleted it: the next write posts a new one (and journals its id).
          ids.delete(key)
          deleted.add(key)
          parked.delete(key)
        } else park(key, edited)
        if (Option.isSome(edited)) written.set(key, body)
      }
    })

    const writeLabels = Effect.gen(function*() {
      for (const [issue, label] of [...labels]) {
        if (labelled.get(issue) === label || (parked.has(`label/${issue}`) && !finishing)) continue
        const current = park(`label/${issue}`, yield* attempt(`reading #${issue}`, github.getIssue(issue)))
        if (Option.isNone(current)) continue
        const names = current.value.labels.map((l) => typeof l === "string" ? l : l.name)
        let ok = true
        for (const other of names.filter((n) => n !== label && (GitHub.STATUS_LABELS as ReadonlyArray<string>).includes(n))) {
          ok = Option.isSome(yield* attempt(`removing label ${other} from #${issue}`, github.removeLabel(issue, other))) && ok
        }
        if (!names.includes(label)) ok = Option.isSome(yield* attempt(`labelling #${issue} ${label}`, github.addLabels(issue, [label]))) && ok
        if (ok) labelled.set(issue, label)
        park(`label/${issue}`, ok ? Option.some(true) : Option.none())
      }
    })

    const lock = yield* Effect.makeSemaphore(1)
    const flush = lock.withPermits(1)(Effect.zipRight(writeComments, writeLabels)).pipe(Effect.withSpan("GitHubSync.flush"))
    const debounce = Duration.millis(options.debounceMs ?? 2000)
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(debounce), flush)).pipe(Effect.interruptible))

    const closed: Array<number> = []
    let statusPosted: string | undefined

    const finish = (report: RunReport.RunReport): Effect.Effect<Outcome> =>
      Effect.gen(function*() {
        yield* Effect.annotateCurrentSpan("runId", runId)
        finalReport = report
        for (const stream of report.streamResults) {
          for (const t of stream.results) {
            const view = tasks.get(t.taskId)
            if (view === undefined) continue
            fromResult(view, t.attempts)
            view.status = t.status
            view.error = t.error
          }
        }
        const v = report.integrationResult
        if (v.ran) {
          verifiedLine = v.checks.length === 0
            ? "Verification: the plan has no verify commands."
            : `Verification ${v.passed ? "passed" : "**failed**"} on \`${v.commit?.slice(0, 10) ?? "?"}\` (${v.checks.filter((c) => c.exitCode === 0).length}/${v.checks.length} commands).`
        }
        for (const view of tasks.values()) refresh(view)
        refreshSummary()
        const m = report.mergeResult
        const work = Effect.gen(function*() {
          finishing = true
          yield* flush
          // The verified commit exists on GitHub only once it was pushed (`--land push`, `--land pr`).
          if (v.ran && v.commit !== null && m.remote !== undefined && (m.landed || m.pullRequest !== undefined)) {
            const posted = yield* attempt(
              `posting the commit status of ${v.commit.slice(0, 10)}`,
              github.createStatus(v.commit, {
                state: v.passed ? "success" : "failure",
                context: GitHub.VERIFY_CONTEXT,
                description: v.passed ? `verified: ${v.checks.length} command(s) passed` : "verification failed"
              })
            )
            if (Option.isSome(posted)) statusPosted = v.commit
          }
          if (m.pullRequest !== undefined) {
            yield* attempt(
              `updating pull request #${m.pullRequest.number}`,
              github.updatePull(m.pullRequest.number, { title: pullTitle(plan, runId), body: pullBody(plan, RunReport.toMarkdown(report)) })
            )
          }
          // Closed only once the stream's work is on the target (a pull request closes them when merged).
          if (m.landed) {
            for (const view of tasks.values()) {
              if (view.issue === undefined || view.status !== "completed" || closed.includes(view.issue)) continue
              const done = yield* attempt(`closing #${view.issue}`, github.closeIssue(view.issue))
              if (Option.isSome(done)) closed.push(view.issue)
            }
          }
        })
        const timeout = options.finishTimeoutMs ?? 60_000
        yield* work.pipe(
          Effect.timeout(Duration.millis(timeout)),
          Effect.catchAll(() => Effect.sync(() => warn(`GitHub: gave up on the remaining updates after ${Math.round(timeout / 1000)} s (rate limit or an unresponsive server)`)))
        )
        return {
          comments: [...desired].flatMap(([key, want]) => {
            const id = ids.get(key)
            return id === undefined ? [] : [{ issue: want.issue, subject: want.subject, url: id.url }]
          }),
          closed,
          statusPosted,
          warnings
        }
      }).pipe(Effect.withSpan("GitHubSync.finish"))

    return {
      progress: { publish: (event) => Effect.sync(() => onEvent(event)) },
      finish
    }
  })

/** The title of a run's pull request. */
export const pullTitle = (plan: Plan.Plan, runId: string): string => `braid: ${plan.featureName} (${plan.projectName}, run ${runId})`

/** A pull request's body: the run's Markdown summary, then the task issues it closes when merged. */
export const pullBody = (plan: Plan.Plan, markdown: string): string => {
  const closes = [...plan.tasks.values()].flatMap((t) => t.githubIssueNumber !== undefined ? [`Closes #${t.githubIssueNumber}`] : [])
  return closes.length === 0 ? markdown : `${markdown}\n${closes.join("\n")}\n`
}
