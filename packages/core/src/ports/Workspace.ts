/**
 * The `Workspace` port: `prepare` returns a run's workspace in a `Scope` (released when it
 * closes): one isolated checkout per stream, taken while a task works and pooled between its
 * tasks, each stream's branch, the integration of every stream, and the target the result
 * lands on. Implementations: `GitWorkspace` (real repositories) and `MemoryWorkspace`
 * (library, tests).
 *
 * @since 0.1.0
 */
import { Context, Effect, Schema, type Scope } from "effect"
import type * as CommandSpec from "../run/CommandSpec.js"
import * as LandingMode from "../pipeline/LandingMode.js"
import type * as Sandbox from "../system/Sandbox.js"

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

/** What a view onto a workspace's files can do, whatever is behind it. */
export interface FileOps {
  /** The file's text, or undefined when it does not exist. */
  readonly read: (path: string) => Effect.Effect<string | undefined, WorkspaceFailed>
  readonly write: (path: string, content: string) => Effect.Effect<void, WorkspaceFailed>
  readonly remove: (path: string) => Effect.Effect<void, WorkspaceFailed>
  /** Every file path in the workspace, sorted. */
  readonly list: () => Effect.Effect<ReadonlyArray<string>, WorkspaceFailed>
}

/** The files of a git worktree: a real directory, which agents and commands can work in. */
export interface Worktree extends FileOps {
  readonly _tag: "Worktree"
  readonly dir: string
  /**
   * The run's own folder (`<repo>/.braid/runs/<runId>`), which git does not see: backends keep
   * a stream's tool home there (`claude/<stream>`, `codex/<stream>`, …). The checkouts
   * themselves live elsewhere (outside the repository by default). Absent: no run folder.
   */
  readonly runDir?: string | undefined
  /**
   * What a process confined to this worktree may touch (`Sandbox`): write the worktree, read
   * the repository, see neither the home folder, the run's folder of checkouts (the other
   * streams' worktrees) nor its journal.
   * Absent: the worktree alone.
   */
  readonly confinement?: Sandbox.Policy | undefined
  /** Variables every process started in this checkout gets (its ports: `BRAID_PORT`, `BRAID_PORTS`). */
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** Files with no directory behind them (the memory workspace): only these operations reach them. */
export interface InMemory extends FileOps {
  readonly _tag: "InMemory"
}

/**
 * A view onto the files of one workspace (a stream's checkout, or the integration's). Whether
 * there is a directory is in its type: a backend that needs one narrows on `_tag`.
 */
export type Files = Worktree | InMemory

/** The directory behind a view, when there is one: for telling a person where to look. */
export const directoryOf = (files: Files): string | undefined => files._tag === "Worktree" ? files.dir : undefined

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

/** The `Braid-Step` key of an attempt. */
export const attemptStep = (stream: string, attempt: AttemptId): string =>
  attempt.step ?? `stream/${stream}/task/${attempt.taskId}/attempt/${attempt.attempt}`

/** A stream as the workspace needs to know it. */
export interface StreamSetup {
  readonly name: string
  /** A sparse checkout (cone mode) of these folders (files at the top are always there); undefined: the whole tree. */
  readonly sparse?: ReadonlyArray<string> | undefined
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
   * At most this many stream checkouts are open at once (default: no limit). To open another,
   * the checkout idle longest is closed; a checkout in use is never closed. A run passes its
   * `maxParallel`: it holds about as many checkouts as agents at work, whatever its number of streams.
   */
  readonly maxCheckouts?: number | undefined
  /** Keep every worktree: none is removed, on eviction or at release (`--keep-worktrees`). */
  readonly keepWorktrees?: boolean | undefined
  /** A resumed run: start from the recorded base and land against the recorded target commit. */
  readonly resume?: { readonly base: string; readonly targetAt: string } | undefined
  /** Runs as a stream's checkout is closed for good (removed, or parked for another stream; not when kept): its environment's teardown. */
  readonly beforeClose?: ((checkout: Checkout) => Effect.Effect<void>) | undefined
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

/**
 * A stream's checkout, held while its scope is open (`Run.checkout`): its files, and what is
 * done in them. Opened when the stream has work, pooled by the run between its tasks.
 */
export interface Checkout {
  readonly stream: string
  /** Whether this acquisition opened the checkout (else the pool had it open already): an attempt a crash cut off may be in it. */
  readonly opened: boolean
  readonly files: Files
  /** Where braid last recorded the stream (a ref moved by anyone else is not its work). */
  readonly head: Effect.Effect<string, WorkspaceError>
  /** Records what the last attempt changed in the checkout (a commit, or nothing). */
  readonly commitAttempt: (attempt: AttemptToRecord) => Effect.Effect<AttemptChange, WorkspaceError>
  /**
   * Brings another stream's committed work (a commit of its branch) into the checkout, so a
   * task sees the work of the tasks it depends on: the new head, or null when the stream
   * already had it. On a conflict with side "none" the merge is left open (conflicted files
   * carry markers) for `concludeAbsorb`, or `discard` to drop it; with a side, that side wins
   * the conflicting hunks.
   */
  readonly absorb: (commit: string, reason: string, side?: AbsorbSide) => Effect.Effect<AbsorbOutcome, WorkspaceError>
  /** Completes a merge `absorb` left open, once its conflicts were edited away (markers left: `ConflictMarkersRemain`). */
  readonly concludeAbsorb: (reason: string) => Effect.Effect<string, WorkspaceError>
  /** Drops uncommitted changes (an attempt cut off by a crash), and a merge left open. */
  readonly discard: Effect.Effect<void, WorkspaceError>
  /** The change an attempt recorded, if the checkout's head is that attempt's commit (found after a crash). */
  readonly findAttempt: (attempt: AttemptId) => Effect.Effect<AttemptChange | undefined, WorkspaceError>
  /**
   * Marks the checkout as in use by an attempt (its agent, its commit, its review) until the
   * scope closes: `strays` leaves it alone meanwhile, and what it holds when the scope closes
   * is the stream's own.
   */
  readonly attempting: Effect.Effect<void, never, Scope.Scope>
  /**
   * Changes outside this checkout that were not there before: the main checkout (`.braid/`
   * aside) and the checkouts of streams with no attempt in progress. Called after each
   * attempt; what it reports is reported once.
   */
  readonly strays: Effect.Effect<Strays, WorkspaceError>
  /** Runs a command in the checkout (argv, stdin closed, timeout, output captured). */
  readonly exec: (command: CommandSpec.Command, env?: Record<string, string>) => Effect.Effect<CommandResult, WorkspaceError>
  /** Runs braid's own work in the checkout (its environment's setup): nothing it changes there is taken for another agent's stray. */
  readonly busy: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/** A stream's branch: what needs no checkout. */
export interface Branch {
  /**
   * Puts the stream's branch back at the commit the journal holds for it: what integrates and
   * lands is what braid recorded, never a branch tip read later. Returns what was found instead
   * (a moved or forged tip, a deleted branch) after putting it right, or undefined when the
   * branch was where the journal says. From then on the integration merges exactly `commit`.
   * A commit that no longer exists in the repository is `WorkspaceFailed` (`integrity`). With
   * `keep`, a branch one commit past `commit` whose commit records that attempt (`Braid-Step`)
   * is left as it is: a crash kept it from the journal, and the gate takes it up.
   */
  readonly pin: (commit: string, keep?: AttemptId) => Effect.Effect<string | undefined, WorkspaceError>
  /** What the branch changed since the base in `paths`, as a unified diff (for a resolver to see each side's intent). */
  readonly diff: (paths: ReadonlyArray<string>) => Effect.Effect<string, WorkspaceError>
  /** Every file the stream's own attempts changed since the base (absorbed work excluded). */
  readonly changedFiles: Effect.Effect<ReadonlyArray<string>, WorkspaceError>
  /** The stream's commit: where braid recorded it while its checkout is open, else its branch (the base before any work). */
  readonly head: Effect.Effect<string, WorkspaceError>
}

/** The integration of the run's streams: one checkout where streams are merged one at a time. */
export interface Integration {
  /**
   * Creates the integration checkout from the base, or takes over an earlier one (an open
   * merge left by a crash is not abandoned here); `restart` resets it to the base.
   */
  readonly begin: (options?: { readonly restart: boolean }) => Effect.Effect<void, WorkspaceError>
  /** Paths that would conflict if the stream were merged now (touches no files). */
  readonly probe: (stream: string) => Effect.Effect<ReadonlyArray<string>, WorkspaceError>
  /** Merges a stream; on conflict with side "none" the conflict is left in place. */
  readonly merge: (stream: string, side: MergeSide) => Effect.Effect<MergeOutcome, WorkspaceError>
  /** Completes an open merge after its conflicts were edited away. */
  readonly conclude: (stream: string) => Effect.Effect<string, WorkspaceError>
  /** Abandons a merge left open. */
  readonly abort: Effect.Effect<void, WorkspaceError>
  /** The integration's files (conflicted files carry markers while a merge is open). */
  readonly files: Files
  /** Where the stream stands: already merged (its head is in the integration's), and which stream's merge is open, if any. */
  readonly mergeState: (stream: string) => Effect.Effect<MergeState, WorkspaceError>
  /**
   * Merges the target branch in when the target moved past what the integration holds (so
   * landing can fast-forward). Returns the new commit, or null when there was nothing to
   * merge; a conflict aborts the merge and fails.
   */
  readonly catchUp: Effect.Effect<string | null, WorkspaceError>
  /** The integration's commit. */
  readonly head: Effect.Effect<string, WorkspaceError>
  /** Runs a command in the integration checkout (argv, stdin closed, timeout, output captured). */
  readonly exec: (command: CommandSpec.Command, env?: Record<string, string>) => Effect.Effect<CommandResult, WorkspaceError>
  /** Which of `commits` the integration's history does not hold (the check before landing). */
  readonly missing: (commits: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, WorkspaceError>
}

/** The target branch: where the verified integration lands. */
export interface Target {
  /**
   * Advances the target to the integration commit, fast-forward only: refused when the
   * target has commits the integration does not hold (see `Integration.catchUp`).
   */
  readonly land: Effect.Effect<Landing, WorkspaceError>
  /**
   * Pushes the integration commit to `branch` on `remote`, fast-forward only (never forced):
   * a remote branch holding commits the integration does not is `WorkspaceRefused`
   * (`push-rejected`); auth and network failures are `WorkspaceFailed`. Pushing what the
   * remote branch already holds succeeds.
   */
  readonly push: (request: { readonly remote: string; readonly branch: string }) => Effect.Effect<Pushed, WorkspaceError>
}

/**
 * A workspace prepared for one run, released when the scope `prepare` ran in closes: what the
 * run created and does not keep goes (worktrees, unless `keepWorktrees`, streams closed with
 * `keep`, or the integration after `keepIntegration`; and the branches the target now holds).
 */
export interface Run {
  readonly runId: string
  /** The commit every stream starts from. */
  readonly base: string
  /** The branch a landing advances. */
  readonly target: string
  /** The target's commit when the run started (landing refuses if it moved). */
  readonly targetAt: string
  /**
   * The stream's checkout for as long as the scope is open: opened when needed (its branch
   * from the base when new, or taken over from an earlier process, dropping what was not
   * committed there), else the one the run holds. At most `maxCheckouts` are open: the idle
   * one longest idle is closed to make room; one in use never is.
   */
  readonly checkout: (stream: string) => Effect.Effect<Checkout, WorkspaceError, Scope.Scope>
  /**
   * The stream is done with its checkout: it is closed (the branch and its commits stay), or
   * with `keep` left for a person to look at (release leaves it too).
   */
  readonly close: (stream: string, options: { readonly keep: boolean }) => Effect.Effect<void, WorkspaceError>
  /** A stream's branch. */
  readonly branch: (stream: string) => Branch
  readonly integration: Integration
  readonly landing: Target
  /** Keep the integration's checkout at release (a conflict or a failed verification for a person to look at). */
  readonly keepIntegration: Effect.Effect<void>
  /** The user's own checkout, where a checkout's environment copies files from; none in a workspace without one. */
  readonly source?: Source | undefined
}

/** The user's own checkout, as a checkout's environment sees it. */
export interface Source {
  readonly dir: string
  /** Its untracked and ignored files matching `patterns` (gitignore syntax), relative to `dir`; never braid's run folder. */
  readonly untracked: (patterns: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, WorkspaceError>
}

/** The workspace port. */
export interface Service {
  /**
   * Checks the repository and settles the run's base and target: the run's workspace, which
   * the scope releases. Stream checkouts are opened when asked for (`Run.checkout`).
   */
  readonly prepare: (run: RunSetup) => Effect.Effect<Run, WorkspaceError, Scope.Scope>
}

/** The workspace a run uses. */
export class Workspace extends Context.Tag("@braid/core/Workspace")<Workspace, Service>() {}

/** Changes to what a prepared run hands out: the cluster publishes each commit of a checkout and of the integration. */
export interface Decoration {
  readonly checkout?: (checkout: Checkout) => Checkout
  readonly integration?: (integration: Integration) => Integration
}

/** The workspace with every run it prepares decorated. */
export const decorate = (service: Service, decoration: Decoration): Service => ({
  prepare: (setup) =>
    Effect.map(service.prepare(setup), (run): Run => ({
      ...run,
      checkout: (stream) => decoration.checkout === undefined ? run.checkout(stream) : Effect.map(run.checkout(stream), decoration.checkout),
      integration: decoration.integration?.(run.integration) ?? run.integration
    }))
})

/** Finds conflict-marker lines (`<<<<<<<`, `=======`, `>>>>>>>`) left in a text. */
export const hasConflictMarkers = (text: string): boolean =>
  /^<{7}( |$)/m.test(text) && /^={7}$/m.test(text) && /^>{7}( |$)/m.test(text)

/** Turns a thrown error into a `WorkspaceFailed` for `operation` (for `Effect.tryPromise`). */
export const failed = (operation: string) => (error: unknown) =>
  new WorkspaceFailed({ operation, message: error instanceof Error ? error.message : String(error) })

