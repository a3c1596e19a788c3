/**
 * CPU profiles: take one of a piece of work in this process (through the inspector, so
 * module loading is left out), and summarise a V8 profile — self time per function, per
 * source file and per broad category, heaviest first. Also usable on a `.cpuprofile` from
 * `node --cpu-prof`: `node bench/lib/profile.mjs file.cpuprofile`.
 */
import { readFileSync } from "node:fs"
import { Session } from "node:inspector/promises"

const short = (url) => url.replace(/^file:\/\//, "").replace(/.*\/node_modules\//, "").replace(/.*\/packages\//, "")

/** Where a source file belongs, for a coarse breakdown. */
const categoryOf = (file, fn) => {
  if (fn === "(garbage collector)") return "garbage collection"
  if (file.startsWith("core/dist/workspaces/MemoryWorkspace") || file.startsWith("core/dist/internal/tree")) return "MemoryWorkspace"
  if (file.startsWith("core/dist/workspaces/GitWorkspace") || file.startsWith("core/dist/internal/gitWorkspace") || file.startsWith("core/dist/internal/git")) return "GitWorkspace"
  if (file.startsWith("core/dist/")) return "braid core (dispatch, gate, stages)"
  if (file.startsWith("agents/dist/")) return "mocked harness"
  if (/^effect\/dist\/esm\/(Schema|ParseResult|SchemaAST)\.js/.test(file)) return "effect Schema (class construction, validation)"
  if (/^effect\/dist\/esm\/internal\/dateTime/.test(file) || /^effect\/dist\/esm\/DateTime/.test(file)) return "effect DateTime (event timestamps)"
  if (file.startsWith("effect/")) return "effect runtime (fibers, scheduling, data)"
  if (file.startsWith("node:") || file === "(native)") return "node and native"
  return "other"
}

/** Summarises a profile object (`Profiler.stop()` result or a parsed `.cpuprofile`). */
export const summarise = (profile, top = 15) => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  const dt = profile.timeDeltas
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0))
  }
  let total = 0
  const byFunction = new Map()
  const byFile = new Map()
  const byCategory = new Map()
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id)
    if (callFrame.functionName === "(idle)" || callFrame.functionName === "(program)") continue
    total += us
    const file = short(callFrame.url) || "(native)"
    const fn = `${callFrame.functionName || "(anonymous)"} ${file}:${callFrame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
    byFile.set(file, (byFile.get(file) ?? 0) + us)
    const category = categoryOf(file, callFrame.functionName)
    byCategory.set(category, (byCategory.get(category) ?? 0) + us)
  }
  const rank = (m, n) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({
      name,
      ms: +(us / 1000).toFixed(1),
      pct: +(100 * us / total).toFixed(1)
    }))
  return {
    totalMs: +(total / 1000).toFixed(1),
    categories: rank(byCategory, 20),
    files: rank(byFile, top),
    functions: rank(byFunction, top)
  }
}

/** Runs `work` under the inspector's CPU profiler; returns its value and the profile. */
export const profiled = async (work, intervalUs = 500) => {
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: intervalUs })
  await session.post("Profiler.start")
  try {
    const value = await work()
    const { profile } = await session.post("Profiler.stop")
    return { value, profile }
  } finally {
    session.disconnect()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = summarise(JSON.parse(readFileSync(process.argv[2], "utf8")), Number(process.argv[3] ?? 25))
  console.log(`total ${s.totalMs} ms`)
  for (const [title, list] of [["category", s.categories], ["file", s.files], ["function", s.functions]]) {
    console.log(`-- by ${title}`)
    for (const f of list) console.log(`${String(f.pct).padStart(5)}%  ${String(f.ms).padStart(8)} ms  ${f.name}`)
  }
}
