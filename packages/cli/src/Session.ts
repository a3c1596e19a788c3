/**
 * A run's life on the command line: its journal in `<repo>/.braid/runs/<runId>/`, the lock
 * that keeps a second process off it, interruption (the resume command is printed), and
 * continuing a run — `resume`, `retry`, `land` — which is running it again over its journal:
 * every journaled step replays, the rest runs.
 *
 * @since 0.1.0
 */
import {
  Agent,
  FileRunStore,
  GitHub,
  GitHubSync,
  GitWorkspace,
  Landing,
  Notify,
  Orchestrator,
  Plan,
  Process,
  ProcessTree,
  Progress,
  RunReport,
  RunState,
  RunStore,
  Sandbox,
  Steps
} from "@braid/core"
import { DateTime, Effect, Layer, Option, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Board from "./Board.js"
import * as Preflight from "./Preflight.js"
import * as GitHubHttp from "./GitHubHttp.js"
import * as Help from "./Help.js"
import * as Render from "./Render.js"
import * as Runs from "./Runs.js"
import * as Wiring from "./Wiring.js"

/** The options a run was started with; stored in its manifest so `resume` needs none of them again. */
export const StoredOptions = Schema.Struct({
  workspace: Schema.Literal("git", "memory"),
  /** The backend for streams that name none (checked against the registry when the run starts). */
  agent: Schema.optional(Schema.String),
  /** The reviewer for streams whose plan names none (`--reviewer`). */
  reviewer: Schema.optional(Plan.ReviewerKind),
  repo: Schema.optional(Schema.String),
  base: Schema.optional(Schema.String),
  target: Schema.optional(Schema.String),
  land: Schema.Boolean,
  keepWorktrees: Schema.Boolean,
  maxParallel: Schema.optional(Schema.Number),
  qualityThreshold: Schema.optional(Schema.Number),
  conflictStrategy: Schema.optional(Plan.ConflictStrategy),
  onGateFailure: Schema.optional(Plan.GateFailurePolicy),
  /** `--budget`: the amount (USD or tokens) that replaces the plan's. */
  budget: Schema.optional(Schema.Struct({ usd: Schema.optional(Schema.Number), tokens: Schema.optional(Schema.Number) })),
  /** How the run lands (absent: local). */
  landMode: Schema.optional(Landing.ModeName),
  /** The remote `push` and `pr` push to (absent: origin). */
  remote: Schema.optional(Schema.String),
  /** `--no-github`: no progress sync. */
  noGithub: Schema.optional(Schema.Boolean),
  /** `--sandbox`: the confinement mode that replaces the plan's. */
  sandbox: Schema.optional(Sandbox.Mode),
  /** `--worktrees-dir` (absolute): where the run's checkouts go, over the plan's and config's `worktreesDir`. */
  worktreesDir: Schema.optional(Schema.String)
})
export type StoredOptions = typeof StoredOptions.Type

/** How progress is shown. */
export interface Display {
  readonly quiet: boolean
  /** Every event as one JSON line on stdout (`--events`). */
  readonly events?: boolean | undefined
  /** Agents' output lines too (`--verbose`). */
  readonly verbose?: boolean | undefined
}

/** The live board is drawn on a terminal that can move its cursor; elsewhere (CI, pipes) one plain line per notable event. */
export const boardOn = (): boolean => process.stderr.isTTY === true && process.env.TERM !== "dumb"

/**
 * Shows a run's events: NDJSON on stdout with `--events`; for people on stderr (unless quiet)
 * the live board on a terminal, else one plain line per notable event. `close` ends the board
 * with its final frame.
 */
export const renderer = (
  display: Display,
  board?: { readonly plan: Plan.Plan; readonly agent: string | undefined; readonly runId?: string | undefined; readonly state?: RunState.RunState | undefined }
): {
  readonly service: Progress.Service
  readonly close: () => void
  /** Whether the service still shows a line for people (not quiet, and no board closed): else a warning is written apart. */
  readonly showsLines: () => boolean
} => {
  // NDJSON on the same terminal would tear the board: then the plain lines.
  const live = !display.quiet && board !== undefined && boardOn() && !(display.events === true && process.stdout.isTTY === true)
    ? Board.terminal(
      Board.layoutOf(board.plan, (s) => Preflight.backendOf(board.plan, s, board.agent), board.runId),
      {
        screen: { write: (text) => process.stderr.write(text), columns: () => process.stderr.columns ?? 80, rows: () => process.stderr.rows ?? 24 },
        color: Help.styleOf(process.stderr, process.env).color,
        verbose: display.verbose === true,
        state: board.state
      }
    )
    : undefined
  let closed = false
  return {
    // Scrubbed once here, for the lines, the board and `--events` alike.
    service: Progress.scrubbed({
      publish: (event) =>
        Effect.sync(() => {
          if (display.events === true) process.stdout.write(`${Progress.eventLine(event)}\n`)
          if (display.quiet) return
          if (live !== undefined) return live.publish(event)
          const text = Render.line(event, { verbose: display.verbose === true })
          if (text !== undefined) process.stderr.write(`${text}\n`)
        })
    }),
    close: () => {
      closed = true
      live?.close()
    },
    showsLines: () => !display.quiet && (live === undefined || !closed)
  }
}

/**
 * A fault-injection hook for crash tests: `BRAID_CRASH_AFTER_RECORDS=N` kills the process
 * with SIGKILL right after the N-th journal record of this process is on disk.
 */
const crashAfter = (): number | undefined => {
  const n = Number.parseInt(process.env.BRAID_CRASH_AFTER_RECORDS ?? "", 10)
  return Number.isFinite(n) && n > 0 ? n : undefined
}

/**
 * The same hook by key: `BRAID_CRASH_AFTER_KEY=<prefix>` kills it right after the first record
 * whose key starts so (`<key>$`: whose key is that one).
 */
const crashAfterKey = (): string | undefined => {
  const key = process.env.BRAID_CRASH_AFTER_KEY
  return key !== undefined && key !== "" ? key : undefined
}

const keyMatches = (key: string, wanted: string) => wanted.endsWith("$") ? key === wanted.slice(0, -1) : key.startsWith(wanted)

/** The run's durable steps over its journal file, with the crash hook of the tests. */
const journaled = (records: ReadonlyArray<RunStore.StoredRun["records"][number]>, writer: RunStore.JournalWriter): Steps.Service => {
  const limit = crashAfter()
  const key = crashAfterKey()
  let written = 0
  return FileRunStore.steps(records, {
    append: (entry) =>
      Effect.tap(writer.append(entry), () =>
        Effect.sync(() => {
          written++
          if ((limit !== undefined && written >= limit) || (key !== undefined && keyMatches(entry.key, key))) process.kill(process.pid, "SIGKILL")
        }))
  })
}

/** How long GitHub edits are coalesced (`BRAID_GITHUB_DEBOUNCE_MS`, default 2 s). */
const debounceMs = (): number | undefined => {
  const n = Number.parseInt(process.env.BRAID_GITHUB_DEBOUNCE_MS ?? "", 10)
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

const toGitHubReport = (o: GitHubSync.Outcome) => ({
  comments: o.comments,
  closed: o.closed,
  statusPosted: o.statusPosted ?? null,
  warnings: o.warnings
})

/** The command that resumes a run. */
export const resumeCommand = (runId: string, repo: string) => `braid resume ${runId} --repo ${repo}`

const plainOptions = (options: StoredOptions): Record<string, unknown> => Schema.encodeSync(StoredOptions)(options)

/** How a command continues a run (none for a new run). */
export interface Continuation {
  /** Retry rounds, oldest first, from the journal (plus the one being asked for). */
  readonly retries: ReadonlyArray<RunState.RetryRequested>
  /** Land, merging in the target if it moved (`braid land`, or a resumed `braid land`). */
  readonly land: boolean
  /** Journaled once the run's lock is held, before anything runs (a retry or land request). */
  readonly request?: { readonly key: string; readonly value: RunState.Value } | undefined
}

/** Runs (or continues) a plan under the journal and lock of a run, and keeps its report. */
const execute = (args: {
  readonly plan: Plan.Plan
  readonly options: StoredOptions
  readonly runId: string
  readonly top: string
  readonly store: FileRunStore.Service
  /** The branch it lands on: held for it (`<repo>/.braid/active`), so a second run on it is refused. */
  readonly target: string
  readonly continuation: Continuation | undefined
  readonly display: Display
  /** Called when the run cannot start, so a new run leaves no record behind. */
  readonly onNotStarted: Effect.Effect<void>
  /** Done once the run's lock is held, before anything else (a resume ends the orphans of the crashed process). */
  readonly beforeRun?: Effect.Effect<void> | undefined
}) =>
  Effect.scoped(Effect.gen(function*() {
    const { options, plan, runId, top } = args
    // A report that cannot be written when the run ends (a full disk) does not hide the run's
    // outcome: it is shown with a warning, and the journal keeps the run.
    const store: FileRunStore.Service = {
      ...args.store,
      saveReport: (id, json) =>
        Effect.catchAll(args.store.saveReport(id, json), (e) =>
          Effect.sync(() =>
            void process.stderr.write(`braid: warning: ${e.message}: run ${id} finished, but its report is not kept (braid status ${id} shows the run)\n`)
          ))
    }
    // Confinement decided before anything starts: `required` where it cannot be had refuses the run.
    const confinement = yield* Sandbox.decide(plan.sandbox.mode).pipe(Effect.tapError(() => args.onNotStarted))
    if (confinement._tag === "Unconfined" && plan.sandbox.mode !== "off" && !args.display.quiet) {
      process.stderr.write(`braid: processes run unconfined: ${confinement.reason}; only the after-the-fact checks guard the repository\n`)
    }
    yield* store.lock(runId)
    yield* store.holdTarget(args.target, runId).pipe(Effect.tapError(() => args.onNotStarted))
    if (args.beforeRun !== undefined) yield* args.beforeRun
    // Read under the lock: what another process journaled before it is part of the run.
    const stored = yield* store.load(runId)
    const writer = yield* store.journal(runId)
    const steps = journaled(stored.records, writer)
    // What the run's attempts spent so far counts against its budget from the start.
    const spent = RunState.fold(stored.records).spent
    const request = args.continuation?.request
    if (request !== undefined) yield* steps.record(request.key, RunState.Value, request.value)
    let started = stored.records.some((r) => r.key === RunState.keys.run)
    const state = RunState.fold(stored.records)
    const render = renderer(args.display, { plan, agent: options.agent, runId, state })
    yield* Effect.addFinalizer(() => Effect.sync(render.close))
    // GitHub sync: a subscriber of the run's events that never blocks or fails it.
    const github = yield* GitHubHttp.settings(plan, { noGithub: options.noGithub === true })
    const githubService = github._tag === "On" ? yield* GitHubHttp.live(github) : undefined
    const sync = githubService === undefined ? undefined : yield* GitHubSync.make({
      runId,
      plan,
      github: githubService,
      steps,
      state,
      debounceMs: debounceMs(),
      onWarning: (message) => process.stderr.write(`braid: warning: ${message}\n`)
    })
    // Notifications: a subscriber too, delivering off the run's path; a failed notifier is a warning.
    const notifications = yield* Notify.make({
      runId,
      plan,
      reportPath: path.join(top, ".braid", "runs", runId, "report.json"),
      env: process.env,
      platform: process.platform,
      told: toldOf(state, args.continuation),
      onFailure: (event) =>
        Effect.zipRight(
          render.service.publish(event),
          Effect.sync(() => {
            if (!render.showsLines()) process.stderr.write(`${Render.line(event)}\n`)
          })
        )
    })
    const subscribers = Progress.fanOut(render.service, ...(sync === undefined ? [] : [sync.progress]), notifications.progress)
    const progress: Progress.Service = {
      publish: (event) =>
        Effect.zipRight(
          Effect.sync(() => {
            if (event._tag === "RunStarted") started = true
          }),
          subscribers.publish(event)
        )
    }
    const stop = (reason: string) =>
      Effect.flatMap(DateTime.now, (now) =>
        steps.record(RunState.keys.interrupted, RunState.Interrupted, new RunState.Interrupted({ reason, at: DateTime.formatIso(now) })))
    const land = options.land || args.continuation?.land === true
    const ran = yield* Orchestrator.run(plan, {
      runId,
      land,
      keepWorktrees: options.keepWorktrees,
      retries: (args.continuation?.retries ?? []).map((r) => ({ round: r.round, tasks: r.tasks, note: r.note ?? undefined })),
      catchUp: args.continuation?.land === true,
      spent,
      landing: Landing.modeNamed(options.landMode ?? "local"),
      remote: options.remote ?? "origin"
    }).pipe(
      githubService === undefined ? (e) => e : Effect.provideService(GitHub.GitHub, githubService),
      Effect.provide(Wiring.layer(plan, {
        workspace: options.workspace,
        agent: options.agent,
        reviewer: options.reviewer,
        repo: options.repo ?? top,
        base: options.base,
        target: options.target,
        worktreesDir: options.worktreesDir ?? plan.worktreesDir
      })),
      Effect.provideService(Progress.Progress, progress),
      Effect.provideService(Steps.Steps, steps),
      (run) => confinement._tag === "Confined" ? Effect.provideService(run, Sandbox.Confinement, { network: plan.sandbox.network, readable: [plan.baseDir] }) : run,
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          if (!started) return
          yield* stop("stopped by a signal").pipe(Effect.ignore)
          render.close()
          process.stderr.write(
            `\nbraid: run ${runId} interrupted; its branches are kept and settled work is not redone.\nresume it with: ${resumeCommand(runId, top)}\n`
          )
        })
      ),
      // A provider's usage limit pauses the run: journaled as interrupted, so `resume` continues it.
      Effect.tapErrorTag("UsageLimitReached", (limit) =>
        Effect.gen(function*() {
          if (!started) return
          yield* stop(Agent.describeUsageLimit(limit)).pipe(Effect.ignore)
          yield* notifications.notify("paused", { message: `run ${runId} paused: ${Agent.describeUsageLimit(limit)}; resume it with: ${resumeCommand(runId, top)}` })
          render.close()
          process.stderr.write(
            `\nbraid: run ${runId} paused: ${Agent.describeUsageLimit(limit)}. Its branches are kept; settled work is not redone.\n` +
              `resume it${limit.resetsAt !== undefined ? " after the reset" : " once the limit resets"} with: ${resumeCommand(runId, top)}\n`
          )
        })),
      // The run's budget pauses it the same way; `resume --budget` continues it with more.
      Effect.tapErrorTag("BudgetReached", (reached) =>
        Effect.gen(function*() {
          if (!started) return
          yield* stop(reached.message).pipe(Effect.ignore)
          yield* notifications.notify("paused", { message: `run ${runId} paused: ${reached.message}; resume it with a raised budget: ${resumeCommand(runId, top)} --budget <amount>` })
          process.stderr.write(
            `\nbraid: run ${runId} paused: ${reached.message}. Its branches are kept; settled work is not redone.\n` +
              `continue it with a raised budget: ${resumeCommand(runId, top)} --budget <amount, e.g. 10usd or 500000tokens>\n`
          )
        })),
      // A checkout's setup failed: the run stops before the task used a gate run; `resume` sets it up again.
      Effect.tapErrorTag("SetupFailed", (failed) =>
        Effect.gen(function*() {
          if (!started) return
          yield* stop(failed.message.split("\n")[0]!).pipe(Effect.ignore)
          render.close()
          process.stderr.write(
            `\nbraid: run ${runId} stopped: its branches are kept; settled work is not redone.\n` +
              `fix the setup (the command, or what it needs), then resume it with: ${resumeCommand(runId, top)}\n`
          )
        })),
      // A journal write that failed (a full disk, the journal deleted under the run) stops the
      // run as one clear line, not as a defect's trace; what is journaled stays resumable.
      Effect.catchSomeDefect((defect) =>
        defect instanceof RunStore.StoreFailed || defect instanceof RunStore.JournalReplaced ? Option.some(Effect.fail(defect)) : Option.none()
      ),
      // Any other error that ends a started run (a setup that failed, a journal that cannot be written): finished, stopped.
      Effect.tapError((e) =>
        !started
          ? args.onNotStarted
          : e._tag === "UsageLimitReached" || e._tag === "BudgetReached"
          ? Effect.void
          : notifications.notify("finished", { outcome: "stopped", landed: false, message: `run ${runId} stopped: ${e.message.split("\n")[0]}` })
      )
    )
    const report = sync === undefined || github._tag !== "On" ? ran : new RunReport.RunReport({
      ...ran,
      github: new RunReport.GitHubReport({ repo: github.repo, ...toGitHubReport(yield* sync.finish(ran)) })
    })
    // Saved, printed and shown scrubbed of the credentials agents printed (GitHub's copy is scrubbed as it is sent).
    const shown = RunReport.scrub(report)
    yield* store.saveReport(runId, JSON.stringify(RunReport.encode(shown), null, 2))
    // Told once the report is on disk, and delivered before braid exits.
    yield* notifications.finished(shown)
    yield* notifications.drain
    return shown
  }))

/**
 * The tasks whose review-needed an earlier process of the run told (settled needs-review in the
 * journal): their settling replays on resume. Not those a retry runs again.
 */
const toldOf = (state: RunState.RunState, continuation: Continuation | undefined): ReadonlySet<string> => {
  const again = new Set((continuation?.retries ?? []).slice(state.retries.length).flatMap((r) => r.tasks))
  return new Set([...state.tasks.values()].filter((t) => t.settled?.status === "needs-review" && !again.has(t.taskId)).map((t) => t.taskId))
}

/** Starts a new journaled run in the repository at `repo`. */
export const start = (input: {
  readonly plan: Plan.Plan
  readonly planPath: string
  readonly planText: string
  readonly options: StoredOptions
  readonly display: Display
  /** The run's id, chosen by the caller (`braid run --run-id`, the MCP server's `start_run`); default: a new one. */
  readonly runId?: string | undefined
}) =>
  Effect.gen(function*() {
    const { store, top } = yield* Runs.storeFor(input.options.repo ?? process.cwd())
    // What would stop the run midway or at its end is found before anything starts.
    const target = yield* Preflight.targetOf(top, input.options)
    yield* Preflight.refuseState({ top, target, worktrees: input.options.worktreesDir ?? input.plan.worktreesDir })
    const runId = input.runId ?? Orchestrator.makeRunId()
    if (input.runId !== undefined && (yield* store.list()).includes(runId)) return yield* new RunIdInUse({ runId, where: store.location })
    yield* store.create(
      new RunStore.RunManifest({
        runId,
        createdAt: DateTime.formatIso(yield* DateTime.now),
        planSource: path.resolve(input.planPath),
        planBaseDir: input.plan.baseDir,
        options: plainOptions({ ...input.options, repo: top })
      }),
      input.planText
    )
    return yield* execute({
      plan: input.plan,
      options: { ...input.options, repo: top },
      runId,
      top,
      store,
      target,
      continuation: undefined,
      display: input.display,
      onNotStarted: store.remove(runId).pipe(Effect.ignore)
    })
  })

/** `braid run --run-id` names a run that is already recorded. */
export class RunIdInUse extends Schema.TaggedError<RunIdInUse>()("RunIdInUse", { runId: Schema.String, where: Schema.String }) {
  override get message(): string {
    return `--run-id: run ${this.runId} is already recorded in ${this.where}; choose another id (braid runs lists them)`
  }
}

/** A run was asked for that has already finished. */
export class RunAlreadyFinished extends Schema.TaggedError<RunAlreadyFinished>()("RunAlreadyFinished", {
  runId: Schema.String,
  status: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId} already finished (${this.status}); nothing to resume (see: braid report ${this.runId})`
  }
}

const decodeOptions = Schema.decodeUnknownSync(StoredOptions)

/** Who left a process running, in words: the journaled attempt, else the one its marker names. */
const leftBy = (record: RunState.AgentProcessRecord | undefined, marker: string | undefined): string => {
  if (record !== undefined) return `task ${record.taskId} attempt ${record.attempt} (stream ${record.stream})`
  const parts = marker?.split("/") ?? []
  return parts.length >= 4
    ? `task ${parts.slice(2, -1).join("/")} attempt ${parts.at(-1)} (stream ${parts[1]})`
    : "an attempt cut off"
}

/**
 * Ends what a killed braid left running: the journaled agent processes of attempts that had
 * not finished (only while their pid still has the journaled start time, so never an unrelated
 * process reusing the pid), every process carrying a `BRAID_AGENT` marker of this run, and
 * their descendants; one line for each. Runs under the run's lock, before any worktree is touched.
 */
export const endOrphans = (runId: string, journaled: ReadonlyArray<RunState.AgentProcessRecord>) =>
  Effect.gen(function*() {
    const running = journaled.filter(ProcessTree.isRunning)
    const found = ProcessTree.find({ marker: (value) => value.startsWith(`${runId}/`), roots: running })
    const ended = yield* ProcessTree.end(found, Process.KILL_GRACE)
    for (const p of ended) {
      const record = running.find((r) => r.pid === p.pid && r.startTime === p.startTime)
      process.stderr.write(
        `braid: ended process ${p.pid} (${record?.command ?? p.command}) left running by ${leftBy(record, p.marker)} of the interrupted run\n`
      )
    }
    return ended
  })

/** A stored run, its fold, and its plan as the run uses it. */
const loadRun = (input: { readonly repo: string | undefined; readonly runId: string | undefined; readonly planFromDisk: boolean }) =>
  Effect.gen(function*() {
    const { store, top } = yield* Runs.storeFor(input.repo ?? process.cwd())
    const runId = yield* Runs.pickRun(store, input.runId)
    const stored = yield* store.load(runId)
    if (stored.warning !== undefined) process.stderr.write(`braid: warning: ${stored.warning}\n`)
    const state = RunState.fold(stored.records)
    const options = decodeOptions(stored.manifest.options)
    const manifest = stored.manifest
    const onDisk = yield* Effect.promise(() => fs.readFile(manifest.planSource, "utf8").catch(() => undefined))
    let planText = stored.planText
    if (onDisk !== undefined && onDisk !== stored.planText) {
      if (input.planFromDisk) {
        planText = onDisk
        process.stderr.write(`braid: using the plan on disk (${manifest.planSource}), which differs from the journaled one\n`)
      } else {
        process.stderr.write(
          `braid: note: ${manifest.planSource} changed since the run started; continuing with the journaled plan (pass --plan-from-disk to use the file)\n`
        )
      }
    }
    const plan = yield* planOf({ ...stored, planText }, state, manifest.planBaseDir)
    const target = state.started?.target ?? (yield* Preflight.targetOf(top, options))
    // What would stop the run midway or at its end is found before it goes on.
    yield* Preflight.refuseState({ top, target, runId, worktrees: yield* GitWorkspace.worktreesOf({ top, runId }) })
    return { store, top, runId, state, options, plan, target }
  })

/**
 * The plan as a stored run uses it: its text (the plan's folder, with its config, at
 * `baseDir`), with the run's options over it — and the budget a person set last
 * (`resume --budget`) over the run's `--budget` over the plan's.
 */
export const planOf = (stored: RunStore.StoredRun, state: RunState.RunState, baseDir: string) =>
  Effect.gen(function*() {
    const options = decodeOptions(stored.manifest.options)
    const parsed = yield* Plan.parse(stored.planText, stored.manifest.planSource, baseDir, yield* Plan.readConfig(baseDir))
    const budget = state.budget !== undefined
      ? { usd: state.budget.usd ?? undefined, tokens: state.budget.tokens ?? undefined }
      : options.budget
    return yield* Plan.override(parsed, {
      maxParallel: options.maxParallel,
      qualityThreshold: options.qualityThreshold,
      conflictStrategy: options.conflictStrategy,
      onGateFailure: options.onGateFailure,
      budget,
      sandbox: options.sandbox
    })
  })

const cutOff = (state: RunState.RunState) =>
  [...state.tasks.values()].filter((t) => t.settled === undefined && (t.awaitingReview !== undefined || t.cutOff !== undefined)).length

/**
 * Continues a run from its journal: after a crash or an interruption, after a person resolved
 * a conflict or committed a fix in the integration, or to verify and land again. A run that
 * succeeded has nothing to continue.
 */
export const resume = (input: {
  readonly repo: string | undefined
  readonly runId: string | undefined
  readonly planFromDisk: boolean
  readonly display: Display
  /** A raised budget (`--budget`): replaces that amount of the run's budget, journaled for later continuations. */
  readonly budget?: { readonly usd?: number | undefined; readonly tokens?: number | undefined } | undefined
}) =>
  Effect.gen(function*() {
    const loaded = yield* loadRun(input)
    const { options, runId, state, store, target, top } = loaded
    if (state.finished === "succeeded") return yield* new RunAlreadyFinished({ runId, status: state.finished })
    const raised = input.budget === undefined ? undefined : {
      usd: input.budget.usd ?? loaded.plan.budget?.usd,
      tokens: input.budget.tokens ?? loaded.plan.budget?.tokens
    }
    const plan = raised === undefined ? loaded.plan : yield* Plan.override(loaded.plan, { budget: raised }, "--budget")
    const request = raised === undefined ? undefined : {
      key: RunState.keys.budget,
      value: new RunState.BudgetSet({ usd: raised.usd ?? null, tokens: raised.tokens ?? null, at: DateTime.formatIso(yield* DateTime.now) })
    }
    if (!input.display.quiet) {
      const cut = cutOff(state)
      process.stderr.write(
        `resuming run ${runId}: ${state.progress.settled}/${state.progress.total} tasks settled${cut > 0 ? `, ${cut} attempt(s) cut off` : ""}\n`
      )
    }
    return yield* execute({
      plan,
      options,
      runId,
      top,
      store,
      target,
      continuation: { retries: state.retries, land: state.landRequested, request },
      display: input.display,
      onNotStarted: Effect.void,
      beforeRun: Effect.asVoid(endOrphans(runId, state.processes))
    })
  })

/** `braid retry` named a task that cannot be run again. */
export class NothingToRetry extends Schema.TaggedError<NothingToRetry>()("NothingToRetry", {
  runId: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId}: ${this.problem}`
  }
}

/** The run has not started (it has no journaled start), so it cannot be retried or landed. */
export class RunNotStarted extends Schema.TaggedError<RunNotStarted>()("RunNotStarted", { runId: Schema.String }) {
  override get message(): string {
    return `run ${this.runId} never started; run its plan again with braid run`
  }
}

/**
 * Runs failed and needs-review tasks again (all of them, or the ones named), each with three
 * fresh gate runs and the person's note in its feedback; tasks skipped because of them run
 * too. Every other settled task keeps its result and commits; then the run integrates,
 * verifies and lands as a run does.
 */
export const retry = (input: {
  readonly repo: string | undefined
  readonly runId: string | undefined
  readonly tasks: ReadonlyArray<string>
  readonly note: string | undefined
  readonly planFromDisk: boolean
  readonly display: Display
}) =>
  Effect.gen(function*() {
    const { options, plan, runId, state, store, target, top } = yield* loadRun(input)
    const request = yield* retryRequest({ runId, plan, state, tasks: input.tasks, note: input.note })
    if (!input.display.quiet) {
      process.stderr.write(`retrying in run ${runId} (round ${request.round}): ${request.tasks.join(", ")}\n`)
    }
    return yield* execute({
      plan,
      options,
      runId,
      top,
      store,
      target,
      continuation: { retries: [...state.retries, request], land: state.landRequested, request: { key: RunState.keys.retry(request.round), value: request } },
      display: input.display,
      onNotStarted: Effect.void,
      beforeRun: Effect.asVoid(endOrphans(runId, state.processes))
    })
  })

/**
 * The retry round a person asks for: the failed and needs-review tasks (all, or the ones
 * named), and the tasks skipped because of them.
 */
export const retryRequest = (input: {
  readonly runId: string
  readonly plan: Plan.Plan
  readonly state: RunState.RunState
  readonly tasks: ReadonlyArray<string>
  readonly note: string | undefined
}) =>
  Effect.gen(function*() {
    const { plan, runId, state } = input
    if (state.started === undefined) return yield* new RunNotStarted({ runId })
    const statusOf = (id: string) => state.tasks.get(id)?.settled?.status
    const retriable = (id: string) => statusOf(id) === "failed" || statusOf(id) === "needs-review"
    for (const id of input.tasks) {
      if (!plan.tasks.has(id)) return yield* new NothingToRetry({ runId, problem: `no task "${id}" in the plan` })
      if (!retriable(id) && statusOf(id) !== "skipped") {
        return yield* new NothingToRetry({ runId, problem: `task ${id} is ${statusOf(id) ?? "not settled"}; only failed, needs-review or skipped tasks are retried` })
      }
    }
    const chosen = input.tasks.length > 0 ? [...input.tasks] : [...plan.tasks.keys()].filter(retriable)
    // What was skipped because of them runs again too (it never ran).
    const skipped = [...plan.tasks.keys()].filter((id) => statusOf(id) === "skipped" && !chosen.includes(id))
    const tasks = [...chosen, ...skipped]
    if (chosen.length === 0) return yield* new NothingToRetry({ runId, problem: "no task failed or needs review, so there is nothing to retry" })
    return new RunState.RetryRequested({
      round: state.retries.length + 1,
      tasks,
      note: input.note ?? null,
      at: DateTime.formatIso(yield* DateTime.now)
    })
  })

/** The run landed already. */
export class AlreadyLanded extends Schema.TaggedError<AlreadyLanded>()("AlreadyLanded", {
  runId: Schema.String,
  commit: Schema.String,
  target: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId} already landed ${this.commit.slice(0, 10)} on ${this.target}`
  }
}

/**
 * Lands a verified run later: a run made with `--no-land`, one whose landing was refused
 * because the target moved (the target is merged into the integration and verified again,
 * then fast-forwarded) or because the working tree had changes.
 */
export const land = (input: {
  readonly repo: string | undefined
  readonly runId: string | undefined
  readonly planFromDisk: boolean
  readonly display: Display
}) =>
  Effect.gen(function*() {
    const { options, plan, runId, state, store, target, top } = yield* loadRun(input)
    const request = yield* landRequest(runId, state)
    return yield* execute({
      plan,
      options,
      runId,
      top,
      store,
      target,
      continuation: { retries: state.retries, land: true, request: { key: RunState.keys.landRequested, value: request } },
      display: input.display,
      onNotStarted: Effect.void,
      beforeRun: Effect.asVoid(endOrphans(runId, state.processes))
    })
  })

/** A request to land the run later; refused when it never started or landed already. */
export const landRequest = (runId: string, state: RunState.RunState) =>
  Effect.gen(function*() {
    if (state.started === undefined) return yield* new RunNotStarted({ runId })
    if (state.landed !== undefined && state.finished === "succeeded") {
      // Failed, not yielded: a yielded error runs as an Effect through its `commit` method, which this error's `commit` field hides.
      return yield* Effect.fail(new AlreadyLanded({ runId, commit: state.landed.commit, target: state.landed.target }))
    }
    return new RunState.LandRequested({ at: DateTime.formatIso(yield* DateTime.now) })
  })
