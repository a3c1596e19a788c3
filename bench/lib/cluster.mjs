/**
 * The cluster section's machinery: a throwaway Postgres (Debian's binaries, as the tests make
 * one), `braid runner` processes each with a work folder of its own, bare repositories as the
 * runs' remotes, and `braid submit --wait` timed from the first submit to the last exit.
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const bin = fileURLToPath(new URL("../../packages/cli/bin/braid.js", import.meta.url))

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = server.address().port
      server.close(() => resolve(port))
    })
  })

/** Starts a Postgres of its own, or says why it cannot. */
export const postgres = async () => {
  const base = "/usr/lib/postgresql"
  const version = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, "bin", "initdb"))).sort().at(-1) : undefined
  if (version === undefined) return { available: false, reason: "no Postgres server binaries (apt-get install postgresql)" }
  const binDir = path.join(base, version, "bin")
  const root = process.getuid?.() === 0
  const run = (exe, ...args) => execFileSync(root ? "runuser" : exe, root ? ["-u", "postgres", "--", exe, ...args] : args, { stdio: "ignore" })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bench-pg-"))
  if (root) execFileSync("chown", ["postgres", dir])
  const port = await freePort()
  run(path.join(binDir, "initdb"), "-D", path.join(dir, "data"), "-A", "trust", "-U", "braid", "--no-sync")
  const ctl = (...args) => run(path.join(binDir, "pg_ctl"), "-D", path.join(dir, "data"), "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "-l", path.join(dir, "log"), "-w", ...args)
  ctl("start")
  const server = `postgres://braid@127.0.0.1:${port}/postgres`
  let n = 0
  return {
    available: true,
    database: () => {
      const name = `bench_${n++}`
      execFileSync("psql", [server, "-q", "-c", `CREATE DATABASE ${name}`])
      return `postgres://braid@127.0.0.1:${port}/${name}`
    },
    stop: () => {
      try {
        ctl("-m", "immediate", "stop")
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}

/** A plan of `streams` × `tasks` whose script agents sleep `sleepMs` and write a file each, in a folder of its own. */
export const writePlan = (folder, { streams, tasks, sleepMs, maxParallel }) => {
  fs.mkdirSync(path.join(folder, "agents"), { recursive: true })
  fs.writeFileSync(path.join(folder, "agents", "work.mjs"), `import * as fs from "node:fs"
await new Promise((resolve) => setTimeout(resolve, ${sleepMs}))
fs.mkdirSync(process.env.BRAID_STREAM, { recursive: true })
fs.writeFileSync(process.env.BRAID_STREAM + "/" + process.env.BRAID_TASK_ID + ".txt", process.env.BRAID_TASK_ID + "\\n")
`)
  const names = Array.from({ length: streams }, (_, i) => `s${i + 1}`)
  const lines = [`maxParallel: ${maxParallel}`, "streams:", ...names.map((s) => `  - { name: ${s}, type: api }`), "tasks:"]
  for (const s of names) {
    for (let t = 1; t <= tasks; t++) lines.push(`  - { id: ${s}-${t}, title: ${s} ${t}, stream: ${s}, run: { script: agents/work.mjs }, checks: [[test, -f, ${s}/${s}-${t}.txt]] }`)
  }
  fs.writeFileSync(path.join(folder, "plan.yaml"), `${lines.join("\n")}\n`)
  return path.join(folder, "plan.yaml")
}

const git = (cwd, ...args) => execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], { cwd, stdio: "ignore" })

/** A repository with one commit, and a bare clone of it to serve as a run's remote. */
export const remote = (dir, name) => {
  const work = path.join(dir, `${name}-seed`)
  fs.mkdirSync(work, { recursive: true })
  fs.writeFileSync(path.join(work, "README.md"), "bench\n")
  git(work, "init", "-q", "-b", "main")
  git(work, "add", "-A")
  git(work, "commit", "-q", "-m", "base")
  execFileSync("git", ["clone", "-q", "--bare", work, path.join(dir, `${name}.git`)])
  return { work, remote: path.join(dir, `${name}.git`) }
}

/** Starts a runner; resolves once it listens. */
export const runner = (url, dir, name, slots) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "runner", "--database", url, "--address", "127.0.0.1", "--workdir", path.join(dir, name), "--slots", String(slots), "--name", name], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" }
    })
    let out = ""
    const onData = (d) => {
      out += d
      if (out.includes("Listening on")) resolve({ child, log: () => out })
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("exit", (code) => reject(new Error(`runner ${name} exited ${code}:\n${out}`)))
  })

/** Runs a command to its end; rejects on a non-zero exit. */
export const finish = (argv, options = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" }, ...options })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    child.on("close", (code) => code === 0 ? resolve(out) : reject(new Error(`${argv.slice(1, 3).join(" ")}: exit ${code}\n${out.slice(-3000)}`)))
  })

/** The journal's steps of the runs in a database (every row of braid_journal). */
export const journalRows = (url) => Number(execFileSync("psql", [url, "-At", "-c", "SELECT count(*) FROM braid_journal"], { encoding: "utf8" }).trim())
