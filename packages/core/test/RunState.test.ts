/**
 * Journals written by braid as it was before the run state had classes of its own: two real
 * runs' journals (`fixtures/journal/`, made by the built `braid` — the bundled example, and a
 * run retried twice then landed, with tokens and costs) and the JSON reports those runs
 * printed. Every entry still decodes and encodes back to the very same JSON, the fold of each
 * journal holds what the run reported, and the report projected from the fold is the report
 * the run printed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Journal from "../src/run/Journal.js"
import * as Plan from "../src/run/Plan.js"
import * as RunOutcome from "../src/run/RunOutcome.js"
import * as RunReport from "../src/present/RunReport.js"
import * as RunState from "../src/run/RunState.js"

const fixtures = path.join(__dirname, "fixtures/journal")

const load = (name: string) => {
  const file = path.join(fixtures, `${name}.journal.jsonl`)
  const parsed = Journal.parse(file, fs.readFileSync(file, "utf8"))
  if (Either.isLeft(parsed)) throw parsed.left
  return {
    records: parsed.right.records,
    report: JSON.parse(fs.readFileSync(path.join(fixtures, `${name}.report.json`), "utf8")),
    plan: Effect.runSync(Plan.parse(fs.readFileSync(path.join(fixtures, `${name}.plan.source`), "utf8"), `${name}.plan.source`))
  }
}

const tasksOf = (report: any): Array<any> => report.streamResults.flatMap((s: any) => s.results)

/**
 * The report projected from the fold of `records`, encoded. What the journal does not hold
 * comes from the repository and the run's services: given as the run had them (its report).
 */
const projected = (plan: Plan.Plan, records: ReadonlyArray<RunState.FoldEntry>, report: any) => {
  const streams: Array<any> = report.streamResults
  return Schema.encodeSync(RunReport.RunReport)(RunOutcome.report(RunOutcome.fromState(RunState.fold(records), {
    plan,
    agents: new Map(streams.map((s) => [s.streamName, s.agent])),
    changed: new Map(streams.map((s) => [s.streamName, s.changedFiles])),
    overlaps: Schema.decodeUnknownSync(Schema.Array(RunReport.Overlap))(report.conflictReport.overlaps),
    integrity: report.integrity
  })))
}

describe("a journal written in today's format", () => {
  for (const name of ["checkout", "totals"]) {
    it(`${name}: every entry decodes and encodes back to the same JSON`, () => {
      const { records } = load(name)
      assert.isAbove(records.length, 20)
      for (const r of records) {
        const decoded = Schema.decodeUnknownEither(RunState.Value)(r.value)
        assert.isTrue(Either.isRight(decoded), `${r.key}: ${Either.isLeft(decoded) ? decoded.left.message : ""}`)
        assert.deepStrictEqual(Schema.encodeSync(RunState.Value)(Either.getOrThrow(decoded)), r.value as any, r.key)
      }
    })

    it(`${name}: the fold holds every task's latest round as the run reported it`, () => {
      const { records, report } = load(name)
      const state = RunState.fold(records)
      assert.strictEqual(state.started?.runId, report.runId)
      assert.strictEqual(state.finished, report.status)
      for (const t of tasksOf(report)) {
        const task = state.tasks.get(t.taskId)!
        assert.strictEqual(task.settled?.status, t.status, t.taskId)
        assert.strictEqual(task.settled?.result, t.result, t.taskId)
        // The report marks a retried round's attempts with their round; the journal does not.
        const journaled = task.attempts.map((a) => JSON.parse(JSON.stringify(a)))
        assert.deepStrictEqual(journaled, t.attempts.map(({ round: _, ...a }: any) => a), t.taskId)
      }
      const spent = [...state.spent.values()].reduce((s, x) => s + x.usd, 0)
      assert.closeTo(spent, report.usage.costUsd, 1e-9)
    })

    it(`${name}: the report projected from the fold is the report the run printed`, () => {
      const { plan, records, report } = load(name)
      assert.deepStrictEqual(projected(plan, records, report), report)
    })
  }

  it("an older journal's variants (no findings or samples, no zero tokens in a settled attempt) project the same report", () => {
    const { plan, records, report } = load("checkout")
    // What the decoders fill in with their defaults, left out as earlier braids wrote it.
    const older = (value: unknown, settled: boolean): unknown => {
      if (Array.isArray(value)) return value.map((v) => older(v, settled))
      if (value === null || typeof value !== "object") return value
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value)) {
        if ((k === "findings" || k === "samples") && Array.isArray(v) && v.length === 0) continue
        if (settled && ["inputTokens", "outputTokens", "costUsd"].includes(k) && v === 0 && "changedFiles" in value) continue
        out[k] = older(v, settled)
      }
      return out
    }
    const rewritten = records.map((r) => ({ ...r, value: older(r.value, (r.value as any)._tag === "Settled") }))
    assert.notDeepEqual(rewritten, records as any)
    assert.deepStrictEqual(projected(plan, rewritten, report), report)
  })
})
