/**
 * Runs a program as an argv (never a shell string) with stdin closed, a timeout, and
 * stdout, stderr and the exit code read together. On timeout or interruption the whole
 * process group is killed.
 *
 * @since 0.1.0
 */
import { Command, CommandExecutor } from "@effect/platform"
import { Chunk, Duration, Effect, Option, Schema, Stream } from "effect"
import { readFileSync } from "node:fs"

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
  readonly timeoutMs?: number | undefined
  /** Text written to stdin before it is closed (empty when omitted). */
  readonly stdin?: string | undefined
  /** Called with the process id as soon as the process has started (agents journal it). */
  readonly onStart?: ((pid: number) => Effect.Effect<void>) | undefined
}

/**
 * The start time of a process as the kernel records it (field 22 of `/proc/<pid>/stat`, in
 * clock ticks since boot): with the pid it names one process, never a later one reusing the pid.
 * Undefined when the process is gone or the system has no `/proc`.
 */
export const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    return undefined
  }
}

const collect = (stream: Stream.Stream<Uint8Array, unknown>) =>
  stream.pipe(
    Stream.decodeText(),
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
  Effect.gen(function*() {
    const [program, ...args] = argv
    let command = Command.make(program!, ...args).pipe(Command.feed(options.stdin ?? ""))
    if (options.cwd !== undefined) command = Command.workingDirectory(command, options.cwd)
    if (options.env !== undefined) {
      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(options.env)) if (v !== undefined) env[k] = v
      command = Command.env(command, env)
    }
    const started = Date.now()
    const execute = Effect.scoped(
      Effect.gen(function*() {
        const proc = yield* Command.start(command)
        if (options.onStart !== undefined) yield* options.onStart(proc.pid)
        const [stdout, stderr, exitCode] = yield* Effect.all(
          [collect(proc.stdout), collect(proc.stderr), proc.exitCode],
          { concurrency: 3 }
        ).pipe(
          // Interrupted (timeout, Ctrl-C): SIGTERM to the whole process group, and SIGKILL
          // if it is still there after a grace period — a program ignoring SIGTERM must not
          // hold the run forever.
          Effect.onInterrupt(() =>
            proc.kill("SIGTERM").pipe(
              // Interruption handlers run uninterruptibly; the wait for exit must be cut short.
              Effect.interruptible,
              Effect.timeout(KILL_GRACE),
              Effect.catchAll(() => proc.kill("SIGKILL")),
              Effect.ignore
            )
          )
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
      onSome: (r) => ({ ...r, timedOut: false, durationMs })
    })
  })

/** The last `lines` lines of a text (and at most `chars` characters). */
export const tail = (text: string, lines = 40, chars = 4000): string => {
  const all = text.replace(/\s+$/, "").split("\n")
  const kept = all.slice(-lines).join("\n")
  return kept.length > chars ? kept.slice(-chars) : kept
}
