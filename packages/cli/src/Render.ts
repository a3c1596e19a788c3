/**
 * Renders run events as one line each on stderr, so stdout stays free for `--json`.
 *
 * @since 0.1.0
 */
import type { Progress } from "@braid/core"

const short = (commit: string | null) => commit === null ? "no change" : commit.slice(0, 10)

/** One line for an event, or undefined for events not worth a line. */
export const line = (event: Progress.RunEvent): string | undefined => {
  switch (event._tag) {
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
      return `  ${event.stream} finished`
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
  }
}
