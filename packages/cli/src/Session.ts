/**
 * A run's life on the command line: its journal in `<repo>/.braid/runs/<runId>/`, the lock
 * that keeps a second process off it, interruption (the resume command is printed), and
 * resuming from the journal.
 *
 * @since 0.1.0
 */
import {
  Agent,
  FileRunStore,
  GitWorkspace,
  Orchestrator,
  Plan,
  Process,
  ProcessTree,
  Progress,
  Replay,
  RunReport,
  RunStore,
  type Workspace
} from "@braid/core"
import { CommandExecutor } from "@effect/platform"
import { DateTime, Effect, Layer, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Render from "./Render.js"
import * as Wiring from "./Wiring.js"

/** The options a run was started with; stored in its manifest so `resume` needs none of them again. */
export const StoredOptions = Schema.Struct({
  workspace: Schema.Literal("git", "memory"),
  /** The backend for streams that name none (checked against the registry when the run starts). */
  agent: Schema.optional(Schema.String),
  repo: Schema.optional(Schema.String),
  base: Schema.optional(Schema.String),
  target: Schema.optional(Schema.String),
  land: Schema.Boolean,
  keepWorktrees: Schema.Boolean,
  maxParallel: Schema.optional(Schema.Number),
  qualityThreshold: Schema.optional(Schema.Number),
  conflictStrategy: Schema.optional(Plan.ConflictStrategy),
  onGateFailure: Schema.optional(Plan.GateFailurePolicy)
})
export type StoredOptions = typeof StoredOptions.Type

/** How progress is shown. */
export interface Display {
  readonly quiet: boolean
}

const renderer = (display: Display): Progress.Service =>
  display.quiet ? { publish: () => Effect.void } : {
    publish: (event) =>
      Effect.sync(() => {
        const text = Render.line(event)
        if (text !== undefined) process.stderr.write(`${text}\n`)
      })
  }

/**
 * A fault-injection hook for crash tests: `BRAID_CRASH_AFTER_RECORDS=N` kills the process
 * with SIGKILL right after the N-th journal record of this process is on disk.
 */
const crashAfter = (): number | undefined => {
  const n = Number.parseInt(process.env.BRAID_CRASH_AFTER_RECORDS ?? "", 10)
  return Number.isFinite(n) && n > 0 ? n : undefined
}

const journaled = (writer: RunStore.JournalWriter): Progress.Service => {
  const limit = crashAfter()
  let written = 0
  return {
    publish: (event) =>
      writer.append(event).pipe(
        // Without a durable journal the run cannot promise to be resumable: stop.
        Effect.orDie,
        Effect.tap(() =>
          Effect.sync(() => {
            written++
            if (limit !== undefined && written >= limit) process.kill(process.pid, "SIGKILL")
          })
        )
      )
  }
}

/** The command that resumes a run. */
export const resumeCommand = (runId: string, repo: string) => `braid resume ${runId} --repo ${repo}`

/** The run store of the repository containing `dir`. */
export const storeFor = (
  dir: string
): Effect.Effect<{ readonly top: string; readonly store: RunStore.Service }, Workspace.WorkspaceRefused | Workspace.WorkspaceFailed, CommandExecutor.CommandExecutor> =>
  Effect.map(GitWorkspace.repositoryTop(dir), (top) => ({ top, store: FileRunStore.make(path.join(top, ".braid")) }))

const plainOptions = (options: StoredOptions): Record<string, unknown> => Schema.encodeSync(StoredOptions)(options)

/** Runs (or resumes) a plan under the journal and lock of a run, and keeps its report. */
const execute = (args: {
  readonly plan: Plan.Plan
  readonly options: StoredOptions
  readonly runId: string
  readonly top: string
  readonly store: RunStore.Service
  readonly resume: Replay.State | undefined
  readonly display: Display
  /** Called when the run cannot start, so a new run leaves no record behind. */
  readonly onNotStarted: Effect.Effect<void>
  /** Done once the run's lock is held, before anything else (a resume ends the orphans of the crashed process). */
  readonly beforeRun?: Effect.Effect<void> | undefined
}) =>
  Effect.scoped(Effect.gen(function*() {
    const { options, plan, runId, store, top } = args
    yield* store.lock(runId)
    if (args.beforeRun !== undefined) yield* args.beforeRun
    const writer = yield* store.journal(runId)
    const journal = journaled(writer)
    let started = args.resume?.started !== undefined
    const progress: Progress.Service = {
      publish: (event) =>
        Effect.zipRight(
          journal.publish(event),
          Effect.sync(() => {
            if (event._tag === "RunStarted") started = true
          })
        ).pipe(Effect.zipRight(renderer(args.display).publish(event)))
    }
    const report = yield* Orchestrator.run(plan, {
      runId,
      land: options.land,
      keepWorktrees: options.keepWorktrees,
      ...(args.resume !== undefined ? { resume: args.resume } : {})
    }).pipe(
      Effect.provide(Wiring.layer(plan, {
        workspace: options.workspace,
        agent: options.agent,
        repo: options.repo ?? top,
        base: options.base,
        target: options.target
      })),
      Effect.provide(Layer.succeed(Progress.Progress, progress)),
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          if (!started) return
          yield* journal.publish({
            _tag: "RunInterrupted",
            at: DateTime.formatIso(yield* DateTime.now),
            reason: "stopped by a signal"
          }).pipe(Effect.ignore)
          process.stderr.write(
            `\nbraid: run ${runId} interrupted; its worktrees and branches are kept.\nresume it with: ${resumeCommand(runId, top)}\n`
          )
        })
      ),
      // A provider's usage limit pauses the run: journaled as interrupted, so `resume` continues it.
      Effect.tapErrorTag("UsageLimitReached", (limit) =>
        Effect.gen(function*() {
          if (!started) return
          yield* journal.publish({
            _tag: "RunInterrupted",
            at: DateTime.formatIso(yield* DateTime.now),
            reason: Agent.describeUsageLimit(limit)
          }).pipe(Effect.ignore)
          process.stderr.write(
            `\nbraid: run ${runId} paused: ${Agent.describeUsageLimit(limit)}. Its worktrees and branches are kept; settled work is not redone.\n` +
              `resume it${limit.resetsAt !== undefined ? " after the reset" : " once the limit resets"} with: ${resumeCommand(runId, top)}\n`
          )
        })),
      Effect.tapError(() => started ? Effect.void : args.onNotStarted)
    )
    yield* store.saveReport(runId, JSON.stringify(RunReport.encode(report), null, 2))
    return report
  }))

/** Starts a new journaled run in the repository at `repo`. */
export const start = (input: {
  readonly plan: Plan.Plan
  readonly planPath: string
  readonly planText: string
  readonly options: StoredOptions
  readonly display: Display
}) =>
  Effect.gen(function*() {
    const { store, top } = yield* storeFor(input.options.repo ?? process.cwd())
    const runId = Orchestrator.makeRunId()
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
      resume: undefined,
      display: input.display,
      onNotStarted: store.remove(runId).pipe(Effect.ignore)
    })
  })

/** A run was asked for that has already finished. */
export class RunAlreadyFinished extends Schema.TaggedError<RunAlreadyFinished>()("RunAlreadyFinished", {
  runId: Schema.String,
  status: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId} already finished (${this.status}); nothing to resume (see: braid report ${this.runId})`
  }
}

/** Finds a run id: the one given, or the latest run in the store. */
export const pickRun = (store: RunStore.Service, runId: string | undefined) =>
  Effect.gen(function*() {
    if (runId !== undefined) return runId
    const ids = yield* store.list()
    if (ids.length === 0) return yield* new RunStore.RunNotFound({ runId: "(latest)", where: store.location })
    return ids.at(-1)!
  })

const decodeOptions = Schema.decodeUnknownSync(StoredOptions)

/** Who left a process running, in words: the journaled attempt, else the one its marker names. */
const leftBy = (record: Replay.AgentProcessRecord | undefined, marker: string | undefined): string => {
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
export const endOrphans = (runId: string, journaled: ReadonlyArray<Replay.AgentProcessRecord>) =>
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

/** Resumes a run from its journal. */
export const resume = (input: {
  readonly repo: string | undefined
  readonly runId: string | undefined
  readonly planFromDisk: boolean
  readonly display: Display
}) =>
  Effect.gen(function*() {
    const { store, top } = yield* storeFor(input.repo ?? process.cwd())
    const runId = yield* pickRun(store, input.runId)
    const stored = yield* store.load(runId)
    if (stored.warning !== undefined) process.stderr.write(`braid: warning: ${stored.warning}\n`)
    const state = Replay.replay(stored.records)
    if (state.finished !== undefined) return yield* new RunAlreadyFinished({ runId, status: state.finished })
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
          `braid: note: ${manifest.planSource} changed since the run started; resuming with the journaled plan (pass --plan-from-disk to use the file)\n`
        )
      }
    }
    const parsed = yield* Plan.parse(planText, manifest.planSource, manifest.planBaseDir, yield* Plan.readConfig(manifest.planBaseDir))
    const plan = yield* Plan.override(parsed, {
      maxParallel: options.maxParallel,
      qualityThreshold: options.qualityThreshold,
      conflictStrategy: options.conflictStrategy,
      onGateFailure: options.onGateFailure
    })
    if (!input.display.quiet) {
      process.stderr.write(
        `resuming run ${runId}: ${state.progress.settled}/${state.progress.total} tasks settled` +
          `${state.pending.size + state.inFlight.size > 0 ? `, ${state.pending.size + state.inFlight.size} attempt(s) cut off` : ""}\n`
      )
    }
    return yield* execute({
      plan,
      options,
      runId,
      top,
      store,
      resume: state.started === undefined ? undefined : state,
      display: input.display,
      onNotStarted: Effect.void,
      beforeRun: Effect.asVoid(endOrphans(runId, state.processes))
    })
  })
