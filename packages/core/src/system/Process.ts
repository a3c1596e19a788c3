/**
 * Runs a program as an argv (never a shell string) with stdin closed, a timeout, and
 * stdout, stderr and the exit code read together. On timeout or interruption the whole
 * process group is killed, and with a `killMarker` every process the program started,
 * whatever group it moved to (see `ProcessTree`).
 *
 * @since 0.1.0
 */
// By path, not @effect/platform's index, which would initialise every platform module at start-up (ARCHITECTURE.md).
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Chunk, Duration, Effect, FiberRef, Option, Schema, Stream } from "effect"
import * as ProcessTree from "./ProcessTree.js"
import * as Sandbox from "./Sandbox.js"
import * as Secrets from "./Secrets.js"

/** What a finished process left. */
export interface Result {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
  readonly durationMs: number
}

/** The program could not be started at all (not found, not executable, bad cwd). */
export class SpawnFailed extends Schema.TaggedError<SpawnFailed>()("SpawnFailed", {
  argv: Schema.Array(Schema.String),
  message: Schema.String
}) {}

export interface Options {
  readonly cwd?: string | undefined
  readonly env?: Record<string, string | undefined> | undefined
  /** `env` is the program's whole environment rather than additions to braid's own (agents get only what they need). */
  readonly replaceEnv?: boolean | undefined
  readonly timeoutMs?: number | undefined
  /** Text written to stdin before it is closed (empty when omitted). */
  readonly stdin?: string | undefined
  /** Called with the process id as soon as the process has started (agents journal it). */
  readonly onStart?: ((pid: number) => Effect.Effect<void>) | undefined
  /** Called with stdout as it arrives (decoded text in pieces; a line may span two pieces), e.g. to journal what a tool reports early. */
  readonly onStdout?: ((text: string) => Effect.Effect<void>) | undefined
  /**
   * The `BRAID_AGENT` value the program runs with (set it in `env` too). When given, every
   * process carrying it, and every descendant of the program, is ended on timeout or
   * interruption, and also when the program exits but left processes running.
   */
  readonly killMarker?: string | undefined
  /**
   * Credentials replaced by a marker in the stdout and stderr returned (`Secrets.scrub`: every
   * known credential shape, and these values): for output that is shown or stored as it is, a
   * check's or a verify command's. Omitted: returned as printed (a tool's JSON that braid parses;
   * its sinks scrub what they keep).
   */
  readonly redact?: ReadonlyArray<string | undefined> | undefined
  /**
   * Run confined by the operating system (`Sandbox`): the program can write only the policy's
   * folders and reach only its endpoints, and whatever it starts ends with it. Where confinement
   * is unavailable this is a `SpawnFailed` saying why: callers decide beforehand (`Sandbox.unavailable`).
   */
  readonly sandbox?: Sandbox.Policy | undefined
  /** Never confined, whatever `Sandbox.ambient` says: braid's own git, which does every git write outside the sandbox. */
  readonly unconfined?: boolean | undefined
}

/**
 * The start time of a process as the kernel records it (field 22 of `/proc/<pid>/stat`, in
 * clock ticks since boot): with the pid it names one process, never a later one reusing the pid.
 * Undefined when the process is gone or the system has no `/proc`.
 */
export const startTimeOf = ProcessTree.startTimeOf

const collect = (stream: Stream.Stream<Uint8Array, unknown>, onText?: (text: string) => Effect.Effect<void>) =>
  stream.pipe(
    Stream.decodeText(),
    (text) => onText === undefined ? text : Stream.tap(text, onText),
    Stream.runCollect,
    Effect.map((chunks) => Chunk.join(chunks, "")),
    Effect.orElseSucceed(() => "")
  )

/** How long a process gets to exit after SIGTERM before it is killed. */
export const KILL_GRACE = Duration.seconds(5)

/** Runs `argv` to completion. A timeout is a result (`timedOut`, exit code 124), not an error. */
export const run = (
  argv: ReadonlyArray<string>,
  options: Options = {}
): Effect.Effect<Result, SpawnFailed, CommandExecutor.CommandExecutor> =>
  Effect.flatMap(FiberRef.get(Sandbox.ambient), (ambient) => {
    const policy = options.unconfined === true ? undefined : options.sandbox ?? ambient
    return policy === undefined ? runPlain(argv, options) : runConfined(argv, policy, options)
  })

/** Runs `argv` in bubblewrap under `policy`, gathering what it was refused when a stage collects denials. */
const runConfined = (argv: ReadonlyArray<string>, policy: Sandbox.Policy, options: Options) =>
  Effect.scoped(
    Effect.gen(function*() {
      const wrapped = yield* Sandbox.confine(argv, policy, { cwd: options.cwd }).pipe(
        Effect.mapError((e) => new SpawnFailed({ argv: [...argv], message: e.message }))
      )
      // The relay's proxy settings win; a caller's own TMPDIR (codex's and gemini's scratch in their writable home) stays.
      const tmpdir = options.env?.TMPDIR
      const env = { ...options.env, ...wrapped.env, ...(tmpdir !== undefined ? { TMPDIR: tmpdir } : {}) }
      const result = yield* runPlain(wrapped.argv, { ...options, env })
      const sink = yield* FiberRef.get(Sandbox.denialSink)
      if (sink !== undefined) sink.push(...Sandbox.denialsIn(`${result.stdout}\n${result.stderr}`, policy))
      return result
    })
  )

const runPlain = (
  argv: ReadonlyArray<string>,
  options: Options
): Effect.Effect<Result, SpawnFailed, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const [program, ...args] = argv
    let command = Command.make(program!, ...args).pipe(Command.feed(options.stdin ?? ""))
    if (options.cwd !== undefined) command = Command.workingDirectory(command, options.cwd)
    if (options.env !== undefined) {
      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(options.env)) if (v !== undefined) env[k] = v
      command = Command.env(command, env, { extendEnv: options.replaceEnv !== true })
    }
    const marker = options.killMarker
    const endLeftovers = (since: string | undefined) =>
      marker === undefined
        ? Effect.void
        : Effect.suspend(() =>
          ProcessTree.end(
            ProcessTree.find({ marker: (value) => value === marker, ownOnly: true, startedSince: since }),
            KILL_GRACE
          )
        ).pipe(Effect.asVoid)
    const started = Date.now()
    const execute = Effect.scoped(
      Effect.gen(function*() {
        const proc = yield* Command.start(command)
        const rootStart = marker === undefined ? undefined : ProcessTree.startTimeOf(proc.pid)
        const [stdout, stderr, exitCode] = yield* Effect.all(
          // The program is done when it exits; what it started in other process groups may
          // not be (and may hold its output open): those are ended then. Its output is read
          // from the start, while `onStart` runs (a journal write and its disk sync): a program
          // done before that would otherwise have its output lost.
          [
            collect(proc.stdout, options.onStdout),
            collect(proc.stderr),
            Effect.tap(proc.exitCode, () => endLeftovers(rootStart)),
            options.onStart === undefined ? Effect.void : options.onStart(proc.pid)
          ],
          { concurrency: 4 }
        ).pipe(
          // Interrupted (timeout, Ctrl-C): SIGTERM to the whole process group, and SIGKILL
          // if it is still there after a grace period — a program ignoring SIGTERM must not
          // hold the run forever.
          Effect.onInterrupt(() => {
            // Found before anything is signalled: a child whose parent dies is reparented and
            // can no longer be found by its parent pid (only by its marker).
            const tree = marker === undefined ? [] : ProcessTree.find({
              marker: (value) => value === marker,
              ownOnly: true,
              roots: [{ pid: proc.pid, startTime: rootStart }]
            })
            const group = proc.kill("SIGTERM").pipe(
              // Interruption handlers run uninterruptibly; the wait for exit must be cut short.
              Effect.interruptible,
              Effect.timeout(KILL_GRACE),
              Effect.catchAll(() => proc.kill("SIGKILL")),
              Effect.ignore
            )
            return Effect.all([group, ProcessTree.end(tree, KILL_GRACE)], { concurrency: 2, discard: true }).pipe(
              Effect.zipRight(endLeftovers(rootStart))
            )
          })
        )
        return { exitCode: exitCode as number, stdout, stderr }
      })
    ).pipe(
      Effect.mapError((e) => new SpawnFailed({ argv: [...argv], message: e.message }))
    )
    const timed = options.timeoutMs === undefined ? Effect.map(execute, Option.some) : Effect.timeoutOption(
      execute,
      Duration.millis(options.timeoutMs)
    )
    const outcome = yield* timed
    const durationMs = Date.now() - started
    return Option.match(outcome, {
      onNone: () => ({ exitCode: 124, stdout: "", stderr: `timed out after ${options.timeoutMs} ms`, timedOut: true, durationMs }),
      onSome: (r) => {
        if (options.redact === undefined) return { ...r, timedOut: false, durationMs }
        const known = options.redact
        const scrub = (text: string) => Secrets.scrub(text, known)
        return { ...r, stdout: scrub(r.stdout), stderr: scrub(r.stderr), timedOut: false, durationMs }
      }
    })
  })

/** The last `lines` lines of a text (and at most `chars` characters). */
export const tail = (text: string, lines = 40, chars = 4000): string => {
  const all = text.replace(/\s+$/, "").split("\n")
  const kept = all.slice(-lines).join("\n")
  return kept.length > chars ? kept.slice(-chars) : kept
}
