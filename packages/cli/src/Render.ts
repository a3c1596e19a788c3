/**
 * Renders run events as one line each on stderr, so stdout stays free for `--json`.
 *
 * @since 0.1.0
 */
import type { Progress } from "@braid/core"
import * as RunReport from "@braid/core/RunReport"
import * as Terminal from "@braid/core/Terminal"

const short = (commit: string | null) => commit === null ? "no change" : commit.slice(0, 10)

/**
 * One line for an event, or undefined for events not worth a line (agents' output lines only with
 * `verbose`). Names, titles and what agents print are shown with no control character a terminal
 * would act on (an agent's ESC sequences would repaint the user's screen), on one line.
 */
export const line = (event: Progress.RunEvent, options: { readonly verbose?: boolean } = {}): string | undefined => {
  const text = describe(event, options)
  return text === undefined ? undefined : Terminal.safeLine(text)
}

const describe = (event: Progress.RunEvent, options: { readonly verbose?: boolean }): string | undefined => {
  switch (event._tag) {
    case "TaskWaiting":
      return event.for === "dependency" ? `  ${event.stream} · ${event.taskId} · waits for ${event.on.join(", ")}` : undefined
    case "TaskStarted":
    case "AgentSession":
    case "AgentProcess":
    case "ReviewStarted":
      return undefined
    case "AgentOutput":
      return options.verbose === true ? `  ${event.stream} · ${event.taskId} │ ${event.line}` : undefined
    case "ProviderWaited":
      return `  ${event.stream} · ${event.taskId} · ${event.provider} busy (${event.message}): waiting ${Math.round(event.waitMs / 100) / 10} s, no gate run used`
    case "ProviderLimitReached":
      return `  ${event.stream} · ${event.taskId} · ${event.provider} usage limit reached: ${event.message}${event.resetsAt !== null ? `; resets at ${event.resetsAt}` : ""}`
    case "IntegrationStarted":
      return event.streams.length === 0 ? undefined : `integrating ${event.streams.join(", ")}`
    case "VerificationStarted":
      return undefined
    case "LandingRefused":
      return `landing refused: ${event.message}`
    case "RunStarted":
      return `run ${event.runId}: ${event.tasks} tasks in ${event.streams.length} streams`
    case "StreamStarted":
      return undefined
    case "AttemptStarted":
      return `  ${event.stream} · ${event.taskId} · attempt ${event.attempt} started`
    case "AttemptFinished":
      return `  ${event.stream} · ${event.taskId} · attempt ${event.attempt} → ${short(event.commit)}${event.files.length > 0 ? ` (${event.files.length} file${event.files.length === 1 ? "" : "s"})` : ""}`
    case "ReviewRecorded":
      return `  ${event.stream} · ${event.taskId} · review ${event.score}${event.passes ? " passes" : " below threshold"}`
    case "ReviewRetried":
      return `  ${event.stream} · ${event.taskId} · reviewer failed, retrying: ${event.message}`
    case "TaskSettled":
      return `  ${event.stream} · ${event.taskId} · ${event.status}`
    case "StreamFinished":
      return event.started === false ? `  ${event.stream} not started: none of its tasks ran` : `  ${event.stream} finished`
    case "ConflictDetected":
      return `conflict (${event.kind}) ${event.streams.join(" ↔ ")}: ${event.paths.join(", ")}`
    case "ConflictSettled":
      return `conflict ${event.streams.join(" ↔ ")}: ${event.outcome}${event.commit ? ` (${short(event.commit)})` : ""}`
    case "StreamMerged":
      return `merged ${event.stream} (${short(event.commit)})`
    case "VerificationFinished":
      return event.checks.length === 0
        ? "verification: the plan has no verify commands"
        : `verification ${event.passed ? "passed" : "FAILED"} (${event.checks.filter((c) => c.exitCode === 0).length}/${event.checks.length} commands)`
    case "Landed":
      return event.pullRequest !== undefined
        ? `pushed ${short(event.commit)} to ${event.remote ?? "the remote"}; pull request into ${event.target}: ${event.pullRequest}`
        : `landed ${short(event.commit)} on ${event.target}${event.remote !== undefined ? ` of ${event.remote} (pushed)` : ""}`
    case "RunFinished":
      return `run ${event.status}`
    case "RunInterrupted":
      return `run interrupted: ${event.reason}`
    case "EnvironmentStarted":
      return undefined
    case "EnvironmentReady":
      return `  ${event.record.stream ?? "integration"} · checkout set up in ${(event.record.durationMs / 1000).toFixed(1)} s: ${RunReport.environmentSummary(event.record)}`
    case "EnvironmentFailed":
      return `  ${event.stream ?? "integration"} · setup failed: ${event.message.split("\n")[0]}`
    case "NotificationFailed":
      return `braid: warning: notifier ${event.notifier} (${event.event}) failed: ${event.message}`
  }
}
