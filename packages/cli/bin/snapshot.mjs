/**
 * Makes the V8 start-up snapshot that `braid runs` and `braid status` start from (see
 * src/Snapshot.ts): the snapshot bundle (dist/braid.snapshot.js) run under
 * `node --build-snapshot`, warmed on a finished run of a one-task plan in a scratch repository.
 *
 * Two callers, one way:
 * - `npm run build` (scripts/bundle-cli.mjs) makes it in the repository, into dist/;
 * - an installed command (bin/braid) has none of its own (a snapshot is for the node that
 *   made it, and the tarball's users have other nodes), so the first `braid runs` or
 *   `braid status` starts `node bin/snapshot.mjs DIST OUT` in the background, which makes it
 *   into the user's cache folder; the next ones start from it.
 *
 * The record `OUT.node` (the node's real path, given that node's modification time) is
 * written last: bin/braid never pairs a snapshot with a record of another, nor uses one a
 * changed node would not load. Concurrent makers do not meet: one holds `OUT.lock`.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** A lock older than this was left by a maker that died: it is taken over. */
const STALE_LOCK_MS = 10 * 60 * 1000

/** A finished run in `repo` to answer `braid status` about: status reads what runs does, and parses the run's plan too. */
const warmUp = (dist, repo, env) => {
  const gitIn = (...a) => execFileSync("git", ["-c", "user.name=braid", "-c", "user.email=braid@localhost", ...a], { cwd: repo, stdio: "ignore" })
  gitIn("init", "-q")
  fs.writeFileSync(path.join(repo, "README.md"), "build\n")
  gitIn("add", "-A")
  gitIn("commit", "-q", "-m", "base")
  const plan = path.join(repo, ".git", "plan.yaml")
  fs.writeFileSync(plan, "agent: script\nstreams:\n  - {name: s, type: docs}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, \"require('fs').writeFileSync('a.txt', 'a')\"]}\n")
  const ran = spawnSync(process.execPath, [path.join(dist, "bin.js"), "run", plan, "--repo", repo, "-q", "--report", path.join(repo, ".git", "report.md")], { stdio: "ignore", env })
  return ran.status === 0 ? undefined : `the warm-up run exited with ${ran.status}`
}

/**
 * Makes `out` (and `out.node`) from `dist`'s snapshot bundle. Returns undefined when made,
 * else why not (a snapshot is only speed: its callers carry on without one).
 */
export const makeSnapshot = (dist, out, options = {}) => {
  const bundle = path.join(dist, "braid.snapshot.js")
  if (!fs.existsSync(bundle)) return `${bundle} is missing`
  fs.mkdirSync(path.dirname(out), { recursive: true })
  const lock = `${out}.lock`
  try {
    fs.mkdirSync(lock)
  } catch {
    const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0)
    if (age < STALE_LOCK_MS) return "another process is making it"
    fs.rmSync(lock, { recursive: true, force: true })
    try {
      fs.mkdirSync(lock)
    } catch {
      return "another process is making it"
    }
  }
  // The caller's repository holding a finished run (the build has one), or one made here.
  const repo = options.repo ?? fs.mkdtempSync(path.join(os.tmpdir(), "braid-snapshot-"))
  const runCache = fs.mkdtempSync(path.join(os.tmpdir(), "braid-snapshot-cache-"))
  const env = { ...process.env, NO_COLOR: "1", XDG_CACHE_HOME: runCache, BRAID_NO_SNAPSHOT: "1" }
  const partial = `${out}.partial-${process.pid}`
  try {
    fs.rmSync(`${out}.node`, { force: true })
    fs.rmSync(out, { force: true })
    if (options.repo === undefined) {
      const why = warmUp(dist, repo, env)
      if (why !== undefined) return why
    }
    const made = spawnSync(process.execPath, ["--no-warnings", "--snapshot-blob", partial, "--build-snapshot", bundle], {
      cwd: repo,
      encoding: "utf8",
      env: { ...env, BRAID_SNAPSHOT_REPO: repo }
    })
    if (made.status !== 0 || !fs.existsSync(partial)) return `node --build-snapshot exited with ${made.status}\n${made.stderr}`
    fs.renameSync(partial, out)
    const node = fs.realpathSync(process.execPath)
    fs.writeFileSync(`${out}.node.partial`, `${node}\n`)
    const { atime, mtime } = fs.statSync(node)
    fs.utimesSync(`${out}.node.partial`, atime, mtime)
    fs.renameSync(`${out}.node.partial`, `${out}.node`)
    fs.rmSync(`${out}.failed`, { force: true })
    return undefined
  } finally {
    fs.rmSync(partial, { force: true })
    if (options.repo === undefined) fs.rmSync(repo, { recursive: true, force: true })
    fs.rmSync(runCache, { recursive: true, force: true })
    fs.rmSync(lock, { recursive: true, force: true })
  }
}

// `node bin/snapshot.mjs DIST OUT`: what bin/braid starts in the background.
if (process.argv[1] !== undefined && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url))) {
  const [dist, out] = process.argv.slice(2)
  if (dist === undefined || out === undefined) {
    process.stderr.write("usage: node snapshot.mjs DIST OUT\n")
    process.exit(2)
  }
  const why = makeSnapshot(path.resolve(dist), path.resolve(out))
  // A failure is noted, so that bin/braid does not start a maker at every call with this node.
  if (why !== undefined && why !== "another process is making it") {
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true })
    fs.writeFileSync(`${path.resolve(out)}.failed`, `${why}\n`)
  }
  if (why !== undefined) {
    process.stderr.write(`braid: no start-up snapshot: ${why}\n`)
    process.exitCode = 1
  }
}
