/**
 * What the notification tests share: a repository, a recorder notifier (it appends what it is
 * told, stdin and `$BRAID_EVENT`, as one JSON line to a file of its own), a fake `notify-send`.
 */
import { assert } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { git } from "./Braid.js"

/** Appends what it is told (stdin, then $BRAID_EVENT) as one JSON line to the file named by its argument. */
const recorder = `
const fs = require("node:fs")
let stdin = ""
process.stdin.on("data", (d) => (stdin += d))
process.stdin.on("end", () => fs.appendFileSync(process.argv[2], JSON.stringify({ stdin: JSON.parse(stdin), env: JSON.parse(process.env.BRAID_EVENT) }) + "\\n"))
`

/** A temporary folder with a repository (`repo`, on main) and the recorder; `told(name)` reads what recorder `name` was told. */
export const setUp = () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "braid-notify-")))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(path.join(repo, "src"), { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "src", "routes.js"), "module.exports = ['home']\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "base")
  const program = path.join(dir, "recorder.cjs")
  fs.writeFileSync(program, recorder)
  const record = (name: string) => [process.execPath, program, path.join(dir, `${name}.log`)]
  const told = (name: string): Array<Record<string, any>> => {
    const file = path.join(dir, `${name}.log`)
    if (!fs.existsSync(file)) return []
    return fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => {
      const { env, stdin } = JSON.parse(l)
      // The same payload both ways.
      assert.deepStrictEqual(env, stdin)
      return stdin
    })
  }
  const writePlan = (plan: Record<string, unknown>) => {
    const file = path.join(dir, "plan.json")
    fs.writeFileSync(file, JSON.stringify({ projectName: "shop", featureName: "notes", ...plan }))
    return file
  }
  /** A fake `notify-send` first on PATH, logging its arguments. */
  const fakeDesktop = () => {
    const bin = path.join(dir, "bin")
    fs.mkdirSync(bin, { recursive: true })
    fs.writeFileSync(path.join(bin, "notify-send"), `#!/bin/sh\necho "$@" >> ${JSON.stringify(path.join(dir, "desktop.log"))}\n`, { mode: 0o755 })
    return { PATH: `${bin}${path.delimiter}${process.env.PATH}` }
  }
  const desktopCalls = () => {
    const file = path.join(dir, "desktop.log")
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []
  }
  return { dir, repo, record, told, writePlan, fakeDesktop, desktopCalls, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

export const writes = (file: string, content: string) => [process.execPath, "-e", `require('fs').writeFileSync(${JSON.stringify(file)}, ${JSON.stringify(content)})`]

export const reportOf = (repo: string, runId: string) => JSON.parse(fs.readFileSync(path.join(repo, ".braid", "runs", runId, "report.json"), "utf8"))

