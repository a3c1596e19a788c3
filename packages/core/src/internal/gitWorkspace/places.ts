/**
 * Where a run's checkouts live. By default outside the repository, under the user's cache
 * folder (`$XDG_CACHE_HOME/braid/worktrees/<repo>-<hash>/<runId>/<stream>`): inside it,
 * repository-wide tools (test runners, linters, watchers) would see every kept checkout, and
 * Node would resolve a checkout's modules through the main checkout's `node_modules`. The
 * folder chosen when a run is prepared is written into the run's folder (`worktrees-dir`), so
 * every later look at the run (resume, clean, status) finds it; a run made before that record
 * existed keeps its checkouts in `<runFolder>/runs/<runId>/worktrees`.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"

/** The file in a run's folder naming the folder that holds its checkouts. */
export const RECORD = "worktrees-dir"

/** The user's cache folder for braid's checkouts: `$XDG_CACHE_HOME/braid/worktrees`, else `~/.cache/braid/worktrees`. */
export const cacheRoot = (env: Readonly<Record<string, string | undefined>> = process.env): string => {
  const xdg = env.XDG_CACHE_HOME
  return path.join(xdg !== undefined && xdg !== "" ? xdg : path.join(os.homedir(), ".cache"), "braid", "worktrees")
}

/** The folder a repository's runs keep their checkouts in by default: `<cacheRoot>/<basename>-<hash of the real top>`. */
export const defaultRoot = async (top: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<string> => {
  const real = await fs.realpath(top).catch(() => path.resolve(top))
  const hash = createHash("sha256").update(real).digest("hex").slice(0, 12)
  return path.join(cacheRoot(env), `${path.basename(real)}-${hash}`)
}

/** A run's own folder (`<runFolder>/runs/<runId>`): its journal, report, tool homes and record. */
export const runDirOf = (runFolder: string, runId: string): string => path.join(runFolder, "runs", runId)

/** Where a run made before the record existed kept its checkouts. */
export const legacyOf = (runFolder: string, runId: string): string => path.join(runDirOf(runFolder, runId), "worktrees")

/**
 * The folder holding the checkouts of an existing run: the recorded one, else the old layout's
 * when that folder exists; undefined for a run that has neither (never prepared, or cleaned).
 */
export const find = async (runFolder: string, runId: string): Promise<string | undefined> => {
  const recorded = await fs.readFile(path.join(runDirOf(runFolder, runId), RECORD), "utf8").then(
    (text) => text.trim(),
    () => ""
  )
  if (recorded !== "") return recorded
  const legacy = legacyOf(runFolder, runId)
  return (await fs.stat(legacy).then((s) => s.isDirectory(), () => false)) ? legacy : undefined
}

/**
 * The folder for a run's checkouts: an existing run's (`find`) keeps its place whatever the
 * options say now; a new one's is `<worktreesDir>/<runId>` (relative to `top`), else under the
 * default root.
 */
export const choose = async (
  top: string,
  runFolder: string,
  runId: string,
  worktreesDir: string | undefined
): Promise<string> =>
  (await find(runFolder, runId)) ??
    path.join(worktreesDir !== undefined ? path.resolve(top, worktreesDir) : await defaultRoot(top), runId)

/** Writes the folder of a run's checkouts into the run's folder (before any checkout is made). */
export const record = async (runFolder: string, runId: string, worktrees: string): Promise<void> => {
  const runDir = runDirOf(runFolder, runId)
  await fs.mkdir(runDir, { recursive: true })
  const file = path.join(runDir, RECORD)
  const current = await fs.readFile(file, "utf8").then((t) => t.trim(), () => "")
  if (current !== worktrees) await fs.writeFile(file, `${worktrees}\n`)
}

/**
 * Removes a run's folder of checkouts when it is empty, and then the repository's folder in the
 * cache when that is empty too (never a folder the user named: only under {@link cacheRoot}).
 */
export const tidy = async (worktrees: string): Promise<void> => {
  await fs.rmdir(worktrees).catch(() => undefined)
  const parent = path.dirname(worktrees)
  if (path.dirname(parent) === cacheRoot()) await fs.rmdir(parent).catch(() => undefined)
}
