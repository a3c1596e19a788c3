/**
 * Evidence for the Schema.Class finding: constructing a class whose fields include another
 * Schema.Class (TaskResult, AttemptOutput) compiles a fresh validator on every construction;
 * a class of plain fields does not. `node bench/proposals/schema-class-cost.mjs` after a build.
 */
import { Agent, RunReport, Workspace } from "@braid/core"

const N = 20_000
const time = (name, f) => {
  for (let i = 0; i < 1_000; i++) f()
  const t = performance.now()
  for (let i = 0; i < N; i++) f()
  console.log(`${name.padEnd(44)} ${((performance.now() - t) * 1000 / N).toFixed(1).padStart(6)} µs`)
}
const quality = new RunReport.Quality({ score: 100, passes: true, issues: [], suggestions: [], reviewer: "mock" })
const attempt = new RunReport.AttemptRecord({
  attempt: 1, startedAt: "2026-01-01T00:00:00.000Z", durationMs: 0, summary: "s", commit: "m1",
  changedFiles: ["a"], review: quality, inputTokens: 0, outputTokens: 0, costUsd: 0
})
const task = { taskId: "t", title: "T", result: "s", quality, qualityIterations: 0, status: "completed", attempts: [attempt], durationMs: 0 }
time("Workspace.AttemptChange (plain fields)", () => new Workspace.AttemptChange({ commit: "m1", files: ["a"] }))
time("RunReport.Quality (plain fields)", () => new RunReport.Quality({ score: 1, passes: true, issues: [], suggestions: [], reviewer: "r" }))
time("RunReport.TaskResult (class fields)", () => new RunReport.TaskResult(task))
time("RunReport.TaskResult, validation off", () => new RunReport.TaskResult(task, true))
time("Agent.AttemptOutput (optional class field)", () => new Agent.AttemptOutput({ summary: "s" }))
time("Agent.AttemptOutput, validation off", () => new Agent.AttemptOutput({ summary: "s" }, true))
