/**
 * The `Agent` port: carries out one attempt of one task in a stream's workspace, and the
 * `AgentRegistry` that picks the agent for a stream by its role.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import type * as Plan from "./Plan.js"
import type * as Review from "./Review.js"
import type * as Workspace from "./Workspace.js"

/** Stream type → agent role, as in the seed. */
export const roles: Readonly<Record<Plan.StreamType, string>> = {
  database: "database-engineer",
  api: "api-developer",
  ui: "ui-developer",
  testing: "test-engineer",
  docs: "documentation-writer",
  infrastructure: "architect"
}

/** The role that carries out a stream's tasks. */
export const roleOf = (stream: Plan.PlannedStream): string => roles[stream.type]

/** Token and cost figures an agent may report. */
export class Usage extends Schema.Class<Usage>("Usage")({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costUsd: Schema.optional(Schema.Number)
}) {}

/** What an agent says it did. The engine trusts the workspace, not this, for what changed. */
export class AttemptOutput extends Schema.Class<AttemptOutput>("AttemptOutput")({
  summary: Schema.String,
  usage: Schema.optional(Usage)
}) {}

/** A summary of an earlier task of the same stream, given to later tasks. */
export interface EarlierResult {
  readonly taskId: string
  readonly title: string
  readonly status: string
  readonly summary: string
}

/** Everything an agent gets for one attempt. */
export interface AttemptRequest {
  readonly runId: string
  readonly projectName: string
  readonly featureName: string
  readonly task: Plan.Task
  readonly stream: Plan.PlannedStream
  readonly role: string
  /** 1, 2 or 3. */
  readonly attempt: number
  /** The latest review, on a retry. */
  readonly feedback: Review.Review | undefined
  /** The stream's earlier tasks, in order. */
  readonly earlier: ReadonlyArray<EarlierResult>
  readonly files: Workspace.Files
}

/** The agent failed to carry out the attempt (it crashed, timed out, or could not start). */
export class AgentFailed extends Schema.TaggedError<AgentFailed>()("AgentFailed", {
  agent: Schema.String,
  taskId: Schema.String,
  message: Schema.String
}) {}

/** No agent can carry out a stream's tasks (found before anything starts). */
export class AgentUnavailable extends Schema.TaggedError<AgentUnavailable>()("AgentUnavailable", {
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `no agent can run this plan:\n${this.problems.map((p) => `  - ${p.path}: ${p.message}`).join("\n")}`
  }
}

/** An agent backend. */
export interface Service {
  readonly name: string
  readonly attempt: (request: AttemptRequest) => Effect.Effect<AttemptOutput, AgentFailed>
}

/** Picks the agent for each stream. */
export interface RegistryService {
  /** Checks, before anything starts, that every task has an agent able to run it. */
  readonly check: (plan: Plan.Plan) => Effect.Effect<void, AgentUnavailable>
  readonly forStream: (stream: Plan.PlannedStream) => Service
}

/** The agents a run uses. */
export class AgentRegistry extends Context.Tag("@braid/core/AgentRegistry")<AgentRegistry, RegistryService>() {}
