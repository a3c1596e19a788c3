import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

// The built executable, as a user runs it (`npm test` builds first).
const bin = path.resolve(__dirname, "../dist/bin.js")

const braid = (args: Array<string>, cwd = os.tmpdir(), env: Record<string, string> = {}) => {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", ...env } })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "braid-preflight-"))

const repository = () => {
  const repo = tmp()
  const git = (...args: Array<string>) => spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" })
  git("init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), "x\n")
  git("add", "-A")
  git("commit", "-q", "-m", "base")
  return { repo, git }
}

describe("braid plan as a preflight", () => {
  it("lists everything braid run would refuse (exit 2), and run refuses the same plan before creating anything", () => {
    const { git, repo } = repository()
    const plans = tmp()
    const file = path.join(plans, "plan.yaml")
    fs.writeFileSync(
      file,
      [
        "streams:",
        "  - {name: api, type: api}",
        "  - {name: web, type: ui, agent: nosuch}",
        "tasks:",
        "  - {id: a, title: A, stream: api, run: {script: missing.sh}}",
        "  - {id: b, title: B, stream: web}",
        ""
      ].join("\n")
    )
    fs.writeFileSync(path.join(repo, "dirt.txt"), "uncommitted\n")
    git("add", "dirt.txt")
    const args = ["--repo", repo, "--base", "nope", "--report", path.join(plans, "no-folder", "r.md")]
    const plan = braid(["plan", file, ...args])
    assert.strictEqual(plan.code, 2, plan.stderr)
    assert.include(plan.stderr, "braid run would refuse to start (4 problems)")
    assert.include(plan.stderr, `unknown agent "nosuch"`)
    assert.include(plan.stderr, "missing.sh")
    assert.include(plan.stderr, `--report: the folder ${path.join(plans, "no-folder")} does not exist`)
    assert.include(plan.stderr, `base "nope" is not a commit`)
    assert.notInclude(plan.stderr, "    at ")

    // What plan found, run refuses too, and leaves nothing behind.
    const run = braid(["run", file, ...args])
    assert.strictEqual(run.code, 2)
    assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs")) && fs.readdirSync(path.join(repo, ".braid", "runs")).length > 0)
    assert.strictEqual(git("branch", "--list").stdout.trim(), "* main")
  })

  it("shows each stream's environment; warns of a share key or copy source not in the repository and of npm checks no environment prepares", () => {
    const { git, repo } = repository()
    fs.writeFileSync(path.join(repo, "package.json"), "{}\n")
    git("add", "-A")
    git("commit", "-q", "-m", "package")
    const file = path.join(repo, "plan.yaml")
    const plan = (environment: string) =>
      fs.writeFileSync(file, [
        "checks: [npm test]",
        environment,
        "streams:",
        "  - {name: api, type: api}",
        "  - {name: web, type: ui, environment: {ports: 3}}",
        "tasks:",
        "  - {id: a, title: A, stream: api, run: [node, -e, '0']}",
        "  - {id: w, title: W, stream: web, run: [node, -e, '0']}",
        ""
      ].join("\n"))
    plan("")
    const bare = braid(["plan", file, "--no-land"], repo)
    assert.strictEqual(bare.code, 0, bare.stderr)
    assert.include(bare.stderr, "`npm test` runs in a fresh checkout, which has no node_modules of its own")
    plan("environment: {copy: [.env], share: [{path: node_modules, key: [package-lock.json], build: npm ci}]}")
    const shown = braid(["plan", file, "--no-land"], repo)
    assert.strictEqual(shown.code, 0, shown.stderr)
    assert.include(shown.stdout, "api: copies .env · shares node_modules (key package-lock.json; built by npm ci)")
    assert.include(shown.stdout, "web: copies .env · shares node_modules (key package-lock.json; built by npm ci) · 3 ports (BRAID_PORT, BRAID_PORTS)")
    assert.include(shown.stderr, `environment.share[0].key: "package-lock.json" is not in the repository`)
    assert.include(shown.stderr, `environment.copy[0]: ".env" is not in your checkout`)
    assert.notInclude(shown.stderr, "has no node_modules of its own")
    const json = JSON.parse(braid(["plan", file, "--no-land", "--json"], repo).stdout)
    assert.deepStrictEqual(json.streams.find((s: any) => s.name === "web").environment, {
      setup: [], teardown: [], copy: [".env"], share: [{ path: "node_modules", key: ["package-lock.json"], build: "npm ci" }], ports: 3, sparse: null
    })
  })

  it("finds a dirty checkout when the run would land, not with --no-land", () => {
    const { repo } = repository()
    const file = path.join(repo, "plan.yaml")
    fs.writeFileSync(file, "checks: [[node, -e, '0']]\nstreams:\n  - {name: s, type: api}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, '0']}\n")
    fs.writeFileSync(path.join(repo, "README.md"), "changed\n")
    const landing = braid(["plan", file], repo)
    assert.strictEqual(landing.code, 2)
    assert.include(landing.stderr, "has uncommitted changes")
    const noLand = braid(["plan", file, "--no-land"], repo)
    assert.strictEqual(noLand.code, 0, noLand.stderr)
  })

  it("shows each stream's agent and each task's checks and waits, and never says batch; --json says the same", () => {
    const { repo } = repository()
    const file = path.join(repo, "plan.yaml")
    fs.writeFileSync(
      file,
      [
        "checks: [{name: unit, command: [node, -e, '0']}]",
        "streams:",
        "  - {name: db, type: database}",
        "  - {name: api, type: api}",
        "tasks:",
        "  - {id: d1, title: D1, stream: db, run: [node, -e, '0']}",
        "  - {id: a1, title: A1, stream: api, dependsOn: [d1], run: [node, -e, '0'], checks: [{name: lint, command: [node, -e, '0']}]}",
        ""
      ].join("\n")
    )
    const text = braid(["plan", file], repo)
    assert.strictEqual(text.code, 0, text.stderr)
    assert.include(text.stdout, "api (api, priority 5, agent script), waits on db")
    assert.include(text.stdout, "checks: lint, unit; waits for: d1")
    assert.notInclude(text.stdout.toLowerCase(), "batch")
    // Unconfined on purpose: whether this machine can confine is not what is checked here.
    const json = braid(["plan", file, "--json", "--sandbox", "off"], repo)
    assert.strictEqual(json.code, 0, json.stderr)
    const parsed = JSON.parse(json.stdout)
    assert.isUndefined(parsed.batches)
    assert.strictEqual(parsed.ready, true)
    assert.deepStrictEqual(parsed.sandbox, { mode: "off", confined: false, reason: "sandbox: off" })
    assert.deepStrictEqual(parsed.streams[1], {
      name: "api",
      type: "api",
      priority: 5,
      agent: "script",
      reviewer: "checks",
      confined: false,
      reachable: [],
      environment: null,
      waitsOn: ["db"],
      tasks: [{ id: "a1", title: "A1", checks: ["lint", "unit"], waitsFor: ["d1"] }]
    })
  })

  it("sandbox: required where bubblewrap is missing is refused before anything starts (exit 2, naming it); auto warns and runs unconfined", () => {
    const { repo } = repository()
    const file = path.join(repo, "plan.yaml")
    fs.writeFileSync(file, ["streams: [{name: s, type: api}]", "tasks: [{id: a, title: A, stream: s, run: [node, -e, \"require('fs').writeFileSync('a.txt', 'a')\"]}]", ""].join("\n"))
    spawnSync("git", ["add", "plan.yaml"], { cwd: repo })
    spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "plan"], { cwd: repo })
    // A PATH with git and node and no bwrap: a machine without bubblewrap.
    const bin = tmp()
    fs.symlinkSync(spawnSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).stdout.trim(), path.join(bin, "git"))
    fs.symlinkSync(process.execPath, path.join(bin, "node"))
    const noBwrap = { PATH: bin }
    const plan = braid(["plan", file, "--sandbox", "required"], repo, noBwrap)
    assert.strictEqual(plan.code, 2, plan.stderr)
    assert.include(plan.stderr, "sandbox: required, but confinement is unavailable: bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    const run = braid(["run", file, "--sandbox", "required"], repo, noBwrap)
    assert.strictEqual(run.code, 2, run.stderr)
    assert.include(run.stderr, "bubblewrap (bwrap) is not installed")
    assert.notInclude(run.stderr, "    at ")
    assert.isFalse(fs.existsSync(path.join(repo, ".braid", "runs")) && fs.readdirSync(path.join(repo, ".braid", "runs")).length > 0, "a refused run leaves no record")
    const auto = braid(["run", file], repo, noBwrap)
    assert.strictEqual(auto.code, 0, auto.stderr)
    assert.include(auto.stderr, "processes run unconfined: bubblewrap (bwrap) is not installed")
  })

  it("counts the longest chain in tasks (effort points named as such) and lists each wait once", () => {
    const { repo } = repository()
    const file = path.join(repo, "plan.yaml")
    // 8 tasks in one chain; api-2 names api-1 in dependsOn although it follows it in its stream.
    const tasks = (effort: string) => [
      `  - {id: api-1, title: A1, stream: api, run: [node, -e, '0']${effort}}`,
      `  - {id: api-2, title: A2, stream: api, dependsOn: [api-1], run: [node, -e, '0']${effort}}`,
      ...[3, 4, 5, 6, 7, 8].map((i) => `  - {id: api-${i}, title: A${i}, stream: api, run: [node, -e, '0']${effort}}`)
    ]
    const write = (effort: string) =>
      fs.writeFileSync(file, ["checks: [[node, -e, '0']]", "streams:", "  - {name: api, type: api}", "tasks:", ...tasks(effort), ""].join("\n"))

    write("")
    const plain = braid(["plan", file], repo)
    assert.strictEqual(plain.code, 0, plain.stderr)
    assert.include(plain.stdout, "8 tasks in 1 streams")
    assert.include(plain.stdout, "longest dependency chain: 8 tasks\n")
    assert.include(plain.stdout, "waits for: api-1\n")
    assert.notInclude(plain.stdout, "api-1, api-1")
    assert.deepStrictEqual(JSON.parse(braid(["plan", file, "--json"], repo).stdout).streams[0].tasks[1].waitsFor, ["api-1"])

    write(", effort: S")
    const weighted = braid(["plan", file], repo)
    assert.strictEqual(weighted.code, 0, weighted.stderr)
    assert.include(weighted.stdout, "longest dependency chain (by effort): 16 effort points over 8 tasks\n")
    assert.notInclude(weighted.stdout, "16 task")
  })

  it("warns (exit 0) about a task nothing can fail, a threshold under 50 and a path that exists only beside the plan", () => {
    const { repo } = repository()
    const plans = path.join(repo, "plans")
    fs.mkdirSync(path.join(plans, "scripts"), { recursive: true })
    fs.writeFileSync(path.join(plans, "scripts", "check.mjs"), "")
    const file = path.join(plans, "plan.yaml")
    fs.writeFileSync(
      file,
      "qualityThreshold: 30\nstreams:\n  - {name: s, type: api}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, scripts/check.mjs]}\n"
    )
    const result = braid(["plan", file, "--json"], repo)
    assert.strictEqual(result.code, 0, result.stderr)
    assert.include(result.stderr, `tasks[0]: task "a" has no checks and the plan has none`)
    assert.include(result.stderr, "qualityThreshold: 30 is under 50")
    assert.include(result.stderr, `tasks[0].run: "scripts/check.mjs" exists beside the plan`)
    assert.lengthOf(JSON.parse(result.stdout).warnings, 3)
  })
})

describe("output paths", () => {
  it("braid run refuses a --report whose folder does not exist before it starts", () => {
    const { git, repo } = repository()
    const file = path.join(repo, "plan.yaml")
    fs.writeFileSync(file, "streams:\n  - {name: s, type: api}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, \"require('fs').writeFileSync('f.txt','x')\"]}\n")
    git("add", "plan.yaml")
    git("commit", "-q", "-m", "plan")
    const result = braid(["run", file, "--report", path.join(repo, "missing", "r.md")], repo)
    assert.strictEqual(result.code, 2)
    assert.include(result.stderr, "--report: the folder")
    assert.strictEqual(git("log", "--oneline").stdout.trim().split("\n").length, 2)
  })

  it("a report that cannot be written after a landing warns and keeps exit 0", () => {
    const { git, repo } = repository()
    // The report's folder exists when the run starts; the task removes it before the end.
    const out = tmp()
    const file = path.join(repo, "plan.yaml")
    const task = `require('fs').rmSync(${JSON.stringify(out)}, {recursive: true}); require('fs').writeFileSync('f.txt', 'x')`
    fs.writeFileSync(file, `streams:\n  - {name: s, type: api}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, ${JSON.stringify(task)}]}\n`)
    git("add", "plan.yaml")
    git("commit", "-q", "-m", "plan")
    // Unconfined: the task's script removes the report's folder, outside its checkout.
    const result = braid(["run", file, "--sandbox", "off", "--report", path.join(out, "r.md")], repo)
    assert.strictEqual(result.code, 0, result.stderr)
    assert.include(result.stderr, `warning: could not write the report to ${path.join(out, "r.md")}`)
    assert.include(result.stderr, "landed")
    assert.notInclude(result.stderr, "report: ")
    assert.isTrue(fs.existsSync(path.join(repo, "f.txt")))
  })
})

describe("help and usage", () => {
  it("is plain text with exit codes and examples; usage lines read braid <command>; no options a braid user has no use for", () => {
    const root = braid(["--help"], os.tmpdir(), { NO_COLOR: "1" })
    assert.strictEqual(root.code, 0)
    assert.notMatch(root.stdout, /\u001b\[/)
    for (const code of ["0 ", "1 ", "2 ", "75 ", "130 "]) assert.include(root.stdout, `\n  ${code}`)
    assert.include(root.stdout, "paused by a provider's usage limit")
    assert.include(root.stdout, "Examples:\n  braid draft ")
    assert.include(root.stdout, "\n  braid plan plan.yaml")
    for (const internal of ["--wizard", "--completions", "--log-level", "This setting is optional", "A true or false value"]) {
      assert.notInclude(root.stdout, internal)
    }
    const run = braid(["run", "--help"])
    assert.strictEqual(run.code, 0)
    assert.notMatch(run.stdout, /\u001b\[/)
    assert.include(run.stdout, "  braid run <plan> [options]")
    assert.include(run.stdout, "--base <ref>")
    assert.include(run.stdout, "The branch or commit every stream starts from")
    assert.notInclude(run.stdout, "This setting is optional")
  })

  it("names an unknown option as such, not the argument beside it (exit 2)", () => {
    const result = braid(["run", "--frob", "plan.yaml"])
    assert.strictEqual(result.code, 2)
    assert.include(result.stderr, "unknown option --frob")
    assert.notInclude(result.stderr, "plan.yaml")
    assert.include(braid(["plan", "x.yaml", "--wizard"]).stderr, "unknown option --wizard")
  })

  it("lists the same agent backends as the command offers (the agents' and the testkit's mock)", async () => {
    const Backends = await import("../src/Backends.js")
    const { BACKENDS } = await import("../src/Help.js")
    assert.deepStrictEqual([...BACKENDS], [...Backends.names])
  })

  it("decodes plans with the task fields its backends declare", async () => {
    const Backends = await import("../src/Backends.js")
    const PlanFields = await import("../src/PlanFields.js")
    const { Registry } = await import("@braid/agents")
    assert.deepStrictEqual(PlanFields.taskFields.map((f) => f.name), ["mock"])
    assert.deepStrictEqual([...PlanFields.taskFields], [...Registry.taskFields(Backends.all)])
  })

  it("decodes plans with the settings Schemas its backends declare, by name", async () => {
    const Backends = await import("../src/Backends.js")
    const PlanFields = await import("../src/PlanFields.js")
    const { Registry } = await import("@braid/agents")
    const declared = Registry.settings(Backends.all)
    assert.deepStrictEqual(Object.keys(PlanFields.settings), [...Backends.names])
    for (const name of Backends.names) assert.strictEqual(PlanFields.settings[name], declared[name], name)
  })

  it("offers the landing modes braid knows", async () => {
    const { Landing } = await import("@braid/core")
    const { LAND_MODES } = await import("../src/Help.js")
    assert.deepStrictEqual([...LAND_MODES], Landing.modes.map((m) => m.name))
  })

  it("offers the conflict strategies and reviewer kinds braid knows", async () => {
    const { ConflictStrategy, ReviewerKind } = await import("@braid/core")
    const { options } = await import("../src/Help.js")
    assert.strictEqual(options["conflict-strategy"].value, ConflictStrategy.all.map((s) => s.name).join("|"))
    assert.strictEqual(options.reviewer.value, ReviewerKind.all.map((k) => k.name).join("|"))
  })
})

describe("commits braid makes", () => {
  const landOne = (configure: (git: (...args: Array<string>) => unknown) => void, env: Record<string, string> = {}) => {
    const { git, repo } = repository()
    configure(git)
    const file = path.join(repo, "plan.yaml")
    fs.writeFileSync(file, "streams:\n  - {name: s, type: api}\ntasks:\n  - {id: a, title: A, stream: s, run: [node, -e, \"require('fs').writeFileSync('f.txt','x')\"]}\n")
    git("add", "plan.yaml")
    git("commit", "-q", "-m", "plan")
    const result = braid(["run", file], repo, env)
    assert.strictEqual(result.code, 0, result.stderr)
    const log = spawnSync("git", ["log", "--format=%an <%ae>|%cn <%ce>%n%B", "--grep=Braid-Step", "main"], { cwd: repo, encoding: "utf8" }).stdout
    return log
  }

  it("carry the repository's configured author and name the agent backend and role", () => {
    const log = landOne((git) => {
      git("config", "user.name", "Ada Lovelace")
      git("config", "user.email", "ada@example.com")
    })
    assert.include(log, "Ada Lovelace <ada@example.com>|Ada Lovelace <ada@example.com>")
    assert.include(log, "Braid-Agent: script")
    assert.include(log, "Braid-Role: api-developer")
  })

  it("fall back to braid's own identity when the repository configures none", () => {
    const home = tmp()
    const log = landOne(() => undefined, { HOME: home, XDG_CONFIG_HOME: home, GIT_CONFIG_NOSYSTEM: "1" })
    assert.include(log, "braid <braid@localhost>")
  })
})
