/**
 * A checkout's environment (`environment:` in the plan, a stream, `braid.config.yaml`): what
 * makes a fresh checkout of a real project usable before any agent or check runs there. When a
 * stream's checkout is opened (made, handed over from another stream, or taken back over after a
 * crash), braid
 *
 * 1. copies the untracked and ignored files the plan's `copy` patterns and the repository's
 *    `.worktreeinclude` name from the user's checkout (`.env`, local config);
 * 2. gives it its shared folders (`share`: `node_modules`, `.venv`): a copy of the build cached
 *    for the same key files (copy-on-write where the filesystem can clone), else the user's
 *    own when its key files match, else built by the folder's `build` command (or `setup`) and
 *    then cached — every checkout has its own copy, so a task that changes a dependency changes
 *    neither the cache nor another stream's folder;
 * 3. hands it a block of ports of its own (`BRAID_PORT`, `BRAID_PORTS=first-last`), in the
 *    environment of its setup, its agent and its checks;
 * 4. runs the `setup` commands there, confined as the stream's agent is (a failure stops the
 *    run, resumable, before any gate run is used).
 *
 * What was done is journaled per checkout (`environment/<stream>/<checkout>`): a resume finding
 * the same checkout (the same folder, not made anew) does not set it up again. The `teardown`
 * commands run when the checkout is closed for good. The integration's checkout gets the plan's
 * environment before the verify commands.
 *
 * Why copies and never hard links: a hard-linked tree shares each file's contents, and tools
 * write some files in place (`npm install` rewrites `node_modules/.package-lock.json`): one
 * stream's install would reach the cache and every other stream's folder.
 *
 * @since 0.9.0
 */
import { Clock, DateTime, Effect, Option, Schema } from "effect"
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Progress from "../ports/Progress.js"
import * as Steps from "../ports/Steps.js"
import * as Workspace from "../ports/Workspace.js"
import * as RunReport from "../present/RunReport.js"
import type * as CommandSpec from "../run/CommandSpec.js"
import * as Plan from "../run/Plan.js"
import * as RunState from "../run/RunState.js"
import * as Sandbox from "../system/Sandbox.js"

/** A setup command (or a shared folder's build) failed: the run stops, resumable once it is fixed. */
export class SetupFailed extends Schema.TaggedError<SetupFailed>()("SetupFailed", {
  /** The stream whose checkout it was; null: the integration's. */
  stream: Schema.NullOr(Schema.String),
  command: Schema.String,
  exitCode: Schema.Number,
  timedOut: Schema.Boolean,
  outputTail: Schema.String
}) {
  override get message(): string {
    const where = this.stream === null ? "the integration's checkout" : `stream "${this.stream}"'s checkout`
    const how = this.timedOut ? "timed out" : `exited ${this.exitCode}`
    return `the environment's setup failed in ${where}: \`${this.command}\` ${how}${this.outputTail.trim() === "" ? "" : `:\n${this.outputTail.trimEnd()}`}`
  }
}

/** Where braid keeps shared folders: `$XDG_CACHE_HOME/braid/share` (else `~/.cache/braid/share`). */
export const cacheRoot = (env: Readonly<Record<string, string | undefined>> = process.env): string =>
  path.join(env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== "" ? env.XDG_CACHE_HOME : path.join(os.homedir(), ".cache"), "braid", "share")

/** Cached builds older than this are removed when a new one is stored. */
const MAX_AGE_MS = 30 * 24 * 3600 * 1000
/** At most this many cached builds are kept (the ones used longest ago go first). */
const MAX_ENTRIES = 24

/** Ports handed out by this process and not yet given back: parallel checkouts never share one. */
const portsTaken = new Set<number>()
const FIRST_PORT = 20000

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/** A block of `size` ports, each free now and handed to no other checkout; the `preferred` block (a resumed checkout's) when it still is. */
const takePorts = (size: number, preferred?: number) =>
  Effect.promise(async () => {
    const tryBlock = async (first: number) => {
      for (let p = first; p < first + size; p++) if (portsTaken.has(p)) return false
      for (let p = first; p < first + size; p++) if (!(await portFree(p))) return false
      for (let p = first; p < first + size; p++) portsTaken.add(p)
      return true
    }
    if (preferred !== undefined && await tryBlock(preferred)) return preferred
    for (let first = FIRST_PORT; first + size <= 65535; first += size) if (await tryBlock(first)) return first
    return undefined
  })

const givePorts = (first: number, size: number) => {
  for (let p = first; p < first + size; p++) portsTaken.delete(p)
}

const exists = (p: string) => fs.promises.lstat(p).then(() => true, () => false)

/**
 * A copy of a file or folder tree (`to` must not be a folder already), links kept as links,
 * cloned block by block where the filesystem can: the system's `cp` (`--reflink=auto` on Linux,
 * `-c` clonefile on macOS), three to four times faster than Node's `fs.cp` on a `node_modules`
 * of thousands of files; Node's elsewhere.
 */
const copyTree = async (from: string, to: string) => {
  await fs.promises.mkdir(path.dirname(to), { recursive: true })
  const argv = process.platform === "linux"
    ? ["cp", "-a", "--reflink=auto", "--", from, to]
    : process.platform === "darwin"
    ? ["cp", "-c", "-R", "-p", from, to]
    : undefined
  if (argv !== undefined) {
    const done = await new Promise<string | undefined>((resolve) =>
      execFile(argv[0]!, argv.slice(1), (error, _out, stderr) => resolve(error === null ? undefined : `${error.message} ${stderr}`.trim()))
    )
    if (done === undefined) return
    throw new Error(`copying ${from} to ${to} failed: ${done}`)
  }
  await fs.promises.cp(from, to, { recursive: true, mode: fs.constants.COPYFILE_FICLONE, verbatimSymlinks: true, preserveTimestamps: true, force: true })
}

/** The key of a shared folder in a checkout: its path and the contents of its key files. */
const keyOf = (dir: string, shared: Plan.Shared) => {
  const hash = createHash("sha256").update(`${shared.path}\0`)
  for (const file of shared.key) {
    hash.update(`${file}\0`)
    try {
      hash.update(fs.readFileSync(path.join(dir, file)))
    } catch {
      hash.update("\0missing")
    }
    hash.update("\0")
  }
  return hash.digest("hex").slice(0, 32)
}

/** Stores a checkout's built folder in the cache under `key` (atomically: a half-copied build is never used), then trims the cache. */
const store = (root: string, key: string, from: string) =>
  Effect.promise(async () => {
    const entry = path.join(root, key)
    if (await exists(path.join(entry, "ready"))) return
    const scratch = path.join(root, `.${key}.${process.pid}.${Date.now()}`)
    try {
      await copyTree(from, path.join(scratch, "tree"))
      await fs.promises.writeFile(path.join(scratch, "ready"), `${new Date().toISOString()}\n`)
      await fs.promises.rename(scratch, entry).catch(() => undefined)
    } finally {
      await fs.promises.rm(scratch, { recursive: true, force: true })
    }
    await trim(root)
  })

/** Removes cached builds past their age and beyond the count, the ones used longest ago first. */
const trim = async (root: string) => {
  const entries = await fs.promises.readdir(root).catch(() => [] as Array<string>)
  const known: Array<{ dir: string; used: number }> = []
  for (const name of entries) {
    if (name.startsWith(".")) continue
    const used = await fs.promises.stat(path.join(root, name, "ready")).then((s) => s.mtimeMs, () => 0)
    known.push({ dir: path.join(root, name), used })
  }
  known.sort((a, b) => b.used - a.used)
  const now = Date.now()
  for (const [i, e] of known.entries()) {
    if (i >= MAX_ENTRIES || now - e.used > MAX_AGE_MS) await fs.promises.rm(e.dir, { recursive: true, force: true })
  }
}

/** Removes every cached build (`braid clean --cache`): what it freed, in bytes. */
export const clearCache = (root: string = cacheRoot()) =>
  Effect.promise(async () => {
    const size = async (p: string): Promise<number> => {
      const s = await fs.promises.lstat(p).catch(() => undefined)
      if (s === undefined) return 0
      if (!s.isDirectory()) return s.size
      let total = 0
      for (const name of await fs.promises.readdir(p)) total += await size(path.join(p, name))
      return total
    }
    const freed = await size(root)
    await fs.promises.rm(root, { recursive: true, force: true })
    return freed
  })

/** The lines of the repository's `.worktreeinclude` (gitignore syntax; Claude Code's convention), comments and blanks left out. */
const worktreeInclude = (top: string) => {
  try {
    return fs.readFileSync(path.join(top, ".worktreeinclude"), "utf8").split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
  } catch {
    return []
  }
}

/** What names one checkout: its folder, and that folder's own identity (a folder made anew at the same place is another checkout). */
const identityOf = (dir: string) => {
  try {
    const s = fs.statSync(dir)
    return createHash("sha256").update(`${dir}\0${s.ino}\0${s.birthtimeMs}`).digest("hex").slice(0, 16)
  } catch {
    return "missing"
  }
}

/** The environment variables of a checkout's ports. */
const portEnv = (first: number | undefined, size: number): Record<string, string> =>
  first === undefined ? {} : { BRAID_PORT: String(first), BRAID_PORTS: `${first}-${first + size - 1}` }

/** A checkout (a stream's or the integration's) with its environment's variables in every process started there. */
const withEnv = <C extends Pick<Workspace.Checkout, "files" | "exec">>(checkout: C, env: Record<string, string>): C =>
  Object.keys(env).length === 0 ? checkout : {
    ...checkout,
    files: checkout.files._tag === "Worktree" ? { ...checkout.files, env: { ...checkout.files.env, ...env } } : checkout.files,
    exec: (command: CommandSpec.Command, more?: Record<string, string>) => checkout.exec(command, { ...env, ...more })
  }

const nowIso = Effect.map(DateTime.now, DateTime.formatIso)

/** A file operation of braid's in a checkout; its failure is the workspace's, named. */
const io = <A>(operation: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: Workspace.failed(operation) })

/** Copies the user's file at `from` to `relative` in the checkout `dir`, never through a link leading out of it. */
const copyInto = async (dir: string, relative: string, from: string) => {
  const to = path.join(dir, relative)
  await fs.promises.mkdir(path.dirname(to), { recursive: true })
  const [root, parent] = await Promise.all([fs.promises.realpath(dir), fs.promises.realpath(path.dirname(to))])
  if (parent !== root && !parent.startsWith(root + path.sep)) throw new Error(`${relative} would be copied outside the checkout ${dir} (through a link)`)
  await fs.promises.rm(to, { force: true })
  await copyTree(from, to)
}

/** A run's environments. */
export interface Environments {
  /** The stream's checkout made ready when it was just opened; with its ports either way. */
  readonly ready: (checkout: Workspace.Checkout, stream: Plan.PlannedStream) => Effect.Effect<Workspace.Checkout, SetupFailed | Workspace.WorkspaceError>
  /** The integration's checkout made ready for the verify commands (the plan's environment). */
  readonly integration: (integration: Workspace.Integration) => Effect.Effect<Workspace.Integration, SetupFailed | Workspace.WorkspaceError>
  /** The stream's teardown, as its checkout is closed for good (best effort: a failure is logged). */
  readonly teardown: (checkout: Workspace.Checkout) => Effect.Effect<void>
  /** How the checkouts were made ready so far (those set up before a resume too), in order. */
  readonly records: Effect.Effect<ReadonlyArray<RunReport.EnvironmentRecord>>
}

/** Nothing to prepare: every checkout as it is. */
export const none: Environments = {
  ready: (checkout) => Effect.succeed(checkout),
  integration: (integration) => Effect.succeed(integration),
  teardown: () => Effect.void,
  records: Effect.succeed([])
}

/**
 * The environments of a run of `plan`: every checkout's setup journaled (`steps`), announced
 * (`progress`), and confined as its stream's agent is.
 */
export const make = (input: {
  readonly plan: Plan.Plan
  readonly source?: Workspace.Source | undefined
  /** Where shared folders are cached (default `cacheRoot()`). */
  readonly cache?: string | undefined
}) =>
  Effect.gen(function*() {
    const { plan, source } = input
    const steps = yield* Steps.Steps
    const progress = yield* Progress.Progress
    const context = yield* Effect.context<never>()
    const root = input.cache ?? cacheRoot()
    const environmentOf = (stream: string | null): Plan.Environment =>
      stream === null ? plan.environment : plan.streams.find((s) => s.name === stream)?.environment ?? plan.environment
    const include = source === undefined ? [] : worktreeInclude(source.dir)
    const configured = [plan.environment, ...plan.streams.flatMap((s) => s.environment ?? [])].some(Plan.hasEnvironment)
    if (!configured && include.length === 0) return none
    /** Port blocks held per stream (given back at teardown). */
    const held = new Map<string, number>()
    /** The checkouts made ready in this process (by journal key), with their variables. */
    const readyHere = new Map<string, Record<string, string>>()
    const records: Array<RunReport.EnvironmentRecord> = []
    /**
     * How often each checkout folder was closed for good in this process: one parked for another
     * stream and handed back later is the same folder, emptied of its ignored files, and is set up again.
     */
    const closedBefore = new Map<string, number>()

    const run = (
      files: Workspace.Files,
      exec: (command: CommandSpec.Command, env?: Record<string, string>) => Effect.Effect<Workspace.CommandResult, Workspace.WorkspaceError>,
      stream: string | null,
      command: CommandSpec.Command,
      env: Record<string, string>,
      network: ReadonlyArray<Sandbox.Endpoint>
    ) =>
      Effect.gen(function*() {
        // Confined, the home folder is read-only: package managers keep their downloads in braid's own cache instead.
        const policy = yield* Sandbox.policyOf(files, { network })
        const tools = path.join(path.dirname(root), "tools")
        if (policy !== undefined) yield* Effect.promise(() => fs.promises.mkdir(tools, { recursive: true }))
        const confine = Sandbox.within(policy === undefined ? undefined : { ...policy, writable: [...policy.writable, tools] })
        const toolEnv = policy === undefined ? {} : { npm_config_cache: path.join(tools, "npm"), XDG_CACHE_HOME: path.join(tools, "cache") }
        const result = yield* confine(exec(command, { ...toolEnv, ...env }))
        if (result.exitCode !== 0) {
          return yield* new SetupFailed({ stream, command: command.argv.join(" "), exitCode: result.exitCode, timedOut: result.timedOut, outputTail: result.outputTail })
        }
        return result
      })

    /** Copies, shared folders and setup in one checkout: what was done, as the report shows it. */
    const prepare = (
      files: Workspace.Files,
      exec: (command: CommandSpec.Command, env?: Record<string, string>) => Effect.Effect<Workspace.CommandResult, Workspace.WorkspaceError>,
      stream: string | null,
      env: Record<string, string>,
      ports: string | undefined,
      network: ReadonlyArray<Sandbox.Endpoint>
    ) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const environment = environmentOf(stream)
        const dir = Workspace.directoryOf(files)
        const copied: Array<string> = []
        const shared: Array<{ path: string; from: "cache" | "main" | "built" | "kept" }> = []
        const setup: Array<Workspace.CommandResult> = []
        if (dir !== undefined && source !== undefined) {
          const patterns = [...environment.copy, ...include]
          for (const relative of yield* source.untracked(patterns)) {
            const from = path.join(source.dir, relative)
            const stat = yield* Effect.promise(() => fs.promises.lstat(from).catch(() => undefined))
            if (stat === undefined || !stat.isFile()) continue
            yield* io("environment.copy", () => copyInto(dir, relative, from))
            copied.push(relative)
          }
        }
        const toStore: Array<{ key: string; at: string; path: string }> = []
        for (const s of environment.share) {
          if (dir === undefined) break
          const at = path.join(dir, s.path)
          if (yield* Effect.promise(() => exists(at))) {
            shared.push({ path: s.path, from: "kept" })
            continue
          }
          const key = keyOf(dir, s)
          const cached = path.join(root, key)
          if (yield* Effect.promise(() => exists(path.join(cached, "ready")))) {
            yield* io("environment.share", async () => {
              await copyTree(path.join(cached, "tree"), at)
              const now = new Date()
              await fs.promises.utimes(path.join(cached, "ready"), now, now).catch(() => undefined)
            })
            shared.push({ path: s.path, from: "cache" })
            continue
          }
          const mine = source === undefined ? undefined : path.join(source.dir, s.path)
          if (mine !== undefined && keyOf(source!.dir, s) === key && (yield* Effect.promise(() => exists(mine)))) {
            yield* io("environment.share", () => copyTree(mine, at))
            shared.push({ path: s.path, from: "main" })
            toStore.push({ key, at, path: s.path })
            continue
          }
          if (s.build !== undefined) setup.push(yield* run(files, exec, stream, s.build, env, network))
          shared.push({ path: s.path, from: "built" })
          toStore.push({ key, at, path: s.path })
        }
        for (const command of environment.setup) setup.push(yield* run(files, exec, stream, command, env, network))
        // Built here (or taken from the user's checkout): cached for the next checkout with the same key.
        // A cache that cannot be written (a full disk) costs the next checkout a build, nothing more.
        for (const s of toStore) {
          if (yield* Effect.promise(() => exists(s.at))) {
            yield* store(root, s.key, s.at).pipe(Effect.catchAllDefect((e) => Effect.logWarning(`the shared ${s.path} was not cached: ${String(e)}`)))
          }
        }
        return new RunReport.EnvironmentRecord({
          stream,
          copied,
          shared,
          ...(ports !== undefined ? { ports } : {}),
          setup,
          durationMs: (yield* Clock.currentTimeMillis) - started
        })
      })

    /** Prepares one checkout once per checkout: journaled, announced; a checkout set up before (a resume) is not set up again. */
    const once = (
      files: Workspace.Files,
      exec: (command: CommandSpec.Command, env?: Record<string, string>) => Effect.Effect<Workspace.CommandResult, Workspace.WorkspaceError>,
      busy: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
      stream: string | null,
      network: ReadonlyArray<Sandbox.Endpoint>
    ) =>
      Effect.gen(function*() {
        const environment = environmentOf(stream)
        const dir = Workspace.directoryOf(files)
        const identity = dir === undefined ? "memory" : identityOf(dir)
        const closed = closedBefore.get(identity) ?? 0
        const key = RunState.keys.environment(stream, closed === 0 ? identity : `${identity}.${closed}`)
        const known = readyHere.get(key)
        if (known !== undefined) return known
        const before = yield* steps.recall(key, RunState.EnvironmentReady)
        if (before._tag === "Some") records.push(before.value.record)
        const name = stream ?? "integration"
        let first: number | undefined
        if (environment.ports > 0) {
          const preferred = Option.getOrUndefined(before)?.record.ports
          first = yield* takePorts(environment.ports, preferred === undefined ? undefined : Number(preferred.split("-")[0]))
          if (first !== undefined) {
            const earlier = held.get(name)
            if (earlier !== undefined && earlier !== first) givePorts(earlier, environment.ports)
            held.set(name, first)
          }
        }
        const env = portEnv(first, environment.ports)
        if (before._tag === "Some" || environment.setup.length + environment.copy.length + environment.share.length + include.length === 0) {
          readyHere.set(key, env)
          return env
        }
        yield* progress.publish({ _tag: "EnvironmentStarted", at: yield* nowIso, stream })
        const ports = first === undefined ? undefined : env.BRAID_PORTS
        const record = yield* busy(prepare(files, exec, stream, env, ports, network)).pipe(
          Effect.tapError((e) =>
            e._tag === "SetupFailed"
              ? Effect.flatMap(nowIso, (at) => progress.publish({ _tag: "EnvironmentFailed", at, stream, message: e.message }))
              : Effect.void
          )
        )
        yield* steps.record(key, RunState.EnvironmentReady, new RunState.EnvironmentReady({ record }))
        records.push(record)
        readyHere.set(key, env)
        yield* progress.publish({ _tag: "EnvironmentReady", at: yield* nowIso, record })
        return env
      })

    const environments: Environments = {
      ready: (checkout, stream) =>
        Effect.map(
          once(checkout.files, checkout.exec, checkout.busy, stream.name, [...plan.sandbox.network, ...(stream.network ?? [])]),
          (env) => withEnv(checkout, env)
        ),
      integration: (integration) =>
        Effect.map(once(integration.files, integration.exec, (effect) => effect, null, plan.sandbox.network), (env) => withEnv(integration, env)),
      teardown: (checkout) =>
        Effect.gen(function*() {
          const environment = environmentOf(checkout.stream)
          const first = held.get(checkout.stream)
          const env = portEnv(first, environment.ports)
          const network = [...plan.sandbox.network, ...(plan.streams.find((s) => s.name === checkout.stream)?.network ?? [])]
          for (const command of environment.teardown) {
            yield* run(checkout.files, checkout.exec, checkout.stream, command, env, network).pipe(
              Effect.catchAll((e) => Effect.logWarning(`teardown of stream "${checkout.stream}": ${e.message}`))
            )
          }
          if (first !== undefined) {
            givePorts(first, environment.ports)
            held.delete(checkout.stream)
          }
          const dir = Workspace.directoryOf(checkout.files)
          if (dir !== undefined) {
            const identity = identityOf(dir)
            closedBefore.set(identity, (closedBefore.get(identity) ?? 0) + 1)
          }
          for (const key of [...readyHere.keys()]) if (key.startsWith(RunState.keys.environment(checkout.stream, ""))) readyHere.delete(key)
        }).pipe(Effect.provide(context)),
      records: Effect.sync(() => [...records])
    }
    return environments
  })

