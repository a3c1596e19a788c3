/**
 * One attempt of a task as the journal records it, before its review: the commit the
 * workspace made of it and what the agent's tool reported. The quality gate journals it
 * (`…/attempt/<n>`) and gives the reviewer this very record; the run's state and its report
 * are made from it. Its own module so that the reviewer port (`Review`) and the run's state
 * (`RunState`, which re-exports it) both use it without importing each other.
 *
 * @since 0.6.0
 */
import { Schema } from "effect"

/** What an agent's tool reported about one attempt (or a conflict resolution), as journaled. */
export class AgentRecord extends Schema.Class<AgentRecord>("AgentRecord")({
  /** The backend that ran the attempt. */
  backend: Schema.String,
  sessionId: Schema.NullOr(Schema.String),
  turns: Schema.NullOr(Schema.Number),
  model: Schema.NullOr(Schema.String),
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  cacheReadTokens: Schema.Number,
  cacheWriteTokens: Schema.Number,
  /** USD; null when neither the tool nor the price table gives one. */
  costUsd: Schema.NullOr(Schema.Number),
  durationMs: Schema.NullOr(Schema.Number),
  /** Tool calls the tool refused: fed back to the next attempt. */
  permissionDenials: Schema.Array(Schema.String),
  /** Transient provider errors the attempt waited out (none of them used a gate run). */
  providerWaits: Schema.Number,
  /** Whether `costUsd` was measured by the tool (`tool`) or priced from the table (`table`); absent: no cost. */
  costSource: Schema.optional(Schema.Literal("tool", "table")),
  /** Whether its processes ran confined by the operating system (absent in journals of older versions: not confined). */
  confined: Schema.optional(Schema.Boolean)
}) {}

/** Step `…/attempt/<n>`: the attempt's commit, journaled right after it is made and before the review. */
export class AttemptDone extends Schema.TaggedClass<AttemptDone>()("AttemptDone", {
  stream: Schema.String,
  taskId: Schema.String,
  round: Schema.Number,
  attempt: Schema.Number,
  startedAt: Schema.String,
  durationMs: Schema.Number,
  commit: Schema.NullOr(Schema.String),
  files: Schema.Array(Schema.String),
  /** The agent's closing message. */
  summary: Schema.String,
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costUsd: Schema.Number,
  /** Null: no agent ran it (an attempt recovered from git after a crash). */
  agent: Schema.NullOr(AgentRecord)
}) {}
