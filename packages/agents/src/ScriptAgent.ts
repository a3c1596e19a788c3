/**
 * The script agent: the offline default backend. It carries out a task by running the
 * task's own `run` in the stream's workspace directory — an argv, never a shell string,
 * with stdin closed, a timeout, and the attempt described in `BRAID_*` environment
 * variables (attempt number, latest review as JSON) so a script can react to feedback.
 *
 * @since 0.1.0
 */
import { Agent, CommandSpec, type Plan, Process } from "@braid/core"
import { CommandExecutor, FileSystem } from "@effect/platform"
import { Effect } from "effect"
import * as path from "node:path"
import type * as Backend from "./Backend.js"
import { agentMarker, worktreeProblems } from "./internal/tool.js"
import * as ScriptResolver from "./ScriptResolver.js"
import * as BackendSettings from "./Settings.js"

/** The backend's name, as streams and plans select it. */
export const name = "script"

/** How a script agent is set up. */
export interface Options {
  /** The directory `run.script` paths are relative to: the plan's `baseDir` (default: the current directory). */
  readonly baseDir?: string
}

/** A task's `run`, resolved to what will be executed. */
export interface ResolvedRun {
  readonly command: CommandSpec.Command
  /** The script file, for `{ script: … }` runs (absolute). */
  readonly script: string | undefined
}

/** The argv that runs a script file: node for JavaScript, `sh` for `.sh`, else the file itself. */
export const interpreterFor = CommandSpec.interpreterFor

/** Resolves a task's `run` against the plan directory; a string result is the problem with it. */
export const resolveRun = (task: Plan.Task, baseDir: string): ResolvedRun | string => {
  if (task.run === undefined) return `task "${task.id}" has no \`run\``
  const command = CommandSpec.toRun(task.run, baseDir)
  if (typeof command === "string") return `task "${task.id}": ${command}`
  return { command, script: CommandSpec.isScript(task.run) ? path.resolve(baseDir, task.run.script) : undefined }
}

/** The environment a script sees (added to the inherited one). */
export const environment = (
  request: Agent.AttemptRequest,
  paths: { readonly baseDir: string; readonly worktree: string; readonly feedbackFile: string }
): Record<string, string> => ({
  BRAID_RUN_ID: request.runId,
  BRAID_STREAM: request.stream.name,
  BRAID_STREAM_TYPE: request.stream.type,
  BRAID_ROLE: request.role,
  BRAID_TASK_ID: request.task.id,
  BRAID_TASK_TITLE: request.task.title,
  BRAID_ATTEMPT: String(request.attempt),
  BRAID_FEEDBACK: feedbackJson(request.feedback),
  BRAID_FEEDBACK_FILE: paths.feedbackFile,
  // The note of the person running braid (`braid retry --feedback`), empty when there is none.
  BRAID_USER_NOTE: request.userNote ?? "",
  BRAID_PLAN_DIR: paths.baseDir,
  BRAID_WORKTREE: paths.worktree
})

/** The latest review as the script reads it: `{score, issues, suggestions}`, or empty on a first attempt. */
export const feedbackJson = (review: Agent.AttemptRequest["feedback"]): string =>
  review === undefined
    ? ""
    : JSON.stringify({ score: review.score, issues: review.issues, suggestions: review.suggestions })

const lastLine = (text: string): string | undefined =>
  text.split("\n").map((l) => l.trim()).filter((l) => l !== "").at(-1)

const describeTimeout = (ms: number): string => ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`

/** Builds a script agent; its dependencies are resolved here, so attempts need nothing. */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const executor = yield* CommandExecutor.CommandExecutor
    const fs = yield* FileSystem.FileSystem
    const baseDir = path.resolve(options.baseDir ?? process.cwd())

    const attempt = Effect.fn("ScriptAgent.attempt")(function*(request: Agent.AttemptRequest) {
      const failed = (message: string, reason: Agent.FailureReason = "failed") =>
        new Agent.AgentFailed({ agent: name, taskId: request.task.id, message, reason })
      if (request.files._tag !== "Worktree") {
        return yield* failed(
          "the script agent needs a real workspace (a git worktree) to run the task's `run` in; " +
            "this workspace has no directory (in-memory?)"
        )
      }
      const worktree = request.files.dir
      const ownEnv = request.files.env
      const resolved = resolveRun(request.task, baseDir)
      if (typeof resolved === "string") {
        return yield* failed(`${resolved}; the script agent runs a task's \`run\` command`)
      }
      if (resolved.script !== undefined && !(yield* fs.exists(resolved.script).pipe(Effect.orElseSucceed(() => false)))) {
        return yield* failed(`script ${resolved.script} does not exist`)
      }
      const { command } = resolved

      const result = yield* Effect.scoped(Effect.gen(function*() {
        // A file as well as a variable: long feedback is easier to read from a file.
        const feedbackFile = yield* fs.makeTempFileScoped({ prefix: "braid-feedback-" })
        yield* fs.writeFileString(feedbackFile, feedbackJson(request.feedback))
        // The marker lets braid end whatever the script starts, and a resumed run the orphans of a crashed one.
        const marker = agentMarker(request)
        const env = { ...ownEnv, ...environment(request, { baseDir, worktree, feedbackFile }), BRAID_AGENT: marker }
        // Each line the script prints, as it prints it (shown with --verbose).
        let pending = ""
        const onStdout = (text: string) =>
          Effect.suspend(() => {
            const lines = (pending + text).split("\n")
            pending = lines.pop() ?? ""
            return Effect.forEach(lines, (line) => request.note({ _tag: "Output", line: line.replace(/\r$/, "") }), { discard: true })
          })
        return yield* Process.run(command.argv, {
          cwd: worktree,
          env,
          timeoutMs: command.timeoutMs,
          killMarker: marker,
          onStdout,
          onStart: (pid) => request.note({ _tag: "Process", pid, startTime: Process.startTimeOf(pid) ?? "", command: command.name })
        }).pipe(Effect.tap(() => pending === "" ? Effect.void : request.note({ _tag: "Output", line: pending })))
      })).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        Effect.catchTags({
          SpawnFailed: (e) => Effect.fail(failed(`could not start ${command.name}: ${e.message}`)),
          BadArgument: (e) => Effect.fail(failed(`could not prepare the feedback file: ${e.message}`)),
          SystemError: (e) => Effect.fail(failed(`could not prepare the feedback file: ${e.message}`))
        })
      )
      const output = Process.tail(`${result.stdout}${result.stderr}`)
      if (result.timedOut) {
        return yield* failed(`${command.name} timed out after ${describeTimeout(command.timeoutMs)}`, "timeout")
      }
      if (result.exitCode !== 0) {
        return yield* failed(`${command.name} exited ${result.exitCode}${output === "" ? "" : `:\n${output}`}`)
      }
      return new Agent.AttemptOutput({ summary: lastLine(result.stdout) ?? `ran ${command.name}` })
    })

    return { name, attempt } satisfies Agent.Service
  })

/** The script backend: each task's own `run`, offline; reviewed by the plan's checks. */
export const backend: Backend.Backend<Plan.AgentSettings> = {
  name,
  description: "runs each task's own `run` script or command in the stream's worktree (offline)",
  settings: BackendSettings.Plain,
  preflight: (context) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const problems: Array<Backend.Problem> = []
      problems.push(...worktreeProblems(context, "the script agent runs each task's `run`"))
      const using = new Set(context.streams.map((s) => s.stream.name))
      for (const [i, task] of context.plan.file.tasks.entries()) {
        const stream = context.plan.streamOf.get(task.id)
        if (stream === undefined || !using.has(stream)) continue
        if (task.run === undefined) {
          problems.push({
            path: `tasks[${i}].run`,
            message: `task "${task.id}" has no \`run\` and stream "${stream}" uses the script agent; add \`run\` or choose another agent`
          })
          continue
        }
        const resolved = resolveRun(task, context.plan.baseDir)
        if (typeof resolved === "string") {
          problems.push({ path: `tasks[${i}].run`, message: resolved })
          continue
        }
        if (resolved.script === undefined) continue
        const info = yield* fs.stat(resolved.script).pipe(Effect.option)
        if (info._tag === "None" || info.value.type !== "File") {
          problems.push({
            path: `tasks[${i}].run.script`,
            message: `script ${resolved.script} ${info._tag === "None" ? "does not exist" : "is not a file"} ` +
              `(script paths are relative to the plan's directory ${context.plan.baseDir})`
          })
        } else if (resolved.command.argv[0] === resolved.script && (info.value.mode & 0o111) === 0) {
          problems.push({
            path: `tasks[${i}].run.script`,
            message: `script ${resolved.script} is not executable: make it executable, or name it .sh, .js, .mjs or .cjs ` +
              `(${path.extname(resolved.script) === "" ? "no extension" : `"${path.extname(resolved.script)}"`} is run directly)`
          })
        }
      }
      return problems
    }),
  // Its conflicts are resolved by the plan's `resolve` command (a script, like its tasks).
  make: (context) =>
    Effect.zipWith(make({ baseDir: context.plan.baseDir }), ScriptResolver.make({ resolve: context.plan.resolve }), (agent, resolver) => ({ agent, resolver }))
}
