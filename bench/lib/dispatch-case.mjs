/**
 * Child process for section 1 (dispatch overhead). Input: { variant, tasks, streams,
 * maxParallel, seed, workspace?, journal?, profile? }.
 *
 * - variant "baseline": the plain-Promise baseline (loads neither Effect nor braid).
 * - variant "braid": Orchestrator.run with the mocked harness (agents and reviewers answer
 *   at once) and silent progress, over `workspace` "memory" (MemoryWorkspace) or "light"
 *   (bench/lib/light-workspace.mjs: the engine alone); with `journal`, every event is also
 *   appended to a FileRunStore journal in a temporary directory, as the CLI does.
 * - `profile`: the run is CPU-profiled through the inspector and summarised.
 *
 * Only the run is timed: module loading, plan generation and decoding are not (decoding is
 * reported apart).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { measure, report } from "./measure.mjs"
import { overheadPlan } from "./plans.mjs"

const input = JSON.parse(process.argv[2])
const doc = overheadPlan(input)

if (input.variant === "baseline") {
  const { runBaseline } = await import("./baseline.mjs")
  global.gc()
  const m = await measure(() => runBaseline(doc))
  report({ ...m, value: undefined, status: m.value.status, completed: m.value.completed })
} else {
  const core = await import("@braid/core")
  const { MemoryWorkspace, Orchestrator, Plan, Progress, Workspace } = core
  const { Harness } = await import("@braid/testkit")
  const { NodeContext } = await import("@effect/platform-node")
  const { Effect, Layer } = await import("effect")
  const Profile = await import("./profile.mjs")
  const LightWorkspace = await import("./light-workspace.mjs")

  const decodeStarted = performance.now()
  const plan = await Effect.runPromise(Plan.decode(doc, "bench"))
  const decodeMs = performance.now() - decodeStarted

  const setup = await Effect.runPromise(Effect.gen(function*() {
    const harness = yield* Harness.make({})
    const memory = yield* MemoryWorkspace.make({ base: { "README.md": "base\n" } })
    return { harness, memory }
  }).pipe(Effect.provide(NodeContext.layer)))
  const workspace = input.workspace === "light" ? LightWorkspace.make(setup.memory.service) : setup.memory.service
  const services = (progress) =>
    Layer.mergeAll(setup.harness.layer, Layer.succeed(Workspace.Workspace, workspace), Layer.succeed(Progress.Progress, progress))

  let journalDir
  let run
  if (input.journal) {
    // The CLI's wiring (packages/cli Session): a FileRunStore, the run created, every event
    // appended to its journal (each append returns once its record is on disk).
    journalDir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-journal-"))
    const store = core.FileRunStore.make(journalDir)
    const manifest = new core.RunStore.RunManifest({
      runId: "bench",
      createdAt: new Date().toISOString(),
      planSource: "bench",
      planBaseDir: journalDir,
      options: {}
    })
    await Effect.runPromise(store.create(manifest, JSON.stringify(doc)))
    run = () =>
      Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const writer = yield* store.journal("bench")
        const progress = { publish: (event) => Effect.orDie(writer.append(event)) }
        return yield* Orchestrator.run(plan, { runId: "bench" }).pipe(Effect.provide(services(progress)))
      })))
  } else {
    run = () => Effect.runPromise(Orchestrator.run(plan, { runId: "bench" }).pipe(Effect.provide(services({ publish: () => Effect.void }))))
  }

  global.gc()
  const m = await measure(input.profile ? () => Profile.profiled(run) : run)
  const r = input.profile ? m.value.value : m.value
  let journal
  if (journalDir !== undefined) {
    const file = path.join(journalDir, "runs", "bench", "journal.jsonl")
    const text = fs.readFileSync(file, "utf8")
    journal = { records: text.split("\n").filter((l) => l !== "").length, bytes: Buffer.byteLength(text) }
    fs.rmSync(journalDir, { recursive: true, force: true })
  }
  report({
    ...m,
    value: undefined,
    decodeMs: +decodeMs.toFixed(1),
    status: r.status,
    completed: r.summary.completedTasks,
    ...(journal ? { journal } : {}),
    ...(input.profile ? { profile: Profile.summarise(m.value.profile, 12) } : {})
  })
}
