/**
 * How the agent contract plays its scenarios on each backend: a `Driver` per backend sets the
 * backend up for one test (its environment, a throwaway HOME, a scripted model server or a
 * stand-in program) and says how to make the tool write a file, change nothing, fail, hang,
 * meet a busy provider, and what the tool received (to check that a retry's feedback got there).
 */
import { AnthropicServer, GeminiServer, OpenAiServer, ScriptedServer } from "@braid/testkit"
import { Effect, type Scope } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** The contract's scenarios, by name. */
export const scenarios = ["writes", "nothing", "fails", "timeout", "interrupted", "busy", "feedback"] as const
export type Scenario = typeof scenarios[number]

/** How one scenario is set up on one backend. */
export interface Play {
  /** `agents.<backend>` settings, over the stage's own. */
  readonly settings?: Readonly<Record<string, unknown>>
  /** Fields of the task (its `run`, `description`, `mock`). */
  readonly task?: Readonly<Record<string, unknown>>
  /** Whether the tool is at work by now (default: a process carrying the attempt's marker runs). */
  readonly working?: () => boolean
}

/** A backend set up for one test. */
export interface Stage {
  /** `agents.<backend>` settings every scenario starts from. */
  readonly settings: Readonly<Record<string, unknown>>
  readonly writes: (file: string, content: string) => Play
  readonly nothing: () => Play
  readonly fails?: () => Play
  /** The tool never finishes on its own; the attempt may take `timeoutSeconds`. */
  readonly hangs?: (timeoutSeconds: number) => Play
  /** The provider answers that it is busy (429), for as long as the tool keeps asking. */
  readonly busy?: () => Play
  /** The tool changes nothing; `received` afterwards is everything it was given. */
  readonly echoFeedback?: () => Play
  /** What the tool received so far: the prompts at the server, the prompt or message file, the script's BRAID_FEEDBACK. */
  readonly received?: () => string
  /** For a tool with a model server: whether it ever had a request open there. */
  readonly reachedModel?: () => boolean
}

/** The folders of one test. */
export interface Rig {
  readonly root: string
  readonly home: string
  /** Files a stand-in program logs to, outside the worktree. */
  readonly log: string
  readonly runId: string
  /** A git repository with one commit, laid out as a run's stream worktree (`…/.braid/runs/<run>/worktrees/api`). */
  readonly worktree: string
}

/** One backend as the contract drives it. */
export interface Driver {
  readonly name: string
  /** What the tool reports on success. */
  readonly reports: { readonly session: boolean; readonly usage: boolean; readonly process: boolean }
  /** The attempt's time limit in the timeout scenario: small, but enough for the tool to start and reach its model. */
  readonly timeoutSeconds: number
  /** Fake keys planted in the tool's environment: never to be seen in what braid reports. */
  readonly secrets: ReadonlyArray<string>
  /** Scenarios that cannot apply to this backend, each with why. */
  readonly notApplicable: Partial<Record<Scenario, string>>
  readonly stage: (rig: Rig) => Effect.Effect<Stage, never, Scope.Scope>
}

// ---------------------------------------------------------------------------------------------
// Shared setup

/** A fresh directory, removed after the test. */
export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Runs git in `dir`. */
export const git = (dir: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, encoding: "utf8" }).trim()

/** The folders of one test: a throwaway HOME, a log folder, and the stream's worktree as a git repository. */
export const rig = (runId: string): Effect.Effect<Rig, never, Scope.Scope> =>
  Effect.map(tempDir("braid-contract-"), (root) => {
    const home = path.join(root, "home")
    const log = path.join(root, "log")
    const worktree = path.join(root, "repo", ".braid", "runs", runId, "worktrees", "api")
    for (const dir of [home, log, worktree]) fs.mkdirSync(dir, { recursive: true })
    git(worktree, "init", "-q", "-b", "main")
    fs.writeFileSync(path.join(worktree, "README.md"), "shop\n")
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", "base")
    return { root, home, log, runId, worktree }
  })

/** Whether a tool reached `server` with a request it was left hanging on. */
export const hungAt = (server: ScriptedServer.Server): boolean => server.requests.some((r) => r.answer === "hang")

/**
 * An attempt meant to hang at the model: `attempt(limit)`, and, when `reached` says the tool
 * had not got to its model server within the limit (a machine too busy for its start-up), once
 * more with three times the limit — so the test still sees the model hang, whatever the
 * machine's speed; only the wait grows. The limit used comes back with the attempt.
 */
export const hangAtModel = <A, E, R>(limit: number, attempt: (limit: number) => Effect.Effect<A, E, R>, reached: (a: A) => boolean) =>
  Effect.flatMap(attempt(limit), (a) =>
    reached(a) ? Effect.succeed({ ...a, limit }) : Effect.map(attempt(limit * 3), (b) => ({ ...b, limit: limit * 3 })))

/** Variables the backends read from braid's environment, cleared for one test (then `vars` set) and restored after. */
export const useEnv = (vars: Readonly<Record<string, string>>) => {
  const names = [
    "HOME",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CONFIG_DIR",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "CODEX_API_KEY",
    "CODEX_HOME",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_CLI_HOME",
    ...Object.keys(vars)
  ]
  return Effect.acquireRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]))
      for (const n of names) delete process.env[n]
      Object.assign(process.env, vars)
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        for (const [n, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[n]
          else process.env[n] = v
        }
      })
  )
}

/** Single-quoted for a POSIX shell. */
const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

// ---------------------------------------------------------------------------------------------
// Backends with a scripted model server

/** A scripted server whose responder each scenario replaces. */
const scriptedServer = (provider: ScriptedServer.Provider) =>
  Effect.gen(function*() {
    let respond: ScriptedServer.Responder = () => ({ text: "Nothing to do." })
    const server = yield* ScriptedServer.start(provider, (c, i) => respond(c, i))
    const play = (responder: ScriptedServer.Responder, settings: Record<string, unknown> = {}): Play => {
      respond = responder
      return { settings, working: () => server.inFlight().now > 0 }
    }
    const received = () =>
      server.requests.flatMap((r) => (r.conversation === undefined ? [] : [r.conversation.lastUserText])).join("\n")
    return { server, play, received }
  })

/** A stage for a CLI against a scripted server: `write` is the tool call that writes a file. */
const serverStage = (
  provider: ScriptedServer.Provider,
  settings: (server: ScriptedServer.Server) => Record<string, unknown>,
  write: (file: string, content: string) => ScriptedServer.Turn
) =>
  Effect.map(scriptedServer(provider), ({ play, received, server }): Stage => ({
    settings: settings(server),
    writes: (file, content) =>
      play((c) => (c.toolResults.length === 0 ? write(file, content) : { text: `Wrote ${file}.` })),
    nothing: () => play(() => ({ text: "Nothing needs changing." })),
    fails: () => play(() => ({ error: { status: 400, message: "Invalid request: unsupported parameter 'contract'" } })),
    hangs: (timeoutSeconds) => play(() => ({ hang: true }), { timeoutSeconds }),
    busy: () => play(() => ({ error: { status: 429, message: "Rate limit reached for requests", retryAfterSeconds: 1 } })),
    echoFeedback: () => play(() => ({ text: "Read the review; nothing to change." })),
    received,
    reachedModel: () => server.inFlight().max > 0
  }))

const ANTHROPIC_KEY = "sk-ant-test-PLANTED-0000"
const OPENAI_KEY = "sk-test-PLANTED-0000"
const GEMINI_KEY = "gemini-test-PLANTED-0000"

/** claude-code: the real `claude` against a scripted Anthropic server; it writes with `Write`. */
export const claudeCode: Driver = {
  name: "claude-code",
  reports: { session: true, usage: true, process: true },
  timeoutSeconds: 12,
  secrets: [ANTHROPIC_KEY],
  notApplicable: {},
  stage: (rig) =>
    Effect.zipRight(
      useEnv({ HOME: rig.home, ANTHROPIC_API_KEY: ANTHROPIC_KEY }),
      serverStage(
        AnthropicServer.provider,
        (server) => ({ baseUrl: server.url, timeoutSeconds: 60 }),
        (file_path, content) => ({ toolCalls: [{ name: "Write", input: { file_path, content } }] })
      )
    )
}

/** codex: the real `codex` against a scripted OpenAI Responses server; it writes through its shell tool. */
export const codex: Driver = {
  name: "codex",
  reports: { session: true, usage: true, process: true },
  timeoutSeconds: 10,
  secrets: [OPENAI_KEY],
  notApplicable: {},
  stage: (rig) =>
    Effect.zipRight(
      useEnv({ HOME: rig.home, OPENAI_API_KEY: OPENAI_KEY }),
      serverStage(
        OpenAiServer.provider,
        (server) => ({ baseUrl: server.url, model: "gpt-braid-test", timeoutSeconds: 60 }),
        (file, content) => ({
          toolCalls: [{ name: "exec_command", input: { cmd: `mkdir -p ${shellQuote(path.dirname(file))} && printf '%s' ${shellQuote(content)} > ${shellQuote(file)}` } }]
        })
      )
    )
}

/** gemini: the real `gemini` against a scripted Gemini API server; it writes with `write_file`. */
export const gemini: Driver = {
  name: "gemini",
  reports: { session: true, usage: true, process: true },
  timeoutSeconds: 12,
  secrets: [GEMINI_KEY],
  notApplicable: {},
  stage: (rig) =>
    Effect.zipRight(
      useEnv({ HOME: rig.home, GEMINI_API_KEY: GEMINI_KEY }),
      serverStage(
        GeminiServer.provider,
        (server) => ({ baseUrl: server.url, model: "gemini-2.5-flash", timeoutSeconds: 60 }),
        (file_path, content) => ({ toolCalls: [{ name: "write_file", input: { file_path, content } }] })
      )
    )
}

/** llm: braid's own tool loop through @effect/ai against a scripted Anthropic server; it writes with `write_file`. */
export const llm: Driver = {
  name: "llm",
  reports: { session: true, usage: true, process: false },
  timeoutSeconds: 2,
  secrets: [ANTHROPIC_KEY],
  notApplicable: {},
  stage: (rig) =>
    Effect.zipRight(
      useEnv({ HOME: rig.home, ANTHROPIC_API_KEY: ANTHROPIC_KEY }),
      serverStage(
        AnthropicServer.provider,
        (server) => ({ baseUrl: server.url, model: "claude-sonnet-4-5", timeoutSeconds: 60 }),
        (file, content) => ({ toolCalls: [{ name: "write_file", input: { path: file, content } }] })
      )
    )
}

// ---------------------------------------------------------------------------------------------
// Backends that run a program

/**
 * A stand-in agent program: `agent.mjs <mode> [--prompt <file>] [args]`. `writes <file> <content>`
 * writes the file and prints a report line; `nothing` prints a line; `fails` exits 3; `hangs`
 * starts a helper in its own process group and both wait forever; `feedback <log>` copies what
 * it was given (the prompt file, else BRAID_FEEDBACK) to `log`.
 */
const AGENT_PROGRAM = `#!/usr/bin/env node
import fs from "node:fs"
import path from "node:path"
import { spawn } from "node:child_process"
const args = process.argv.slice(2)
const at = args.indexOf("--prompt")
const promptFile = at >= 0 ? args.splice(at, 2)[1] : undefined
const [mode, ...rest] = args
if (mode === "writes") {
  const [file, content] = rest
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, content)
  console.log(JSON.stringify({ summary: "Wrote " + file + ".", sessionId: "stand-in-session-1", usage: { inputTokens: 120, outputTokens: 30 } }))
  console.log("wrote " + file)
} else if (mode === "nothing") {
  console.log("nothing needs changing")
} else if (mode === "fails") {
  console.error("stand-in agent: cannot load its model configuration")
  process.exit(3)
} else if (mode === "hangs") {
  spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore" }).unref()
  setInterval(() => {}, 1000)
} else if (mode === "feedback") {
  fs.writeFileSync(rest[0], promptFile !== undefined ? fs.readFileSync(promptFile, "utf8") : process.env.BRAID_FEEDBACK ?? "")
  console.log("read the review")
} else {
  console.error("unknown mode " + mode)
  process.exit(2)
}
`

/** Writes the stand-in agent program into the test's folder. */
const agentProgram = (rig: Rig) => {
  const file = path.join(rig.root, "bin", "agent.mjs")
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, AGENT_PROGRAM, { mode: 0o755 })
  return file
}

const readOr = (file: string) => () => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "")

/** script: the task's own `run` (the stand-in program), with the attempt in `BRAID_*` variables. */
export const script: Driver = {
  name: "script",
  reports: { session: false, usage: false, process: true },
  timeoutSeconds: 2,
  secrets: [],
  notApplicable: {
    busy: "the script backend runs the task's own command and talks to no provider: a failing script is AgentFailed, never ProviderBusy"
  },
  stage: (rig) =>
    Effect.gen(function*() {
      yield* useEnv({ HOME: rig.home })
      const program = agentProgram(rig)
      const feedbackLog = path.join(rig.log, "feedback.json")
      const run = (timeoutSeconds: number | undefined, ...args: Array<string>): Play => ({
        task: { run: { name: "agent", command: [process.execPath, program, ...args], ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) } }
      })
      return {
        settings: {},
        writes: (file, content) => run(undefined, "writes", file, content),
        nothing: () => run(undefined, "nothing"),
        fails: () => run(undefined, "fails"),
        hangs: (timeoutSeconds) => run(timeoutSeconds, "hangs"),
        echoFeedback: () => run(undefined, "feedback", feedbackLog),
        received: readOr(feedbackLog)
      }
    })
}

/** command: any program (the stand-in) with an argv template; it may print a JSON report line. */
export const command: Driver = {
  name: "command",
  reports: { session: true, usage: true, process: true },
  timeoutSeconds: 2,
  secrets: [],
  notApplicable: {
    busy: "the command backend has no provider protocol to read: any non-zero exit is AgentFailed " +
      "(`settings.provider` only names the shared limiter its attempts count against)"
  },
  stage: (rig) =>
    Effect.gen(function*() {
      yield* useEnv({ HOME: rig.home })
      const program = agentProgram(rig)
      const promptLog = path.join(rig.log, "prompt.md")
      const run = (...args: Array<string>): Play => ({ settings: { args: [args[0]!, "--prompt", "{promptFile}", ...args.slice(1)] } })
      return {
        settings: { command: program },
        writes: (file, content) => run("writes", file, content),
        nothing: () => run("nothing"),
        fails: () => run("fails"),
        hangs: (timeoutSeconds) => ({ settings: { ...run("hangs").settings, timeoutSeconds } }),
        echoFeedback: () => run("feedback", promptLog),
        received: readOr(promptLog)
      }
    })
}

/** The stand-in for aider (not installable here), as Aider.test.ts uses it. */
const AIDER_STAND_IN = path.resolve(__dirname, "../fixtures/aider/aider")

/** aider: the stand-in `aider`, which edits the file its message names and prints litellm's errors in its error modes. */
export const aider: Driver = {
  name: "aider",
  reports: { session: false, usage: true, process: true },
  timeoutSeconds: 2,
  secrets: [],
  notApplicable: {},
  stage: (rig) =>
    Effect.gen(function*() {
      yield* useEnv({ HOME: rig.home })
      const messageLog = path.join(rig.log, "aider.jsonl")
      const run = (mode: string, description = "Make it better."): Play => ({
        settings: { command: ["env", `AIDER_STANDIN_MODE=${mode}`, `AIDER_STANDIN_LOG=${messageLog}`, AIDER_STAND_IN] },
        task: { description }
      })
      return {
        settings: { model: "openai/gpt-4.1" },
        // The stand-in writes the text it is given plus a newline.
        writes: (file, content) => run("", `Write \`${file}\` containing: ${content.replace(/\n$/, "")}`),
        nothing: () => run(""),
        fails: () => run("crash"),
        hangs: (timeoutSeconds) => {
          const play = run("slow")
          return { ...play, settings: { ...play.settings, timeoutSeconds } }
        },
        busy: () => run("ratelimit"),
        echoFeedback: () => run(""),
        received: () =>
          readOr(messageLog)().split("\n").filter((l) => l !== "").map((l) => (JSON.parse(l) as { message: string }).message).join("\n")
      }
    })
}

/** mock: the harness's scripted agent, driven by the task's `mock` field. */
export const mock: Driver = {
  name: "mock",
  reports: { session: false, usage: false, process: false },
  timeoutSeconds: 1,
  secrets: [],
  notApplicable: {
    fails: "the mock agent plays a task's `mock` field, which holds only files and scores: it cannot be told to fail",
    timeout: "the mock agent starts no process and never waits: there is nothing to time out",
    interrupted: "the mock agent starts no process and never waits: there is nothing to interrupt",
    busy: "the mock agent plays a task's `mock` field, which has no provider errors (the Harness API has them, not the backend)",
    feedback: "the mock agent plays fixed files and scores and never reads the review"
  },
  stage: () =>
    Effect.succeed({
      settings: {},
      writes: (file, content) => ({ task: { mock: { files: { [file]: content } } } }),
      nothing: () => ({ task: { mock: { files: {} } } })
    })
}

/** Every backend's driver. */
export const all: ReadonlyArray<Driver> = [script, command, aider, claudeCode, codex, gemini, llm, mock]
