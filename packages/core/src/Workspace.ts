/**
 * The `Workspace` port: one isolated workspace per stream, the changes each stream made,
 * conflict checks, the integration of every stream, and landing the result.
 * Implementations: `GitWorkspace` (real repositories) and `MemoryWorkspace` (library, tests).
 *
 * @since 0.1.0
 */
import { Context, Effect, Schema, type Scope } from "effect"
import type * as CommandSpec from "./CommandSpec.js"
import * as LandingMode from "./LandingMode.js"

/** The workspace refused to start: the repository is not in a state a run can use. */
export class WorkspaceRefused extends Schema.TaggedError<WorkspaceRefused>()("WorkspaceRefused", {
  reason: Schema.Literal(
    "not-a-repository",
    "git-too-old",
    "unknown-base",
    "dirty-working-tree",
    "target-moved",
    "invalid-option",
    "push-rejected"
  ),
  message: Schema.String
}) {}

/** An operation on the workspace failed (a git command exited non-zero, a file could not be written). */
export class WorkspaceFailed extends Schema.TaggedError<WorkspaceFailed>()("WorkspaceFailed", {
  operation: Schema.String,
  message: Schema.String
}) {}

/** A merge was concluded while conflict markers remained in files. */
export class ConflictMarkersRemain extends Schema.TaggedError<ConflictMarkersRemain>()("ConflictMarkersRemain", {
  stream: Schema.String,
  paths: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `conflict markers remain in ${this.paths.join(", ")} after resolving stream "${this.stream}"`
  }
}

/** Where an attempt's agent changed files outside its stream's worktree, and which. */
export const Strays = Schema.Array(Schema.Struct({
  /** "main checkout", "worktree of stream <name>", or "repository's .git" (its config, hooks, `info/`). */
  where: Schema.String,
  paths: Schema.Array(Schema.String),
  /** What braid did about them, when it did something (the repository's .git: put back as it was). */
  note: Schema.optional(Schema.String),
  /**
   * The other streams whose agents were at work when the change appeared: then which one made
   * it cannot be told by looking, and the attempt is failed but its task goes on to its next
   * gate run (an innocent's task is not failed for another's deed).
   */
  alongside: Schema.optional(Schema.Array(Schema.String))
}))
export type Strays = typeof Strays.Type

/** An attempt changed files outside its stream's worktree: the attempt fails and nothing of it lands. */
export class ChangesOutsideWorktree extends Schema.TaggedError<ChangesOutsideWorktree>()("ChangesOutsideWorktree", {
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  found: Strays
}) {
  override get message(): string {
    const inMain = this.found.some((f) => f.where === "main checkout")
    const inOthers = this.found.some((f) => f.where !== "main checkout")
    return `attempt ${this.attempt} of task ${this.taskId} changed files outside stream "${this.stream}"'s worktree: ${
      this.found.map((f) => `${f.where}: ${f.paths.join(", ")}${f.note === undefined ? "" : ` (${f.note})`}`).join("; ")
    } — nothing of this attempt lands${inMain ? "; the files in the main checkout are left for you to look at and remove" : ""}${
      inOthers ? "; what it wrote into other streams' worktrees was removed, so their work stays their own" : ""
    }`
  }
}

/** A symbolic link an attempt committed, and where it points. */
export const Link = Schema.Struct({ path: Schema.String, target: Schema.String })

/**
 * An attempt's commit would hold symbolic links leading outside the repository (absolute, or
 * up past its top from the link's own folder): the attempt fails, and its changes were
 * dropped so nothing of it lands. Links inside the repository are fine.
 */
export class OutwardSymlink extends Schema.TaggedError<OutwardSymlink>()("OutwardSymlink", {
  stream: Schema.String,
  taskId: Schema.String,
  attempt: Schema.Number,
  links: Schema.Array(Link)
}) {
  override get message(): string {
    return `attempt ${this.attempt} of task ${this.taskId} made symbolic links leading outside the repository: ${
      this.links.map((l) => `${l.path} -> ${JSON.stringify(l.target).slice(1, -1)}`).join(", ")
    } — nothing of this attempt lands (its changes in stream "${this.stream}"'s worktree were dropped)`
  }
}

/** Every error a workspace can raise. */
export type WorkspaceError = WorkspaceRefused | WorkspaceFailed | ConflictMarkersRemain | OutwardSymlink

/** A view onto the files of one workspace (a stream's, or the integration's). */
export interface Files {
  /** The real directory behind the view, when there is one (git worktrees). */
  readonly dir: string | undefined
  /** The file's text, or undefined when it does not exist. */
  readonly read: (path: string) => Effect.Effect<string | undefined, WorkspaceFailed>
  readonly write: (path: string, content: string) => Effect.Effect<void, WorkspaceFailed>
  readonly remove: (path: string) => Effect.Effect<void, WorkspaceFailed>
  /** Every file path in the workspace, sorted. */
  readonly list: () => Effect.Effect<ReadonlyArray<string>, WorkspaceFailed>
}

/** What an attempt changed, as the workspace (not the agent) sees it. */
export class AttemptChange extends Schema.Class<AttemptChange>("AttemptChange")({
  /** The commit recording the attempt; null when the attempt changed nothing. */
  commit: Schema.NullOr(Schema.String),
  /** Files the attempt changed. */
  files: Schema.Array(Schema.String)
}) {}

/** The result of running a command in a workspace. */
export class CommandResult extends Schema.Class<CommandResult>("CommandResult")({
  name: Schema.String,
  argv: Schema.Array(Schema.String),
  exitCode: Schema.Number,
  timedOut: Schema.Boolean,
  durationMs: Schema.Number,
  /** The last lines of stdout and stderr together. */
  outputTail: Schema.String
}) {}

/** The outcome of merging one stream into the integration. */
export type MergeOutcome =
  | { readonly _tag: "Merged"; readonly commit: string }
  | { readonly _tag: "Conflicted"; readonly paths: ReadonlyArray<string> }

/** What bringing a dependency's work into a stream did: merged (the new head; null when it was there already), or conflicted. */
export type AbsorbOutcome =
  | { readonly _tag: "Absorbed"; readonly commit: string | null }
  | { readonly _tag: "Conflicted"; readonly paths: ReadonlyArray<string> }

/** Which side wins conflicted hunks when bringing work into a stream: the stream's own (`ours`), the dependency's (`theirs`), or none (stop at the conflict). */
export type AbsorbSide = "none" | "ours" | "theirs"

/** Which side wins conflicted hunks when merging a stream ("none": stop at the conflict). */
export type MergeSide = "none" | "integration" | "stream"

/** Names one attempt; `step` is its durable step key (recorded in the commit as `Braid-Step`). */
export interface AttemptId {
  readonly taskId: string
  readonly attempt: number
  /** Defaults to `stream/<stream>/task/<taskId>/attempt/<attempt>`. */
  readonly step?: string | undefined
}

/** Where a stream stands in the integration. */
export interface MergeState {
  /** The stream's head is already in the integration. */
  readonly merged: boolean
  /** The stream whose merge is open in the integration, if one is. */
  readonly open: string | undefined
}

/** What `release` keeps. */
export interface ReleaseOptions {
  readonly keepWorktrees: boolean
  /** Keep the integration's worktree (a conflict or a failed verification for a person to look at). */
  readonly keepIntegration?: boolean | undefined
}

/** The `Braid-Step` key of an attempt. */
export const attemptStep = (stream: string, attempt: AttemptId): string =>
  attempt.step ?? `stream/${stream}/task/${attempt.taskId}/attempt/${attempt.attempt}`

/** A stream as the workspace needs to know it. */
export interface StreamSetup {
  readonly name: string
}

/** An attempt to record: its id, its task's title, and who did it (trailers of its commit). */
export type AttemptToRecord = AttemptId & {
  readonly title: string
  /** The agent backend that made the attempt (`claude-code`). */
  readonly agent?: string | undefined
  /** The role it played (`api-developer`). */
  readonly role?: string | undefined
}

/** The run a workspace is prepared for. */
export interface RunSetup {
  readonly runId: string
  readonly streams: ReadonlyArray<StreamSetup>
  /** Whether the run will land on the target (refuse a dirty main tree only then). */
  readonly land: boolean
  /**
   * Make every stream's workspace now (default true). A run passes false and opens each
   * stream's when it has work (`openStream`), so it never holds many more checkouts than
   * agents at work.
   */
  readonly openStreams?: boolean | undefined
  /** A resumed run: start from the recorded base and land against the recorded target commit. */
  readonly resume?: { readonly base: string; readonly targetAt: string } | undefined
}

/** What `prepare` found and made. */
export interface Prepared {
  /** The commit every stream starts from. */
  readonly base: string
  /** The branch a landing advances. */
  readonly target: string
  /** The target's commit when the run started (landing refuses if it moved). */
  readonly targetAt: string
}

/** The result of landing the verified integration on the target. */
export class Landing extends Schema.Class<Landing>("Landing")({
  target: Schema.String,
  commit: Schema.String,
  previous: Schema.String,
  fastForward: Schema.Boolean,
  /** How it landed (absent in journals of older versions: `local`). */
  mode: Schema.optional(LandingMode.ModeName),
  /** The remote pushed to (`push`, `pr`). */
  remote: Schema.optional(Schema.String),
  /** The pull request opened or updated (`pr`); the target itself is not advanced then. */
  pullRequest: Schema.optional(Schema.Struct({ number: Schema.Number, url: Schema.String, head: Schema.String }))
}) {}

/** The result of pushing the integration commit to a branch of a remote. */
export class Pushed extends Schema.Class<Pushed>("Pushed")({
  remote: Schema.String,
  branch: Schema.String,
  commit: Schema.String,
  /** The remote branch's commit before the push (null when it did not exist). */
  previous: Schema.NullOr(Schema.String)
}) {}

/** Where a command runs. */
export type Location = { readonly _tag: "Stream"; readonly stream: string } | { readonly _tag: "Integration" }

export const streamLocation = (stream: string): Location => ({ _tag: "Stream", stream })
export const integrationLocation: Location = { _tag: "Integration" }

/** The workspace port. */
export interface Service {
  readonly kind: "git" | "memory"
  /**
   * Checks the repository and settles the run's base and target; makes every stream's
   * workspace too, unless `openStreams` is false (then `openStream` makes each when needed).
   */
  readonly prepare: (run: RunSetup) => Effect.Effect<Prepared, WorkspaceError>
  /**
   * Makes the stream's workspace (its branch from the base when new), or takes over one an
   * earlier process left, dropping what was not committed there. Called when the stream has
   * work; idempotent.
   */
  readonly openStream: (stream: string) => Effect.Effect<void, WorkspaceError>
  /**
   * Removes the stream's workspace (its branch and commits stay), or with `keep` leaves it
   * for a person to look at: `release` leaves it too.
   */
  readonly closeStream: (stream: string, options: { readonly keep: boolean }) => Effect.Effect<void, WorkspaceError>
  /** The files of a stream's workspace. */
  readonly files: (stream: string) => Files
  /** Records what the last attempt changed in the stream's workspace (a commit, or nothing). */
  readonly commitAttempt: (
    stream: string,
    attempt: AttemptToRecord
  ) => Effect.Effect<AttemptChange, WorkspaceError>
  /**
   * Brings another stream's committed work (a commit of its branch) into a stream's
   * workspace, so a task sees the work of the tasks it depends on: the new head, or null when
   * the stream already had it. On a conflict with side "none" the merge is left open in the
   * stream's workspace (conflicted files carry markers) for `concludeAbsorb`, or `discard`
   * to drop it; with a side, that side wins the conflicting hunks.
   */
  readonly absorb: (stream: string, commit: string, reason: string, side?: AbsorbSide) => Effect.Effect<AbsorbOutcome, WorkspaceError>
  /** Completes a merge `absorb` left open, once its conflicts were edited away (markers left: `ConflictMarkersRemain`). */
  readonly concludeAbsorb: (stream: string, reason: string) => Effect.Effect<string, WorkspaceError>
  /** What a stream's branch changed since the base in `paths`, as a unified diff (for a resolver to see each side's intent). */
  readonly diff: (stream: string, paths: ReadonlyArray<string>) => Effect.Effect<string, WorkspaceError>
  /** Drops uncommitted changes in a stream's workspace (an attempt cut off by a crash). */
  readonly discard: (stream: string) => Effect.Effect<void, WorkspaceError>
  /** The change an attempt recorded, if the stream's head is that attempt's commit (found after a crash). */
  readonly findAttempt: (
    stream: string,
    attempt: AttemptId
  ) => Effect.Effect<AttemptChange | undefined, WorkspaceError>
  /**
   * Marks the stream's worktree as in use by an attempt (its agent, its commit, its review)
   * until the scope closes: `strays` leaves it alone meanwhile, and what it holds when the
   * scope closes is the stream's own.
   */
  readonly attempting: (stream: string) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Changes outside the stream's worktree that were not there before: the main checkout
   * (`.braid/` aside) and the worktrees of streams with no attempt in progress. Called after
   * each attempt; what it reports is reported once.
   */
  readonly strays: (stream: string) => Effect.Effect<Strays, WorkspaceError>
  /**
   * Puts the stream's branch back at the commit the journal holds for it: what integrates and
   * lands is what braid recorded, never a branch tip read later. Returns what was found instead
   * (a moved or forged tip, a deleted branch) after putting it right, or undefined when the
   * branch was where the journal says. From then on the integration merges exactly `commit`.
   * A commit that no longer exists in the repository is `WorkspaceFailed` (`integrity`). With
   * `keep`, a branch one commit past `commit` whose commit records that attempt (`Braid-Step`)
   * is left as it is: a crash kept it from the journal, and the gate takes it up.
   */
  readonly pin: (stream: string, commit: string, keep?: AttemptId) => Effect.Effect<string | undefined, WorkspaceError>
  /** Which of `commits` the integration's history does not hold (the check before landing). */
  readonly missingFromIntegration: (commits: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, WorkspaceError>
  /** Every file the stream's own attempts changed since the base (absorbed work excluded). */
  readonly changedFiles: (stream: string) => Effect.Effect<ReadonlyArray<string>, WorkspaceError>
  /** The current commit of a location. */
  readonly head: (location: Location) => Effect.Effect<string, WorkspaceError>
  /** Runs a command in a location (argv, stdin closed, timeout, output captured). */
  readonly exec: (location: Location, command: CommandSpec.Command, env?: Record<string, string>) => Effect.Effect<CommandResult, WorkspaceError>
  /**
   * Creates the integration workspace from the base, or takes over an earlier one (an open
   * merge left by a crash is aborted); `restart` resets it to the base.
   */
  readonly beginIntegration: (options?: { readonly restart: boolean }) => Effect.Effect<void, WorkspaceError>
  /** Paths that would conflict if the stream were merged into the integration now (touches no files). */
  readonly probeMerge: (stream: string) => Effect.Effect<ReadonlyArray<string>, WorkspaceError>
  /** Merges a stream into the integration; on conflict with side "none" the conflict is left in place. */
  readonly mergeStream: (stream: string, side: MergeSide) => Effect.Effect<MergeOutcome, WorkspaceError>
  /** The files of the integration workspace (conflicted files carry markers while a merge is open). */
  readonly integrationFiles: () => Files
  /**
   * Where the stream stands in the integration: already merged (its head is in the
   * integration's), and which stream's merge is open there, if any.
   */
  readonly mergeState: (stream: string) => Effect.Effect<MergeState, WorkspaceError>
  /** Abandons a merge left open in the integration. */
  readonly abortMerge: () => Effect.Effect<void, WorkspaceError>
  /**
   * Merges the target branch into the integration when the target moved past what the
   * integration holds (so landing can fast-forward). Returns the new integration commit, or
   * null when there was nothing to merge; a conflict aborts the merge and fails.
   */
  readonly catchUp: () => Effect.Effect<string | null, WorkspaceError>
  /** Completes an open merge after its conflicts were edited away. */
  readonly concludeMerge: (stream: string) => Effect.Effect<string, WorkspaceError>
  /**
   * Advances the target to the integration commit, fast-forward only: refused when the
   * target has commits the integration does not hold (see `catchUp`).
   */
  readonly land: () => Effect.Effect<Landing, WorkspaceError>
  /**
   * Pushes the integration commit to `branch` on `remote`, fast-forward only (never forced):
   * a remote branch holding commits the integration does not is `WorkspaceRefused`
   * (`push-rejected`); auth and network failures are `WorkspaceFailed`. Pushing what the
   * remote branch already holds succeeds.
   */
  readonly push: (request: { readonly remote: string; readonly branch: string }) => Effect.Effect<Pushed, WorkspaceError>
  /**
   * Removes what the run created and does not keep: worktrees (all kept with
   * `keepWorktrees`; streams closed with `keep`; the integration's with `keepIntegration`),
   * and the branches the target now holds.
   */
  readonly release: (options: ReleaseOptions) => Effect.Effect<void, WorkspaceError>
}

/** The workspace a run uses. */
export class Workspace extends Context.Tag("@braid/core/Workspace")<Workspace, Service>() {}

/** Finds conflict-marker lines (`<<<<<<<`, `=======`, `>>>>>>>`) left in a text. */
export const hasConflictMarkers = (text: string): boolean =>
  /^<{7}( |$)/m.test(text) && /^={7}$/m.test(text) && /^>{7}( |$)/m.test(text)

/** Turns a thrown error into a `WorkspaceFailed` for `operation` (for `Effect.tryPromise`). */
export const failed = (operation: string) => (error: unknown) =>
  new WorkspaceFailed({ operation, message: error instanceof Error ? error.message : String(error) })

