/**
 * What the CLI tests share: the built `braid` run as a user runs it, git with a fixed
 * identity, and a run's journal read back from a repository.
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** This repository's root. */
export const root = path.resolve(__dirname, "../../../..")

/** The built command (`npm test` builds it first). */
export const bin = path.join(root, "packages/cli/dist/bin.js")

/** git in `repo` with a fixed identity; its output, trimmed. */
export const git = (repo: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" }).trim()

/** A new repository in the temporary folder (its real path), on `main`, with one commit of `src/README.md`. */
/**
 * A copy of the bundled example (in `dir`) without its checkout environment: an `npm ci` and
 * copies per checkout, tested in environment.test.ts. For the tests whose subject is elsewhere
 * (crashes, the cluster) and which run the example many times. Returns the copy's folder
 * (`plan.yaml`, `project/`, `agents/`).
 */
export const exampleWithoutEnvironment = (dir: string): string => {
  const copy = path.join(dir, "example-plan")
  fs.cpSync(path.join(root, "examples/checkout-flow"), copy, { recursive: true })
  // The one test that needs the installed package.
  fs.rmSync(path.join(copy, "project", "test", "money.test.js"))
  const plan = path.join(copy, "plan.yaml")
  fs.writeFileSync(plan, fs.readFileSync(plan, "utf8").replace(/^environment:\n(?:  .*\n|    .*\n)*/m, ""))
  return copy
}

export const newRepo = (prefix: string): string => {
  const repo = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
  git(repo, "init", "-q", "-b", "main")
  fs.mkdirSync(path.join(repo, "src"))
  fs.writeFileSync(path.join(repo, "src", "README.md"), "base\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  return repo
}

/** How a `braid` process ended, and what it printed. */
export interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * `braid run` unconfined unless the test says otherwise: these tests check the engine's
 * semantics with script agents that log and keep counters outside their checkout, which
 * confinement would refuse. Confinement has tests of its own (`sandbox.test.ts`, the real
 * tools' in `claude.test.ts` and the agent contract), which pass `--sandbox`.
 */
export const unconfined = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args[0] === "run" && !args.includes("--sandbox") ? [...args, "--sandbox", "off"] : args

/** Runs the built `braid` with `args`, stdin closed, this environment plus `env`, without blocking the worker. */
export const braid = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Outcome> =>
  new Promise<Outcome>((resolve) => {
    const child = spawn(process.execPath, [bin, ...unconfined(args)], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

/**
 * The folder holding run `runId`'s checkouts, as the run recorded it (`worktrees-dir` in its
 * run folder), else the old layout's `.braid/runs/<run>/worktrees`. By default it is outside the
 * repository, under `$XDG_CACHE_HOME/braid/worktrees`: `vitest.setup.ts` points XDG_CACHE_HOME
 * at a folder of each test file's own (removed after it), which the `braid` processes inherit.
 */
export const worktreesOf = (repo: string, runId: string): string => {
  const record = path.join(repo, ".braid", "runs", runId, "worktrees-dir")
  return fs.existsSync(record) ? fs.readFileSync(record, "utf8").trim() : path.join(repo, ".braid", "runs", runId, "worktrees")
}

/** The newest run recorded in `repo`: its id and folder. */
export const latestRun = (repo: string) => {
  const runs = path.join(repo, ".braid", "runs")
  const runId = fs.readdirSync(runs).sort().at(-1)!
  return { runId, dir: path.join(runs, runId) }
}

/** One journal line, as the tests read it. */
export interface JournalRecord {
  readonly seq: number
  readonly key: string
  readonly value: { readonly _tag: string; readonly [k: string]: any }
}

/** The newest run's journal in `repo`. */
export const journalOf = (repo: string) => {
  const { dir, runId } = latestRun(repo)
  const lines = fs.readFileSync(path.join(dir, "journal.jsonl"), "utf8").split("\n").filter((l) => l !== "")
  return { runId, records: lines.map((l) => JSON.parse(l) as JournalRecord) }
}
