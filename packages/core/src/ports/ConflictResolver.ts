/**
 * The `ConflictResolver` port: edits conflicted files — in the integration workspace, or in a
 * stream's when it brings in the work of a task it depends on — so that no conflict markers
 * remain. The engine checks every conflicted file for markers afterwards and refuses a
 * resolution that left any.
 *
 * @since 0.1.0
 */
import { Context, Effect, Schema } from "effect"
import * as Attempt from "../run/Attempt.js"
import type * as CommandSpec from "../run/CommandSpec.js"
import type * as Plan from "../run/Plan.js"
import * as Workspace from "./Workspace.js"

/** What one side of a conflict set out to do: its stream's tasks and what it changed in the conflicted files. */
export interface Intent {
  readonly stream: string
  readonly tasks: ReadonlyArray<{ readonly taskId: string; readonly title: string; readonly description: string | undefined }>
  /** What the stream's branch changed in the conflicted paths since the base (a unified diff, bounded). */
  readonly diff: string
}

/** Where the conflict is: merging a stream into the integration, or bringing a dependency's work into a stream. */
export type ResolutionKind = "integration" | "dependency"

/** What a resolver is asked to fix. */
export interface ResolutionRequest {
  readonly runId: string
  /** The stream being merged (integration), or the stream bringing in a dependency's work. */
  readonly stream: Plan.PlannedStream
  /** Streams already integrated whose changes touch the conflicted paths (dependency: the dependency's stream). */
  readonly against: ReadonlyArray<Plan.PlannedStream>
  readonly paths: ReadonlyArray<string>
  /** The files of the workspace the merge is open in (conflicted files carry markers). */
  readonly files: Workspace.Files
  /** Absent: integration. */
  readonly kind?: ResolutionKind | undefined
  /** Each side's intent: `stream`'s first, then `against`'s. */
  readonly intents?: ReadonlyArray<Intent> | undefined
  /** The commands that check the merged result afterwards (the plan's `verify`). */
  readonly verify?: ReadonlyArray<CommandSpec.Command> | undefined
  /** The resolution's durable step key (names the agent's processes). */
  readonly key?: string | undefined
}

/** A resolution that was made: what the resolver said, and what its agent spent when an agent made it. */
export interface Resolution {
  readonly summary: string
  readonly agent?: Attempt.AgentRecord | undefined
}

/** The resolver could not resolve the conflict (or left markers): what it said, and what it spent. */
export class ResolutionFailed extends Schema.TaggedError<ResolutionFailed>()("ResolutionFailed", {
  paths: Schema.Array(Schema.String),
  message: Schema.String,
  /** The resolving agent's closing message, when it got that far. */
  said: Schema.optional(Schema.String),
  agent: Schema.optional(Attempt.AgentRecord)
}) {}

/** The resolver port. */
export interface Service {
  readonly name: string
  readonly resolve: (request: ResolutionRequest) => Effect.Effect<Resolution, ResolutionFailed>
}

/** The conflict resolver a run uses for the `agent` strategy. */
export class ConflictResolver extends Context.Tag("@braid/core/ConflictResolver")<ConflictResolver, Service>() {}

/** The conflicted paths that still carry conflict markers (every one is read). */
export const markersLeft = (files: Workspace.Files, paths: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const marked: Array<string> = []
    for (const p of paths) {
      const text = yield* files.read(p)
      if (text !== undefined && Workspace.hasConflictMarkers(text)) marked.push(p)
    }
    return marked
  })

/** At most this much of each side's diff goes to a resolver. */
export const MAX_DIFF_CHARS = 12_000

/** A diff cut to `MAX_DIFF_CHARS`, saying so when it was cut. */
export const boundDiff = (diff: string): string =>
  diff.length <= MAX_DIFF_CHARS ? diff : `${diff.slice(0, MAX_DIFF_CHARS)}\n… (diff cut at ${MAX_DIFF_CHARS} of ${diff.length} characters)\n`

/** Each side's intent: its stream's tasks and what its branch changed in `paths`. */
export const intentsOf = (
  workspace: Workspace.Run,
  streams: ReadonlyArray<Plan.PlannedStream>,
  paths: ReadonlyArray<string>
) =>
  Effect.forEach(streams, (s) =>
    Effect.map(
      workspace.branch(s.name).diff(paths).pipe(Effect.catchAll((e) => Effect.succeed(`(diff not available: ${e.message})`))),
      (diff): Intent => ({
        stream: s.name,
        tasks: s.tasks.map((t) => ({ taskId: t.id, title: t.title, description: t.description })),
        diff: boundDiff(diff)
      })
    ))
