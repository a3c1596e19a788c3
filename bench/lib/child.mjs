/**
 * Runs one benchmark case in a fresh `node --expose-gc` process and returns the JSON it
 * reports, so every case starts from the same empty heap and its peak RSS is its own.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const runChild = (script, input, { nodeArgs = [], timeoutMs = 300_000 } = {}) =>
  new Promise((resolve, reject) => {
    const path = fileURLToPath(new URL(script, import.meta.url))
    const child = spawn(process.execPath, ["--expose-gc", ...nodeArgs, path, JSON.stringify(input)], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const line = stdout.split("\n").find((l) => l.startsWith("@@result "))
      if (code !== 0 || line === undefined) {
        reject(new Error(`${script} ${JSON.stringify(input)} exited ${code ?? signal}:\n${stderr.slice(-2000)}`))
      } else resolve(JSON.parse(line.slice("@@result ".length)))
    })
  })

/**
 * Starts a long-lived helper child (a scripted model server) that prints `@@listening <url>`
 * when ready; `stop()` closes its stdin and resolves with the `@@result` it prints then.
 */
export const startChild = (script, input, { timeoutMs = 600_000 } = {}) =>
  new Promise((resolveStarted, rejectStarted) => {
    const path = fileURLToPath(new URL(script, import.meta.url))
    const child = spawn(process.execPath, [path, JSON.stringify(input)], { stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let listening = false
    let finish
    const finished = new Promise((resolve, reject) => (finish = { resolve, reject }))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.stdout.on("data", (d) => {
      stdout += d
      const line = stdout.split("\n").find((l) => l.startsWith("@@listening "))
      if (!listening && line !== undefined) {
        listening = true
        resolveStarted({
          url: line.slice("@@listening ".length).trim(),
          stop: () => {
            child.stdin.end()
            return finished
          }
        })
      }
    })
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const line = stdout.split("\n").find((l) => l.startsWith("@@result "))
      const error = new Error(`${script} ${JSON.stringify(input)} exited ${code ?? signal}:\n${stderr.slice(-2000)}`)
      if (!listening) rejectStarted(error)
      else if (code !== 0 || line === undefined) finish.reject(error)
      else finish.resolve(JSON.parse(line.slice("@@result ".length)))
    })
  })
