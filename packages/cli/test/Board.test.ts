/**
 * The board as a pure function of its folded state: what each stream's line says at each stage,
 * the integration line, the latest events, the final summary, colour, and fitting a narrow or
 * short terminal. The same events as a run publishes, made by hand.
 */
import type { Progress } from "@braid/core"
import { assert, describe, it } from "@effect/vitest"
import * as Board from "../src/Board.js"
import * as Render from "../src/Render.js"

const layout: Board.Layout = {
  runId: "r1",
  title: "checkout (shop)",
  threshold: 80,
  maxParallel: 2,
  streams: [
    { name: "db", role: "database-engineer", backend: "claude-code", tasks: ["db-1"] },
    { name: "api", role: "api-developer", backend: "codex", tasks: ["api-1"] },
    { name: "docs", role: "documentation-writer", backend: "script", tasks: ["docs-1"] }
  ]
}

let clock = Date.parse("2026-12-01T10:00:00.000Z")
const at = (ms = 1000) => new Date((clock += ms)).toISOString()
const fold = (events: ReadonlyArray<Progress.RunEvent>) => events.reduce(Board.apply, Board.initial(layout))
const show = (state: Board.BoardState, options: Partial<Board.RenderOptions> = {}) =>
  Board.render(state, { columns: 140, rows: 40, color: false, now: clock, verbose: false, ...options })
const agent = { backend: "claude-code", sessionId: "s", turns: 3, model: "m", inputTokens: 1200, outputTokens: 300, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.0125, durationMs: 900, permissionDenials: [], providerWaits: 0 } as const

const started: Array<Progress.RunEvent> = [
  { _tag: "RunStarted", at: at(), runId: "r1", streams: ["db", "api", "docs"], tasks: 3, base: "b", target: "main", targetAt: "b" },
  { _tag: "TaskWaiting", at: at(), stream: "db", taskId: "db-1", for: "slot", on: [] },
  { _tag: "TaskStarted", at: at(), stream: "db", taskId: "db-1", round: 0 },
  { _tag: "AttemptStarted", at: at(), stream: "db", taskId: "db-1", attempt: 1 },
  { _tag: "TaskWaiting", at: at(), stream: "api", taskId: "api-1", for: "dependency", on: ["db-1"] },
  { _tag: "TaskWaiting", at: at(), stream: "docs", taskId: "docs-1", for: "slot", on: [] }
]

describe("Board", () => {
  it("shows each stream's role, backend, task, attempt and what it waits for", () => {
    const lines = show(fold(started))
    assert.match(lines[0]!, /^braid r1 checkout \(shop\) · 0\/3 tasks settled · 5\.0 s · 0 tokens · \$0\.0000$/)
    assert.match(lines.find((l) => l.startsWith("db "))!, /^db\s+database-engineer\s+claude-code\s+db-1\s+1\/3\s+–\s+agent working\s+3\.0 s\s+\$0\.0000$/)
    assert.match(lines.find((l) => l.startsWith("api "))!, /api-1\s+–\s+–\s+waits for db-1/)
    assert.match(lines.find((l) => l.startsWith("docs "))!, /waits for an agent slot/)
    assert.include(lines, "integration  waits for the streams")
  })

  it("a low score against the threshold, the retry, a provider wait, cost and tokens so far", () => {
    const state = fold([
      ...started,
      { _tag: "AttemptFinished", at: at(), stream: "db", taskId: "db-1", attempt: 1, commit: "abc", files: ["a"], summary: "", agent },
      { _tag: "ReviewStarted", at: at(), stream: "db", taskId: "db-1", attempt: 1 },
      { _tag: "ReviewRecorded", at: at(), stream: "db", taskId: "db-1", attempt: 1, score: 55, passes: false, issues: ["npm test exited 1\nlots of output"], suggestions: [], reviewer: "checks", durationMs: 1, inputTokens: 0, outputTokens: 0, costUsd: 0 },
      { _tag: "AttemptStarted", at: at(), stream: "db", taskId: "db-1", attempt: 2 },
      { _tag: "ProviderWaited", at: at(), stream: "db", taskId: "db-1", attempt: 2, provider: "anthropic", message: "429", failure: 1, waitMs: 30_000, concurrency: 1 }
    ])
    const lines = show(state)
    const db = lines.find((l) => l.startsWith("db "))!
    assert.match(db, /db-1\s+2\/3\s+55<80\s+waits for anthropic \(busy\) 30\.0 s/)
    assert.match(db, /\$0\.0125$/)
    assert.match(lines[0]!, /1500 tokens · \$0\.0125$/)
    assert.isTrue(lines.some((l) => l.endsWith("db · db-1 · attempt 1 scored 55 < 80: npm test exited 1 lots of output")))
    assert.isTrue(lines.some((l) => l.includes("anthropic busy (429); waiting 30.0 s, no gate run used")))
  })

  it("the integration phases and the final summary", () => {
    const settled = (stream: string, taskId: string): Progress.RunEvent => ({ _tag: "TaskSettled", at: at(), stream, taskId, status: "completed", score: 100, error: null, durationMs: 1, head: "h" })
    const state = fold([
      ...started,
      settled("db", "db-1"),
      settled("api", "api-1"),
      settled("docs", "docs-1"),
      { _tag: "IntegrationStarted", at: at(), streams: ["db", "api", "docs"], generation: 0 },
      { _tag: "StreamMerged", at: at(), stream: "db", commit: "1111111111aa" },
      { _tag: "ConflictDetected", at: at(), streams: ["api", "db"], paths: ["src/x.js"], kind: "textual" }
    ])
    assert.match(show(state).find((l) => l.startsWith("integration"))!, /^integration  merging 1\/3 · merged 1\/3 · conflict api↔db src\/x\.js: resolving$/)
    const end = fold([
      ...[...started, settled("db", "db-1"), settled("api", "api-1"), settled("docs", "docs-1")],
      { _tag: "IntegrationStarted", at: at(), streams: ["db", "api", "docs"], generation: 0 },
      { _tag: "ConflictDetected", at: at(), streams: ["api", "db"], paths: ["src/x.js"], kind: "textual" },
      { _tag: "ConflictSettled", at: at(), streams: ["api", "db"], paths: ["src/x.js"], strategy: "agent", outcome: "resolved", commit: "c", detail: "kept both" },
      { _tag: "VerificationStarted", at: at(), commit: "c", commands: ["npm test"] },
      { _tag: "VerificationFinished", at: at(), passed: true, commit: "c", checks: [{ name: "npm test", argv: ["npm", "test"], exitCode: 0, timedOut: false, durationMs: 1, outputTail: "" }] },
      { _tag: "Landed", at: at(), target: "main", commit: "2222222222bb", previous: "b" },
      { _tag: "RunFinished", at: at(), status: "succeeded" }
    ])
    const lines = show(end)
    assert.match(lines.find((l) => l.startsWith("integration"))!, /landed 2222222222 on main · merged 0\/3 · conflict api↔db src\/x\.js: resolved · verify passed 1\/1/)
    assert.strictEqual(lines.at(-2), "SUCCEEDED: 3/3 completed, 0 need review, 0 failed, 0 skipped · 1 conflict(s) · verification passed")
    assert.match(lines.at(-1)!, /^landed 2222222222 on main · 0 tokens · \$0\.0000 · \d+\.\d s$/)
    for (const s of ["db", "api", "docs"]) assert.match(lines.find((l) => l.startsWith(`${s} `))!, /done \(1\/1\)/)
  })

  it("a plan with no verify commands: the board says so, never that verification passed", () => {
    const lines = show(fold([
      ...started,
      { _tag: "IntegrationStarted", at: at(), streams: ["db"], generation: 0 },
      { _tag: "VerificationStarted", at: at(), commit: "c", commands: [] },
      { _tag: "VerificationFinished", at: at(), passed: true, commit: "c", checks: [] },
      { _tag: "RunFinished", at: at(), status: "succeeded" }
    ]))
    assert.include(lines.find((l) => l.startsWith("integration"))!, "no verify commands")
    assert.isFalse(lines.some((l) => /verif\w* passed/.test(l)), lines.join("\n"))
    assert.match(lines.at(-2)!, /verification not run$/)
  })

  it("a stream none of whose tasks ran is shown as not started, on the board and in the plain lines, not as finished", () => {
    const end = fold([
      ...started,
      { _tag: "TaskSettled", at: at(), stream: "db", taskId: "db-1", status: "failed", score: null, error: "agent exited 1", durationMs: 1, head: null },
      { _tag: "StreamFinished", at: at(), stream: "db", started: true },
      { _tag: "TaskSettled", at: at(), stream: "api", taskId: "api-1", status: "skipped", score: null, error: "not started: dependency db-1 failed", durationMs: 0, head: null },
      { _tag: "StreamFinished", at: at(), stream: "api", started: false },
      // Paused by the budget before docs-1 started: nothing of docs settled.
      { _tag: "StreamFinished", at: at(), stream: "docs", started: false },
      { _tag: "RunFinished", at: at(), status: "failed" }
    ])
    const lines = show(end)
    assert.match(lines.find((l) => l.startsWith("api "))!, /not started \(1 skipped\)/)
    assert.match(lines.find((l) => l.startsWith("docs "))!, /not started /)
    for (const s of ["api", "docs"]) assert.notMatch(lines.find((l) => l.startsWith(`${s} `))!, /done|finished/)
    assert.match(lines.find((l) => l.startsWith("db "))!, /1 task failed/)
    assert.strictEqual(Render.line({ _tag: "StreamFinished", at: at(), stream: "api", started: false }), "  api not started: none of its tasks ran")
    assert.strictEqual(Render.line({ _tag: "StreamFinished", at: at(), stream: "db", started: true }), "  db finished")

    // Streams summed up in one line count as finished only when a task of theirs ran.
    const many: Board.Layout = { ...layout, streams: Array.from({ length: 12 }, (_, i) => ({ name: `s${i}`, role: "api-developer", backend: "script", tasks: [`t${i}`] })) }
    const skippedAll = Array.from({ length: 12 }, (_, i): Array<Progress.RunEvent> => [
      { _tag: "TaskSettled", at: at(), stream: `s${i}`, taskId: `t${i}`, status: i < 2 ? "completed" : "skipped", score: null, error: null, durationMs: 0, head: null },
      { _tag: "StreamFinished", at: at(), stream: `s${i}`, started: i < 2 }
    ]).flat().reduce(Board.apply, Board.initial(many))
    const summed = Board.render(skippedAll, { columns: 100, rows: 8, color: false, now: clock, verbose: false })
    // s0 and s1 (which ran) are shown first; the eight summed up never started.
    assert.isTrue(summed.some((l) => l.startsWith("s1 ")))
    assert.include(summed, "… 8 more streams (0 finished, 0 waiting, 8 not started)")
  })

  it("cuts every line to the terminal's width and sums up the streams that do not fit, working ones first", () => {
    const many: Board.Layout = { ...layout, streams: Array.from({ length: 30 }, (_, i) => ({ name: `s${i}`, role: "api-developer", backend: "script", tasks: [`t${i}`] })) }
    const state = [
      { _tag: "TaskStarted", at: at(), stream: "s29", taskId: "t29", round: 0 } as const,
      { _tag: "AttemptStarted", at: at(), stream: "s29", taskId: "t29", attempt: 1 } as const
    ].reduce(Board.apply, Board.initial(many))
    const lines = Board.render(state, { columns: 40, rows: 8, color: false, now: clock, verbose: false })
    assert.isAtMost(lines.length, 8)
    for (const l of lines) assert.isAtMost([...l].length, 40, l)
    assert.isTrue(lines.some((l) => l.startsWith("s29 ")), "the working stream is shown")
    assert.include(lines, "… 26 more streams (0 finished, 0 waitin…")
    const wide = Board.render(state, { columns: 100, rows: 8, color: false, now: clock, verbose: false })
    assert.include(wide, "… 26 more streams (0 finished, 0 waiting, 26 not started)")
  })

  it("colour only when asked; --verbose shows a working stream's latest output line", () => {
    const state = fold([...started, { _tag: "AgentOutput", at: at(), stream: "db", taskId: "db-1", attempt: 1, line: "creating the migration" }])
    assert.isFalse(show(state).some((l) => l.includes("\u001b[")))
    assert.isTrue(show(state, { color: true }).some((l) => l.includes("\u001b[36magent working")))
    assert.notInclude(show(state).join("\n"), "creating the migration")
    assert.isTrue(show(state, { verbose: true }).some((l) => /^\s+│ creating the migration$/.test(l)))
  })

  it("what agents print and the plan's names are shown with their escapes visible, before the board's own colours", () => {
    const hostile = "\u001b]0;pwned\u0007\u001b[2J"
    const state = fold([
      ...started,
      { _tag: "AgentOutput", at: at(), stream: "db", taskId: "db-1", attempt: 1, line: `${hostile}done` },
      { _tag: "ReviewRetried", at: at(), stream: "db", taskId: "db-1", attempt: 1, message: `judge said ${hostile}\nsecond line` }
    ])
    const lines = show(state, { verbose: true, color: true })
    const text = lines.join("\n")
    // Only the board's own colour codes (ESC [ n m) remain: no title change, no screen clear.
    assert.notMatch(text, /\u001b(?!\[\d+m)/)
    assert.isTrue(lines.some((l) => l.includes("│ \\x1b]0;pwned\\x07\\x1b[2Jdone")))
    assert.isTrue(lines.some((l) => l.includes("judge said \\x1b]0;pwned\\x07\\x1b[2J\\nsecond line")))
    const plain = Render.line({ _tag: "AgentOutput", at: at(), stream: "db", taskId: "db-1", attempt: 1, line: hostile }, { verbose: true })
    assert.strictEqual(plain, "  db · db-1 │ \\x1b]0;pwned\\x07\\x1b[2J")
  })
})
