/**
 * The `braid` command's help, usage checks and option descriptions, as plain data with no
 * dependencies: `braid --help` answers without loading the engine, and `Cli.ts` takes every
 * option's description from here, so help and parser say the same.
 *
 * @since 0.1.0
 */

/** The version `braid --version` prints. */
export const VERSION = "0.1.0"

/** One option: its value's placeholder (none for a flag) and what it means to a braid user. */
export interface OptionHelp {
  readonly value?: string
  readonly alias?: string
  readonly description: string
}

/** Agent backends, as `--agent` accepts them (a test checks this against `Backends.names`: the registry's and the testkit's mock). */
export const BACKENDS = ["script", "mock", "aider", "command", "claude-code", "codex", "gemini", "llm"] as const

/** Whether `name` is one of the agent backends (checked here so a command need not load the registry). */
export const isBackend = (name: string): boolean => (BACKENDS as ReadonlyArray<string>).includes(name)

/** How a verified run lands, as `--land` accepts them (a test checks this against `Landing.ModeName`). */
export const LAND_MODES = ["local", "push", "pr"] as const

/** Every option of every command, with its usual meaning. */
export const options = {
  "max-parallel": { value: "n", description: "At most this many agents work at once (overrides the plan's maxParallel)." },
  "quality-threshold": {
    value: "0-100",
    description: "The review score a task needs to pass its gate (overrides the plan's qualityThreshold). A failing check fails the gate whatever the score."
  },
  budget: {
    value: "amount",
    description:
      "What the run's agents may spend in all, in USD or tokens: 5usd, $5, 200000tokens, 200ktokens (replaces that amount of the plan's budget). When it is reached no new attempt starts and the run pauses (exit 75); braid resume --budget <more> continues it."
  },
  "conflict-strategy": {
    value: "agent|priority|manual",
    description:
      "How textual conflicts between streams are resolved: an agent resolves them, the higher-priority stream wins, or the run stops for you (overrides conflictStrategy)."
  },
  "on-gate-failure": {
    value: "continue|halt-stream|fail-run",
    description:
      "What follows a task failing its gate three times: other tasks go on, its stream stops, or the whole run stops (overrides onGateFailure)."
  },
  sandbox: {
    value: "auto|required|off",
    description:
      "How every process a stream starts (its agent, checks, script, resolver, verify) is confined by the operating system (bubblewrap on Linux): auto (default) confines where it can and says so where it cannot; required refuses to start without it (exit 2); off never confines (overrides the plan's sandbox)."
  },
  json: { description: "Print the result as JSON on stdout (progress stays on stderr)." },
  events: {
    description:
      "Print every run event as one JSON line on stdout as it happens (NDJSON: the RunEvent Schema of @braid/core, with its version in \"v\"); not with --json."
  },
  report: { value: "file", description: "Also write the report as Markdown to this file (its folder must exist)." },
  agent: {
    value: "name",
    description: `The agent backend for streams that name none, below the plan and braid.config.yaml (default: script). One of: ${BACKENDS.join(", ")}.`
  },
  reviewer: {
    value: "checks|judge|composite",
    description:
      "Who reviews attempts when neither the stream, its role, the plan nor braid.config.yaml says: the checks, an LLM judge, or both (checks first; a failing check fails the gate). The judge is the plan's judge settings, else agents.llm's provider, model and base URL."
  },
  workspace: {
    value: "git|memory",
    description:
      "git: each stream works in its own worktree and branch of the repository, journaled so the run can resume (default). memory: in-memory files, for trying a plan with mock agents."
  },
  cache: { description: "Empty the cache of shared checkout folders (environment.share), $XDG_CACHE_HOME/braid/share." },
  repo: { value: "dir", description: "The git repository the run changes (default: the one containing the current directory)." },
  base: {
    value: "ref",
    description: "The branch or commit every stream starts from (default: the branch checked out in the repository)."
  },
  target: { value: "branch", description: "The branch a successful run is landed on, by fast-forward (default: the base branch)." },
  "no-land": {
    description: "Verify, but do not land: leave the verified result on the run's integration branch (land it later with braid land)."
  },
  land: {
    value: LAND_MODES.join("|"),
    description: "How a verified run lands: local (fast-forward the target branch here; default), push (push the verified commit to the target branch on --remote, fast-forward only, never forced), pr (push the integration branch to --remote and open, or update, a pull request into the target on githubRepo)."
  },
  remote: { value: "name", description: "The git remote --land push and --land pr push to (default: origin)." },
  "no-github": {
    description: "Do not sync progress to the plan's githubRepo (comments, labels, commit status), even with GITHUB_TOKEN set."
  },
  "keep-worktrees": {
    description:
      "Keep every worktree (each stream's and the integration's) and its braid/<run>/… branch after the run, landed or not. Default: a stream's worktree is removed when the stream finishes, and a run branch once the target holds its work; a worktree kept for you (a failed or needs-review task, a conflict, a failed verification) keeps its branch."
  },
  "worktrees-dir": {
    value: "dir",
    description:
      "Put the run's stream checkouts in DIR/<run>/<stream> (relative to the current directory; overrides the plan's and braid.config.yaml's worktreesDir). Default: outside the repository, in $XDG_CACHE_HOME/braid/worktrees/<repo>-<hash>/ (~/.cache when XDG_CACHE_HOME is unset), so the repository's own tools never see them; braid status <run> names a kept checkout. Not inside the repository (except under .braid). A resumed run keeps the folder it started with."
  },
  otlp: {
    value: "url",
    description:
      "Send the run's trace (a span for every stage, stream, task, attempt and review, under one root span with the run id) to this OpenTelemetry collector over OTLP/HTTP, e.g. http://localhost:4318 (default: OTEL_EXPORTER_OTLP_ENDPOINT; none when neither is set)."
  },
  "run-id": {
    value: "id",
    description:
      "The new run's id (default: one made from the time, as braid runs lists them); refused when a run with that id is recorded. For a caller that must know the id before the run starts (braid mcp's start_run)."
  },
  quiet: { alias: "q", description: "Print no progress lines and no board, only the summary." },
  verbose: { alias: "v", description: "Also show what the agents print: on the board each working stream's latest line, in plain output every line." },
  md: { value: "file", description: "Write the report as Markdown to this file." },
  html: {
    value: "file",
    description: "Write one self-contained HTML page: the run's timeline (a row per stream, each attempt a bar by outcome and score, waits as gaps, the integration) and the report beneath."
  },
  "plan-from-disk": {
    description: "Continue with the plan file as it is on disk now, not the copy journaled when the run started."
  },
  attempt: { value: "n", description: "Which attempt's prompt to show: 1 (default, or 2 with --feedback), 2 or 3 (a retry)." },
  feedback: { value: "file", description: "A review as JSON, {score, issues, suggestions}, that the retry answers." },
  note: { value: "text", description: "Your note added to the retry's feedback, as braid retry --feedback adds it." },
  task: { value: "id", description: "A failed or needs-review task to run again (repeatable; default: every such task)." },
  "feedback-file": { value: "file", description: "A file whose text is added to the retried tasks' feedback." },
  database: {
    value: "url",
    description: "The cluster's Postgres, postgres://user:password@host:port/database (default: BRAID_DATABASE_URL); runs are read from and sent to it instead of the repository's .braid. The password is never printed."
  },
  group: { value: "name", description: "The runners' group: a run is worked on only by runners of its group, so only machines allowed to hold a repository get it (default: default)." },
  slots: { value: "n", description: "How many tasks this runner works on at once, across every run (default: 2)." },
  workdir: { value: "dir", description: "Where this runner keeps its clones of the runs' remotes (default: ~/.braid/runner)." },
  address: { value: "host:port", description: "Where the other runners reach this one (default: this machine's first network address and a free port)." },
  name: { value: "text", description: "How this runner is named in logs and in the runs' journals (default: its address)." },
  wait: { description: "Follow the run to its end with the same board and exit code as braid run (default: print its id and return)." },
  id: { value: "runId", description: "The run's id (default: a new one). Submitting the same id again does not run it twice." },
  from: { value: "file", description: "Draft from this file's text (a PRD, a spec) instead of a description on the command line." },
  issue: {
    value: "n",
    description: "Draft from GitHub issue n: its title, body and comments, read from --github-repo (else the origin remote's GitHub repository) with GITHUB_TOKEN."
  },
  out: { value: "file", description: "Where the drafted plan is written (default: plan.yaml, as braid init names it). A draft that never passes is kept beside it (plan.draft.yaml)." },
  force: { description: "Replace the --out file when it exists (braid draft writes nothing over a plan otherwise)." },
  prompt: {
    value: "file",
    description: "A template replacing the architect's prompt; its {{placeholders}}: feature, projectName, tree, readme, files, environment, schema, rules, round, findings (rules and findings are appended when left out)."
  },
  "print-prompt": { description: "Print the architect's first prompt and exit, without calling any agent or writing anything." },
  github: {
    description: "File one GitHub issue per task (a sub-issue of --issue n, or a task list in its body where sub-issues are unavailable) and write their numbers into the plan; a second run finds them again and creates none."
  },
  "github-repo": { value: "owner/name", description: "The GitHub repository for --issue and --github (default: the origin remote's, when it is on github.com)." },
  run: { description: "Run the drafted plan with braid run once it is written, after you confirm on the terminal (--yes: without asking)." },
  yes: { description: "With --run: run without asking (needed without a terminal, as in CI)." },
  repair: {
    description:
      "Repair what can be: drop journal lines that are not records (the steps they recorded run again when the run is continued) and remove temporary files left by failed writes. The journal as it was is copied to journal.jsonl.bak-<time> first. Refused while a braid process works on the run."
  }
} satisfies Record<string, OptionHelp>

/** An option's name. */
export type OptionName = keyof typeof options

/** The description of an option, for `Options.withDescription`. */
export const describe = (name: OptionName): string => (options[name] as OptionHelp).description

/** One command: its arguments, its options (some with a meaning of their own), what it does. */
export interface CommandHelp {
  readonly name: string
  readonly summary: string
  readonly description?: string
  readonly args: ReadonlyArray<{ readonly name: string; readonly optional?: boolean; readonly description: string }>
  readonly options: ReadonlyArray<OptionName | { readonly name: OptionName; readonly value?: string; readonly description: string }>
}

const planArg = { name: "plan", description: "The plan file (YAML or JSON): streams, tasks, checks, verify." }
const runIdArg = (what: string) => ({ name: "runId", optional: true, description: `The run's id, as braid runs lists it (default: ${what}).` })
const runIdRequired = { name: "runId", description: "The run's id, as braid runs lists it." }

/** Every command, in the order the root help lists them. */
export const commands: ReadonlyArray<CommandHelp> = [
  {
    name: "plan",
    summary: "Check a plan as braid run would before starting, and show its streams.",
    description:
      "Checks everything braid run would refuse before it starts — the plan, the agent backends and their executables, scripts and prompt templates, the repository (base, target, a dirty checkout when landing), the --report folder — and prints each stream's agent and each task's checks and what it waits for. Warns about tasks nothing can fail, a threshold under 50 and paths that exist beside the plan but not in the repository, then forecasts conflicts: streams that run side by side with overlapping scopes, tasks of two streams naming one file, files the recent history changes together across two streams — each with a suggested fix. Exit 2 when run would refuse. Changes nothing.",
    args: [planArg],
    options: ["agent", "reviewer", "repo", "base", "target", "no-land", "land", "remote", "no-github", "report", "workspace", "max-parallel", "quality-threshold", "sandbox", "json"]
  },
  {
    name: "prompt",
    summary: "Print what a task's agent would be told on an attempt.",
    args: [planArg, { name: "taskId", description: "The task whose prompt to show." }],
    options: ["attempt", "feedback", "note"]
  },
  {
    name: "run",
    summary: "Run a plan: agents work the streams, every task is gated, then merged, verified and landed.",
    description:
      "Dispatches each task to its stream's agent as soon as what it waits for has finished and an agent is free, gates every attempt (at most 3), merges the streams, runs verify and lands the result on the target branch. The run is journaled in <repo>/.braid so braid resume continues it.",
    args: [planArg],
    options: [
      "agent",
      "reviewer",
      "repo",
      "base",
      "target",
      "no-land",
      "land",
      "remote",
      "no-github",
      "keep-worktrees",
      "worktrees-dir",
      "report",
      "json",
      "events",
      "quiet",
      "verbose",
      "max-parallel",
      "quality-threshold",
      "conflict-strategy",
      "on-gate-failure",
      "budget",
      "sandbox",
      "workspace",
      "run-id",
      "otlp"
    ]
  },
  {
    name: "resume",
    summary: "Continue a run from its journal (after a crash, Ctrl-C, a usage limit, its budget or your fix).",
    args: [runIdArg("the latest run")],
    options: ["repo", "budget", "plan-from-disk", "report", "json", "events", "quiet", "verbose", "otlp"]
  },
  {
    name: "retry",
    summary: "Run a run's failed and needs-review tasks again, with your note, then integrate and land.",
    args: [runIdArg("the latest run")],
    options: [
      "database",
      "task",
      { name: "feedback", value: "text", description: "A note added to the retried tasks' feedback." },
      "feedback-file",
      "repo",
      "plan-from-disk",
      "report",
      "json",
      "events",
      "quiet",
      "verbose",
      "otlp"
    ]
  },
  {
    name: "land",
    summary: "Land a verified run later (made with --no-land, or refused: the target moved, a push was rejected or failed).",
    args: [runIdArg("the latest run")],
    options: ["repo", "database", "plan-from-disk", "report", "json", "events", "quiet", "verbose", "otlp"]
  },
  { name: "runs", summary: "List the runs recorded in a repository (or in the cluster's database).", args: [], options: ["repo", "database", "json"] },
  {
    name: "status",
    summary: "Show a run's streams and tasks, why each failed, needs review or was skipped, and how to continue it.",
    args: [runIdArg("the latest run")],
    options: ["repo", "database", "json"]
  },
  {
    name: "doctor",
    summary: "Check runs' records for damage and say what a repair does; --repair does it.",
    description:
      "Reads every run recorded in <repo>/.braid (or the one named) and lists what is wrong with its record: a journal line that is not a record (a torn or corrupt last line, which resume drops by itself, or one in the middle, which stops the run until repaired), a missing journal, manifest or plan, a temporary file a failed write left, a lock left by a process that is gone; and for each, what --repair does. Exit 2 when a run cannot be continued as it is.",
    args: [{ name: "runId", optional: true, description: "The run's id, as braid runs lists it (default: every run)." }],
    options: ["repo", "repair"]
  },
  {
    name: "report",
    summary: "Render a finished run's report: Markdown (stdout or --md), JSON (--json), an HTML timeline (--html).",
    description:
      "Renders the report of a finished run from its record in <repo>/.braid: with no option the Markdown on stdout; --md, --json and --html write files (any together; - is stdout). The JSON validates against the RunReport Schema of @braid/core; the HTML page needs no network.",
    args: [runIdRequired],
    options: [
      "repo",
      "database",
      "md",
      { name: "json", value: "file", description: "Write the report as JSON (the RunReport Schema's encoding) to this file; - for stdout." },
      "html",
      { name: "report", value: "file", description: "The same as --md." }
    ]
  },
  {
    name: "init",
    summary: "Write a starter plan.yaml (every field explained) and braid.config.yaml into the current directory.",
    description:
      "Writes plan.yaml, a plan in the seed's shape with a comment on every field, and braid.config.yaml naming the agent backend (--agent, default script). Refuses (exit 2, naming the file, writing nothing) if either exists.",
    args: [],
    options: [{ name: "agent", value: "name", description: `The agent backend braid.config.yaml names (default: script). One of: ${BACKENDS.join(", ")}.` }]
  },
  {
    name: "draft",
    summary: "Draft a plan from a feature: an architect agent reads the repository, braid checks its plan and sends problems back.",
    description:
      "An agent in the architect role (--agent, else braid.config.yaml's agent) reads the repository in a read-only checkout of HEAD (a temporary worktree, confined where the sandbox is available) and answers with a plan in the seed's shape. braid checks it as braid plan does (unknown fields, types, unknown streams, cycles) and sends every problem back with its path, at most 3 times; then writes the plan (--out) and shows its streams, tasks and waves. A draft that still fails is kept beside the plan file with its problems listed (exit 2). Nothing runs unless --run.",
    args: [{ name: "description", optional: true, description: "The feature to plan, in words (or --from FILE, or --issue N)." }],
    options: [
      "from",
      "issue",
      "out",
      "force",
      { name: "agent", value: "name", description: `The architect's agent backend (default: braid.config.yaml's agent beside --out). A coding agent: ${BACKENDS.filter((b) => b !== "script" && b !== "mock").join(", ")}.` },
      "prompt",       "print-prompt",
      "github",
      "github-repo",
      "repo",
      "run",
      "yes"
    ]
  },
  {
    name: "runner",
    summary: "Join a cluster as a runner and work on its runs until stopped (Ctrl-C hands the work over).",
    description:
      "Joins the cluster whose Postgres --database names (its tables are created or migrated first): the runner takes its share of the group's runs and, --slots at a time, the group's tasks, each in its own clone of the run's remote under --workdir. Stopped (Ctrl-C, SIGTERM), it hands its runs and tasks to the other runners; killed, they are taken over once its locks expire (about 10 s). See docs/DEPLOY.md.",
    args: [],
    options: ["database", "group", "slots", "workdir", "address", "name"]
  },
  {
    name: "submit",
    summary: "Send a plan to a cluster's runners: print the run's id, or follow it with --wait.",
    description:
      "Records the run in the cluster's database — the plan, the files in its folder (scripts, prompt templates), the options — and starts its workflow; any runner of its group takes it. The remote's --target (default: its default branch) is what the streams start from and what the run lands on (--land push or local: the target is fast-forwarded on the remote; pr: a pull request). With --wait it is followed to its end like braid run, with its exit code.",
    args: [planArg],
    options: [
      "database",
      { name: "remote", value: "url", description: "The git remote the runners clone and push to, and the run lands on (a URL or a path every runner can reach)." },
      { name: "target", value: "branch", description: "The remote's branch the streams start from and the run lands on (default: the remote's default branch)." },
      "land",
      "no-land",
      "group",
      "id",
      "wait",
      "agent",
      "reviewer",
      "max-parallel",
      "quality-threshold",
      "conflict-strategy",
      "on-gate-failure",
      "budget",
      "report",
      "json",
      "events",
      "quiet",
      "verbose"
    ]
  },
  {
    name: "mcp",
    summary: "Serve braid to another agent over the Model Context Protocol (stdio): check plans, start and watch runs, read reports.",
    description:
      "A Model Context Protocol server on stdin/stdout, for an agent (Claude Code, Codex, Gemini CLI) to hand braid a feature. Tools: check_plan (what braid plan checks), start_run (a braid run started in the background, its own process group, its output in the run's folder; returns the run id at once), run_status, run_events (the run's journal from a cursor), run_report, list_runs, retry_task, resume_run (both in the background), land_run (only with confirm: true). Resources: braid://runs/<id> (the status as JSON) and braid://runs/<id>/report (Markdown). Runs are the repository's, as braid runs lists them: --repo, else the current directory's repository; a tool's repo argument overrides it.",
    args: [],
    options: ["repo"]
  },
  {
    name: "clean",
    summary: "Remove a run's worktrees, branches and record (never the landed target); --cache empties the shared folders' cache.",
    args: [{ ...runIdRequired, optional: true }],
    options: ["repo", "cache"]
  }
]

/** The exit codes, for the root help. */
export const exitCodes: ReadonlyArray<readonly [number, string]> = [
  [0, "success: the run landed (or verified, with --no-land); the plan is ready"],
  [1, "the run finished with a failed or needs-review task, or failed to run"],
  [2, "invalid input: a plan, an option, or a repository state braid refuses"],
  [75, "paused by a provider's usage limit or the run's budget: braid resume (--budget <more>) continues it"],
  [130, "interrupted (Ctrl-C): braid resume continues it"]
]

const WIDTH = 100

/** Wraps `text` at the help's width, every line after the first indented by `indent`. */
const wrap = (text: string, indent: number, first = indent): string => {
  const lines: Array<string> = []
  let line = ""
  let width = WIDTH - first
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
      width = WIDTH - indent
    } else {
      line = line === "" ? word : `${line} ${word}`
    }
  }
  lines.push(line)
  return lines.join(`\n${" ".repeat(indent)}`)
}

/** Two columns: a term and its wrapped description. */
const table = (rows: ReadonlyArray<readonly [string, string]>): string => {
  const column = Math.min(34, Math.max(...rows.map(([term]) => term.length)) + 2)
  return rows.map(([term, text]) =>
    term.length + 2 > column
      ? `  ${term}\n${" ".repeat(column + 2)}${wrap(text, column + 2)}`
      : `  ${term.padEnd(column)}${wrap(text, column + 2)}`
  ).join("\n")
}

/** How help styles its headers: bold only on a terminal that allows color. */
export interface Style {
  readonly color: boolean
}

/** Color only when stdout is a terminal and `NO_COLOR` is not set. */
export const styleOf = (stdout: { readonly isTTY?: boolean }, env: Record<string, string | undefined>): Style => ({
  color: stdout.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "") && env.TERM !== "dumb"
})

const header = (text: string, style: Style) => style.color ? `\u001b[1m${text}\u001b[0m` : text

const optionOf = (entry: CommandHelp["options"][number]) => {
  const name = typeof entry === "string" ? entry : entry.name
  const known = options[name] as OptionHelp
  const value = typeof entry === "string" ? known.value : entry.value ?? known.value
  return { name, alias: known.alias, value, description: typeof entry === "string" ? known.description : entry.description }
}

const usageOf = (command: CommandHelp): string =>
  `braid ${command.name}${command.args.map((a) => a.optional === true ? ` [<${a.name}>]` : ` <${a.name}>`).join("")}${
    command.options.length > 0 ? " [options]" : ""
  }`

/** The root help: commands, exit codes, examples. */
export const root = (style: Style): string =>
  [
    `braid ${VERSION}: run a software change as parallel work streams of coding agents, each task gated, then merged, verified and landed.`,
    "",
    header("Usage:", style),
    "  braid <command> [arguments] [options]",
    "  braid <command> --help",
    "",
    header("Commands:", style),
    table(commands.map((c) => [c.name, c.summary])),
    "",
    header("Options:", style),
    table([["-h, --help", "Show help (for a command: braid run --help)."], ["--version", "Print braid's version."]]),
    "",
    header("Exit codes:", style),
    table(exitCodes.map(([code, text]) => [String(code), text])),
    "",
    header("Examples:", style),
    "  braid draft \"Add a checkout flow\" --agent claude-code",
    "      Draft plan.yaml: an architect agent reads the repository (read-only), braid checks its plan.",
    "  braid plan plan.yaml --agent claude-code",
    "      Check the plan as braid run would, in the repository of the current directory; changes nothing.",
    "  braid run plan.yaml --agent claude-code --report report.md",
    "      Run it: each stream's agent in its own worktree, then land on the current branch.",
    ""
  ].join("\n")

/** One command's help. */
export const command = (c: CommandHelp, style: Style): string => {
  const opts = c.options.map(optionOf)
  return [
    `braid ${c.name}: ${wrap(c.summary, 2, `braid ${c.name}: `.length)}`,
    ...(c.description !== undefined ? ["", wrap(c.description, 0)] : []),
    "",
    header("Usage:", style),
    `  ${usageOf(c)}`,
    ...(c.args.length > 0
      ? ["", header("Arguments:", style), table(c.args.map((a) => [`<${a.name}>`, a.description]))]
      : []),
    "",
    header("Options:", style),
    table([
      ...opts.map((o) => [`${o.alias !== undefined ? `-${o.alias}, ` : ""}--${o.name}${o.value !== undefined ? ` <${o.value}>` : ""}`, o.description] as const),
      ["-h, --help", "Show this help."]
    ]),
    ""
  ].join("\n")
}

/** What the command line asks for before any parsing: help, the version, or a usage error. */
export type Early =
  | { readonly _tag: "Help"; readonly text: string }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Usage"; readonly message: string }
  | Parse

/**
 * Arguments for the parser, with what `early` read of them: the command, its options' values
 * (a flag's is `true`) and its positional arguments. `plain` says the reading is the parser's
 * too: each option given once, no `--`, no `--flag=value`, no flag followed by a word the
 * parser would take as its value (`--json false`), no positional argument that looks like an
 * option. Only then does `Main` run a command from this reading instead of the parser.
 */
export interface Parse {
  readonly _tag: "Parse"
  readonly command: string
  readonly values: ReadonlyMap<string, string | true>
  readonly positionals: ReadonlyArray<string>
  readonly plain: boolean
}

/**
 * Prints what `early` answers alone — the help, the version, or a usage mistake (exit code 2) —
 * and says whether it did; a `Parse` is a command to run, left to the caller.
 */
export const answer = (reading: Early): reading is Exclude<Early, Parse> => {
  switch (reading._tag) {
    case "Help":
      process.stdout.write(reading.text)
      return true
    case "Version":
      process.stdout.write(`${VERSION}\n`)
      return true
    case "Usage":
      process.stderr.write(`braid: ${reading.message}\n`)
      process.exitCode = 2
      return true
    case "Parse":
      return false
  }
}

/** The words @effect/cli reads as a boolean flag's value when one follows the flag. */
const BOOLEAN_WORDS = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])

/**
 * Looks at the arguments (after `node braid`) for what needs no parser: help, the version,
 * an unknown command or option (named as such, never blamed on an argument next to it).
 */
export const early = (args: ReadonlyArray<string>, style: Style): Early => {
  const [first, ...rest] = args
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    const named = first === "help" ? commands.find((c) => c.name === rest[0]) : undefined
    return { _tag: "Help", text: named !== undefined ? command(named, style) : root(style) }
  }
  if (first === "--version" || first === "-V") return { _tag: "Version" }
  if (first.startsWith("-")) return { _tag: "Usage", message: `unknown option ${first.split("=")[0]} (see: braid --help)` }
  const found = commands.find((c) => c.name === first)
  if (found === undefined) {
    return { _tag: "Usage", message: `unknown command "${first}" (commands: ${commands.map((c) => c.name).join(", ")})` }
  }
  const byName = new Map<string, ReturnType<typeof optionOf>>()
  for (const o of found.options.map(optionOf)) {
    byName.set(`--${o.name}`, o)
    if (o.alias !== undefined) byName.set(`-${o.alias}`, o)
  }
  const values = new Map<string, string | true>()
  const positionals: Array<string> = []
  let plain = true
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!
    if (token === "--") {
      plain = false
      break
    }
    if (token === "-h" || token === "--help") return { _tag: "Help", text: command(found, style) }
    if (!token.startsWith("-") || token === "-" || /^-\d/.test(token)) {
      if (token.startsWith("-")) plain = false
      positionals.push(token)
      continue
    }
    const [flag, inline] = token.split(/=(.*)/s, 2) as [string, string | undefined]
    const option = byName.get(flag)
    if (option === undefined) {
      return { _tag: "Usage", message: `unknown option ${flag} for braid ${found.name} (see: braid ${found.name} --help)` }
    }
    if (values.has(option.name) || inline !== undefined) plain = false
    if (option.value !== undefined && inline === undefined) {
      if (i + 1 >= rest.length) return { _tag: "Usage", message: `option ${flag} needs a value (<${option.value}>)` }
      values.set(option.name, rest[++i]!)
    } else {
      if (option.value === undefined && BOOLEAN_WORDS.has(rest[i + 1] ?? "")) plain = false
      values.set(option.name, inline ?? true)
    }
  }
  return { _tag: "Parse", command: found.name, values, positionals, plain }
}
