/**
 * Notifications: a subscriber of a run's `Progress` events that tells people when the run
 * needs them or is done. The plan's `notify:` notifiers (and `braid.config.yaml`'s) each hear
 * the events they name — a task left for a person's review, the run paused (a usage limit or
 * the budget), a conflict left for a person, the run finished, its pull request opened — and
 * run once per occurrence with the event's JSON (`Notification`) on stdin and in `BRAID_EVENT`;
 * the desktop notifier shows it with `notify-send` (Linux) or `osascript` (macOS).
 *
 * It never blocks or changes the run: `publish` only queues; one background fiber delivers,
 * each notifier bounded by its timeout and killed past it; a notifier that fails (a non-zero
 * exit, a program that is not there, a timeout) is a `NotificationFailed` warning. `drain`
 * (also run when the scope closes) waits until everything queued is delivered, so the final
 * "finished" notification is out before braid exits.
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { DateTime, Effect, Fiber, Option, Queue, Schema, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Plan from "../run/Plan.js"
import type * as Progress from "../ports/Progress.js"
import * as RunReport from "./RunReport.js"
import * as Process from "../system/Process.js"
import * as Secrets from "../system/Secrets.js"
import * as Terminal from "./Terminal.js"

/** How a run ended, for `finished`: its status, or `stopped` (an error ended it before its report; it can be resumed). */
export const Outcome = Schema.Literal(...RunReport.RunStatus.literals, "stopped")
export type Outcome = typeof Outcome.Type

/** The version of the `Notification` payload; raised on any incompatible change. */
export const NOTIFICATION_VERSION = 1

/** What a notifier is told: one event, as JSON on its stdin and in `BRAID_EVENT`. */
export class Notification extends Schema.Class<Notification>("Notification")({
  /** The payload's version (`NOTIFICATION_VERSION`). */
  v: Schema.Literal(NOTIFICATION_VERSION),
  /** Which event: review-needed, paused, conflict-left, finished, pull-request. */
  kind: Plan.NotifyEvent,
  /** When it happened (ISO 8601). */
  at: Schema.String,
  runId: Schema.String,
  /** The plan's `projectName` and `featureName`. */
  project: Schema.String,
  feature: Schema.String,
  /** The stream and task it is about (review-needed; paused by a task's usage limit), else null. */
  stream: Schema.NullOr(Schema.String),
  taskId: Schema.NullOr(Schema.String),
  /** finished: how the run ended; else null. */
  outcome: Schema.NullOr(Outcome),
  /** finished: whether the run's work landed; else null. */
  landed: Schema.NullOr(Schema.Boolean),
  /** pull-request (and finished, when the run opened one): the pull request's URL; else null. */
  pullRequest: Schema.NullOr(Schema.String),
  /** One line for a person. */
  message: Schema.String,
  /** The run's report (`report.json`; written when the run finishes). */
  report: Schema.String
}) {}

const encode = Schema.encodeSync(Notification)

/** A notification as one line of JSON, scrubbed of credentials. */
export const json = (n: Notification): string => JSON.stringify(Secrets.scrubValue(encode(n)))

/** What the notifications need. */
export interface Options {
  readonly runId: string
  readonly plan: Plan.Plan
  /** Where the run's report is (or will be) written. */
  readonly reportPath: string
  /** The environment the notifiers inherit and the desktop rule reads (`CI`, `DISPLAY`, `PATH`). */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly platform: NodeJS.Platform
  /** Tasks whose review-needed was told by an earlier process of the run (a resume replays their settling). */
  readonly told?: ReadonlySet<string> | undefined
  /** Called for each failed notifier (the CLI shows and records it as a `NotificationFailed` event). */
  readonly onFailure: (failure: Progress.RunEvent & { readonly _tag: "NotificationFailed" }) => Effect.Effect<void>
}

/** The running notifications. */
export interface Notifications {
  /** Maps the run's events to notifications and queues them; never waits for a notifier. */
  readonly progress: Progress.Service
  /** Queues a notification the events do not carry (the run paused; finished). */
  readonly notify: (
    kind: Plan.NotifyEvent,
    fields: { readonly message: string; readonly stream?: string | undefined; readonly taskId?: string | undefined; readonly outcome?: Outcome | undefined; readonly landed?: boolean | undefined; readonly pullRequest?: string | undefined }
  ) => Effect.Effect<void>
  /** Queues `finished` for the run's report. */
  readonly finished: (report: RunReport.RunReport) => Effect.Effect<void>
  /** Waits until every queued notification is delivered (each notifier within its timeout); nothing is queued after. */
  readonly drain: Effect.Effect<void>
}

const none: Notifications = {
  progress: { publish: () => Effect.void },
  notify: () => Effect.void,
  finished: () => Effect.void,
  drain: Effect.void
}

/** Whether an executable `name` is on `PATH`. */
const onPath = (name: string, env: Options["env"]): boolean =>
  (env.PATH ?? "").split(path.delimiter).some((dir) => {
    if (dir === "") return false
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })

/** Whether `CI` says this is a CI job: set, and not empty, `0` or `false`. */
const inCi = (env: Options["env"]): boolean => {
  const ci = env.CI?.trim().toLowerCase()
  return ci !== undefined && ci !== "" && ci !== "0" && ci !== "false"
}

/**
 * The desktop notification's argv, or why there is none. Never under CI (`CI` set, not empty,
 * `0` or `false`); on Linux only with a display (`DISPLAY` or `WAYLAND_DISPLAY`) and
 * `notify-send` on `PATH`; on macOS only outside an SSH session with `osascript` on `PATH`;
 * elsewhere none.
 */
export const desktopArgv = (
  title: string,
  body: string,
  platform: NodeJS.Platform,
  env: Options["env"]
): { readonly _tag: "Argv"; readonly argv: readonly [string, ...Array<string>] } | { readonly _tag: "None"; readonly reason: string } => {
  if (inCi(env)) return { _tag: "None", reason: "CI is set" }
  if (platform === "linux" || platform === "freebsd" || platform === "openbsd") {
    if ((env.DISPLAY ?? "") === "" && (env.WAYLAND_DISPLAY ?? "") === "") return { _tag: "None", reason: "no display (DISPLAY, WAYLAND_DISPLAY)" }
    if (!onPath("notify-send", env)) return { _tag: "None", reason: "notify-send is not installed" }
    return { _tag: "Argv", argv: ["notify-send", "--app-name=braid", title, body] }
  }
  if (platform === "darwin") {
    if ((env.SSH_CONNECTION ?? "") !== "" || (env.SSH_TTY ?? "") !== "") return { _tag: "None", reason: "an SSH session has no desktop" }
    if (!onPath("osascript", env)) return { _tag: "None", reason: "osascript is not there" }
    // The texts are arguments of the script, never part of its source.
    return {
      _tag: "Argv",
      argv: ["osascript", "-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)", "-e", "end run", title, body]
    }
  }
  return { _tag: "None", reason: `no desktop notifications on ${platform}` }
}

/** The first line of a text, cut short. */
const firstLine = (text: string): string => {
  const line = text.trim().split("\n")[0]?.trim() ?? ""
  return line.length > 200 ? `${line.slice(0, 199)}…` : line
}

/** What a finished run says in one line. */
const finishedMessage = (report: RunReport.RunReport): string => {
  const m = report.mergeResult
  const landing = m.pullRequest !== undefined
    ? `; pull request ${m.pullRequest.url}`
    : m.landed
    ? `; landed ${m.commit?.slice(0, 10) ?? ""} on ${m.target}`
    : m.reason !== undefined
    ? `; not landed: ${m.reason}`
    : ""
  return `run ${report.runId} ${report.status}${landing}`
}

/**
 * Starts the notifications in the current scope: nothing at all when the plan has no notifiers.
 * The scope's closing drains the queue first.
 */
export const make = (options: Options): Effect.Effect<Notifications, never, Scope.Scope | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const { plan } = options
    if (plan.notify.length === 0) return none
    const queue = yield* Queue.unbounded<Option.Option<Notification>>()
    const iso = Effect.map(DateTime.now, DateTime.formatIso)
    const told = new Set(options.told ?? [])

    const failed = (n: Notification, notifier: Plan.Notifier, message: string) =>
      options.onFailure({ _tag: "NotificationFailed", at: n.at, event: n.kind, notifier: notifier.name, message: Terminal.safeLine(Secrets.scrub(message)) })

    const deliverTo = (n: Notification, notifier: Plan.Notifier) =>
      Effect.gen(function*() {
        let argv: readonly [string, ...Array<string>]
        if (notifier._tag === "Desktop") {
          const desktop = desktopArgv(`braid · ${n.kind}`, `${n.feature}: ${n.message}`, options.platform, options.env)
          // No desktop here (CI, no display, no notify-send): nothing to show, not a failure.
          if (desktop._tag === "None") return
          argv = desktop.argv
        } else argv = notifier.argv
        const text = json(n)
        const result = yield* Process.run(argv, {
          cwd: plan.baseDir,
          env: { BRAID_EVENT: text },
          stdin: `${text}\n`,
          timeoutMs: notifier.timeoutMs,
          // A notifier is the user's own program, not a stream's: it is never confined.
          unconfined: true
        }).pipe(Effect.either)
        if (result._tag === "Left") {
          const why = /ENOENT/.test(result.left.message) ? "not found" : /EACCES/.test(result.left.message) ? "not executable" : firstLine(result.left.message)
          return yield* failed(n, notifier, `could not start ${argv[0]}: ${why}`)
        }
        const r = result.right
        if (r.timedOut) return yield* failed(n, notifier, `ran past its ${notifier.timeoutMs / 1000} s and was killed`)
        if (r.exitCode !== 0) {
          const said = firstLine(r.stderr) || firstLine(r.stdout)
          return yield* failed(n, notifier, `exited with ${r.exitCode}${said !== "" ? `: ${said}` : ""}`)
        }
      }).pipe(
        // A notifier never fails the run, whatever happens to it.
        Effect.catchAllCause((cause) => failed(n, notifier, `failed: ${firstLine(String(cause))}`))
      )

    const deliver = (n: Notification) =>
      Effect.forEach(plan.notify.filter((notifier) => notifier.on.includes(n.kind)), (notifier) => deliverTo(n, notifier), {
        concurrency: "unbounded",
        discard: true
      })

    const worker = yield* Effect.forkScoped(
      Effect.gen(function*() {
        for (;;) {
          const next = yield* Queue.take(queue)
          if (Option.isNone(next)) return
          yield* deliver(next.value)
        }
      })
    )

    const wanted = (kind: Plan.NotifyEvent) => plan.notify.some((n) => n.on.includes(kind))
    let closed = false
    const notify: Notifications["notify"] = (kind, fields) =>
      Effect.gen(function*() {
        if (closed || !wanted(kind)) return
        yield* Queue.offer(
          queue,
          Option.some(
            new Notification({
              v: NOTIFICATION_VERSION,
              kind,
              at: yield* iso,
              runId: options.runId,
              project: plan.projectName,
              feature: plan.featureName,
              stream: fields.stream ?? null,
              taskId: fields.taskId ?? null,
              outcome: fields.outcome ?? null,
              landed: fields.landed ?? null,
              pullRequest: fields.pullRequest ?? null,
              message: fields.message,
              report: options.reportPath
            })
          )
        )
      })

    const publish = (event: Progress.RunEvent): Effect.Effect<void> => {
      switch (event._tag) {
        case "TaskSettled": {
          if (event.status !== "needs-review") return Effect.void
          // Settled before this process (its settling replayed on resume): told then.
          if (told.delete(event.taskId)) return Effect.void
          const title = plan.tasks.get(event.taskId)?.title
          return notify("review-needed", {
            stream: event.stream,
            taskId: event.taskId,
            message: `task ${event.taskId}${title !== undefined ? ` (${title})` : ""} needs a person's review${
              event.score !== null ? `: score ${event.score} below ${plan.qualityThreshold}` : ""
            }${event.error !== null ? `: ${firstLine(event.error)}` : ""}`
          })
        }
        case "ConflictSettled":
          return event.outcome === "blocked"
            ? notify("conflict-left", {
              message: `conflict between ${event.streams.join(" and ")} left for a person (${event.paths.slice(0, 5).join(", ")}${event.paths.length > 5 ? ", …" : ""})`
            })
            : Effect.void
        case "Landed":
          return event.pullRequest !== undefined
            ? notify("pull-request", { pullRequest: event.pullRequest, message: `pull request into ${event.target} is open: ${event.pullRequest}` })
            : Effect.void
        default:
          return Effect.void
      }
    }

    // Idempotent: a second call finds the worker done.
    const drain = Effect.suspend(() => {
      closed = true
      return Queue.offer(queue, Option.none())
    }).pipe(Effect.zipRight(Fiber.await(worker)), Effect.asVoid)
    // Delivered before the scope closes (the worker is interrupted then): added after the fork, so it runs first.
    yield* Effect.addFinalizer(() => drain)

    return {
      progress: { publish },
      notify,
      finished: (report) =>
        notify("finished", {
          outcome: report.status,
          landed: report.mergeResult.landed,
          pullRequest: report.mergeResult.pullRequest?.url,
          message: finishedMessage(report)
        }),
      drain
    }
  })
