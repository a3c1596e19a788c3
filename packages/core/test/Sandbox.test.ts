import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Process from "../src/system/Process.js"
import * as Sandbox from "../src/system/Sandbox.js"

const why = await Effect.runPromise(Sandbox.unavailable())

/** A local HTTP server answering `name` on 127.0.0.1, closed when the test's scope closes. */
const server = (name: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<http.Server>((ok) => {
        const s = http.createServer((_, res) => res.end(name))
        s.listen(0, "127.0.0.1", () => ok(s))
      })
    ),
    (s) => Effect.promise(() => new Promise<void>((ok) => s.close(() => ok())))
  ).pipe(Effect.map((s) => (s.address() as net.AddressInfo).port))

const fetchScript = (url: string) => [
  process.execPath,
  "-e",
  `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => console.log("got " + t), (e) => console.log("refused " + (e.cause?.code ?? e.message)))`
]

const folders = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "braid-sbx-"))
  const mine = path.join(root, "mine")
  const other = path.join(root, "other")
  const secret = path.join(root, "home")
  for (const d of [mine, other, secret]) fs.mkdirSync(d)
  fs.writeFileSync(path.join(secret, "key"), "private")
  return { root, mine, other, secret }
}

/** A node script that tries each deed and prints `<what> ok` or `<what> <error code>`, one line each. */
const deeds = (lines: ReadonlyArray<string>) =>
  [
    `const fs = require("node:fs")`,
    `const attempt = (what, fn) => { try { fn(); console.log(what + " ok") } catch (e) { console.log(what + " " + e.code) } }`,
    ...lines
  ].join("\n")

describe.skipIf(why !== undefined)("Sandbox (bubblewrap)", () => {
  it.scopedLive("writes only its writable folders and a private /tmp; hidden folders are empty; the rest is read-only", () =>
    Effect.gen(function*() {
      const f = folders()
      const script = deeds([
        `attempt("mine", () => fs.writeFileSync(${JSON.stringify(path.join(f.mine, "a"))}, "x"))`,
        `attempt("other", () => fs.writeFileSync(${JSON.stringify(path.join(f.other, "b"))}, "x"))`,
        `attempt("read-secret", () => fs.readFileSync(${JSON.stringify(path.join(f.secret, "key"))}))`,
        `attempt("write-tmp", () => fs.writeFileSync(${JSON.stringify(path.join(f.root, "c"))}, "x"))`,
        `attempt("write-var", () => fs.writeFileSync("/var/tmp/braid-sandbox-probe", "x"))`,
        `attempt("write-secret", () => fs.writeFileSync(${JSON.stringify(path.join(f.secret, "planted"))}, "x"))`
      ])
      const result = yield* Process.run([process.execPath, "-e", script], {
        cwd: f.mine,
        sandbox: { writable: [f.mine], hidden: [f.secret], readable: [f.other] }
      })
      assert.strictEqual(result.exitCode, 0, result.stderr)
      assert.deepStrictEqual(result.stdout.trim().split("\n"), ["mine ok", "other EROFS", "read-secret ENOENT", "write-tmp ok", "write-var EROFS", "write-secret EROFS"])
      assert.deepStrictEqual(fs.readdirSync(f.mine), ["a"])
      assert.deepStrictEqual(fs.readdirSync(f.other), [])
      assert.deepStrictEqual(fs.readdirSync(f.secret), ["key"])
      // Its /tmp is its own: what it wrote there is gone, and /var/tmp was not written.
      assert.deepStrictEqual(fs.readdirSync(f.root).sort(), ["home", "mine", "other"])
      assert.isFalse(fs.existsSync("/var/tmp/braid-sandbox-probe"))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a hidden folder inside a writable one is that folder's (bound over it), and the program still starts", () =>
    Effect.gen(function*() {
      const f = folders()
      const result = yield* Process.run([process.execPath, "-e", deeds([
        `attempt("write-secret", () => fs.writeFileSync(${JSON.stringify(path.join(f.secret, "x"))}, "x"))`
      ])], { cwd: f.mine, sandbox: { writable: [f.root], hidden: [f.secret] } })
      assert.strictEqual(result.exitCode, 0, result.stderr)
      assert.strictEqual(result.stdout.trim(), "write-secret ok")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("nested: a repository shown read-only inside a hidden home, its .braid hidden again, the checkout inside it writable", () =>
    Effect.gen(function*() {
      const f = folders()
      const home = f.secret
      const repo = path.join(home, "code", "repo")
      const braid = path.join(repo, ".braid")
      const mine = path.join(braid, "runs", "r", "worktrees", "api")
      const sibling = path.join(braid, "runs", "r", "worktrees", "ui")
      for (const d of [mine, sibling]) fs.mkdirSync(d, { recursive: true })
      fs.writeFileSync(path.join(repo, "package.json"), "{}")
      fs.writeFileSync(path.join(sibling, "theirs.txt"), "ui")
      const script = deeds([
        `attempt("read-repo", () => fs.readFileSync(${JSON.stringify(path.join(repo, "package.json"))}))`,
        `attempt("write-repo", () => fs.writeFileSync(${JSON.stringify(path.join(repo, "x"))}, "x"))`,
        `attempt("read-sibling", () => fs.readFileSync(${JSON.stringify(path.join(sibling, "theirs.txt"))}))`,
        `attempt("read-home", () => fs.readFileSync(${JSON.stringify(path.join(home, "key"))}))`,
        `attempt("write-mine", () => fs.writeFileSync(${JSON.stringify(path.join(mine, "a"))}, "x"))`
      ])
      const result = yield* Process.run([process.execPath, "-e", script], {
        cwd: mine,
        sandbox: { writable: [mine], hidden: [home, braid], readable: [repo] }
      })
      assert.deepStrictEqual(result.stdout.trim().split("\n"), ["read-repo ok", "write-repo EROFS", "read-sibling ENOENT", "read-home ENOENT", "write-mine ok"], result.stderr)
      assert.isTrue(fs.existsSync(path.join(mine, "a")))
      assert.isFalse(fs.existsSync(path.join(repo, "x")))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a checkout outside the repository (the cache folder in a hidden home): writable, its sibling checkouts hidden, the repository readable", () =>
    Effect.gen(function*() {
      const f = folders()
      const home = f.secret
      const repo = path.join(home, "code", "repo")
      const braid = path.join(repo, ".braid")
      const run = path.join(home, ".cache", "braid", "worktrees", "repo-0123456789ab", "r")
      const mine = path.join(run, "api")
      const sibling = path.join(run, "ui")
      for (const d of [mine, sibling, braid]) fs.mkdirSync(d, { recursive: true })
      fs.writeFileSync(path.join(repo, "package.json"), "{}")
      fs.writeFileSync(path.join(sibling, "theirs.txt"), "ui")
      const script = deeds([
        `attempt("read-repo", () => fs.readFileSync(${JSON.stringify(path.join(repo, "package.json"))}))`,
        `attempt("read-sibling", () => fs.readFileSync(${JSON.stringify(path.join(sibling, "theirs.txt"))}))`,
        `attempt("write-sibling", () => fs.writeFileSync(${JSON.stringify(path.join(sibling, "x"))}, "x"))`,
        `attempt("write-mine", () => fs.writeFileSync(${JSON.stringify(path.join(mine, "a"))}, "x"))`
      ])
      const result = yield* Process.run([process.execPath, "-e", script], {
        cwd: mine,
        sandbox: { writable: [mine], hidden: [home, braid, run], readable: [repo] }
      })
      assert.deepStrictEqual(result.stdout.trim().split("\n"), ["read-repo ok", "read-sibling ENOENT", "write-sibling ENOENT", "write-mine ok"], result.stderr)
      assert.isTrue(fs.existsSync(path.join(mine, "a")))
      assert.deepStrictEqual(fs.readdirSync(sibling), ["theirs.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("the policy in force (Sandbox.within) confines every process a stage starts, allowing adds a backend's own; braid's git is never confined", () =>
    Effect.gen(function*() {
      const f = folders()
      const home = path.join(f.root, "agent-home")
      fs.mkdirSync(home)
      const write = (file: string) => [process.execPath, "-e", `try { require("node:fs").writeFileSync(${JSON.stringify(file)}, "x"); console.log("ok") } catch (e) { console.log(e.code) }`]
      const confine = Sandbox.within({ writable: [f.mine] })
      // Refused: read-only, or not there at all (under the sandbox's own /tmp).
      assert.oneOf((yield* confine(Process.run(write(path.join(f.other, "x"))))).stdout.trim(), ["EROFS", "ENOENT"])
      assert.oneOf((yield* confine(Process.run(write(path.join(home, "x"))))).stdout.trim(), ["EROFS", "ENOENT"])
      assert.isFalse(fs.existsSync(path.join(f.other, "x")) || fs.existsSync(path.join(home, "x")))
      const withHome = confine(Sandbox.allowing({ writable: [home] })(Process.run(write(path.join(home, "x")))))
      assert.strictEqual((yield* withHome).stdout.trim(), "ok")
      assert.strictEqual((yield* confine(Process.run(write(path.join(f.other, "y")), { unconfined: true }))).stdout.trim(), "ok")
      // Outside `within`, allowing adds nothing and confines nothing.
      assert.strictEqual((yield* Sandbox.allowing({ writable: [home] })(Process.run(write(path.join(f.other, "z"))))).stdout.trim(), "ok")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a refusal a confined process prints is gathered as a denial (collectDenials); an unconfined one's output is not read", () =>
    Effect.gen(function*() {
      const f = folders()
      const argv = [process.execPath, "-e", `try { require("node:fs").writeFileSync("/var/tmp/braid-denied", "x") } catch (e) { console.error(e.message) }`]
      const [, denials] = yield* Sandbox.collectDenials(Sandbox.within({ writable: [f.mine] })(Process.run(argv)))
      assert.strictEqual(denials.length, 1)
      assert.match(denials[0]!, /^a write outside its checkout was refused \(confinement\): EROFS/)
      const [, none] = yield* Sandbox.collectDenials(Process.run([process.execPath, "-e", `console.error("EROFS: just words")`]))
      assert.deepStrictEqual(none, [])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a detached process the program leaves behind dies with it (its own process namespace) and is named as a denial; the program's exit code is kept", () =>
    Effect.gen(function*() {
      const f = folders()
      const marker = path.join(f.mine, "marker")
      const script = `require("node:child_process").spawn("sh", ["-c", "sleep 2; echo late > ${marker}"], { detached: true, stdio: "ignore" }).unref(); process.exitCode = 3`
      const [result, denials] = yield* Sandbox.collectDenials(Process.run(["setsid", process.execPath, "-e", script], { sandbox: { writable: [f.mine] } }))
      assert.strictEqual(result.exitCode, 3, result.stderr)
      assert.match(result.stderr, /^braid sandbox: (sh|sleep) \(pid \d+\) was left running by the command; ended with its sandbox$/m)
      assert.isTrue(denials.some((d) => d.startsWith("a process it left behind was ended with its sandbox (confinement)")), JSON.stringify(denials))
      // A program that leaves nothing behind says nothing more.
      const clean = yield* Process.run([process.execPath, "-e", "console.error('fine')"], { sandbox: { writable: [f.mine] } })
      assert.strictEqual(clean.stderr.trim(), "fine")
      yield* Effect.sleep("3 seconds")
      assert.isFalse(fs.existsSync(marker), "the detached process outlived the sandbox and wrote its marker")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("no network without endpoints; with one, that endpoint is reached and another loopback listener is not", () =>
    Effect.gen(function*() {
      const allowed = yield* server("allowed")
      const forbidden = yield* server("forbidden")
      const f = folders()
      const none = yield* Process.run(fetchScript(`http://127.0.0.1:${allowed}/`), { sandbox: { writable: [f.mine] } })
      assert.match(none.stdout, /^refused/)
      const policy = { writable: [f.mine], network: [{ host: "127.0.0.1", port: allowed }] }
      const reached = yield* Process.run(fetchScript(`http://127.0.0.1:${allowed}/`), { sandbox: policy })
      assert.strictEqual(reached.stdout.trim(), "got allowed", reached.stderr)
      const other = yield* Process.run(fetchScript(`http://127.0.0.1:${forbidden}/`), { sandbox: policy })
      assert.match(other.stdout, /^refused/)
      // Unconfined, the same listener answers: it is the sandbox that refused it.
      const open = yield* Process.run(fetchScript(`http://127.0.0.1:${forbidden}/`))
      assert.strictEqual(open.stdout.trim(), "got forbidden")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("the CONNECT proxy lets through only allowed endpoints", () =>
    Effect.gen(function*() {
      const allowed = yield* server("allowed")
      const forbidden = yield* server("forbidden")
      const f = folders()
      const connect = (port: number) => [
        process.execPath,
        "-e",
        `const s = require("node:net").connect(${Sandbox.PROXY_PORT}, "127.0.0.1", () => s.write("CONNECT localhost:${port} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET / HTTP/1.0\\r\\n\\r\\n"))
let out = ""; s.on("data", (d) => out += d); s.on("close", () => console.log(out.split("\\r\\n")[0] + " | " + out.split("\\r\\n\\r\\n").pop()))`
      ]
      const policy = { writable: [f.mine], network: [{ host: "localhost", port: allowed }] }
      const ok = yield* Process.run(connect(allowed), { sandbox: policy })
      assert.strictEqual(ok.stdout.trim(), "HTTP/1.1 200 Connection Established | allowed", ok.stderr)
      const refused = yield* Process.run(connect(forbidden), { sandbox: policy })
      assert.match(refused.stdout, /^HTTP\/1.1 403/)
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("Sandbox endpoints", () => {
  it("parses host:port and URLs", () => {
    assert.deepStrictEqual(Sandbox.parseEndpoint("registry.npmjs.org:443"), { host: "registry.npmjs.org", port: 443 })
    assert.deepStrictEqual(Sandbox.parseEndpoint("[::1]:8080"), { host: "::1", port: 8080 })
    assert.isUndefined(Sandbox.parseEndpoint("no-port"))
    assert.isUndefined(Sandbox.parseEndpoint("host:99999"))
    assert.deepStrictEqual(Sandbox.endpointOfUrl("https://api.anthropic.com"), { host: "api.anthropic.com", port: 443 })
    assert.deepStrictEqual(Sandbox.endpointOfUrl("http://127.0.0.1:4010/v1"), { host: "127.0.0.1", port: 4010 })
  })
})
