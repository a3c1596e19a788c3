/**
 * What travels with a submitted run: the files in the plan's folder (its scripts, prompt
 * templates, the agents' helpers), so a runner on another machine has them exactly as the
 * submitter did. Version-control folders, `node_modules` and braid's own `.braid` stay
 * behind; a folder too big to carry is refused with its size, before anything is submitted.
 *
 * @since 0.5.0
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** One file beside the plan: its path relative to the plan's folder, its mode, its bytes (base64). */
export const PlanFile = Schema.Struct({
  path: Schema.String,
  mode: Schema.Number,
  content: Schema.String
})
export type PlanFile = typeof PlanFile.Type

/** The plan's folder cannot travel with the run. */
export class PlanFolderUnfit extends Schema.TaggedError<PlanFolderUnfit>()("PlanFolderUnfit", {
  folder: Schema.String,
  message: Schema.String
}) {}

/** The most a run carries: more than this is not a plan's folder but a repository's. */
export const MAX_BYTES = 20 * 1024 * 1024
export const MAX_FILES = 2000

const SKIPPED = new Set([".git", "node_modules", ".braid"])

/** Every file under the plan's folder, sorted by path. */
export const collect = (folder: string): Effect.Effect<ReadonlyArray<PlanFile>, PlanFolderUnfit> =>
  Effect.tryPromise({
    try: async () => {
      const files: Array<PlanFile> = []
      let bytes = 0
      const walk = async (dir: string): Promise<void> => {
        const entries = (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
        for (const entry of entries) {
          if (SKIPPED.has(entry.name)) continue
          const full = path.join(dir, entry.name)
          if (entry.isDirectory()) await walk(full)
          else if (entry.isFile()) {
            const [content, stat] = await Promise.all([fs.readFile(full), fs.stat(full)])
            bytes += content.length
            if (files.length >= MAX_FILES || bytes > MAX_BYTES) {
              throw new PlanFolderUnfit({
                folder,
                message: `the plan's folder ${folder} holds more than a run can carry (${MAX_FILES} files or ${MAX_BYTES / 1024 / 1024} MB): ` +
                  `put the plan and its scripts in a folder of their own`
              })
            }
            files.push({ path: path.relative(folder, full).split(path.sep).join("/"), mode: stat.mode & 0o777, content: content.toString("base64") })
          }
        }
      }
      await walk(folder)
      return files
    },
    catch: (e) => e instanceof PlanFolderUnfit ? e : new PlanFolderUnfit({ folder, message: `cannot read the plan's folder ${folder}: ${e instanceof Error ? e.message : String(e)}` })
  })

/** Marks a folder whose every file has been written. */
const COMPLETE = ".braid-plan-complete"

/** Writes the files into `folder` (made if missing), as they were beside the plan, then marks it complete. */
export const materialize = (files: ReadonlyArray<PlanFile>, folder: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    for (const file of files) {
      const target = path.resolve(folder, file.path)
      if (!target.startsWith(path.resolve(folder) + path.sep)) continue
      await fs.mkdir(path.dirname(target), { recursive: true })
      await fs.writeFile(target, Buffer.from(file.content, "base64"), { mode: file.mode })
      await fs.chmod(target, file.mode)
    }
    await fs.mkdir(folder, { recursive: true })
    await fs.writeFile(path.join(folder, COMPLETE), "")
  })

/** Whether `materialize` finished writing into `folder` before. */
export const materialized = (folder: string): Effect.Effect<boolean> =>
  Effect.promise(() => fs.access(path.join(folder, COMPLETE)).then(() => true, () => false))
