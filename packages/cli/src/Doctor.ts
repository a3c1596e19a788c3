/**
 * `braid doctor [runId] [--repair]`: what is wrong with the runs recorded in a repository — a
 * journal line that is not a record, a missing file, a temporary file a failed write left — and
 * what `--repair` does about each; with `--repair`, done, the journal as it was copied aside
 * first. Nothing is repaired under a live run.
 *
 * @since 0.1.0
 */
import type * as FileRunStore from "@braid/core/FileRunStore"
import { Console, Effect, Option, Schema } from "effect"
import * as Runs from "./Runs.js"

/** The arguments of `braid doctor`. */
export interface DoctorArgs {
  readonly runId: Option.Option<string>
  readonly repo: Option.Option<string>
  readonly repair: boolean
}

/** Runs whose records stop them from being read or continued, after what `doctor` did (exit 2). */
export class RunsNeedRepair extends Schema.TaggedError<RunsNeedRepair>()("RunsNeedRepair", {
  /** Each run, and the command that deals with it. */
  runs: Schema.Array(Schema.Struct({ runId: Schema.String, next: Schema.String }))
}) {
  override get message(): string {
    return this.runs.map((r) => `run ${r.runId} cannot be continued as it is: ${r.next}`).join("\nbraid: ")
  }
}

/** The lines `doctor` prints about one run. */
const describe = (c: FileRunStore.Checkup): Array<string> => {
  const head = `run ${c.runId}: ${c.records !== undefined ? `${c.records} journal record${c.records === 1 ? "" : "s"}` : "journal unreadable"}${
    c.heldBy !== undefined ? `, in use by braid process ${c.heldBy} (nothing is repaired while it works)` : ""
  }${c.findings.length === 0 ? ", no problems" : `, ${c.findings.length} problem${c.findings.length === 1 ? "" : "s"}`}`
  return [
    head,
    ...c.findings.flatMap((f) => [`  - ${f.problem}`, `    ${f.repair !== undefined ? `a repair would ${f.repair}` : "braid cannot repair this"}`]),
    ...(c.copies.length > 0 ? [`  copies of the journal kept: ${c.copies.join(", ")}`] : [])
  ]
}

/** What a run that cannot go on as it is needs next, or undefined when it can. */
const nextFor = (c: FileRunStore.Checkup, repaired: boolean): string | undefined => {
  const blocking = c.findings.filter((f) => !f.harmless)
  if (blocking.length === 0) return undefined
  if (!repaired && blocking.every((f) => f.repair !== undefined)) {
    return `see above; braid doctor ${c.runId} --repair drops what is listed (keeping a copy of the journal)`
  }
  return `braid cannot repair it; braid clean ${c.runId} removes its worktrees, branches and record`
}

/** `braid doctor`: every run (or the one named) checked, and repaired with `--repair`. */
export const doctor = (args: DoctorArgs) =>
  Effect.gen(function*() {
    const { store } = yield* Runs.storeFor(Option.getOrElse(args.repo, () => process.cwd()))
    const ids = Option.isSome(args.runId) ? [args.runId.value] : yield* store.list()
    if (ids.length === 0) {
      yield* Console.log(`no runs in ${store.location}`)
      return
    }
    const stuck: Array<{ runId: string; next: string }> = []
    for (const runId of ids) {
      let checked = yield* store.checkup(runId)
      for (const line of describe(checked)) yield* Console.log(line)
      let repaired = false
      if (args.repair && checked.heldBy === undefined && checked.findings.some((f) => f.repair !== undefined)) {
        const done = yield* store.repair(runId)
        for (const line of done.done) yield* Console.log(`  repaired: ${line}`)
        if (done.backup !== undefined) yield* Console.log(`  the journal as it was is kept in ${done.backup}`)
        repaired = true
        checked = yield* store.checkup(runId)
      }
      if (checked.heldBy !== undefined) continue
      const next = nextFor(checked, repaired)
      if (next !== undefined) stuck.push({ runId, next })
    }
    if (stuck.length > 0) return yield* new RunsNeedRepair({ runs: stuck })
  })
