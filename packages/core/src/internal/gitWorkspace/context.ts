/**
 * What a prepared git run holds: the repository's places, the run's trees, and what its
 * checkouts, branches, integration and target share. One per `prepare`, dropped with its scope.
 *
 * @internal
 */
import type { Effect } from "effect"
import type * as Confinement from "../confinement.js"
import * as Git from "../git.js"
import * as Snapshot from "../snapshot.js"
import type { Repo, StreamTree, Tree } from "./repo.js"

/** One prepared run of a git workspace. */
export interface RunContext {
  readonly runId: string
  /** The main working tree (the repository's top). */
  readonly top: string
  readonly runFolder: string
  readonly worktrees: string
  /** The repository's lock: its refs and worktree list change under it. */
  readonly lock: Effect.Semaphore
  readonly base: string
  readonly target: string
  /** The target's commit when the run started, or when it last landed: landing compares against it. */
  targetAtStart: string
  readonly streams: Map<string, StreamTree>
  integration: Tree | undefined
  /** Worktrees this run created or took back over; release removes these and nothing else. */
  readonly owned: Array<Tree>
  /** The merge open in the integration, and its conflicted paths. */
  open: { readonly stream: string; readonly paths: ReadonlyArray<string> } | undefined
  landed: string | undefined
  /** Streams whose worktree stays for a person to look at (closed with `keep`). */
  readonly kept: Set<string>
  /** Keep the integration's worktree at release. */
  keepIntegration: boolean
  /**
   * Checkouts a closed stream left for the next stream to open: moving one and switching its
   * branch rewrites only the files that differ, where a new worktree writes the whole tree.
   * They are among `owned`, so release removes them.
   */
  readonly spares: Array<Tree>
  /** How many checkouts were parked so far (names each parked folder). */
  sparesMade: number
  readonly repo: Repo
  readonly confinement: Confinement.Confinement
  /** The stat of each open stream's index file when braid last wrote it (an agent may stage or refresh it since). */
  readonly indexWritten: Map<string, string>
  /** Paths each stream's open absorb merge conflicted in (what `concludeAbsorb` checks for markers). */
  readonly openAbsorbs: Map<string, ReadonlyArray<string>>
}

/** Notes the stream's index as braid wrote it. */
export const noteIndex = (ctx: RunContext, stream: string, dir: string) => {
  const dirs = Git.gitDirsOf(dir)
  if (dirs === undefined) ctx.indexWritten.delete(stream)
  else ctx.indexWritten.set(stream, Snapshot.fingerprint(dirs.gitDir, "index"))
}

/** The stream's tree (every stream the run was prepared with has one). */
export const treeOf = (ctx: RunContext, stream: string) => ctx.streams.get(stream)
