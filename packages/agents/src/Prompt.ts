/**
 * What an agent is told for one attempt: its role's identity and responsibilities, the
 * stream's scope, the task, what the stream's earlier tasks did, what was brought in from
 * dependencies, the checks that will judge it, and — on a retry — the latest review in full
 * (every failing check with its output, every issue and suggestion, the tool calls refused
 * last time, the user's note). The rules braid holds every agent to close it.
 *
 * A plan's `prompt:` (or a stream's own, which wins) names a template file that replaces the
 * role prompt. Its `{{placeholders}}` (see `placeholders`) are filled with the same pieces the
 * role prompt is made of; an unknown placeholder is an error naming the file and placeholder.
 * A template that leaves out `{{rules}}` gets the rules appended, and one that leaves out
 * `{{feedback}}` gets the retry section appended on a retry: an agent is never left without
 * them.
 *
 * Backends build their prompts with `make(plan)`, which reads the template files once; `check`
 * reports a missing or broken template as a plan problem before anything starts.
 *
 * @since 0.1.0
 */
import { type Agent, Plan, type Review, RunState } from "@braid/core"
import { FileSystem } from "@effect/platform"
import { Effect, Either, Schema } from "effect"
import { readFileSync } from "node:fs"
import * as Roles from "./Roles.js"

/** The most attempts a task gets (the quality gate's bound). */
export const MAX_ATTEMPTS = 3

/** The rules every agent is given, whatever its role. */
export const RULES: ReadonlyArray<string> = [
  "Work only inside the current directory (the stream's worktree). Do not read or write files outside it.",
  "Do not run `git commit`, `git push`, `git checkout`, `git switch` or any command that changes branches or history: braid commits your changes after the attempt.",
  "Leave the changes in the working tree; braid decides what changed from the files, not from your report.",
  "When you finish, reply with a short summary of what you changed and why."
]

/**
 * The placeholders a template may use, each with what it is filled with. Lists are Markdown
 * bullet lists; a piece that does not apply is filled with an empty string or "none" as said.
 */
export const placeholders = {
  role: "the role's name (database-engineer, api-developer, ui-developer, test-engineer, documentation-writer, architect)",
  roleDescription: "the role's identity and responsibilities (a paragraph)",
  stream: "the stream's name",
  scope: "the stream's scope as a list (empty when the stream names none)",
  taskId: "the task's id",
  title: "the task's title",
  description: "the task's description (empty when it has none)",
  acceptanceCriteria: "the task's acceptance criteria as a list (empty when it has none)",
  earlier: "the stream's earlier tasks with their status, summary and changed files, as a list (\"none\" for the first task)",
  broughtIn: "work of other streams' tasks merged in before this task, with summaries and changed files (\"none\" when nothing was)",
  checks: "the commands that will judge the attempt, as a list (\"none\" when there are none)",
  feedback: "on a retry, the latest review in full: score, failing checks with their output, issues, suggestions, refused tool calls and the user's note (empty on a first attempt without a note)",
  attempt: "the attempt number (1, 2 or 3)",
  rules: "the rules braid holds every agent to, as a list",
  projectName: "the plan's projectName",
  featureName: "the plan's featureName"
} as const satisfies Record<string, string>

/** A placeholder's name. */
export type Placeholder = keyof typeof placeholders

/** The placeholder names, in the order they are documented. */
export const placeholderNames = Object.keys(placeholders) as ReadonlyArray<Placeholder>

const isPlaceholder = (name: string): name is Placeholder => Object.hasOwn(placeholders, name)

/** A prompt template that cannot be used: missing, unreadable, or naming an unknown placeholder. */
export class PromptTemplateError extends Schema.TaggedError<PromptTemplateError>()("PromptTemplateError", {
  /** The template file (absolute). */
  file: Schema.String,
  /** What is wrong with it. */
  problem: Schema.String
}) {
  override get message(): string {
    return `prompt template ${this.file}: ${this.problem}`
  }
}

/** One problem with a plan's templates, with where the plan names the template (`prompt`, `streams[2].prompt`). */
export interface Problem {
  readonly path: string
  readonly message: string
}

const list = (items: ReadonlyArray<string>) => items.map((i) => `- ${indent(i)}`).join("\n")

// Continuation lines of a multi-line item (a check's output) stay inside their bullet.
const indent = (text: string) => text.replace(/\n/g, "\n    ")

const criteria = (task: Plan.Task): ReadonlyArray<string> =>
  task.acceptanceCriteria === undefined
    ? []
    : typeof task.acceptanceCriteria === "string"
    ? [task.acceptanceCriteria]
    : task.acceptanceCriteria

/** What an earlier or brought-in task did: its summary and changed files, whichever it has. */
const described = (summary: string, changedFiles: ReadonlyArray<string>) => {
  const parts = [
    ...(summary.trim() === "" ? [] : [summary.trim()]),
    ...(changedFiles.length === 0 ? [] : [`changed: ${changedFiles.join(", ")}`])
  ]
  return parts.length === 0 ? "" : `: ${parts.join("\n")}`
}

/** The retry section's body: everything the latest review and the previous attempt left to fix. */
const feedbackOf = (request: Agent.AttemptRequest): string => {
  const lines: Array<string> = []
  const retry = request.attempt > 1
  if (retry) {
    lines.push(`This is attempt ${request.attempt} of ${MAX_ATTEMPTS}. The previous attempt did not pass.`)
    const review = request.feedback
    if (review !== undefined) {
      lines.push(`Review score: ${review.score} out of 100 (by ${review.reviewer}).`)
      if (review.issues.length > 0) {
        lines.push(`Issues (a failing check is shown with the end of its output):\n${list(review.issues)}`)
      }
      if (review.suggestions.length > 0) lines.push(`Suggestions:\n${list(review.suggestions)}`)
    } else {
      lines.push("The previous attempt ended without a review (it failed or was cut off).")
    }
  }
  if (request.denied.length > 0) {
    lines.push(
      `These tool calls were refused last time; stay inside this directory and use only the allowed commands:\n${list(request.denied)}`
    )
  }
  if (request.userNote !== undefined && request.userNote.trim() !== "") {
    lines.push(`A note from the person running braid:\n${request.userNote.trim()}`)
  }
  if (retry) lines.push("The previous attempts' changes are already in this directory: fix them rather than starting over.")
  return lines.join("\n\n")
}

/** The heading of the feedback section: a retry's, or a first attempt's notes. */
const feedbackHeading = (request: Agent.AttemptRequest) =>
  request.attempt > 1 ? "## Feedback on your previous attempt" : "## Notes"

/** What every placeholder is filled with for one attempt. */
export const fieldsOf = (request: Agent.AttemptRequest): Record<Placeholder, string> => {
  const { stream, task } = request
  return {
    role: request.role,
    roleDescription: Roles.descriptions[request.role] ?? "",
    stream: stream.name,
    scope: list(stream.scope),
    taskId: task.id,
    title: task.title,
    description: task.description?.trim() ?? "",
    acceptanceCriteria: list(criteria(task)),
    earlier: request.earlier.length === 0 ? "none" : list(
      request.earlier.map((e) => `${e.taskId} — ${e.title} (${e.status})${described(e.summary, e.changedFiles)}`)
    ),
    broughtIn: request.broughtIn.length === 0 ? "none" : list(
      request.broughtIn.map((b) => `${b.taskId} — ${b.title} (stream ${b.stream})${described(b.summary, b.changedFiles)}`)
    ),
    checks: request.checks.length === 0 ? "none" : list(request.checks.map((c) => `\`${c.argv.join(" ")}\``)),
    feedback: feedbackOf(request),
    attempt: String(request.attempt),
    rules: list(RULES),
    projectName: request.projectName,
    featureName: request.featureName
  }
}

/** The role prompt of one attempt (no template), as the agent receives it. */
export const renderRole = (request: Agent.AttemptRequest): string => {
  const fields = fieldsOf(request)
  const sections: Array<string> = []
  sections.push(
    `You are the ${Roles.titleOf(request.role)} of the ${fields.stream} stream, working on ${fields.featureName} in ${fields.projectName}.` +
      (fields.roleDescription === "" ? "" : `\n\n${fields.roleDescription}`)
  )
  sections.push(
    fields.scope === ""
      ? "## Your scope\nThe stream names no scope: change only what the task needs."
      : `## Your scope\nThis stream owns these parts of the repository; change files outside them only when the task cannot be done otherwise:\n${fields.scope}`
  )
  const taskLines = [`## Your task: ${fields.taskId} — ${fields.title}`]
  if (fields.description !== "") taskLines.push(fields.description)
  if (fields.acceptanceCriteria !== "") taskLines.push(`Acceptance criteria:\n${fields.acceptanceCriteria}`)
  sections.push(taskLines.join("\n\n"))
  if (request.earlier.length > 0) {
    sections.push(`## Earlier tasks of this stream (their changes are in your directory)\n${fields.earlier}`)
  }
  if (request.broughtIn.length > 0) {
    sections.push(`## Work brought in from other streams (already in your directory)\n${fields.broughtIn}`)
  }
  if (request.checks.length > 0) {
    sections.push(
      `## How your work is judged\nAfter you finish, braid runs these commands in this directory; all must pass:\n${fields.checks}`
    )
  }
  if (fields.feedback !== "") sections.push(`${feedbackHeading(request)}\n${fields.feedback}`)
  sections.push(`## Rules\n${fields.rules}`)
  return `${sections.join("\n\n")}\n`
}

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g

/** A template read and checked: every placeholder it uses is known. */
export interface Template {
  readonly file: string
  readonly text: string
  /** The placeholders it uses. */
  readonly uses: ReadonlySet<Placeholder>
}

/** Checks a template's text; the error names the file, the placeholder and its line. */
export const parseTemplate = (file: string, text: string): Either.Either<Template, PromptTemplateError> => {
  const uses = new Set<Placeholder>()
  for (const match of text.matchAll(PLACEHOLDER)) {
    const name = match[1]!
    if (!isPlaceholder(name)) {
      const line = text.slice(0, match.index).split("\n").length
      return Either.left(
        new PromptTemplateError({
          file,
          problem: `unknown placeholder {{${name}}} on line ${line} (known: ${placeholderNames.join(", ")})`
        })
      )
    }
    uses.add(name)
  }
  return Either.right({ file, text, uses })
}

/** The prompt of one attempt from a template: its placeholders filled, the rules and feedback never left out. */
export const fill = (template: Template, request: Agent.AttemptRequest): string => {
  const fields = fieldsOf(request)
  let text = template.text.replace(PLACEHOLDER, (_, name: string) => fields[name as Placeholder])
  if (!template.uses.has("feedback") && fields.feedback !== "") {
    text = `${text.trimEnd()}\n\n${feedbackHeading(request)}\n${fields.feedback}\n`
  }
  if (!template.uses.has("rules")) text = `${text.trimEnd()}\n\n## Rules\n${fields.rules}\n`
  return text.endsWith("\n") ? text : `${text}\n`
}

/** The template file that applies to a request: the stream's, else the plan's. */
export const templateFileOf = (plan: Plan.Plan, stream: Plan.PlannedStream): string | undefined => stream.prompt ?? plan.prompt

/**
 * The prompt of one attempt: the stream's (or plan's) template when it names one, else the role
 * prompt. Convenient where no `Prompts` was built: it reads a template file each time it is
 * called, and a broken template (which `check` reports before any attempt) throws.
 */
export const render = (request: Agent.AttemptRequest): string => {
  const file = templateFileOf(request.plan, request.stream)
  return file === undefined
    ? renderRole(request)
    : fill(Either.getOrThrowWith(readTemplateSync(file), (e) => e), request)
}

const readTemplateSync = (file: string): Either.Either<Template, PromptTemplateError> =>
  Either.flatMap(
    Either.try({
      try: () => readFileSync(file, "utf8"),
      catch: (e) =>
        new PromptTemplateError({
          file,
          problem: (e as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : `cannot be read (${(e as Error).message})`
        })
    }),
    (text) => parseTemplate(file, text)
  )

/** A plan's prompts, with its template files read once. */
export interface Prompts {
  /** Every problem with the plan's template files (empty when all of them are usable). */
  readonly problems: ReadonlyArray<Problem>
  /** The prompt of one attempt, or the problem with its template. */
  readonly forAttempt: (request: Agent.AttemptRequest) => Either.Either<string, PromptTemplateError>
  /**
   * The prompt of one attempt. A broken template throws (a defect): preflight (`check`) has
   * reported it before any attempt could start.
   */
  readonly render: (request: Agent.AttemptRequest) => string
}

/** Where the plan names each template file, as paths into the plan. */
const templateRefs = (plan: Plan.Plan): Array<{ readonly path: string; readonly file: string }> => {
  const refs: Array<{ path: string; file: string }> = []
  if (plan.prompt !== undefined) refs.push({ path: "prompt", file: plan.prompt })
  plan.file.streams.forEach((s, index) => {
    const file = Plan.streamNamed(plan, s.name)?.prompt
    if (file !== undefined) refs.push({ path: `streams[${index}].prompt`, file })
  })
  return refs
}

/** Reads one template file and checks its placeholders. */
export const readTemplate = (file: string): Effect.Effect<Template, PromptTemplateError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(file).pipe(Effect.option)
    if (info._tag === "None") return yield* new PromptTemplateError({ file, problem: "does not exist" })
    if (info.value.type !== "File") return yield* new PromptTemplateError({ file, problem: "is not a file" })
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) => new PromptTemplateError({ file, problem: `cannot be read (${e.message})` }))
    )
    return yield* parseTemplate(file, text)
  })

/** Builds a plan's prompts, reading each template file it names once. */
export const make = Effect.fn("Prompt.make")(function*(plan: Plan.Plan) {
  const loaded = new Map<string, Either.Either<Template, PromptTemplateError>>()
  const problems: Array<Problem> = []
  for (const ref of templateRefs(plan)) {
    if (!loaded.has(ref.file)) loaded.set(ref.file, yield* Effect.either(readTemplate(ref.file)))
    const template = loaded.get(ref.file)!
    if (Either.isLeft(template)) {
      problems.push({
        path: ref.path,
        message: `${template.left.message}${
          template.left.problem === "does not exist" ? ` (template paths are relative to the plan's directory ${plan.baseDir})` : ""
        }`
      })
    }
  }
  const forAttempt = (request: Agent.AttemptRequest): Either.Either<string, PromptTemplateError> => {
    // A request that brings its own prompt (a conflict resolution) is sent as it is.
    if (request.instructions !== undefined) return Either.right(request.instructions)
    const file = templateFileOf(request.plan, request.stream)
    if (file === undefined) return Either.right(renderRole(request))
    // A request of a plan other than the one read here (a library caller's) reads its template now.
    return Either.map(loaded.get(file) ?? readTemplateSync(file), (template) => fill(template, request))
  }
  return {
    problems,
    forAttempt,
    render: (request) => Either.getOrThrowWith(forAttempt(request), (e) => e)
  } satisfies Prompts
})

/** Every problem with the plan's prompt templates (a missing file, an unknown placeholder), for preflight. */
export const check = (plan: Plan.Plan): Effect.Effect<ReadonlyArray<Problem>, never, FileSystem.FileSystem> =>
  Effect.map(make(plan), (prompts) => prompts.problems)

/** What `preview` is told about the attempt to show. */
export interface PreviewOptions {
  /** 1 (the default), 2 or 3. */
  readonly attempt?: number | undefined
  /** The latest review, for a retry (given as journaled, its `passes` against the plan's threshold). */
  readonly feedback?: Review.Review | undefined
  /** A note from the person running braid. */
  readonly userNote?: string | undefined
}

/** The status a preview gives the tasks that have not run. */
export const NOT_YET_RUN = "not yet run"

/**
 * The request an attempt of `taskId` would get before anything has run (`braid prompt`): the
 * stream's earlier tasks and the dependencies from other streams shown as not yet run, the
 * checks the quality gate would give it. Undefined for a task the plan does not have.
 */
export const preview = (plan: Plan.Plan, taskId: string, options: PreviewOptions = {}): Agent.AttemptRequest | undefined => {
  const task = plan.tasks.get(taskId)
  const streamName = plan.streamOf.get(taskId)
  const stream = plan.streams.find((s) => s.name === streamName)
  if (task === undefined || stream === undefined) return undefined
  const notRun = (t: Plan.Task) => ({ taskId: t.id, title: t.title, summary: "", changedFiles: [] })
  const earlier = stream.tasks.slice(0, stream.tasks.findIndex((t) => t.id === taskId)).map((t) => ({
    ...notRun(t),
    status: NOT_YET_RUN
  }))
  const broughtIn = (plan.dependsOn.get(taskId) ?? [])
    .filter((id) => plan.streamOf.get(id) !== stream.name)
    .flatMap((id) => {
      const dep = plan.tasks.get(id)
      return dep === undefined ? [] : [{ ...notRun(dep), stream: plan.streamOf.get(id)!, summary: NOT_YET_RUN }]
    })
  // As the quality gate gives them.
  const checks = Plan.checksOf(plan, task)
  return {
    runId: "preview",
    projectName: plan.projectName,
    featureName: plan.featureName,
    plan,
    task,
    stream,
    role: Roles.roleOf(stream),
    attempt: options.attempt ?? 1,
    feedback: options.feedback === undefined ? undefined : RunState.reviewRecord(options.feedback, plan.qualityThreshold),
    userNote: options.userNote,
    earlier,
    broughtIn,
    denied: [],
    checks,
    session: undefined,
    note: () => Effect.void,
    files: {
      _tag: "InMemory",
      read: () => Effect.succeed(undefined),
      write: () => Effect.void,
      remove: () => Effect.void,
      list: () => Effect.succeed([])
    }
  }
}
