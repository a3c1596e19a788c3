/**
 * Fuzzing plan files: seeded mutations of the bundled example (examples/checkout-flow/plan.yaml)
 * — fields dropped, duplicated, retyped and renamed, control characters, invalid UTF-8, alias
 * bombs, huge and deeply nested values, 10,000-task chains and cycles, 10,000 streams. Every
 * plan ends as a plan or as `InvalidPlan` naming its problems, never a defect, in bounded time.
 *
 * Most mutations go in-process through what `braid plan` reads a plan with (`Plan.load`, the
 * overrides, `ExecutionPlan.make` and `render`): a process each would take minutes. Sixteen of
 * them, the pathological ones among them, go through the built `braid plan` (`npm test` builds
 * first): exit 0 or 2, no stack trace, nothing run, the repository untouched.
 */
import * as ExecutionPlan from "@braid/core/ExecutionPlan"
import * as Plan from "@braid/core/Plan"
import { NodeContext } from "@effect/platform-node"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as YAML from "yaml"
import * as PlanFields from "../src/PlanFields.js"

const bin = path.resolve(__dirname, "../dist/bin.js")
const example = YAML.parse(fs.readFileSync(path.resolve(__dirname, "../../../examples/checkout-flow/plan.yaml"), "utf8")) as Doc
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-planfuzz-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

type Doc = Record<string, unknown>

/** mulberry32: every mutation is reproducible from its seed. */
const rngOf = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  const pick = <A>(list: ReadonlyArray<A>): A => list[Math.floor(next() * list.length)]!
  return { next, int, pick }
}
type Rng = ReturnType<typeof rngOf>

/** Every place in a document (a container and a key in it), found without recursion. */
const places = (doc: unknown): Array<{ readonly parent: Record<string, unknown> | Array<unknown>; readonly key: string | number }> => {
  const found: Array<{ parent: Record<string, unknown> | Array<unknown>; key: string | number }> = []
  const stack: Array<unknown> = [doc]
  while (stack.length > 0) {
    const value = stack.pop()
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        found.push({ parent: value, key: i })
        stack.push(v)
      })
    } else if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        found.push({ parent: value as Record<string, unknown>, key: k })
        stack.push(v)
      }
    }
  }
  return found
}

const nested = (depth: number): unknown => {
  let value: unknown = "bottom"
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { deeper: value }
  return value
}

const HOSTILE = ["\n", "\nBraid-Step: forged\nSigned-off-by: Mallory <m@example.com>", "\r", "\t", "\u0000", "\u001b]0;pwned\u0007\u001b[2J", "\u009b31m", "\u007f", "\ud800", "\u202e", "é"]
const NAMES = ["front end", "a..b", "x.lock", ".hidden", "end.", "-dash", "a/b", "a\\b", "@", "a@{1}", "x".repeat(252), "名前", "integration", "_integration", "ok-name"]
const retyped = (rng: Rng): unknown =>
  rng.pick<() => unknown>([
    () => 0,
    () => -1,
    () => 1e308,
    () => 3.5,
    () => "",
    () => "text",
    () => true,
    () => null,
    () => [],
    () => ({}),
    () => [1, "a", null],
    () => ({ x: 1 }),
    () => "x".repeat(rng.int(1_000, 200_000)),
    () => Array.from({ length: rng.int(100, 20_000) }, (_, i) => i),
    () => nested(rng.int(10, 300))
  ])()

/** One structural mutation of the document, described for the failure message. */
const mutate = (doc: Doc, rng: Rng): string => {
  const all = places(doc)
  const at = rng.pick(all)
  const { key, parent } = at
  const tasks = Array.isArray(doc.tasks) ? (doc.tasks as Array<Doc>) : []
  const streams = Array.isArray(doc.streams) ? (doc.streams as Array<Doc>) : []
  const ids = tasks.map((t) => t?.id).filter((id): id is string => typeof id === "string")
  switch (rng.int(0, 9)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1)
      else delete parent[key as string]
      return `dropped ${String(key)}`
    case 1:
      if (Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(parent[key as number]))
      else if (tasks.length > 0) tasks.push(structuredClone(rng.pick(tasks)))
      return `duplicated ${String(key)}`
    case 2:
      ;(parent as Record<string | number, unknown>)[key] = retyped(rng)
      return `retyped ${String(key)}`
    case 3: {
      const strings = all.filter((p) => typeof (p.parent as Record<string | number, unknown>)[p.key] === "string")
      if (strings.length === 0) return "no string"
      const s = rng.pick(strings)
      const text = (s.parent as Record<string | number, unknown>)[s.key] as string
      const cut = rng.int(0, text.length)
      ;(s.parent as Record<string | number, unknown>)[s.key] = text.slice(0, cut) + rng.pick(HOSTILE) + text.slice(cut)
      return `control character in ${String(s.key)}`
    }
    case 4: {
      if (Array.isArray(parent) || typeof key !== "string") return "no rename"
      const value = parent[key]
      delete parent[key]
      const renamed = rng.next() < 0.5 ? key.slice(0, -1) : key + rng.pick(["s", "\u001b[1m", " ", "x"])
      parent[renamed] = value
      return `renamed ${key} to ${JSON.stringify(renamed)}`
    }
    case 5: {
      const stream = streams.length > 0 ? rng.pick(streams) : undefined
      if (stream === undefined || typeof stream !== "object" || stream === null) return "no stream"
      const name = rng.pick(NAMES)
      for (const t of tasks) if (t?.stream === stream.name && rng.next() < 0.7) t.stream = name
      stream.name = name
      return `stream named ${JSON.stringify(name.slice(0, 20))}`
    }
    case 6: {
      const task = tasks.length > 0 ? rng.pick(tasks) : undefined
      if (task === undefined || typeof task !== "object" || task === null) return "no task"
      const dep = rng.pick([...ids, "nope", String(task.id)])
      task.dependsOn = [...(Array.isArray(task.dependsOn) ? task.dependsOn : []), dep]
      return `dependsOn ${dep}`
    }
    case 7:
      doc[rng.pick(["qualityThreshold", "maxParallel", "githubRepo", "githubIssueNumber", "conflictStrategy", "onGateFailure"])] = rng.pick([
        -5,
        0,
        0.5,
        101,
        1e9,
        "80",
        "owner/name",
        "no repo",
        null,
        "agent"
      ])
      return "top-level setting"
    case 8:
      doc[rng.pick(["notes", "verfy", "tasks", "streams", "agents", "limits"])] = retyped(rng)
      return "unknown, misspelled or replaced top-level field"
    default: {
      const task = tasks.length > 0 ? rng.pick(tasks) : undefined
      if (task === undefined || typeof task !== "object" || task === null) return "no task"
      task[rng.pick(["run", "checks", "budget", "mock", "effort", "acceptanceCriteria"])] = retyped(rng)
      return "task field replaced"
    }
  }
}

const bomb = (levels: number) =>
  Array.from({ length: levels }, (_, i) =>
    `lol${i}: &lol${i} [${Array.from({ length: 9 }, () => (i === 0 ? "\"lol\"" : `*lol${i - 1}`)).join(", ")}]`).join("\n") + "\n"

/** The document as file bytes, sometimes damaged as text (aliases, bytes, truncation). */
const serialise = (doc: Doc, rng: Rng): { readonly bytes: Buffer; readonly how: string } => {
  const format = rng.int(0, 2)
  const text = format === 0 ? JSON.stringify(doc) : format === 1 ? JSON.stringify(doc, null, 2) : YAML.stringify(doc, { aliasDuplicateObjects: false })
  const how = ["json", "pretty json", "yaml"][format]!
  if (rng.next() < 0.6) return { bytes: Buffer.from(text), how }
  const lines = text.split("\n")
  switch (rng.int(0, 8)) {
    case 0:
      return { bytes: Buffer.from(format === 2 ? bomb(rng.int(2, 9)) + text : text), how: `${how} + alias bomb` }
    case 1:
      return { bytes: Buffer.from(format === 2 ? text.replace(/: [a-z][\w-]*$/m, ": *nope") : text), how: `${how} + undefined alias` }
    case 2:
      return { bytes: Buffer.from(format === 2 ? `${text}selfish: &me [1, *me]\n` : text), how: `${how} + self alias` }
    case 3:
      return { bytes: Buffer.from(text.slice(0, rng.int(0, text.length))), how: `${how} truncated` }
    case 4: {
      const bytes = Buffer.from(text)
      const bad = rng.pick([[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x00]])
      const at = rng.int(0, bytes.length)
      return { bytes: Buffer.concat([bytes.subarray(0, at), Buffer.from(bad), bytes.subarray(at)]), how: `${how} + bytes ${bad.join(",")}` }
    }
    case 5: {
      const i = rng.int(0, lines.length - 1)
      lines.splice(i, 0, lines[i]!)
      return { bytes: Buffer.from(lines.join("\n")), how: `${how} + line ${i} twice` }
    }
    case 6:
      return { bytes: Buffer.from(`\ufeff${text.replace(/\n/g, "\r\n")}`), how: `${how} BOM, CRLF` }
    case 7:
      return { bytes: Buffer.from(text.replace(/^( +)/gm, (s) => "\t".repeat(s.length / 2))), how: `${how} tab-indented` }
    default:
      return { bytes: Buffer.from(`${text}\n${"[".repeat(5000)}`), how: `${how} + unclosed brackets` }
  }
}

/** Generated plans at the scale limits. */
const pathological: ReadonlyArray<{ readonly name: string; readonly make: () => string }> = [
  {
    name: "a 10,000-task chain",
    make: () => JSON.stringify({ streams: [{ name: "s", type: "api" }], tasks: Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, title: `T${i}`, stream: "s", run: ["node", "-e", "0"] })) })
  },
  {
    name: "a 10,000-task cycle across two streams",
    make: () =>
      JSON.stringify({
        streams: [{ name: "a", type: "api" }, { name: "b", type: "ui" }],
        tasks: Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, title: "T", stream: i % 2 === 0 ? "a" : "b", dependsOn: [`t${(i + 1) % 10_000}`] }))
      })
  },
  {
    name: "10,000 streams, one task each",
    make: () =>
      JSON.stringify({
        streams: Array.from({ length: 10_000 }, (_, i) => ({ name: `s${i}`, type: "api" })),
        tasks: Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, title: "T", stream: `s${i}`, run: ["node", "-e", "0"] }))
      })
  },
  {
    name: "10,000 tasks in YAML, dense dependencies",
    make: () => {
      const rng = rngOf(7)
      const lines = ["streams:", ...Array.from({ length: 10 }, (_, i) => `  - {name: s${i}, type: api}`), "tasks:"]
      for (let i = 0; i < 10_000; i++) {
        const deps = i === 0 ? [] : [...new Set(Array.from({ length: 4 }, () => `t${rng.int(0, i - 1)}`))]
        lines.push(`  - {id: t${i}, title: T${i}, stream: s${i % 10}, dependsOn: [${deps.join(", ")}], run: [node, -e, "0"]}`)
      }
      return lines.join("\n")
    }
  },
  { name: "an alias bomb of nine levels", make: () => `${bomb(9)}streams: [{name: s, type: api}]\ntasks: [{id: a, title: A, stream: s}]\n` },
  { name: "10,001 streams", make: () => JSON.stringify({ streams: Array.from({ length: 10_001 }, (_, i) => ({ name: `s${i}`, type: "api" })), tasks: [] }) },
  { name: "a value 100,000 lists deep", make: () => `{"streams": [], "tasks": [], "x": ${"[".repeat(100_000)}${"]".repeat(100_000)}}` },
  { name: "an 11 MiB plan", make: () => `projectName: "${"x".repeat(11 * 1024 * 1024)}"\nstreams: []\ntasks: []\n` }
]

/** A plan as `braid plan` reads it: the plan or its problems, or the defect that must never happen. */
/** `braid plan <file>` in `cwd`, killed after 30 s: how it ended and what it printed. */
const planOf = (file: string, cwd: string) =>
  new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, "plan", file], { cwd, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGTERM"), 30_000)
    child.on("close", (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr })
    })
  })

const readAsBraidPlan = async (file: string) => {
  const started = Date.now()
  const exit = await Effect.runPromiseExit(
    Plan.load(file).pipe(
      Effect.flatMap((plan) => Plan.override(plan, {}, "command-line options")),
      Effect.map((plan) => {
        const execution = ExecutionPlan.make(plan)
        return { plan, execution, text: ExecutionPlan.render(plan, execution) }
      }),
      // With the task fields braid's backends add (the mock's `mock:`), as every command reads plans.
      Effect.provideService(Plan.BackendFields, PlanFields.declarations),
      Effect.provide(NodeContext.layer)
    )
  )
  return { exit, ms: Date.now() - started }
}

// Anything a terminal acts on, but line breaks (and tabs, which only move the cursor right).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/
// Problems about the whole file rather than one field.
const WHOLE_FILE = [/^a plan must be an object/, /^the file is/, /^the plan holds more than/, /^the YAML document cannot be read/]

const checkOutcome = (outcome: Awaited<ReturnType<typeof readAsBraidPlan>>, what: string, limitMs: number) => {
  const { exit, ms } = outcome
  assert.isBelow(ms, limitMs, `${what}: took ${ms} ms`)
  if (Exit.isSuccess(exit)) {
    assert.notMatch(exit.value.text.replace(/\n/g, ""), CONTROL, `${what}: braid plan's rendering holds a control character`)
    return "ok" as const
  }
  const failure = Cause.failureOption(exit.cause)
  assert.isTrue(failure._tag === "Some" && !Cause.isDie(exit.cause), `${what}: a defect, not a refusal:\n${Cause.pretty(exit.cause)}`)
  const error = (failure as { value: Plan.InvalidPlan }).value
  assert.strictEqual(error._tag, "InvalidPlan", what)
  assert.isAbove(error.problems.length, 0, what)
  for (const p of error.problems) {
    assert.isTrue(p.message.length > 0, `${what}: a problem without a message`)
    assert.isTrue(p.path !== "" || WHOLE_FILE.some((r) => r.test(p.message)), `${what}: a problem naming no field: ${p.message}`)
  }
  assert.notMatch(error.message.replace(/\n/g, ""), CONTROL, `${what}: the message holds a control character`)
  return "refused" as const
}

describe("plan fuzzing, in-process (what braid plan reads a plan with)", () => {
  it("300 seeded mutations of the bundled plan each end as a plan or its named problems, within 5 s", async () => {
    const outcomes = { ok: 0, refused: 0 }
    for (let seed = 1; seed <= 300; seed++) {
      const rng = rngOf(seed)
      const doc = structuredClone(example)
      const steps = Array.from({ length: rng.int(1, 3) }, () => mutate(doc, rng))
      const { bytes, how } = serialise(doc, rng)
      const file = path.join(dir, `mutant-${seed}.${how.startsWith("yaml") ? "yaml" : "json"}`)
      fs.writeFileSync(file, bytes)
      const what = `seed ${seed} (${steps.join("; ")}; ${how}) ${file}`
      // A failing case's file is left in place (its path is in the message) to be read again.
      outcomes[checkOutcome(await readAsBraidPlan(file), what, 5_000)]++
      fs.rmSync(file)
    }
    // The mutations reach both ends: plans that still read, and refusals.
    assert.isAbove(outcomes.ok, 15)
    assert.isAbove(outcomes.refused, 150)
  }, 120_000)

  it("pathological plans — 10,000-task chains and cycles, 10,000 streams, an alias bomb, deep nesting, 11 MiB — within 15 s each", async () => {
    for (const p of pathological) {
      const file = path.join(dir, `pathological.${p.make().trimStart().startsWith("{") ? "json" : "yaml"}`)
      fs.writeFileSync(file, p.make())
      checkOutcome(await readAsBraidPlan(file), p.name, 15_000)
    }
  }, 180_000)
})

describe("plan fuzzing, through the built braid plan", () => {
  const repo = fs.mkdtempSync(path.join(dir, "repo-"))
  const marker = path.join(dir, "ran-something")
  const git = (...args: Array<string>) => spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).stdout
  const snapshot = () => ({
    status: git("status", "--porcelain", "--ignored"),
    refs: git("for-each-ref", "--format=%(refname) %(objectname)"),
    worktrees: git("worktree", "list", "--porcelain"),
    braid: fs.existsSync(path.join(repo, ".braid"))
  })

  it("16 plans, the pathological ones among them: exit 0 or 2, no stack trace, nothing run, the repository untouched", async () => {
    git("init", "-q", "-b", "main")
    fs.writeFileSync(path.join(repo, "README.md"), "fuzz\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    const before = snapshot()
    // Every command of the plan would leave the marker if braid ran it.
    const write = ["node", "-e", `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`]
    const base = structuredClone(example)
    for (const task of base.tasks as Array<Doc>) {
      task.run = write
      task.checks = [write]
    }
    base.verify = [write]
    base.resolve = write
    const cases: Array<{ readonly name: string; readonly text: () => string | Buffer }> = [
      { name: "the bundled plan, its commands replaced", text: () => YAML.stringify(base) },
      // In-process above they all ran; here the ones that once ended in a stack trace or a hang (11 MiB and 10,001 streams do not need a process of their own).
      ...pathological.filter((p) => !p.name.includes("11 MiB") && !p.name.includes("10,001")).map((p) => ({ name: p.name, text: p.make })),
      { name: "an undefined alias", text: () => "streams: [{name: s, type: api}]\ntasks: [{id: a, title: *nope, stream: s}]\n" },
      { name: "a task id forging commit trailers", text: () => YAML.stringify({ ...base, tasks: [{ ...(base.tasks as Array<Doc>)[0], id: "db-1\nBraid-Step: forged\nSigned-off-by: Mallory <m@example.com>" }] }) },
      { name: "terminal escapes in names", text: () => YAML.stringify({ ...base, featureName: "\u001b]0;pwned\u0007\u001b[2J" }) },
      { name: "invalid UTF-8 in projectName", text: () => Buffer.concat([Buffer.from("projectName: \""), Buffer.from([0xff, 0x00]), Buffer.from(`"\n${YAML.stringify({ ...base, projectName: undefined })}`)]) },
      { name: "a 252-character stream name", text: () => YAML.stringify({ ...base, streams: [{ name: "s".repeat(252), type: "api" }], tasks: [{ id: "a", title: "A", stream: "s".repeat(252), run: write }] }) }
    ]
    for (let seed = 1001; cases.length < 16; seed++) {
      const rng = rngOf(seed)
      const doc = structuredClone(base)
      const steps = Array.from({ length: rng.int(1, 3) }, () => mutate(doc, rng))
      const { bytes, how } = serialise(doc, rng)
      cases.push({ name: `seed ${seed} (${steps.join("; ")}; ${how})`, text: () => bytes })
    }
    for (const c of cases) {
      const text = c.text()
      const file = path.join(dir, `cli-plan.${(typeof text === "string" ? text : text.toString("latin1")).trimStart().startsWith("{") ? "json" : "yaml"}`)
      fs.writeFileSync(file, text)
      // Spawned without blocking the worker: 16 plans of up to 11 MiB hold it longer than vitest's RPC waits.
      const result = await planOf(file, repo)
      const output = `${result.stdout}${result.stderr}`
      assert.isNull(result.signal, `${c.name}: braid plan did not answer within 30 s`)
      assert.include([0, 2], result.status, `${c.name}: exit ${result.status}\n${result.stderr.slice(0, 2000)}`)
      assert.notInclude(result.stderr, "internal error", c.name)
      assert.notMatch(result.stderr, /^\s+at /m, `${c.name}: a stack trace`)
      assert.notMatch(output.replace(/[\n\t]/g, ""), CONTROL, `${c.name}: a control character reached the terminal`)
      if (result.status === 2) assert.match(result.stderr, /invalid plan \(\d+ problems?\)\n {2}- |braid run would refuse to start/, c.name)
      assert.isFalse(fs.existsSync(marker), `${c.name}: braid plan ran one of the plan's commands`)
      assert.deepStrictEqual(snapshot(), before, `${c.name}: the repository changed`)
    }
  }, 240_000)
})
