/**
 * The runs recorded in a repository, as `braid runs`, `status`, `report` and `clean` find them:
 * the run store of the repository around a directory, and the run a command means. Kept apart
 * from `Session` so these commands start without the engine that runs a plan.
 *
 * @since 0.1.0
 */
// By their paths, as Cli.ts imports @braid/core.
import * as FileRunStore from "@braid/core/FileRunStore"
import * as GitWorkspace from "@braid/core/GitWorkspace"
import * as RunStore from "@braid/core/RunStore"
import type * as Workspace from "@braid/core/Workspace"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect } from "effect"
import * as path from "node:path"

/** The run store of the repository containing `dir`. */
export const storeFor = (
  dir: string
): Effect.Effect<{ readonly top: string; readonly store: RunStore.Service }, Workspace.WorkspaceRefused | Workspace.WorkspaceFailed, CommandExecutor.CommandExecutor> =>
  Effect.map(GitWorkspace.repositoryTop(dir), (top) => ({ top, store: FileRunStore.make(path.join(top, ".braid")) }))

/** Finds a run id: the one given, or the latest run in the store. */
export const pickRun = (store: RunStore.Service, runId: string | undefined) =>
  Effect.gen(function*() {
    if (runId !== undefined) return runId
    const ids = yield* store.list()
    if (ids.length === 0) return yield* new RunStore.RunNotFound({ runId: "(latest)", where: store.location })
    return ids.at(-1)!
  })
