/**
 * The settings each agent backend reads under `agents.<name>` in a plan and in
 * `braid.config.yaml`: one Schema per backend (its `Backend.settings`), made of `Plan.AgentSettings`'
 * fields (what braid itself reads: `provider`) and the field groups below, so a field means the
 * same wherever two backends read it. A plan is decoded with the Schemas of the backends on offer
 * (`Plan.BackendFields`, `Registry.planFields`): a field a backend does not read is ignored with a
 * warning, a misspelling is one of its own fields'.
 *
 * They sit here, apart from the backends, so a plan is read without loading any backend (the
 * command's start-up path imports this module), as the mock's task field sits in `MockField`.
 *
 * @since 0.1.0
 */
// By path, not @braid/core's index: the command's start-up path imports this module.
import * as Plan from "@braid/core/Plan"
import { Either, ParseResult, Schema } from "effect"

/** What every backend that starts processes reads: how long one attempt may take, and which variables it passes on. */
export const processFields = {
  /** How long one attempt may take (default 30 minutes). */
  timeoutSeconds: Schema.optional(Schema.Number.pipe(Schema.positive())),
  /** Names of environment variables passed through to the tool, beyond the ones it needs. */
  env: Schema.optional(Schema.Array(Schema.String))
}

/** What every backend that runs an executable reads: the executable, and extra arguments. */
export const executableFields = {
  /** The executable to run instead of the backend's default (an argv or a command line). */
  command: Schema.optional(Schema.Union(Schema.String, Schema.NonEmptyArray(Schema.String))),
  /** Extra arguments; for the `command` backend, the argv template after the executable. */
  args: Schema.optional(Schema.Array(Schema.String))
}

/** The model a backend asks for. */
export const modelFields = {
  model: Schema.optional(Schema.String)
}

/** The provider's API base URL (a proxy, an enterprise endpoint, a local server). */
export const endpointFields = {
  baseUrl: Schema.optional(Schema.String)
}

/** What a coding agent's CLI is told of its own loop: turns, approval mode, tools allowed without asking. */
export const agentLoopFields = {
  /** The most model turns of one attempt. */
  maxTurns: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** The tool's own permission or approval mode (codex: its sandbox). */
  permissionMode: Schema.optional(Schema.String),
  /** Tools the agent may use without asking (claude-code `--allowedTools`, gemini `--allowed-tools`). */
  allowedTools: Schema.optional(Schema.Array(Schema.String))
}

/** `agents.script`, `agents.mock`: nothing beyond braid's own. */
export const Plain = Plan.AgentSettings

/** `agents.aider`. */
export class Aider extends Schema.Class<Aider>("AiderSettings")({
  ...Plan.AgentSettings.fields,
  ...executableFields,
  ...processFields,
  ...modelFields,
  ...endpointFields
}) {}

/** `agents.command`: its argv template (`command`, `args`) and what it reports of itself. */
export class Command extends Schema.Class<Command>("CommandSettings")({
  ...Plan.AgentSettings.fields,
  ...executableFields,
  ...processFields,
  ...modelFields
}) {}

/** `agents.claude-code`. */
export class ClaudeCode extends Schema.Class<ClaudeCode>("ClaudeCodeSettings")({
  ...Plan.AgentSettings.fields,
  ...executableFields,
  ...processFields,
  ...modelFields,
  ...endpointFields,
  ...agentLoopFields
}) {}

/** `agents.codex`: `permissionMode` is its sandbox. */
export class Codex extends Schema.Class<Codex>("CodexSettings")({
  ...Plan.AgentSettings.fields,
  ...executableFields,
  ...processFields,
  ...modelFields,
  ...endpointFields,
  permissionMode: agentLoopFields.permissionMode
}) {}

/** `agents.gemini`. */
export class Gemini extends Schema.Class<Gemini>("GeminiSettings")({
  ...Plan.AgentSettings.fields,
  ...executableFields,
  ...processFields,
  ...modelFields,
  ...endpointFields,
  ...agentLoopFields
}) {}

/** `agents.llm`: the API it speaks (`provider`), its model, and what one attempt may use; runs no executable. */
export class Llm extends Schema.Class<Llm>("LlmSettings")({
  ...Plan.AgentSettings.fields,
  ...processFields,
  ...modelFields,
  ...endpointFields,
  maxTurns: agentLoopFields.maxTurns,
  /** The token budget of one attempt (input and output tokens of every model turn). */
  maxTokens: Schema.optional(Schema.Int.pipe(Schema.positive()))
}) {}

/**
 * A backend's settings in `plan`, decoded with its Schema: a plan decoded with that Schema
 * already holds them so; one decoded without it (a library caller that offered none) holds
 * them as written, and a wrong value is a problem at `agents.<name>.<field>`.
 */
export const of = <A, I>(
  plan: Plan.Plan,
  name: string,
  schema: Schema.Schema<A, I>
): Either.Either<A, ReadonlyArray<{ readonly path: string; readonly message: string }>> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })(plan.agents[name] ?? {}),
    (error) => {
      // One problem per field: an optional field's value is also "not undefined".
      const seen = new Set<string>()
      return ParseResult.ArrayFormatter.formatErrorSync(error).flatMap((issue) => {
        const path = ["agents", name, ...issue.path].map(String).join(".")
        if (seen.has(path)) return []
        seen.add(path)
        return [{ path, message: issue.message.replace(/^Expected /, "expected ").replace(/, actual /, ", got ") }]
      })
    }
  )
