// Shared by the example's scripted agents: they stand in for coding agents, making real
// file changes in the stream's worktree (their working directory).
import * as fs from "node:fs"
import * as path from "node:path"

// Tests slow the example down to watch the live board at work: each attempt waits this long first.
const delay = Number(process.env.BRAID_EXAMPLE_DELAY_MS ?? "0")
if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))

export const attempt = Number(process.env.BRAID_ATTEMPT ?? "1")
export const feedback = process.env.BRAID_FEEDBACK ? JSON.parse(process.env.BRAID_FEEDBACK) : undefined

/** Writes a file in the worktree, creating folders. */
export const write = (file, text) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, text)
}

/** Reads a file of the worktree. */
export const read = (file) => fs.readFileSync(file, "utf8")

/** Inserts `line` before the line matching `anchor` (used to register routes and imports). */
export const insertBefore = (file, anchor, line) => {
  const lines = read(file).split("\n")
  const at = lines.findIndex((l) => anchor.test(l))
  lines.splice(at, 0, line)
  fs.writeFileSync(file, lines.join("\n"))
}

/** Records that this agent ran (for tests that count agent invocations). */
export const logRun = () => {
  const log = process.env.BRAID_AGENT_LOG
  if (log) fs.appendFileSync(log, `${process.env.BRAID_TASK_ID} ${attempt}\n`)
}
