/**
 * `braid runs` and `braid status` from a V8 start-up snapshot.
 *
 * Bundled and with V8's code cache (Bundle.ts), these two commands still spent most of their
 * start-up initialising the engine's modules (Effect's own, and the Schemas of plans, run states
 * and reports) before reading a single file. `npm run build` therefore also bundles this module
 * alone (without the parser and the cluster) and runs that bundle under
 * `node --build-snapshot` (scripts/bundle-cli.mjs): its modules are initialised, `warm` answers
 * both commands once about a finished run so that the code they run is compiled and their
 * Schemas' parsers are made, and V8 saves the heap as `dist/braid.snapshot`. The `braid`
 * executable (bin/braid, a shell script) starts Node from that heap for `braid runs` and
 * `braid status` when the snapshot was made by the very Node it would run, and Node calls
 * `start`.
 *
 * Only these two commands, which only read: a snapshot keeps what module initialisation
 * computed (Effect's default random seed, for one), harmless for reading runs, not for making
 * them. What the snapshot cannot answer — another spelling the parser must read, a cluster's
 * runs — the ordinary command (bin/braid.js) answers in a child process.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as v8 from "node:v8"
import * as Help from "./Help.js"
import * as Main from "./Main.js"

/** A console that prints nothing: `warm` runs the commands for their code, not their output. */
const silent: Console.Console = {
  [Console.TypeId]: Console.TypeId,
  assert: () => Effect.void,
  clear: Effect.void,
  count: () => Effect.void,
  countReset: () => Effect.void,
  debug: () => Effect.void,
  dir: () => Effect.void,
  dirxml: () => Effect.void,
  error: () => Effect.void,
  group: () => Effect.void,
  groupEnd: Effect.void,
  info: () => Effect.void,
  log: () => Effect.void,
  table: () => Effect.void,
  time: () => Effect.void,
  timeEnd: () => Effect.void,
  timeLog: () => Effect.void,
  trace: () => Effect.void,
  warn: () => Effect.void,
  // Nothing from the global console: its methods are native functions, which a snapshot cannot hold.
  unsafe: new Proxy({} as Console.UnsafeConsole, { get: () => () => {} })
}

/** Answers `braid runs` and `braid status` (plain and `--json`) about the runs of `repo`, printing nothing. */
export const warm = (repo: string): Promise<void> =>
  Effect.runPromise(
    Effect.forEach(
      [["runs"], ["runs", "--json"], ["status"], ["status", "--json"]],
      (args) => Main.main(["node", "braid", ...args, "--repo", repo]),
      { discard: true }
    ).pipe(Effect.withConsole(silent), Effect.provide(NodeContext.layer))
  ).then(() => void (process.exitCode = undefined))

/**
 * The command, as Node starts it from the snapshot: `argv` is `process.argv`, whose second word
 * bin/braid sets to bin/braid.js, the ordinary command.
 */
export const start = (argv: ReadonlyArray<string>): void => {
  if (Help.answer(Help.early(argv.slice(2), Help.styleOf(process.stdout, process.env)))) return
  if (Main.direct(argv, { local: true }) !== undefined) return Main.start(argv)
  // The ordinary command answers in a child with this process's stdin, stdout and stderr; a
  // Ctrl-C reaches both, and this process only waits for the child's exit.
  process.on("SIGINT", () => {})
  process.on("SIGTERM", () => {})
  const child = spawnSync(process.execPath, argv.slice(1), { stdio: "inherit" })
  if (child.error !== undefined) process.stderr.write(`braid: ${child.error.message}\n`)
  process.exitCode = child.status ?? (child.signal === "SIGINT" ? 130 : 1)
}

// Run by `node --build-snapshot` (the build sets BRAID_SNAPSHOT_REPO to a repository holding a
// finished run); imported anywhere else, this module does nothing. (Node 20's isBuildingSnapshot
// answers 1 or 0, not a boolean.)
if (v8.startupSnapshot.isBuildingSnapshot()) {
  v8.startupSnapshot.setDeserializeMainFunction(() => start(process.argv))
  const repo = process.env.BRAID_SNAPSHOT_REPO
  if (repo !== undefined && repo !== "") {
    warm(repo).catch((error: unknown) => {
      process.stderr.write(`braid: warming the start-up snapshot failed: ${String(error)}\n`)
      process.exitCode = 1
    })
  }
}
