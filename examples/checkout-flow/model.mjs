// The demo's scripted model, for `npm run demo -- --agent claude-code` (and `--agent llm`): a
// local server on 127.0.0.1 speaking the Anthropic Messages API, so the real `claude` binary
// (or braid's own `llm` backend through @effect/ai) runs offline.
//
// For each attempt it works out the change the example's agent script (./agents/*.mjs) would
// make — by running that script in a scratch copy of the stream's worktree, with the attempt
// number and the review it was given — and then makes that change through claude's own tools:
// it reads each file it will overwrite (claude refuses to overwrite a file it has not read),
// writes every changed file, and closes with the script's summary. claude does the writing;
// braid commits, reviews, merges, verifies and lands, as with any model.
//
// For the `llm` backend the same change is made through braid's own tools (`read_file`,
// `write_file`, paths relative to the worktree), and the model also answers as the judge of
// `--reviewer composite|judge`: a review object with a score and an issue naming a changed file.
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const plan = fs.readFileSync(path.join(here, "plan.yaml"), "utf8")

/** task id → the agent script the plan gives it. */
const scripts = new Map(
  [...plan.matchAll(/- id: ([\w-]+)[\s\S]*?run: \{ script: (agents\/[\w.-]+) \}/g)].map((m) => [m[1], path.join(here, m[2])])
)

/** Every file under `dir` (relative paths), skipping git's and braid's folders. */
const filesOf = (dir, prefix = "") =>
  fs.readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.join(prefix, entry.name)
    if (entry.name === ".git" || entry.name === ".braid" || entry.name === "node_modules") return []
    return entry.isDirectory() ? filesOf(dir, rel) : [rel]
  })

/** What the task's script changes in a copy of the worktree: [{ file, content, existed }] and its summary. */
const changeOf = (worktree, taskId, attempt, review) => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "braid-demo-model-"))
  try {
    const before = new Map(filesOf(worktree).map((f) => [f, fs.readFileSync(path.join(worktree, f), "utf8")]))
    for (const [file, content] of before) {
      fs.mkdirSync(path.dirname(path.join(scratch, file)), { recursive: true })
      fs.writeFileSync(path.join(scratch, file), content)
    }
    const summary = execFileSync(process.execPath, [scripts.get(taskId)], {
      cwd: scratch,
      encoding: "utf8",
      env: { PATH: process.env.PATH, BRAID_TASK_ID: taskId, BRAID_ATTEMPT: String(attempt), BRAID_FEEDBACK: review }
    }).trim().split("\n").at(-1)
    const changes = filesOf(scratch).flatMap((file) => {
      const content = fs.readFileSync(path.join(scratch, file), "utf8")
      return before.get(file) === content ? [] : [{ file, content, existed: before.has(file) }]
    })
    return { changes, summary }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

/** The tool result the request's last message carries: its call id and text. */
const answered = (raw) => {
  const last = raw?.messages?.at(-1)
  if (last?.role !== "user" || !Array.isArray(last.content)) return undefined
  const result = last.content.find((b) => b.type === "tool_result")
  if (result === undefined) return undefined
  const text = typeof result.content === "string" ? result.content : (result.content ?? []).map((b) => b.text ?? "").join("\n")
  return { id: result.tool_use_id, text }
}

/** The checkout of `stream` in the demo repository's one run: where its record (`worktrees-dir`) says, else the old layout's `.braid/runs/<run>/worktrees`. */
const worktreeOf = (repo, stream) => {
  const runs = path.join(repo, ".braid", "runs")
  for (const run of fs.existsSync(runs) ? fs.readdirSync(runs) : []) {
    const record = path.join(runs, run, "worktrees-dir")
    const folder = fs.existsSync(record) ? fs.readFileSync(record, "utf8").trim() : path.join(runs, run, "worktrees")
    const dir = path.join(folder, stream)
    if (fs.existsSync(dir)) return dir
  }
  return undefined
}

/**
 * Plays each attempt as a flow of turns: read what it will overwrite, write every changed
 * file, close with the script's summary. `repo` is the demo's repository: the model finds the
 * stream's worktree in it (the prompt names the stream).
 */
export const responder = (repo, tools = claudeTools) => {
  const flows = new Map()
  let next = 0
  const turn = (flow, n) => {
    const t = flows.get(flow)[n] ?? { text: "Done." }
    return t.toolCalls === undefined ? t : { ...t, toolCalls: t.toolCalls.map((c, k) => ({ ...c, id: `toolu_demo${flow}_${n}_${k}` })) }
  }
  return (conversation) => {
    const step = /^toolu_demo(\d+)_(\d+)_\d+$/.exec(answered(conversation.raw)?.id ?? "")
    if (step !== null && flows.has(Number(step[1]))) return turn(Number(step[1]), Number(step[2]) + 1)
    const prompt = conversation.lastUserText
    const taskId = /## Your task: ([\w-]+) —/.exec(prompt)?.[1]
    const stream = /of the ([\w-]+) stream/.exec(prompt)?.[1]
    const worktree = stream === undefined ? undefined : worktreeOf(repo, stream)
    if (taskId === undefined || !scripts.has(taskId) || worktree === undefined) {
      return { text: "I could not tell which task this is; nothing changed." }
    }
    const attempt = Number(/This is attempt (\d+) of 3/.exec(prompt)?.[1] ?? "1")
    const review = attempt > 1 ? JSON.stringify({ issues: [prompt.slice(prompt.indexOf("## Feedback"))] }) : ""
    const { changes, summary } = changeOf(worktree, taskId, attempt, review)
    const { reads, writes } = tools(worktree, changes)
    const flow = next++
    flows.set(flow, [
      ...(reads.length > 0 ? [{ text: "Reading the files I will change.", toolCalls: reads }] : []),
      ...(writes.length > 0 ? [{ text: "Making the change.", toolCalls: writes }] : []),
      { text: summary ?? "Done." }
    ])
    return turn(flow, 0)
  }
}

/** claude's tools: `Read` each file it will overwrite, then `Write` every change (absolute paths). */
const claudeTools = (worktree, changes) => ({
  reads: changes.filter((c) => c.existed).map((c) => ({ name: "Read", input: { file_path: path.join(worktree, c.file) } })),
  writes: changes.map((c) => ({ name: "Write", input: { file_path: path.join(worktree, c.file), content: c.content } }))
})

/** braid's `llm` tools: paths relative to the worktree. */
const llmTools = (_worktree, changes) => ({
  reads: changes.filter((c) => c.existed).map((c) => ({ name: "read_file", input: { path: c.file } })),
  writes: changes.map((c) => ({ name: "write_file", input: { path: c.file, content: c.content } }))
})

/** The judge's answer: a good score, with one minor issue on the first file the change names. */
const verdictOf = (conversation) => {
  const file = /files: ([^,)\n]+)/.exec(conversation.lastUserText)?.[1]?.trim() ?? null
  const task = /## Task ([\w-]+):/.exec(conversation.lastUserText)?.[1] ?? "the task"
  return {
    object: {
      score: 92,
      issues: [{ severity: "minor", file, message: `${task}: a comment on why this is done this way would help the next reader` }],
      suggestions: ["keep the change as it is"]
    }
  }
}

/** The model for the `llm` backend: the same changes through braid's tools, and the judge's reviews. */
export const llmResponder = (repo) => {
  const agent = responder(repo, llmTools)
  // generateObject forces its one tool: that request is the judge's.
  return (conversation, index) => conversation.raw?.tool_choice?.type === "tool" ? verdictOf(conversation) : agent(conversation, index)
}

/** Starts the model for the demo repository `repo` on 127.0.0.1; resolves to the running server. */
export const start = (repo) => ScriptedServer.listen(AnthropicServer.provider, responder(repo))

/** Starts the model for `--agent llm` (and the judge) on 127.0.0.1. */
export const startLlm = (repo) => ScriptedServer.listen(AnthropicServer.provider, llmResponder(repo))
