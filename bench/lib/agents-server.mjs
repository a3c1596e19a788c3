/**
 * Child process for section 4 (agents): the scripted Anthropic server the real claude binary
 * talks to, in its own process so its CPU is never counted as braid's. Input:
 * { delayMs, maxInFlight?, retryAfterSeconds? }.
 *
 * Every attempt plays one flow: a `Write` of `streams/<stream>/<task>.txt` (the task named in
 * the prompt's "## Your task: <id> "), then a closing text; each model turn is answered after
 * `delayMs`. With `maxInFlight`, a model turn arriving while that many turns are being
 * answered gets a 429 with `retry-after` at once (the errors are not delayed).
 *
 * Prints `@@listening <url>` once it listens; when its stdin ends it closes and prints what
 * it served (`@@result`, as the case children do), with a log of every model turn (epoch ms).
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { report } from "./measure.mjs"

const input = JSON.parse(process.argv[2])
const { delayMs, maxInFlight, retryAfterSeconds = 1 } = input

/** The id of the tool call whose result a request ends with. */
const answeredToolId = (raw) => {
  const last = raw?.messages?.at(-1)
  if (last?.role !== "user" || !Array.isArray(last.content)) return undefined
  return last.content.find((b) => b.type === "tool_result")?.tool_use_id
}

const flowOf = (prompt) => {
  const task = /## Your task: (\S+) /.exec(prompt)?.[1] ?? "unknown"
  const attempt = /Attempt (\d+) of \d+/.exec(prompt)?.[1] ?? "1"
  const stream = task.replace(/-t\d+$/, "")
  return { name: `${task.replace(/[^A-Za-z0-9]/g, "")}a${attempt}`, task, attempt: Number(attempt), file: `streams/${stream}/${task}.txt` }
}

// Flows by name: each tool result moves its flow one turn on (tool call ids carry flow and step).
const flows = new Map()
const turnOf = (flow, step) =>
  step === 0
    ? { toolCalls: [{ name: "Write", id: `toolu_${flow.name}_0_0`, input: { file_path: flow.file, content: `${flow.task} done\n` } }] }
    : { text: `Wrote ${flow.file}.` }

let serving = 0
let maxServing = 0
let rejected = 0
const log = []
const responder = (conversation) => {
  const answered = /^toolu_([A-Za-z0-9]+)_(\d+)_\d+$/.exec(answeredToolId(conversation.raw) ?? "")
  let flow
  let step
  if (answered !== null && flows.has(answered[1])) {
    flow = flows.get(answered[1])
    step = Number(answered[2]) + 1
  } else {
    flow = flowOf(conversation.lastUserText)
    flows.set(flow.name, flow)
    step = 0
  }
  const at = Date.now()
  if (maxInFlight !== undefined && serving >= maxInFlight) {
    rejected++
    log.push({ at, taskId: flow.task, attempt: flow.attempt, step, answer: 429 })
    return { error: { status: 429, type: "rate_limit_error", message: "Number of concurrent requests has exceeded your rate limit", retryAfterSeconds } }
  }
  serving++
  maxServing = Math.max(maxServing, serving)
  // The server answers after `delayMs` on a timer set after this one: the turn is counted out first.
  setTimeout(() => serving--, delayMs)
  log.push({ at, taskId: flow.task, attempt: flow.attempt, step, answer: 200 })
  return { ...turnOf(flow, step), delayMs }
}

const server = await ScriptedServer.listen(AnthropicServer.provider, responder)
process.stdout.write(`@@listening ${server.url}\n`)
process.stdin.resume()
process.stdin.on("end", async () => {
  await server.close()
  const cpu = process.cpuUsage()
  report({
    turns: log.filter((l) => l.answer === 200).length,
    rejected,
    maxServing,
    otherRequests: server.requests.filter((r) => r.answer === "other").length,
    cpuMs: +((cpu.user + cpu.system) / 1000).toFixed(1),
    log
  })
  process.exit(0)
})
