/**
 * A runner's work folder is its own: a second runner pointed at it is refused while the first
 * lives, and a runner starting where an earlier one was killed first ends the agent processes
 * that one left running there (found by their `BRAID_AGENT` marker and their working folder,
 * with everything they started), so no stray agent works on in a clone nobody reads, and
 * drops the clones it left (the remote has everything they hold).
 *
 * @since 0.5.0
 */
import { Process, ProcessTree } from "@braid/core"
import { Effect, Schema, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

/** Another live runner uses the work folder. */
export class WorkdirInUse extends Schema.TaggedError<WorkdirInUse>()("WorkdirInUse", { workdir: Schema.String, pid: Schema.Number }) {
  override get message(): string {
    return `--workdir ${this.workdir} is in use by another runner (pid ${this.pid}); give each runner a work folder of its own`
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const cwdOf = (pid: number): string | undefined => {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`)
  } catch {
    return undefined
  }
}

/** Holds `workdir` for this runner until the scope closes; ends what a killed runner left at work in it. Returns what it ended. */
export const claim = (workdir: string): Effect.Effect<ReadonlyArray<ProcessTree.Found>, WorkdirInUse, Scope.Scope> =>
  Effect.gen(function*() {
    fs.mkdirSync(workdir, { recursive: true })
    const pidFile = path.join(workdir, "runner.pid")
    const holder = Number.parseInt(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, "utf8") : "", 10)
    if (Number.isFinite(holder) && holder !== process.pid && alive(holder)) return yield* new WorkdirInUse({ workdir, pid: holder })
    fs.writeFileSync(pidFile, String(process.pid))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(pidFile, { force: true })))
    const inside = (dir: string | undefined) => dir !== undefined && dir.startsWith(path.resolve(workdir) + path.sep)
    const left = ProcessTree.find({ marker: () => true }).filter((p) => inside(cwdOf(p.pid)))
    const ended = left.length === 0 ? [] : yield* ProcessTree.end(ProcessTree.find({ roots: left }), Process.KILL_GRACE)
    // A runner that was killed may have left its clones mid-operation (a git lock, a half-made
    // commit): they are only caches of the remote, so they go, and are cloned again when needed.
    if (Number.isFinite(holder) && holder !== process.pid) fs.rmSync(path.join(workdir, "runs"), { recursive: true, force: true })
    return ended
  })
