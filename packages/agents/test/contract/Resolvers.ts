/**
 * How the conflict-resolution tests drive each agent backend as the resolver (the architect
 * role): a `ResolverDriver` sets the backend up for one test (its environment, a scripted
 * model server or a stand-in program) and plays "edit this file to this text, then say this".
 * Adding a backend to the suite is one more driver in `resolvers` (the `llm` backend's joins
 * here).
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { Effect, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { useEnv } from "./Drivers.js"

/** A resolver backend set up for one test. */
export interface ResolverStage {
  /** `agents.<backend>` settings. */
  readonly settings: Readonly<Record<string, unknown>>
  /** From now on a resolution writes `content` into `file` and closes with `said`. */
  readonly resolves: (file: string, content: string, said: string) => void
  /** Every prompt the backend was given so far. */
  readonly prompts: () => ReadonlyArray<string>
}

/** One backend as the resolution tests drive it. */
export interface ResolverDriver {
  readonly name: string
  /** Whether the backend reports a session and a cost for the resolution. */
  readonly reportsUsage: boolean
  /** Where its cost comes from: the tool's own report, or braid's price table. */
  readonly costSource?: "tool" | "table"
  readonly stage: (root: string) => Effect.Effect<ResolverStage, never, Scope.Scope>
}

const KEY = "sk-ant-test-PLANTED-0000"

/** claude-code: the real `claude` against a scripted Anthropic server: it reads the file, writes it, says what it did. */
export const claudeCode: ResolverDriver = {
  name: "claude-code",
  reportsUsage: true,
  costSource: "tool",
  stage: (root) =>
    Effect.gen(function*() {
      const home = path.join(root, "home")
      fs.mkdirSync(home, { recursive: true })
      yield* useEnv({ HOME: home, ANTHROPIC_API_KEY: KEY })
      let play = { file: "", content: "", said: "" }
      const server = yield* ScriptedServer.start(AnthropicServer.provider, (c) =>
        // Write refuses to overwrite a file not read first in the session.
        c.toolResults.length === 0
          ? { toolCalls: [{ name: "Read", input: { file_path: play.file } }] }
          : c.toolResults.length === 1
          ? { toolCalls: [{ name: "Write", input: { file_path: play.file, content: play.content } }] }
          : { text: play.said })
      return {
        settings: { baseUrl: server.url, timeoutSeconds: 60 },
        resolves: (file, content, said) => void (play = { file, content, said }),
        prompts: () =>
          server.requests.flatMap((r) => r.conversation !== undefined && r.conversation.toolResults.length === 0 ? [r.conversation.lastUserText] : [])
      }
    })
}

/** command: a stand-in program that logs its prompt file and writes what the test says. */
export const command: ResolverDriver = {
  name: "command",
  reportsUsage: false,
  stage: (root) =>
    Effect.sync(() => {
      const playFile = path.join(root, "play.json")
      const log = path.join(root, "prompts.log")
      const program = path.join(root, "resolve.cjs")
      fs.writeFileSync(
        program,
        [
          "const fs = require('fs')",
          "const [play, log, prompt] = process.argv.slice(2)",
          "fs.appendFileSync(log, fs.readFileSync(prompt, 'utf8') + '\\n\\u0000\\n')",
          "const p = JSON.parse(fs.readFileSync(play, 'utf8'))",
          "fs.writeFileSync(p.file, p.content)",
          "console.log(JSON.stringify({ summary: p.said }))"
        ].join("\n")
      )
      return {
        settings: { command: [process.execPath, program, playFile, log], args: ["{promptFile}"], timeoutSeconds: 30 },
        resolves: (file, content, said) => fs.writeFileSync(playFile, JSON.stringify({ file, content, said })),
        prompts: () => fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n\u0000\n").filter((p) => p.trim() !== "") : []
      }
    })
}

/** llm: braid's own tool loop through @effect/ai against a scripted Anthropic server: it writes with `write_file`. */
export const llm: ResolverDriver = {
  name: "llm",
  reportsUsage: true,
  costSource: "table",
  stage: (root) =>
    Effect.gen(function*() {
      const home = path.join(root, "home")
      fs.mkdirSync(home, { recursive: true })
      yield* useEnv({ HOME: home, ANTHROPIC_API_KEY: KEY })
      let play = { file: "", content: "", said: "" }
      const server = yield* ScriptedServer.start(AnthropicServer.provider, (c) =>
        c.toolResults.length === 0
          ? { toolCalls: [{ name: "write_file", input: { path: play.file, content: play.content } }] }
          : { text: play.said })
      return {
        settings: { baseUrl: server.url, model: "claude-sonnet-4-5", timeoutSeconds: 60 },
        resolves: (file, content, said) => void (play = { file, content, said }),
        prompts: () =>
          server.requests.flatMap((r) => r.conversation !== undefined && r.conversation.toolResults.length === 0 ? [r.conversation.lastUserText] : [])
      }
    })
}

/** Every backend the resolution suite runs over. */
export const resolvers: ReadonlyArray<ResolverDriver> = [claudeCode, llm, command]
