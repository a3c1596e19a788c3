/**
 * The agent resolver: resolves conflicts with any agent backend, in the architect role. The
 * backend gets one attempt whose prompt (`AttemptRequest.instructions`) names the conflicted
 * files with their markers and both sides' intents — each stream's tasks (titles,
 * descriptions) and what its branch changed in those files — and the commands that will
 * check the result. It works in the directory the merge is open in: the integration's
 * worktree, or a stream's when the conflict came bringing in a dependency's work.
 *
 * It never decides that the conflict is resolved: the engine reads every conflicted file
 * afterwards and refuses a resolution that left markers (reporting what the agent said), and
 * the merged result is checked by the plan's `verify` commands before anything lands.
 *
 * Nothing here names a backend: any `Agent.Service` whose backend builds its prompt with
 * `Prompt.forAttempt` (every CLI backend does) resolves conflicts with no special case.
 *
 * @since 0.3.0
 */
import { Agent, ConflictResolver, Plan, QualityGate } from "@braid/core"
import { Duration, Effect, Schedule } from "effect"
import * as Roles from "./Roles.js"

/** The role a resolving agent plays. */
export const ROLE = "architect"

/** At most this much of each conflicted file goes into the prompt (the agent can read the rest). */
export const MAX_FILE_CHARS = 20_000

/** Transient provider errors a resolution waits out before it fails. */
export const BUSY_RETRIES = 4

/** The task a resolution is given (for backends that show the task's id and title). */
export const taskOf = (request: ConflictResolver.ResolutionRequest): Plan.Task =>
  new Plan.Task({
    id: `resolve-${request.kind === "dependency" ? "dependency" : "merge"}-${request.stream.name}`,
    title: request.kind === "dependency"
      ? `Resolve the conflict bringing ${request.against.map((s) => s.name).join(", ")}'s work into stream ${request.stream.name}`
      : `Resolve the conflict merging stream ${request.stream.name} into the integration`,
    description: `Conflicted files: ${request.paths.join(", ")}`
  })

const bounded = (text: string) =>
  text.length <= MAX_FILE_CHARS ? text : `${text.slice(0, MAX_FILE_CHARS)}\n… (cut at ${MAX_FILE_CHARS} of ${text.length} characters: read the file for the rest)\n`

/** The prompt of a resolution: the conflict, each side's intent, the files with their markers, the rules. */
export const promptOf = (
  request: ConflictResolver.ResolutionRequest,
  plan: Plan.Plan,
  contents: ReadonlyArray<{ readonly path: string; readonly text: string | undefined }>
): string => {
  const sections: Array<string> = []
  const dependency = request.kind === "dependency"
  sections.push(
    `You are the ${Roles.titleOf(ROLE)} of ${plan.featureName} in ${plan.projectName}, resolving a merge conflict between work streams.` +
      (Roles.descriptions[ROLE] !== undefined ? `\n\n${Roles.descriptions[ROLE]}` : "")
  )
  sections.push(
    dependency
      ? `## The conflict\nStream ${request.stream.name} is bringing in the work of ${request.against.map((s) => s.name).join(", ")} ` +
        `(a task of ${request.stream.name} depends on it). The merge is open in the current directory and conflicts in:\n` +
        request.paths.map((p) => `- ${p}`).join("\n")
      : `## The conflict\nStream ${request.stream.name} is being merged into the integration, which already holds ` +
        `${request.against.map((s) => s.name).join(", ")}. The merge is open in the current directory and conflicts in:\n` +
        request.paths.map((p) => `- ${p}`).join("\n")
  )
  for (const intent of request.intents ?? []) {
    const tasks = intent.tasks.map((t) => `- ${t.taskId} — ${t.title}${t.description !== undefined && t.description.trim() !== "" ? `: ${t.description.trim()}` : ""}`)
    sections.push(
      `## What stream ${intent.stream} set out to do\n${tasks.join("\n")}\n\nIts changes to the conflicted files since the base:\n` +
        "```diff\n" + (intent.diff.trim() === "" ? "(none)" : intent.diff.trimEnd()) + "\n```"
    )
  }
  for (const c of contents) {
    sections.push(
      `## ${c.path} as it is now (with conflict markers)\n` +
        (c.text === undefined ? "(the file is deleted on one side)" : "```\n" + bounded(c.text).trimEnd() + "\n```")
    )
  }
  const verify = request.verify ?? []
  if (verify.length > 0) {
    sections.push(`## How the result is checked\nAfter you finish, braid runs these commands on the merged result; all must pass:\n${verify.map((c) => `- \`${c.argv.join(" ")}\``).join("\n")}`)
  }
  sections.push(
    "## Rules\n" +
      [
        "Edit every conflicted file so that it keeps what both sides set out to do; when they truly contradict, keep the behaviour the tasks ask for and say what you chose.",
        "Remove every conflict marker (`<<<<<<<`, `=======`, `>>>>>>>`): braid refuses a resolution that leaves one.",
        "Change only the conflicted files unless the merge cannot work otherwise.",
        "Work only in the current directory; do not commit, push, switch branches or run `git merge`/`git checkout` — braid concludes the merge.",
        "End with one short paragraph saying how you resolved each file."
      ].map((r) => `- ${r}`).join("\n")
  )
  return `${sections.join("\n\n")}\n`
}

/** A conflict resolver over an agent backend's agent. */
export const make = (agent: Agent.Service, plan: Plan.Plan): ConflictResolver.Service => {
  const resolve = Effect.fn("AgentResolver.resolve")(function*(request: ConflictResolver.ResolutionRequest) {
    const failed = (message: string, spent?: Agent.AttemptOutput) =>
      new ConflictResolver.ResolutionFailed({
        paths: [...request.paths],
        message,
        ...(spent !== undefined ? { said: spent.summary, agent: QualityGate.agentRecord(agent.name, spent, 0) } : {})
      })
    const contents = yield* Effect.forEach(request.paths, (p) => Effect.map(request.files.read(p), (text) => ({ path: p, text }))).pipe(
      Effect.mapError((e) => failed(`cannot read the conflicted files: ${e.message}`))
    )
    const task = taskOf(request)
    const stream: Plan.PlannedStream = {
      name: request.kind === "dependency" ? request.stream.name : "integration",
      type: "infrastructure",
      rank: request.stream.rank,
      scope: [...request.paths],
      agent: undefined,
      prompt: undefined,
      tasks: [task]
    }
    const attemptRequest: Agent.AttemptRequest = {
      runId: request.runId,
      projectName: plan.projectName,
      featureName: plan.featureName,
      plan,
      task,
      stream,
      role: ROLE,
      attempt: 1,
      feedback: undefined,
      earlier: [],
      broughtIn: [],
      denied: [],
      // The commands that check the result: a backend may let the agent run them (claude's allowed tools).
      checks: request.verify ?? [],
      session: undefined,
      instructions: promptOf(request, plan, contents),
      note: () => Effect.void,
      files: request.files
    }
    let waits = 0
    const output = yield* agent.attempt(attemptRequest).pipe(
      // A busy provider is waited out (as the quality gate does); it is not the resolution failing.
      Effect.retry({
        while: (e) => e._tag === "ProviderBusy",
        schedule: Schedule.exponential("2 seconds").pipe(
          Schedule.jittered,
          Schedule.intersect(Schedule.recurs(BUSY_RETRIES)),
          Schedule.tapInput(() => Effect.sync(() => void waits++)),
          Schedule.modifyDelay((_, d) => Duration.min(d, Duration.seconds(60)))
        )
      }),
      Effect.mapError((e) =>
        e._tag === "AgentFailed"
          ? failed(`${agent.name} failed: ${e.message}`, e.spent)
          : e._tag === "UsageLimitReached"
          ? failed(Agent.describeUsageLimit(e))
          : failed(`${e.provider} stayed busy after ${BUSY_RETRIES} retries: ${e.message}`)
      )
    )
    return { summary: output.summary.trim() === "" ? `${agent.name} edited ${request.paths.join(", ")}` : output.summary.trim(), agent: QualityGate.agentRecord(agent.name, output, waits) }
  })
  return { name: agent.name, resolve }
}
