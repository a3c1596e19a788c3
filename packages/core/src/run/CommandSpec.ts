/**
 * Commands written in a plan (`run`, `checks`, `verify`). They are always run as an argv,
 * never through a shell: a string is split into words (quotes group words, nothing is
 * expanded), so no text from a task ever reaches a shell.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as path from "node:path"

const Line = Schema.Union(Schema.String, Schema.NonEmptyArray(Schema.String))

/** A command as written: a string, an argv list, or an object with options. */
export const CommandSpec = Schema.Union(
  Line,
  Schema.Struct({
    name: Schema.optional(Schema.String),
    command: Line,
    timeoutSeconds: Schema.optional(Schema.Number.pipe(Schema.positive()))
  })
)
export type CommandSpec = typeof CommandSpec.Type

/** A task's `run`: a command, or `{ script: <file> }`, a file relative to the plan's directory. */
export const RunSpec = Schema.Union(
  CommandSpec,
  Schema.Struct({
    script: Schema.String,
    timeoutSeconds: Schema.optional(Schema.Number.pipe(Schema.positive()))
  })
)
export type RunSpec = typeof RunSpec.Type

/** A command ready to run. */
export class Command extends Schema.Class<Command>("Command")({
  name: Schema.String,
  argv: Schema.NonEmptyArray(Schema.String),
  timeoutMs: Schema.Number
}) {}

export const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000

/** Splits a command line into words: whitespace separates, single or double quotes group. */
export const split = (line: string): Array<string> | string => {
  const words: Array<string> = []
  let current = ""
  let inWord = false
  let quote: "'" | "\"" | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
      else if (c === "\\" && quote === "\"" && i + 1 < line.length) current += line[++i]
      else current += c
    } else if (c === "'" || c === "\"") {
      quote = c
      inWord = true
    } else if (c === "\\" && i + 1 < line.length) {
      current += line[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current)
      current = ""
      inWord = false
    } else {
      current += c
      inWord = true
    }
  }
  if (quote !== undefined) return `unterminated ${quote} quote in "${line}"`
  if (inWord) words.push(current)
  return words
}

const lineToArgv = (line: string | ReadonlyArray<string>): [string, ...Array<string>] | string => {
  const words = typeof line === "string" ? split(line) : [...line]
  if (typeof words === "string") return words
  if (words.length === 0 || words[0] === "") return "command is empty"
  return words as [string, ...Array<string>]
}

/** Normalises a written command; a string result is the problem with it. */
export const toCommand = (spec: CommandSpec): Command | string => {
  const line = typeof spec === "object" && !Array.isArray(spec) && "command" in spec ? spec.command : spec as
    | string
    | ReadonlyArray<string>
  const argv = lineToArgv(line)
  if (typeof argv === "string") return argv
  const named = typeof spec === "object" && !Array.isArray(spec) && "command" in spec ? spec : undefined
  // Made from a decoded spec and a non-empty argv: valid by construction, so not validated again
  // (a plan of 10,000 tasks makes tens of thousands of these while it is checked).
  return new Command({
    name: named?.name ?? argv.join(" "),
    argv,
    timeoutMs: named?.timeoutSeconds !== undefined ? named.timeoutSeconds * 1000 : DEFAULT_TIMEOUT_MS
  }, true)
}

const NODE_EXTENSIONS = new Set([".js", ".mjs", ".cjs"])

/** How a script file is run: node for .js/.mjs/.cjs, sh for .sh, else the file itself. */
export const interpreterFor = (file: string): [string, ...Array<string>] => {
  const ext = path.extname(file).toLowerCase()
  if (NODE_EXTENSIONS.has(ext)) return [process.execPath, file]
  if (ext === ".sh") return ["sh", file]
  return [file]
}

/** Whether a run spec names a script file. */
export const isScript = (spec: RunSpec): spec is { readonly script: string; readonly timeoutSeconds?: number } =>
  typeof spec === "object" && !Array.isArray(spec) && "script" in spec

/** Normalises a `run`; a script file is resolved against `baseDir` and run by its interpreter. */
export const toRun = (spec: RunSpec, baseDir = process.cwd()): Command | string => {
  if (isScript(spec)) {
    if (spec.script.trim() === "") return "script path is empty"
    return new Command({
      name: spec.script,
      argv: interpreterFor(path.resolve(baseDir, spec.script)),
      timeoutMs: spec.timeoutSeconds !== undefined ? spec.timeoutSeconds * 1000 : DEFAULT_TIMEOUT_MS
    }, true)
  }
  return toCommand(spec as CommandSpec)
}
