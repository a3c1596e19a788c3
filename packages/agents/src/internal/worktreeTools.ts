/**
 * The tools the `llm` backend gives a model — list, read, search, write and edit files, and
 * run the task's own check commands — confined to the stream's worktree. Every path is
 * resolved as the system would (symlinks included, `realpath`) and refused when it leaves the
 * worktree: `../x`, an absolute path elsewhere, a symlink pointing out (or at nothing, which
 * a write would follow), anything under `.git`. A refusal is the tool's answer to the model
 * and is recorded as a permission denial, as the CLI backends record theirs. Commands are the
 * plan's checks, chosen by name; the model never writes a shell command.
 *
 * @internal
 */
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import { type CommandSpec, Process } from "@braid/core"
import type { CommandExecutor } from "@effect/platform"
import { type Context as EffectContext, Effect, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** The most a tool answer says (the model reads every character of it). */
export const MAX_RESULT_CHARS = 20_000
/** The most files `list_files` names, and lines `search_files` shows. */
export const MAX_ENTRIES = 500

const SKIPPED_DIRS = new Set([".git", "node_modules"])

const Path = Schema.String.annotations({ description: "a path relative to the working directory" })

export const ListFiles = Tool.make("list_files", {
  description: "List the files under a folder of the working directory, recursively (\".\" for all of it).",
  parameters: { path: Path },
  success: Schema.String
})
export const ReadFile = Tool.make("read_file", {
  description: "Read a text file of the working directory.",
  parameters: { path: Path },
  success: Schema.String
})
export const SearchFiles = Tool.make("search_files", {
  description: "Find the lines containing a text (plain, case-sensitive) in the files under a folder (\".\" for all).",
  parameters: { pattern: Schema.String, path: Path },
  success: Schema.String
})
export const WriteFile = Tool.make("write_file", {
  description: "Write a whole file (created with its folders when missing, replaced otherwise).",
  parameters: { path: Path, content: Schema.String },
  success: Schema.String
})
export const EditFile = Tool.make("edit_file", {
  description: "Replace the one occurrence of old_text in a file with new_text (old_text must occur exactly once).",
  parameters: { path: Path, old_text: Schema.String, new_text: Schema.String },
  success: Schema.String
})
export const RunCheck = Tool.make("run_check", {
  description: "Run one of the task's check commands by its name and see its exit code and output.",
  parameters: { name: Schema.String },
  success: Schema.String
})

/** The toolkit of an `llm` attempt. */
export const toolkit = Toolkit.make(ListFiles, ReadFile, SearchFiles, WriteFile, EditFile, RunCheck)

/** A path refused: why, in words the model (and the report) read. */
export interface Refusal {
  readonly _tag: "Refusal"
  readonly reason: string
}

const refuse = (reason: string): Refusal => ({ _tag: "Refusal", reason })

const inside = (root: string, candidate: string): boolean => {
  const rel = path.relative(root, candidate)
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (e) => e as NodeJS.ErrnoException })

/**
 * Where `requested` really is, when it is inside `root` (itself a real path): the path with
 * every symlink resolved as far as the path exists, and the rest appended.
 */
export const resolveInside = (root: string, requested: string): Effect.Effect<string, Refusal> =>
  Effect.gen(function*() {
    if (requested.includes("\0")) return yield* Effect.fail(refuse("the path contains a NUL character"))
    const absolute = path.resolve(root, requested)
    if (!inside(root, absolute)) return yield* Effect.fail(refuse("it is outside the working directory"))
    const first = path.relative(root, absolute).split(path.sep)[0]
    if (first === ".git") return yield* Effect.fail(refuse("git's own files are not the task's"))
    // The deepest part of the path that exists, resolved; a symlink anywhere on it counts.
    let probe = absolute
    for (;;) {
      const real = yield* Effect.either(attempt(() => fs.realpath(probe)))
      if (real._tag === "Right") {
        if (!inside(root, real.right)) return yield* Effect.fail(refuse(`it resolves to ${real.right}, outside the working directory (a symlink)`))
        return probe === absolute ? real.right : path.join(real.right, path.relative(probe, absolute))
      }
      // A symlink to something missing: writing through it would create its target, wherever that is.
      const link = yield* Effect.either(attempt(() => fs.lstat(probe)))
      if (link._tag === "Right") return yield* Effect.fail(refuse("it is a symlink to something that does not exist"))
      const parent = path.dirname(probe)
      if (parent === probe || !inside(root, parent)) return yield* Effect.fail(refuse("it is outside the working directory"))
      probe = parent
    }
  })

const cut = (text: string, max = MAX_RESULT_CHARS) =>
  text.length > max ? `${text.slice(0, max)}\n[cut: ${text.length - max} more characters]` : text

/** What the tools of one attempt need. */
export interface Context {
  /** The worktree, as a real path. */
  readonly root: string
  readonly checks: ReadonlyArray<CommandSpec.Command>
  /** The environment check commands run with (with `BRAID_AGENT`, the attempt's marker). */
  readonly env: Record<string, string>
  /** Hears each check process as it starts (the attempt journals it, so a resumed run can end an orphan). */
  readonly started: (pid: number, command: string) => Effect.Effect<void>
  /** Hears every refused call, as the report records it (`write_file ../x: outside …`). */
  readonly denied: (line: string) => Effect.Effect<void>
}

/** The handlers of the toolkit for one attempt. Every answer is text; a failure is told to the model, never thrown. */
export const handlers = (context: Context, executor: EffectContext.Context<CommandExecutor.CommandExecutor>) => {
  const { root } = context
  const resolved = (tool: string, requested: string, use: (file: string) => Effect.Effect<string, unknown>) =>
    resolveInside(root, requested).pipe(
      Effect.matchEffect({
        onFailure: (refusal) =>
          Effect.as(
            context.denied(`${tool} ${requested}: ${refusal.reason}`),
            `refused: ${requested} — ${refusal.reason}. Work only inside the working directory.`
          ),
        onSuccess: (file) =>
          use(file).pipe(Effect.catchAll((e) => Effect.succeed(`error: ${errorText(e)}`)))
      })
    )

  const walk = (dir: string, out: Array<string>): Effect.Effect<void, NodeJS.ErrnoException> =>
    Effect.gen(function*() {
      const entries = yield* attempt(() => fs.readdir(dir, { withFileTypes: true }))
      entries.sort((a, b) => a.name.localeCompare(b.name))
      for (const entry of entries) {
        if (out.length >= MAX_ENTRIES) return
        const full = path.join(dir, entry.name)
        if (entry.isDirectory()) {
          if (!SKIPPED_DIRS.has(entry.name)) yield* walk(full, out)
        } else if (entry.isFile()) out.push(path.relative(root, full))
      }
    })

  const filesUnder = (file: string) =>
    Effect.gen(function*() {
      const stat = yield* attempt(() => fs.stat(file))
      if (stat.isFile()) return [path.relative(root, file)]
      const out: Array<string> = []
      yield* walk(file, out)
      return out
    })

  return toolkit.of({
    list_files: ({ path: requested }) =>
      resolved("list_files", requested, (file) =>
        Effect.map(filesUnder(file), (files) =>
          files.length === 0 ? "(no files)" : `${files.join("\n")}${files.length >= MAX_ENTRIES ? `\n[only the first ${MAX_ENTRIES} files]` : ""}`)),
    read_file: ({ path: requested }) =>
      resolved("read_file", requested, (file) => Effect.map(attempt(() => fs.readFile(file, "utf8")), (text) => cut(text))),
    search_files: ({ path: requested, pattern }) =>
      resolved("search_files", requested, (file) =>
        Effect.gen(function*() {
          if (pattern === "") return "error: the pattern is empty"
          const hits: Array<string> = []
          for (const name of yield* filesUnder(file)) {
            if (hits.length >= MAX_ENTRIES) break
            const text = yield* attempt(() => fs.readFile(path.join(root, name), "utf8")).pipe(Effect.orElseSucceed(() => ""))
            text.split("\n").forEach((line, i) => {
              if (hits.length < MAX_ENTRIES && line.includes(pattern)) hits.push(`${name}:${i + 1}: ${line.slice(0, 300)}`)
            })
          }
          return hits.length === 0 ? `no line contains ${JSON.stringify(pattern)}` : cut(hits.join("\n"))
        })),
    write_file: ({ content, path: requested }) =>
      resolved("write_file", requested, (file) =>
        Effect.gen(function*() {
          yield* attempt(() => fs.mkdir(path.dirname(file), { recursive: true }))
          yield* attempt(() => fs.writeFile(file, content, "utf8"))
          return `wrote ${path.relative(root, file)} (${Buffer.byteLength(content)} bytes)`
        })),
    edit_file: ({ new_text, old_text, path: requested }) =>
      resolved("edit_file", requested, (file) =>
        Effect.gen(function*() {
          const text = yield* attempt(() => fs.readFile(file, "utf8"))
          const count = old_text === "" ? 0 : text.split(old_text).length - 1
          if (count !== 1) {
            return `error: old_text occurs ${count} times in ${path.relative(root, file)}; it must occur exactly once (read the file first)`
          }
          yield* attempt(() => fs.writeFile(file, text.replace(old_text, () => new_text), "utf8"))
          return `edited ${path.relative(root, file)}`
        })),
    run_check: ({ name }) => {
      const check = context.checks.find((c) => c.name === name)
      if (check === undefined) {
        const known = context.checks.map((c) => c.name)
        return Effect.as(
          context.denied(`run_check ${name}: not one of the task's checks`),
          `refused: "${name}" is not one of the task's checks (${known.length === 0 ? "it has none" : `they are: ${known.join(", ")}`})`
        )
      }
      return Process.run(check.argv, {
        cwd: root,
        env: context.env,
        replaceEnv: true,
        timeoutMs: check.timeoutMs,
        killMarker: context.env.BRAID_AGENT,
        onStart: (pid) => context.started(pid, path.basename(check.argv[0]))
      }).pipe(
        Effect.map((r) =>
          `${check.name} exited ${r.exitCode}${r.timedOut ? " (timed out)" : ""}\n${Process.tail(`${r.stdout}\n${r.stderr}`, 60, 6000)}`
        ),
        Effect.catchAll((e) => Effect.succeed(`error: ${check.name} could not start: ${e.message}`)),
        Effect.provide(executor)
      )
    }
  })
}

const errorText = (e: unknown): string =>
  typeof e === "object" && e !== null && "code" in e && (e as NodeJS.ErrnoException).code === "ENOENT"
    ? "no such file"
    : typeof e === "object" && e !== null && "code" in e && (e as NodeJS.ErrnoException).code === "EISDIR"
    ? "it is a folder, not a file"
    : e instanceof Error
    ? e.message
    : String(e)

/** One readable line of a refusal, for `AttemptOutput.permissionDenials`. */
export const denial = (line: string): string => (line.length > 300 ? `${line.slice(0, 297)}...` : line)
