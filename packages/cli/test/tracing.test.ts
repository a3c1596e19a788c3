/**
 * A run's trace: the built `braid run` with `--otlp` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) sends
 * one trace to an OTLP/HTTP collector — here a plain HTTP server on 127.0.0.1 taking
 * `POST /v1/traces` as JSON — with every stage's span under the run's root span, carrying its
 * stream, task and attempt; without either, nothing is sent.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { braid, git, latestRun } from "./support/Braid.js"

/** One span as the collector received it, its attributes read into plain values. */
interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly attributes: Record<string, unknown>
}

/** An OTLP/JSON attribute value as a plain value. */
const valueOf = (v: Record<string, unknown>): unknown =>
  "stringValue" in v
    ? v.stringValue
    : "intValue" in v
    ? Number(v.intValue)
    : "doubleValue" in v
    ? Number(v.doubleValue)
    : "boolValue" in v
    ? v.boolValue
    : v

/** A collector on 127.0.0.1: every request it was sent, and the spans of those to /v1/traces. */
const collector = async () => {
  const requests: Array<{ readonly method: string; readonly url: string }> = []
  const spans: Array<Span> = []
  const server = http.createServer((req, res) => {
    let body = ""
    req.setEncoding("utf8")
    req.on("data", (d) => (body += d))
    req.on("end", () => {
      requests.push({ method: req.method ?? "", url: req.url ?? "" })
      if (req.method === "POST" && req.url === "/v1/traces") {
        const data = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<any> }> }> }
        for (const rs of data.resourceSpans) {
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId === "" ? undefined : s.parentSpanId,
                name: s.name,
                attributes: Object.fromEntries((s.attributes ?? []).map((a: any) => [a.key, valueOf(a.value)]))
              })
            }
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" })
      res.end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, requests, spans, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

/** The agent: writes its task's file. */
const agent = `
import * as fs from "node:fs"
fs.writeFileSync(process.env.BRAID_TASK_ID + ".txt", process.env.BRAID_TASK_ID + " done\\n")
console.log(process.env.BRAID_TASK_ID + " written")
`

/** A repository and a plan of two streams, three tasks (b-2 after b-1), a verify command. */
const fixture = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-tracing-"))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(repo)
  fs.writeFileSync(path.join(repo, "README.md"), "project\n")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const plans = path.join(dir, "plan")
  fs.mkdirSync(path.join(plans, "agents"), { recursive: true })
  fs.writeFileSync(path.join(plans, "agents", "agent.mjs"), agent)
  const plan = path.join(plans, "plan.yaml")
  fs.writeFileSync(
    plan,
    [
      "projectName: tracing",
      "featureName: a traced run",
      "maxParallel: 2",
      "verify: [{ name: verify, command: [node, -e, \"process.exit(0)\"] }]",
      "streams:",
      "  - { name: a, type: api }",
      "  - { name: b, type: ui }",
      "tasks:",
      "  - { id: a-1, title: A one, stream: a, run: { script: agents/agent.mjs } }",
      "  - { id: b-1, title: B one, stream: b, run: { script: agents/agent.mjs } }",
      "  - { id: b-2, title: B two, stream: b, run: { script: agents/agent.mjs } }",
      ""
    ].join("\n")
  )
  return { repo, plan }
}

/** No collector named by the environment the tests run in. */
const quietEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: "", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "" }

/** Checks the spans are one run's trace, with the stages under the root; returns the root. */
const checkTrace = (spans: ReadonlyArray<Span>, runId: string) => {
  assert.isAbove(spans.length, 10)
  assert.deepStrictEqual([...new Set(spans.map((s) => s.traceId))].length, 1, "one trace")
  const roots = spans.filter((s) => s.parentSpanId === undefined)
  assert.deepStrictEqual(roots.map((s) => s.name), ["Orchestrator.run"])
  const root = roots[0]!
  assert.strictEqual(root.attributes["braid.run_id"], runId)
  assert.strictEqual(root.attributes["braid.status"], "succeeded")
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  /** The names of a span's ancestors, nearest first (every parent was sent too). */
  const ancestors = (s: Span): Array<Span> => {
    const out: Array<Span> = []
    for (let p = s.parentSpanId; p !== undefined;) {
      const parent = byId.get(p)
      assert.isDefined(parent, `the parent of ${s.name} was sent`)
      out.push(parent!)
      p = parent!.parentSpanId
    }
    return out
  }
  for (const s of spans) assert.strictEqual(ancestors(s).at(-1)?.spanId ?? s.spanId, root.spanId)
  const named = (name: string) => spans.filter((s) => s.name === name)
  const under = (s: Span, name: string) => ancestors(s).find((a) => a.name === name)

  assert.lengthOf(named("Dispatch.run"), 1)
  assert.strictEqual(named("Dispatch.run")[0]!.parentSpanId, root.spanId)
  const streams = named("Dispatch.stream")
  assert.sameMembers(streams.map((s) => s.attributes["braid.stream"]), ["a", "b"])
  for (const s of streams) {
    assert.strictEqual(s.attributes["braid.backend"], "script")
    assert.isDefined(under(s, "Dispatch.run"))
  }
  const tasks = named("Dispatch.task")
  assert.sameMembers(tasks.map((t) => `${t.attributes["braid.stream"]}/${t.attributes["braid.task"]}`), ["a/a-1", "b/b-1", "b/b-2"])
  for (const t of tasks) {
    assert.strictEqual(t.attributes["braid.status"], "completed")
    assert.strictEqual(under(t, "Dispatch.stream")?.attributes["braid.stream"], t.attributes["braid.stream"])
  }
  const attempts = named("QualityGate.attempt")
  assert.sameMembers(attempts.map((a) => a.attributes["braid.task"]), ["a-1", "b-1", "b-2"])
  for (const a of attempts) {
    assert.strictEqual(a.attributes["braid.attempt"], 1)
    assert.strictEqual(a.attributes["braid.backend"], "script")
    assert.strictEqual(a.attributes["braid.tokens.input"], 0)
    assert.strictEqual(a.attributes["braid.cost_usd"], 0)
    assert.strictEqual(under(a, "Dispatch.task")?.attributes["braid.task"], a.attributes["braid.task"])
    const review = named("QualityGate.review").find((r) => r.attributes["braid.task"] === a.attributes["braid.task"])
    assert.isDefined(review)
    assert.strictEqual(under(review!, "QualityGate.attempt")?.spanId, a.spanId)
  }
  const merges = named("Conflicts.merge")
  assert.sameMembers(merges.map((m) => m.attributes["braid.stream"]), ["a", "b"])
  for (const m of merges) assert.isDefined(under(m, "Conflicts.integrate"))
  for (const stage of ["Conflicts.detectOverlaps", "Conflicts.integrate", "Verification.verify", "Landing.land"]) {
    assert.lengthOf(named(stage), 1, stage)
    // Under the run itself, or its durable step's span (`Steps.step`).
    assert.strictEqual(ancestors(named(stage)[0]!).find((a) => a.name !== "Steps.step")?.spanId, root.spanId, `${stage} is under the run`)
  }
  assert.strictEqual(named("Verification.verify")[0]!.attributes["braid.passed"], true)
  return root
}

describe("a run's trace over OTLP/HTTP", () => {
  it("--otlp sends one trace per run, the stages nested under the run's root span with their attributes", async () => {
    const c = await collector()
    try {
      const f = fixture()
      const out = await braid(["run", f.plan, "--repo", f.repo, "--quiet", "--otlp", c.url], quietEnv)
      assert.strictEqual(out.code, 0, out.stderr)
      // The spans were flushed before the process ended.
      assert.isTrue(c.requests.every((r) => r.method === "POST" && r.url === "/v1/traces"))
      checkTrace(c.spans, latestRun(f.repo).runId)
    } finally {
      await c.close()
    }
  }, 90_000)

  it("OTEL_EXPORTER_OTLP_ENDPOINT names the collector when --otlp is absent; a second run is a second trace", async () => {
    const c = await collector()
    try {
      const f = fixture()
      const out = await braid(["run", f.plan, "--repo", f.repo, "--quiet", "--no-land"], { ...quietEnv, OTEL_EXPORTER_OTLP_ENDPOINT: `${c.url}/` })
      assert.strictEqual(out.code, 0, out.stderr)
      const first = new Set(c.spans.map((s) => s.traceId))
      assert.strictEqual(first.size, 1)
      const roots = c.spans.filter((s) => s.parentSpanId === undefined)
      assert.deepStrictEqual(roots.map((s) => s.name), ["Orchestrator.run"])
      assert.strictEqual(roots[0]!.attributes["braid.run_id"], latestRun(f.repo).runId)
      const before = c.spans.length
      const landed = await braid(["land", "--repo", f.repo, "--quiet"], { ...quietEnv, OTEL_EXPORTER_OTLP_ENDPOINT: c.url })
      assert.strictEqual(landed.code, 0, landed.stderr)
      const second = c.spans.slice(before)
      assert.isAbove(second.length, 0)
      const traces = new Set(second.map((s) => s.traceId))
      assert.strictEqual(traces.size, 1)
      assert.isFalse(first.has([...traces][0]!), "the land is its own trace")
      assert.include(second.map((s) => s.name), "Landing.land")
    } finally {
      await c.close()
    }
  }, 90_000)

  it("without --otlp or the environment variable nothing is sent", async () => {
    const c = await collector()
    try {
      const f = fixture()
      const out = await braid(["run", f.plan, "--repo", f.repo, "--quiet"], quietEnv)
      assert.strictEqual(out.code, 0, out.stderr)
      assert.deepStrictEqual(c.requests, [])
    } finally {
      await c.close()
    }
  }, 90_000)
})
