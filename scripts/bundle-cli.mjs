#!/usr/bin/env node
/**
 * Bundles the `braid` command for a fast start (run by `npm run build`, after `tsc -b`):
 *
 *   packages/cli/dist/braid.cjs        Main and everything it imports (the built @braid/core,
 *                                      @braid/agents and @braid/testkit, effect, @effect/*, yaml), one CommonJS script
 *   packages/cli/dist/braid.cjs.cache  V8's compiled code for it, made by running `braid status` once
 *   packages/cli/dist/braid.snapshot.js  Snapshot.ts and what it imports, without the parser and the cluster
 *   packages/cli/dist/braid.snapshot   the V8 start-up snapshot of that bundle, warmed on a finished run
 *   packages/cli/dist/braid.snapshot.node  the node that made it (its path; its modification time)
 *   packages/cli/dist/braid.snapshot.js.id  the snapshot bundle's identity (a hash of it): where an
 *                                      installed command keeps the snapshot it makes (bin/snapshot.mjs)
 *
 * `dist/bin.js` loads the first two through `Bundle.load` (see packages/cli/src/Bundle.ts for
 * why); bin/braid starts `braid runs` and `braid status` from the snapshot (src/Snapshot.ts).
 * Identifiers are kept (only whitespace and syntax are minified) so an internal error's stack
 * still reads.
 */
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { makeSnapshot } from "../packages/cli/bin/snapshot.mjs"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dist = path.join(root, "packages/cli/dist")
const outfile = path.join(dist, "braid.cjs")
const cache = `${outfile}.cache`

/** esbuild's settings for both bundles. */
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  // Non-ASCII characters escaped (esbuild's default, said here because Bundle.load relies on
  // it to read the bundle as latin1).
  charset: "ascii",
  logLevel: "warning"
}

// Write beside, then rename: a reader never sees half a bundle or a cache for another one.
const partial = `${outfile}.partial`
await build({
  ...common,
  entryPoints: [path.join(dist, "Main.js")],
  outfile: partial,
  format: "cjs",
  // The model providers' tokenizers (1.7 MB) are loaded only when an llm model is first used;
  // left out, every command's start does not read them. They have no part of effect in them, so
  // requiring them from node_modules then brings no second copy of it.
  external: ["@anthropic-ai/tokenizer", "gpt-tokenizer", "gpt-tokenizer/*"]
})
fs.rmSync(cache, { force: true })
fs.renameSync(partial, outfile)

// The cache holds what V8 compiled by the time it is made: made as this process exits after
// answering `braid status` about one finished run, it has the code a command's start needs, not
// only the bundle's top level.
const Bundle = await import(pathToFileURL(path.join(dist, "Bundle.js")).href)
const loaded = Bundle.load(outfile, undefined)
const repo = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bundle-"))
execFileSync("git", ["init", "-q", repo])
// A finished run to answer `braid status` about: status reads what runs does, and parses the run's plan too.
const gitIn = (...a) => execFileSync("git", ["-c", "user.name=braid", "-c", "user.email=braid@localhost", ...a], { cwd: repo })
fs.writeFileSync(path.join(repo, "README.md"), "build\n")
gitIn("add", "-A")
gitIn("commit", "-q", "-m", "base")
const plan = path.join(repo, ".git", "plan.yaml")
fs.writeFileSync(plan, "agent: script\nstreams:\n  - {name: s, type: docs}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, \"require('fs').writeFileSync('a.txt', 'a')\"]}\n")
// Its checkouts go in a cache folder of the build's own (removed at the end), not the user's ~/.cache.
const runCache = fs.mkdtempSync(path.join(os.tmpdir(), "braid-bundle-cache-"))
execFileSync(process.execPath, [path.join(dist, "bin.js"), "run", plan, "--repo", repo, "-q", "--report", path.join(repo, ".git", "report.md")], {
  stdio: "ignore",
  env: { ...process.env, NO_COLOR: "1", XDG_CACHE_HOME: runCache }
})

// The start-up snapshot of `braid runs` and `braid status`. Its bundle leaves out what those two
// never load there (Snapshot.start hands every other command line to the ordinary command): the
// parser and the cluster. The old snapshot and its record go first, and the record is written
// last, so bin/braid never pairs a snapshot with a record of another.
const snapshot = path.join(dist, "braid.snapshot")
const snapshotBundle = path.join(dist, "braid.snapshot.js")
fs.rmSync(`${snapshot}.node`, { force: true })
fs.rmSync(snapshot, { force: true })
await build({
  ...common,
  entryPoints: [path.join(dist, "Snapshot.js")],
  outfile: snapshotBundle,
  format: "iife",
  external: ["@anthropic-ai/tokenizer", "gpt-tokenizer", "gpt-tokenizer/*", "./Cli.js", "./ClusterSession.js", "@braid/cluster", "@effect/cli/*"]
})
// Its identity, by content: an installed command keeps the snapshot it makes in the user's cache
// folder under this name (bin/braid), so a reinstalled braid never starts from an old one's.
fs.writeFileSync(`${snapshotBundle}.id`, `${createHash("sha256").update(fs.readFileSync(snapshotBundle)).digest("hex").slice(0, 16)}\n`)
const why = makeSnapshot(dist, snapshot, { repo })
// Without it `braid runs` and `braid status` are only slower: say so, do not fail the build.
if (why !== undefined) process.stderr.write(`bundle-cli: no start-up snapshot (${why})\n`)

process.on("exit", () => {
  fs.rmSync(repo, { recursive: true, force: true })
  fs.rmSync(runCache, { recursive: true, force: true })
  fs.writeFileSync(`${cache}.partial`, loaded.script.createCachedData())
  fs.renameSync(`${cache}.partial`, cache)
  process.exitCode = 0
})
// What `braid status` prints is not the build's to say.
process.stdout.write = () => true
loaded.main.start(["node", "braid", "status", "--repo", repo])
