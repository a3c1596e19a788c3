/**
 * Child process for section 8 (confinement): what confinement costs per process start. One
 * program (`true`, then `node -e 0`) run through `Process.run` many times, unconfined and
 * confined (bubblewrap: a worktree-like folder writable, the home hidden), and confined with
 * one allowed endpoint (the network relay starts in front of the program), interleaved round
 * by round so the machine's load falls on all alike. Input: { rounds }.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Process, Sandbox } from "@braid/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { report } from "./measure.mjs"

const { rounds } = JSON.parse(process.argv[2])
const why = Effect.runSync(Sandbox.unavailable())
if (why !== undefined) {
  report({ unavailable: why })
  process.exit(0)
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-sandbox-"))
const policy = { writable: [dir], hidden: [os.homedir()], readable: [] }
const withNetwork = { ...policy, network: [{ host: "127.0.0.1", port: 9 }] }
const programs = { true: ["true"], node: [process.execPath, "-e", "0"] }
const variants = {
  unconfined: undefined,
  confined: policy,
  "confined + network": withNetwork
}

const once = (argv, sandbox) =>
  Effect.gen(function*() {
    const start = performance.now()
    const result = yield* Process.run(argv, { cwd: dir, ...(sandbox !== undefined ? { sandbox } : {}) })
    if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr}`)
    return performance.now() - start
  })

const samples = {}
await Effect.runPromise(
  Effect.gen(function*() {
    // One of each first, not counted: the first bubblewrap and node starts warm the caches.
    for (const argv of Object.values(programs)) for (const sandbox of Object.values(variants)) yield* once(argv, sandbox)
    for (let r = 0; r < rounds; r++) {
      for (const [program, argv] of Object.entries(programs)) {
        for (const [variant, sandbox] of Object.entries(variants)) {
          const key = `${program} · ${variant}`
          ;(samples[key] ??= []).push(yield* once(argv, sandbox))
        }
      }
    }
  }).pipe(Effect.provide(NodeContext.layer))
)
fs.rmSync(dir, { recursive: true, force: true })
report({ samples })
