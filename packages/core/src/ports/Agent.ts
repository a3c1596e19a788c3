/**
 * The `Agent` port: carries out one attempt of one task in a stream's workspace, and the
 * `AgentRegistry` that picks the agent for a stream by its role.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import type * as CommandSpec from "../run/CommandSpec.js"
import * as Plan from "../run/Plan.js"
import type * as RunState from "../run/RunState.js"
import type * as Workspace from "./Workspace.js"

/** Stream type → agent role, as in the seed. */
export const roles: Readonly<Record<Plan.StreamType, string>> = Plan.ROLES

/** The role that carries out a stream's tasks. */
export const roleOf = (stream: Plan.PlannedStream): string => roles[stream.type]

/** Token and cost figures an agent may report. */
export class Usage extends Schema.Class<Usage>("Usage")({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  /** Prompt tokens served from the provider's cache. */
  cacheReadTokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /** Prompt tokens written to the provider's cache. */
  cacheWriteTokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /** What the tool reported, or what the price table makes of the tokens. */
  costUsd: Schema.optional(Schema.Number),
  /** Where `costUsd` comes from: the tool's own report (`tool`, the default when a cost is given) or braid's price table (`table`). */
  costSource: Schema.optional(Schema.Literal("tool", "table"))
}) {}

/** What an agent says it did. The engine trusts the workspace, not this, for what changed. */
export class AttemptOutput extends Schema.Class<AttemptOutput>("AttemptOutput")({
  /** The agent's closing message (or the last line a script printed). */
  summary: Schema.String,
  usage: Schema.optional(Usage),
  /** The tool's session or thread id; a retry of the same task continues it where the tool can. */
  sessionId: Schema.optional(Schema.String),
  /** Model turns the tool reports. */
  turns: Schema.optional(Schema.Number),
  model: Schema.optional(Schema.String),
  /** Tool calls the agent's tool refused (a write outside the worktree, a command not allowed). */
  permissionDenials: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** The agent's own wall time. */
  durationMs: Schema.optional(Schema.Number)
}) {}

/** A summary of an earlier task of the same stream, given to later tasks. */
export interface EarlierResult {
  readonly taskId: string
  readonly title: string
  readonly status: string
  readonly summary: string
  /** Files the task's attempts changed. */
  readonly changedFiles: ReadonlyArray<string>
}

/** Work of a task in another stream, brought into this stream before the task started. */
export interface BroughtIn {
  readonly taskId: string
  readonly title: string
  readonly stream: string
  readonly summary: string
  readonly changedFiles: ReadonlyArray<string>
}

/**
 * Something an agent reports while it works, journaled at once: the session it is about to
 * open (before the process starts, so a resumed run can continue it), and each process it
 * started (so `braid resume` after a crash can end an orphaned agent).
 */
export type AttemptNote =
  | { readonly _tag: "Session"; readonly sessionId: string }
  | { readonly _tag: "Process"; readonly pid: number; readonly startTime: string; readonly command: string }
  /** A line the agent printed (published as an `AgentOutput` event for `--verbose`; not journaled). */
  | { readonly _tag: "Output"; readonly line: string }

/** Everything an agent gets for one attempt. */
export interface AttemptRequest {
  readonly runId: string
  readonly projectName: string
  readonly featureName: string
  readonly plan: Plan.Plan
  readonly task: Plan.Task
  readonly stream: Plan.PlannedStream
  readonly role: string
  /** 1, 2 or 3. */
  readonly attempt: number
  /** The latest review as the journal holds it, on a retry. */
  readonly feedback: RunState.ReviewRecord | undefined
  /** A note from the person running braid, added to the feedback (`braid retry --feedback`). */
  readonly userNote?: string | undefined
  /** The stream's earlier tasks, in order. */
  readonly earlier: ReadonlyArray<EarlierResult>
  /** Work of other streams' tasks this task depends on, merged into the stream before it started. */
  readonly broughtIn: ReadonlyArray<BroughtIn>
  /** Tool calls the agent's tool refused in the previous attempt, fed back so the agent knows. */
  readonly denied: ReadonlyArray<string>
  /** The commands that will judge the attempt: the task's checks, then the plan's. */
  readonly checks: ReadonlyArray<CommandSpec.Command>
  /**
   * The session or thread of this task's previous attempt (or of this attempt, when it is
   * tried again after a transient provider error): a tool that can continue it does.
   */
  readonly session: string | undefined
  /**
   * What the attempts recorded for `session` cost so far (USD): a tool that reports a resumed
   * session's cost from its start subtracts it.
   */
  readonly sessionCostUsd?: number | undefined
  /**
   * The whole prompt, instead of the role's for the task (a conflict resolution's). Every
   * backend that builds a prompt (`Prompt.forAttempt`) sends this text when it is set.
   */
  readonly instructions?: string | undefined
  /** Journals a note about the attempt before the agent goes on. */
  readonly note: (note: AttemptNote) => Effect.Effect<void>
  readonly files: Workspace.Files
}

/** Why an attempt failed. */
export const FailureReason = Schema.Literal("failed", "timeout", "unavailable", "interrupted")
export type FailureReason = typeof FailureReason.Type

/** The agent failed to carry out the attempt (it crashed, timed out, or could not start). */
export class AgentFailed extends Schema.TaggedError<AgentFailed>()("AgentFailed", {
  agent: Schema.String,
  taskId: Schema.String,
  message: Schema.String,
  reason: Schema.optionalWith(FailureReason, { default: () => "failed" }),
  /** What the tool reported the failed attempt spent (session, turns, tokens, cost), when it did. */
  spent: Schema.optional(AttemptOutput)
}) {}

/**
 * The provider is busy or unreachable for now (429, 529, 5xx, connection refused, the tool's
 * own "API error" result): the attempt is tried again after a backoff, and this never uses
 * up one of the task's gate runs.
 */
export class ProviderBusy extends Schema.TaggedError<ProviderBusy>()("ProviderBusy", {
  agent: Schema.String,
  provider: Schema.String,
  message: Schema.String,
  /** How long the provider asked to wait (`Retry-After`, a reset time), when it said. */
  retryAfterMs: Schema.optional(Schema.Number)
}) {}

/**
 * The account's usage or quota limit is reached: not transient. The run stops dispatching and
 * ends resumable; the message says when the limit resets when the tool says.
 */
export class UsageLimitReached extends Schema.TaggedError<UsageLimitReached>()("UsageLimitReached", {
  agent: Schema.String,
  provider: Schema.String,
  message: Schema.String,
  /** ISO time the limit resets, when the tool says. */
  resetsAt: Schema.optional(Schema.String)
}) {}

/** A usage limit in one line for people: the provider, what the tool said, and when it resets. */
export const describeUsageLimit = (limit: UsageLimitReached): string =>
  `${limit.provider} usage limit reached (${limit.agent}: ${limit.message})${
    limit.resetsAt !== undefined ? `; it resets at ${limit.resetsAt}` : ""
  }`

/** What an agent backend's attempt can fail with. */
export type AttemptError = AgentFailed | ProviderBusy | UsageLimitReached

/** No agent can carry out a stream's tasks (found before anything starts). */
export class AgentUnavailable extends Schema.TaggedError<AgentUnavailable>()("AgentUnavailable", {
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `no agent can run this plan:\n${this.problems.map((p) => `  - ${p.path}: ${p.message}`).join("\n")}`
  }
}

/** An agent backend, ready to run attempts. */
export interface Service {
  readonly name: string
  /**
   * The provider whose limits this agent's attempts count against (`anthropic`, `openai`,
   * `google`, …); streams with the same provider share one limiter. None for local scripts.
   */
  readonly provider?: string | undefined
  readonly attempt: (request: AttemptRequest) => Effect.Effect<AttemptOutput, AttemptError>
}

/** Picks the agent for each stream. */
export interface RegistryService {
  /** Checks, before anything starts, that every task has an agent able to run it. */
  readonly check: (plan: Plan.Plan) => Effect.Effect<void, AgentUnavailable>
  readonly forStream: (stream: Plan.PlannedStream) => Service
}

/** The agents a run uses. */
export class AgentRegistry extends Context.Tag("@braid/core/AgentRegistry")<AgentRegistry, RegistryService>() {}
