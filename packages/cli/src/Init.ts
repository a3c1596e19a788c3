/**
 * `braid init`: a starter plan in the seed's shape, every field explained in a comment, and a
 * `braid.config.yaml` naming the agent backend, written into the current directory. It never
 * overwrites: if either file exists it refuses (exit 2), names it, and writes nothing.
 *
 * @since 0.3.0
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
// By path, as Cli.ts imports it: the command's start needs no other platform module.
import * as FileSystem from "@effect/platform/FileSystem"
import { Console, Effect, Schema } from "effect"
import * as nodeFs from "node:fs"
import * as path from "node:path"
import * as Help from "./Help.js"

/** The files `braid init` writes. */
export const PLAN_FILE = "plan.yaml"
export const CONFIG_FILE = "braid.config.yaml"

/** A file `braid init` would write exists already. */
export class WouldOverwrite extends Schema.TaggedError<WouldOverwrite>()("WouldOverwrite", { files: Schema.Array(Schema.String) }) {
  override get message(): string {
    return `${this.files.join(" and ")} already exist${this.files.length === 1 ? "s" : ""}; braid init writes nothing over an existing file (move ${
      this.files.length === 1 ? "it" : "them"
    } away, or edit ${this.files.length === 1 ? "it" : "them"})`
  }
}

/** The starter plan: two streams, a dependency across them, checks and verify, every field explained. */
const starterPlanText = `# A braid plan: one change carried out as parallel work streams, each by a coding agent in
# its own git worktree and branch. Check it with \`braid plan plan.yaml\` (changes nothing),
# run it with \`braid run plan.yaml\`. The seed's fields come first, braid's additions after;
# every field is explained beside it.

# Descriptive: shown in the report and given to the agents.
projectName: my-project
featureName: greeting

# The review score (0-100) a task needs to pass its quality gate (default 80). A task gets at
# most 3 attempts, each retry told the latest review. A failing check fails the gate whatever
# the score.
qualityThreshold: 80

# At most this many agents work at once (default 5); braid enforces it.
maxParallel: 3

# Optional: owner/name of the GitHub repository the change belongs to.
# githubRepo: acme/my-project

# The work streams. \`type\` picks the agent's role: database -> database-engineer,
# api -> api-developer, ui -> ui-developer, testing -> test-engineer,
# docs -> documentation-writer, infrastructure -> architect. \`scope\` tells the agent where
# to work; \`priority\` (1 is highest, or critical/high/medium/low) breaks scheduling ties and
# wins conflicts under conflictStrategy: priority. Each stream gets branch braid/<run>/<name>.
streams:
  - name: api
    type: api
    scope: src/
    priority: 1
  - name: docs
    type: docs
    scope: docs/
    priority: 2

# The tasks. Within a stream they run one after another; a task starts once the tasks it
# dependsOn (in any stream) have settled and an agent is free.
tasks:
  - id: api-1                          # unique id
    title: Add a greeting module       # what to do, in one line
    stream: api                        # the stream's name
    streamType: api                    # the stream's type (the seed gives both)
    description: Export greet(name) from src/greeting.js, returning "Hello, <name>!".
    acceptanceCriteria:                # given to the agent and the reviewer
      - greet("Ada") returns "Hello, Ada!"
    effort: S                          # optional size (XS..XL or a number): heavier chains start first
    # Gate commands, run in the stream's worktree after each attempt: all exit 0 -> score 100,
    # else below 50 with the failing output fed back. A command is an argv list, never a shell.
    checks:
      - [node, -e, "import('./src/greeting.js').then((m) => { if (m.greet('Ada') !== 'Hello, Ada!') process.exit(1) })"]
    # What the offline script agent (the default backend) runs in the worktree; a coding agent
    # (agent: claude-code, codex, gemini, aider in braid.config.yaml) is given the task instead.
    run: [node, -e, "require('node:fs').mkdirSync('src', { recursive: true }); require('node:fs').writeFileSync('src/greeting.js', 'export const greet = (name) => \`Hello, \${name}!\`\\\\n')"]

  - id: docs-1
    title: Document greet()
    stream: docs
    streamType: docs
    dependsOn: [api-1]                 # waits for api-1 and builds on its work
    description: Describe greet(name) in docs/greeting.md.
    checks:
      - [node, -e, "require('node:fs').accessSync('docs/greeting.md')"]
    run: [node, -e, "require('node:fs').mkdirSync('docs', { recursive: true }); require('node:fs').writeFileSync('docs/greeting.md', '# greet(name)\\\\n\\\\nReturns a greeting.\\\\n')"]

ENVIRONMENT
# Commands run on the merged result of every stream; all must pass before anything lands.
verify:
  - name: greeting works
    command: [node, -e, "import('./src/greeting.js').then((m) => console.log(m.greet('world')))"]
    timeoutSeconds: 60

# How textual conflicts between streams are resolved: agent (an agent edits the conflicted
# files; with script agents it needs a \`resolve\` script), priority (the higher-priority
# stream's side wins), manual (the run stops for you; braid resume goes on).
conflictStrategy: priority

# What a task that fails its gate three times does to the rest: continue (default),
# halt-stream, fail-run. Nothing lands while a task needs review.
onGateFailure: continue
`

/** The starter plan with the `environment` found for the project in `dir` (see `environmentFor`). */
export const starterPlan = (dir?: string): string => starterPlanText.replace("ENVIRONMENT\n", environmentFor(dir))

/** What a package manager's lock file (or manifest) says a checkout needs: the folder it builds, its key, the command. */
const MANAGERS: ReadonlyArray<{ readonly file: string; readonly what: string; readonly share?: string; readonly key?: string; readonly build: string; readonly registry?: string }> = [
  { file: "pnpm-lock.yaml", what: "pnpm", share: "node_modules", build: "[pnpm, install, --frozen-lockfile]", registry: "registry.npmjs.org:443" },
  { file: "yarn.lock", what: "yarn", share: "node_modules", build: "[yarn, install, --frozen-lockfile]", registry: "registry.yarnpkg.com:443" },
  { file: "package-lock.json", what: "npm", share: "node_modules", build: "[npm, ci]", registry: "registry.npmjs.org:443" },
  { file: "requirements.txt", what: "Python", share: ".venv", build: "[sh, -c, \"python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\"]", registry: "pypi.org:443" },
  { file: "pyproject.toml", what: "Python", share: ".venv", build: "[sh, -c, \"python3 -m venv .venv && .venv/bin/pip install -e .\"]", registry: "pypi.org:443" },
  { file: "Cargo.lock", what: "Rust", share: "target", build: "[cargo, build, --locked]", registry: "index.crates.io:443" },
  { file: "go.sum", what: "Go", key: "go.sum", build: "[go, mod, download]", registry: "proxy.golang.org:443" }
]

/**
 * The `environment` section for the project in `dir`: for the package managers its lock files
 * name, their folder shared between checkouts (built once, copied into the others) and a `.env`
 * copied when there is one; a commented example when none is found.
 */
export const environmentFor = (dir?: string): string => {
  const has = (file: string) => dir !== undefined && nodeFs.existsSync(path.join(dir, file))
  const found = MANAGERS.filter((m) => has(m.file)).filter((m, _, all) =>
    // One manager per folder: pnpm or yarn over npm, requirements.txt over pyproject.toml.
    !all.some((other) => other !== m && other.share === m.share && MANAGERS.indexOf(other) < MANAGERS.indexOf(m))
  )
  const header = [
    "# How each checkout is made ready before any agent or check runs there (a fresh checkout has",
    "# no dependencies and no ignored files): `copy` brings untracked files from your checkout,",
    "# `share` builds a folder once per key and copies it into the others, `setup` runs in each,",
    "# `ports` gives each its own block (BRAID_PORT, BRAID_PORTS)."
  ]
  if (found.length === 0 && !has(".env")) {
    return [...header, "# environment:", "#   copy: [.env]", "#   share: [{ path: node_modules, key: [package-lock.json], build: [npm, ci] }]", "#   setup: [[npm, run, build]]", ""].join("\n") + "\n"
  }
  const shared = found.filter((m) => m.share !== undefined)
  const setup = found.filter((m) => m.share === undefined)
  const registries = found.flatMap((m) => m.registry === undefined ? [] : [`"${m.registry}"`])
  return [
    ...header,
    `# Found here: ${[...found.map((m) => `${m.what} (${m.file})`), ...(has(".env") ? [".env"] : [])].join(", ")}.`,
    "environment:",
    ...(has(".env") ? ["  copy: [.env]"] : []),
    ...(shared.length > 0 ? ["  share:", ...shared.map((m) => `    - { path: ${m.share}, key: [${m.file}], build: ${m.build} }`)] : []),
    ...(setup.length > 0 ? [`  setup: [${setup.map((m) => m.build).join(", ")}]`] : []),
    ...(registries.length > 0
      ? ["# Confined (the default where bubblewrap is installed), installs reach only what is listed here:", `sandbox: { network: [${registries.join(", ")}] }`]
      : []),
    ""
  ].join("\n") + "\n"
}

const environmentNote = (dir: string) => {
  const found = MANAGERS.filter((m) => nodeFs.existsSync(path.join(dir, m.file))).map((m) => m.what)
  return found.length === 0 ? "" : `; an environment for ${found.join(", ")}`
}

/** The config file: the agent backend for streams that name none. */
export const starterConfig = (agent: string) =>
  `# braid.config.yaml: defaults for every plan in this folder (a plan's own fields win).
# The agent backend for streams that name none: ${Help.BACKENDS.join(", ")}.
# script runs each task's \`run\` command (offline, no key); the others run that coding agent's
# CLI, which must be installed and logged in (\`braid plan\` checks it).
agent: ${agent}

# Settings per backend, for example:
# agents:
#   claude-code:
#     model: claude-sonnet-4-5
#     timeoutSeconds: 1800
`

const agent = Options.text("agent").pipe(
  Options.withDefault("script"),
  Options.withDescription("The agent backend braid.config.yaml names (default: script)."),
  Options.mapEffect((name) =>
    Help.isBackend(name)
      ? Effect.succeed(name)
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`unknown agent "${name}" (known: ${Help.BACKENDS.join(", ")})`)))
  )
)

/** `braid init [--agent NAME]`. */
export const command = Command.make("init", { agent }, (args) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = process.cwd()
    const files = [PLAN_FILE, CONFIG_FILE]
    const existing: Array<string> = []
    for (const f of files) if (yield* fs.exists(path.join(dir, f)).pipe(Effect.orElseSucceed(() => true))) existing.push(f)
    if (existing.length > 0) return yield* new WouldOverwrite({ files: existing })
    // Each written whole (a temporary file renamed) and only once both are ready to go.
    const written: Array<string> = []
    const write = (file: string, text: string) =>
      Effect.gen(function*() {
        const tmp = path.join(dir, `.${file}.tmp-${process.pid}`)
        yield* fs.writeFileString(tmp, text, { flag: "wx" })
        yield* fs.rename(tmp, path.join(dir, file))
        written.push(file)
      })
    yield* Effect.all([write(PLAN_FILE, starterPlan(dir)), write(CONFIG_FILE, starterConfig(args.agent))], { discard: true }).pipe(
      Effect.tapError(() => Effect.forEach(written, (f) => fs.remove(path.join(dir, f)).pipe(Effect.ignore), { discard: true }))
    )
    yield* Console.log(
      `wrote ${PLAN_FILE} (a starter plan, every field explained${environmentNote(dir)}) and ${CONFIG_FILE} (agent: ${args.agent})\n` +
        `next: edit ${PLAN_FILE}, then check it with: braid plan ${PLAN_FILE}   and run it with: braid run ${PLAN_FILE}`
    )
  })).pipe(Command.withDescription("Write a starter plan.yaml (every field explained) and braid.config.yaml into the current directory; never overwrites."))
