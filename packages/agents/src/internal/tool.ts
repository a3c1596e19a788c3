/**
 * What every CLI backend shares: finding and checking its executable, a minimal
 * environment, running the tool for one attempt (argv, cwd = the worktree, prompt on stdin
 * or stdin closed, a timeout, its process journaled), and reading JSON lines.
 *
 * @internal
 */
import { Agent, Process, Sandbox } from "@braid/core"
import { CommandExecutor } from "@effect/platform"
import type * as Backend from "../Backend.js"
import { Effect } from "effect"
import { accessSync, constants } from "node:fs"
import * as path from "node:path"

/** Variables every tool gets from braid's own environment when set: what a program needs to run at all. */
export const BASE_ENV = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM"] as const

/** Proxy and certificate settings: a tool behind a corporate proxy needs them to reach its provider. */
export const NETWORK_ENV = [
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "NO_PROXY",
  "https_proxy",
  "http_proxy",
  "no_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE"
] as const

/**
 * The environment a tool runs with: the base variables, the ones the tool needs, the
 * settings' explicit passthrough list, then `set` (braid's own values win). Nothing else
 * leaks in: not the user's other keys, not braid's.
 */
export const minimalEnv = (
  source: Readonly<Record<string, string | undefined>>,
  names: ReadonlyArray<string>,
  settings: { readonly env?: ReadonlyArray<string> | undefined },
  set: Readonly<Record<string, string | undefined>> = {}
): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const name of [...BASE_ENV, ...NETWORK_ENV, ...names, ...(settings.env ?? [])]) {
    const value = source[name]
    if (value !== undefined) env[name] = value
  }
  for (const [name, value] of Object.entries(set)) {
    if (value === undefined) delete env[name]
    else env[name] = value
  }
  return env
}

/** The executable a backend runs: `settings.command` (its first word) or the default name. */
export const commandOf = (settings: { readonly command?: string | ReadonlyArray<string> | undefined }, fallback: string): ReadonlyArray<string> =>
  settings.command === undefined
    ? [fallback]
    : typeof settings.command === "string"
    ? settings.command.split(/\s+/).filter((w) => w !== "")
    : settings.command

/**
 * Finds an executable as a shell would: a path (absolute, or relative to `cwd`) as it is,
 * a bare name on `PATH`, and then in the project's own `node_modules/.bin` folders (where
 * the pinned agent CLIs are installed).
 */
export const which = (name: string, env: Readonly<Record<string, string | undefined>>, cwd = process.cwd()): string | undefined => {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  }
  if (name.includes("/")) {
    const file = path.resolve(cwd, name)
    return executable(file) ? file : undefined
  }
  const dirs = (env.PATH ?? "").split(path.delimiter).filter((d) => d !== "")
  for (let dir = cwd;; dir = path.dirname(dir)) {
    dirs.push(path.join(dir, "node_modules", ".bin"))
    if (path.dirname(dir) === dir) break
  }
  for (const dir of dirs) {
    const file = path.join(dir, name)
    if (executable(file)) return file
  }
  return undefined
}

/** Runs `argv --version` (or the given arguments) to check the tool starts; a string is the problem. */
export const checkRuns = (
  argv: ReadonlyArray<string>,
  env: Record<string, string>,
  args: ReadonlyArray<string> = ["--version"]
): Effect.Effect<string | undefined, never, CommandExecutor.CommandExecutor> =>
  Process.run([...argv, ...args], { env, timeoutMs: 30_000 }).pipe(
    Effect.map((r) =>
      r.timedOut
        ? `\`${[...argv, ...args].join(" ")}\` did not answer within 30 s`
        : r.exitCode !== 0
        ? `\`${[...argv, ...args].join(" ")}\` exited ${r.exitCode}: ${Process.tail(`${r.stdout}${r.stderr}`, 3, 300)}`
        : undefined
    ),
    Effect.catchTag("SpawnFailed", (e) => Effect.succeed(`cannot start ${argv[0]}: ${e.message}`))
  )

/**
 * The preflight problem of a backend that works in a directory when the run's workspace has
 * none (the memory workspace): `does` says what the backend does there ("claude edits files").
 */
export const worktreeProblems = (context: Backend.PreflightContext, does: string): Array<Backend.Problem> =>
  context.workspaceKind === "git" ? [] : [{
    path: context.path,
    message: `${does} in a git worktree; the ${context.workspaceKind} workspace has no directories ` +
      `(streams: ${context.streams.map((s) => s.stream.name).join(", ")})`
  }]

/** One run of a tool for an attempt. */
export interface Invocation {
  readonly argv: ReadonlyArray<string>
  readonly env: Record<string, string>
  readonly timeoutMs: number
  /** Written to the tool's stdin, which is then closed (closed at once when omitted). */
  readonly stdin?: string | undefined
  /** Called with the tool's stdout as it arrives (see `Process.Options.onStdout`). */
  readonly onStdout?: ((text: string) => Effect.Effect<void>) | undefined
  /** What the tool needs beyond the checkout when the run is confined: its home, its login, its model API. */
  readonly sandbox?: Sandbox.Allowance | undefined
}

/**
 * Runs a tool in the stream's worktree for one attempt. Its process is journaled (pid and
 * start time) as soon as it starts; every process it starts carries `BRAID_AGENT`, naming the
 * run, stream, task and attempt, so the whole tree can be found and ended later.
 */
export const runAttempt = (
  backend: string,
  request: Agent.AttemptRequest,
  invocation: Invocation
): Effect.Effect<Process.Result, Agent.AgentFailed, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    if (request.files._tag !== "Worktree") {
      return yield* new Agent.AgentFailed({
        agent: backend,
        taskId: request.task.id,
        reason: "unavailable",
        message: `the ${backend} agent works in a directory (a git worktree); this workspace has none (in-memory?)`
      })
    }
    const cwd = request.files.dir
    // The checkout's own variables (its ports) too; braid's marker wins.
    const env = { ...invocation.env, ...request.files.env, BRAID_AGENT: agentMarker(request) }
    return yield* Sandbox.allowing(invocation.sandbox ?? {})(Process.run(invocation.argv, {
      cwd,
      env,
      timeoutMs: invocation.timeoutMs,
      stdin: invocation.stdin,
      onStdout: invocation.onStdout,
      // The minimal environment is the whole environment: nothing else of braid's leaks in.
      replaceEnv: true,
      killMarker: env.BRAID_AGENT,
      onStart: (pid) =>
        request.note({
          _tag: "Process",
          pid,
          startTime: Process.startTimeOf(pid) ?? "",
          command: invocation.argv.map((a) => path.basename(a)).slice(0, 1).join(" ")
        })
    })).pipe(
      Effect.catchTag("SpawnFailed", (e) =>
        Effect.fail(
          new Agent.AgentFailed({
            agent: backend,
            taskId: request.task.id,
            reason: "unavailable",
            message: `could not start ${invocation.argv[0]}: ${e.message}`
          })
        ))
    )
  })

/**
 * A tool's allowance when confined: its own home (writable), the user's login it reads, and the
 * model APIs its URLs name (an unset URL is skipped).
 */
export const allowance = (options: {
  readonly home?: string | undefined
  readonly login?: ReadonlyArray<string | undefined> | undefined
  readonly urls: ReadonlyArray<string | undefined>
}): Sandbox.Allowance => ({
  writable: options.home === undefined ? [] : [options.home],
  readable: (options.login ?? []).filter((p): p is string => p !== undefined),
  network: options.urls.flatMap((u) => {
    const e = u === undefined || u === "" ? undefined : Sandbox.endpointOfUrl(u)
    return e === undefined ? [] : [e]
  })
})

/** The marker every process of an attempt carries in `BRAID_AGENT`. */
export const agentMarker = (request: Pick<Agent.AttemptRequest, "runId" | "stream" | "task" | "attempt">): string =>
  `${request.runId}/${request.stream.name}/${request.task.id}/${request.attempt}`

/** Every line of `text` that parses as a JSON object, in order (other lines are skipped). */
export const jsonLines = (text: string): Array<unknown> =>
  text.split("\n").flatMap((line) => {
    const trimmed = line.trim()
    if (!trimmed.startsWith("{")) return []
    try {
      return [JSON.parse(trimmed) as unknown]
    } catch {
      return []
    }
  })

/** The attempt's timeout: the settings' `timeoutSeconds`, else the backend's default. */
export const timeoutMsOf = (settings: { readonly timeoutSeconds?: number | undefined }, defaultSeconds: number): number =>
  Math.round((settings.timeoutSeconds ?? defaultSeconds) * 1000)

/** `Retry-After` (seconds or an HTTP date) in milliseconds, when it says something usable. */
export const retryAfterMs = (value: string | undefined, now = Date.now()): number | undefined => {
  if (value === undefined) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
