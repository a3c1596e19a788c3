/**
 * What the cluster tests share: a small plan whose script agents take a while and log when
 * they start and end, seeded repositories with bare remotes, `braid runner` processes, the
 * journal read back from the database.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"
import { bin, git } from "./Braid.js"
import * as Postgres from "./Postgres.js"

/** A small plan of our own: script agents that take a while, log when they start and end, and write a file each. */
export const workPlan = `
projectName: cluster-test
featureName: three streams
qualityThreshold: 80
maxParallel: 2
conflictStrategy: priority
verify:
  - { name: every stream's file, command: [node, -e, "setTimeout(() => { for (const f of ['a/a-1.txt','a/a-2.txt','b/b-1.txt','b/b-2.txt','c/c-1.txt']) require('fs').accessSync(f) }, Number(process.env.BRAID_TEST_VERIFY_MS ?? 0))"] }
streams:
  - { name: a, type: database }
  - { name: b, type: api }
  - { name: c, type: docs }
tasks:
  - { id: a-1, title: first of a, stream: a, run: { script: agents/work.mjs }, checks: [[test, -f, a/a-1.txt]] }
  - { id: a-2, title: second of a, stream: a, run: { script: agents/work.mjs }, checks: [[test, -f, a/a-2.txt]] }
  - { id: b-1, title: first of b, stream: b, dependsOn: [a-1], run: { script: agents/work.mjs }, checks: [[test, -f, b/b-1.txt]] }
  - { id: b-2, title: second of b, stream: b, run: { script: agents/work.mjs }, checks: [[test, -f, b/b-2.txt]] }
  - { id: c-1, title: only of c, stream: c, run: { script: agents/work.mjs }, checks: [[test, -f, c/c-1.txt]] }
`
export const workAgent = `import * as fs from "node:fs"
import * as path from "node:path"
const e = process.env
const log = (phase) => fs.appendFileSync(e.BRAID_TEST_AGENTS, JSON.stringify({ run: e.BRAID_RUN_ID, task: e.BRAID_TASK_ID, attempt: Number(e.BRAID_ATTEMPT), pid: process.pid, cwd: process.cwd(), phase, t: Date.now() }) + "\\n")
log("start")
// Ended by a runner (the one that came back after a kill ends what the killed one left): logged as such.
process.on("SIGTERM", () => { log("killed"); process.exit(143) })
// BRAID_TEST_SLOW=<task>:<ms> makes one task take longer (than a runner's lease, say).
const [slowTask, slowMs] = (e.BRAID_TEST_SLOW ?? "").split(":")
await new Promise((resolve) => setTimeout(resolve, Number(slowTask === e.BRAID_TASK_ID ? slowMs : e.BRAID_TEST_SLEEP_MS ?? "2500")))
fs.mkdirSync(e.BRAID_STREAM, { recursive: true })
fs.writeFileSync(path.join(e.BRAID_STREAM, e.BRAID_TASK_ID + ".txt"), e.BRAID_TASK_ID + " of stream " + e.BRAID_STREAM + "\\n")
log("end")
`

export interface AgentLine {
  readonly run: string
  readonly task: string
  readonly attempt: number
  readonly pid: number
  readonly cwd: string
  readonly phase: "start" | "end" | "killed"
  readonly t: number
}

/** A repository with `project`'s files on main, and a bare clone of it as a remote. */
export const seed = (dir: string, name: string, project: string | undefined) => {
  const work = path.join(dir, `${name}-seed`)
  if (project !== undefined) fs.cpSync(project, work, { recursive: true })
  else fs.mkdirSync(work, { recursive: true })
  if (project === undefined) fs.writeFileSync(path.join(work, "README.md"), "# a project\n")
  git(work, "init", "-q", "-b", "main")
  git(work, "add", "-A")
  git(work, "commit", "-q", "-m", "start")
  const remote = path.join(dir, `${name}.git`)
  execFileSync("git", ["clone", "-q", "--bare", work, remote])
  return { work, remote }
}

/** Rows of a query as JSON. */
export const query = (url: string, sql: string): Array<any> =>
  JSON.parse(execFileSync("psql", [url, "-At", "-c", `SELECT coalesce(json_agg(q), '[]') FROM (${sql}) q`], { encoding: "utf8" }).trim())

/** The most agents at work at once, from their [start, end] intervals. */
export const peak = (intervals: ReadonlyArray<readonly [number, number]>) => {
  const points = intervals.flatMap(([s, e]) => [[s, 1], [e, -1]] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1])
  let now = 0
  let most = 0
  for (const [, d] of points) most = Math.max(most, now += d)
  return most
}

/** The work plan and its agent, in `folder`. */
export const writeWorkPlan = (folder: string) => {
  fs.mkdirSync(path.join(folder, "agents"), { recursive: true })
  fs.writeFileSync(path.join(folder, "plan.yaml"), workPlan)
  fs.writeFileSync(path.join(folder, "agents", "work.mjs"), workAgent)
}

/** What the work plan's agents logged, in order. */
export const agentsOf = (dir: string): Array<AgentLine> => {
  const file = path.join(dir, "agents.jsonl")
  return (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as AgentLine)
}

/** A runner process standing for a machine: its name, work folder, process and output. */
export interface Runner {
  readonly name: string
  readonly workdir: string
  readonly child: ChildProcess
  readonly log: () => string
}

/** Starts `braid runner` with a work folder of its own under `dir`; its agents log to `dir`. */
export const startRunner = (input: {
  readonly url: string
  readonly dir: string
  readonly name: string
  /** Default: a folder named after the runner under `dir`. */
  readonly workdir?: string
  readonly group?: string
  readonly slots?: number
  readonly sleepMs?: number
  /** `<task>:<ms>`: that task's agent takes this long. */
  readonly slow?: string
}): Runner => {
  const workdir = input.workdir ?? path.join(input.dir, input.name)
  let out = ""
  const child = spawn(process.execPath, [bin, "runner", "--database", input.url, "--address", "127.0.0.1", "--workdir", workdir, "--slots", String(input.slots ?? 2), "--name", input.name, "--group", input.group ?? "default"], {
    env: {
      ...process.env,
      NO_COLOR: "1",
      BRAID_TEST_AGENTS: path.join(input.dir, "agents.jsonl"),
      BRAID_AGENT_LOG: path.join(input.dir, "example-agents.log"),
      BRAID_TEST_SLEEP_MS: String(input.sleepMs ?? 2500),
      BRAID_TEST_SLOW: input.slow ?? "",
      // The work plan's verification takes this long (a window to kill the runner verifying).
      BRAID_TEST_VERIFY_MS: "3000"
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout!.on("data", (d) => (out += d))
  child.stderr!.on("data", (d) => (out += d))
  return { name: input.name, workdir, child, log: () => out }
}

/** A test file's cluster: a database, a folder holding the work plan, runners; all gone after the file. */
export interface Fixture {
  server: Postgres.Server
  url: string
  dir: string
  readonly runners: Array<Runner>
}

/**
 * Sets up a cluster for the describe block it is called in: a database on the shared server
 * (or on a server of its own with `own`, for a test that restarts it), the work plan in
 * `<dir>/plan`, and runners named `runners`, each with a work folder of its own.
 */
export const useCluster = (prefix: string, options: { readonly own?: boolean; readonly runners?: ReadonlyArray<string> } = {}): Fixture => {
  const fixture = { runners: [] } as unknown as Fixture
  beforeAll(async () => {
    fixture.server = options.own === true ? await Postgres.own() : await Postgres.shared()
    fixture.url = fixture.server.database()
    fixture.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    writeWorkPlan(path.join(fixture.dir, "plan"))
    for (const name of options.runners ?? []) fixture.runners.push(startRunner({ url: fixture.url, dir: fixture.dir, name }))
  }, 120_000)
  afterAll(() => {
    for (const r of fixture.runners) r.child.kill("SIGKILL")
    fixture.server?.stop()
    if (fixture.dir !== undefined) fs.rmSync(fixture.dir, { recursive: true, force: true })
  })
  return fixture
}
