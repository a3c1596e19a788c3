/**
 * Confinement by the operating system: a process braid starts for a stream runs inside
 * bubblewrap (`bwrap`, Linux), where it can write only the folders its policy names, sees the
 * rest of the filesystem read-only (and some of it not at all), has its own process namespace
 * (whatever it starts dies with it) and no network but the endpoints its policy allows.
 *
 * The network: the process gets a network namespace of its own, whose only interface is its
 * own loopback. Each allowed endpoint is reached through a forwarder: braid listens on a Unix
 * socket outside (one per endpoint, connecting to that host and port and nowhere else), the
 * socket is bound into the sandbox, and a relay started inside in front of the program listens
 * on 127.0.0.1 — on the endpoint's own port when the endpoint is a loopback address (so a base
 * URL `http://127.0.0.1:8080` works unchanged), and as an HTTP `CONNECT` proxy (`HTTPS_PROXY`)
 * for the others, which lets through only the allowed hosts. A program that neither talks to
 * loopback nor honours `HTTPS_PROXY` reaches nothing.
 *
 * @since 0.9.0
 */
import { Context, Effect, FiberRef, Schema, Scope } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/** `auto` confines where the platform can (and says so where it cannot), `required` refuses to run unconfined, `off` never confines. */
export const Mode = Schema.Literal("auto", "required", "off")
export type Mode = typeof Mode.Type

/** A host and port a confined process may connect to. */
export interface Endpoint {
  readonly host: string
  readonly port: number
}

/** What a confined process may touch. */
export interface Policy {
  /** Folders it may write (its checkout, its agent home); they must exist. */
  readonly writable: ReadonlyArray<string>
  /** Folders hidden from it (an empty, private folder in their place): `$HOME`, the run's `.braid`. Folders of the policy inside them are shown again. */
  readonly hidden?: ReadonlyArray<string> | undefined
  /** Folders shown read-only again inside hidden ones (the repository a checkout's git and tools need, the plan's folder). */
  readonly readable?: ReadonlyArray<string> | undefined
  /** Endpoints it may connect to; none: no network at all. */
  readonly network?: ReadonlyArray<Endpoint> | undefined
}

/**
 * The confinement of the processes this fiber starts (`Process.run` reads it): set by a stage
 * around the work it does in a checkout (an attempt, its checks, a verification, a
 * resolution); undefined, the default, confines nothing. braid's own git never runs confined
 * (`Process.Options.unconfined`): it does every git write, outside.
 */
export const ambient: FiberRef.FiberRef<Policy | undefined> = FiberRef.unsafeMake<Policy | undefined>(undefined)

/** Runs `effect` with its processes confined by `policy` (none: unconfined). */
export const within = (policy: Policy | undefined) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, ambient, policy)

/**
 * Where the refusals of confined processes are gathered (`collectDenials`): a line of their
 * output that says a write hit the read-only filesystem or a connection was refused.
 */
export const denialSink: FiberRef.FiberRef<Array<string> | undefined> = FiberRef.unsafeMake<Array<string> | undefined>(undefined)

const DENIAL_PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  [/EROFS|read-only file system/i, "a write outside its checkout was refused"],
  [/ECONNREFUSED|ENETUNREACH|EAI_AGAIN|connection refused|network is unreachable|403 Forbidden/i, "a connection it is not allowed was refused"],
  [/^braid sandbox: .* left running/, "a process it left behind was ended with its sandbox"]
]

/**
 * The refusals a confined process's output shows, one per distinct line (at most 20): a
 * read-only write, a refused connection, and — given the policy — a path braid hid from it
 * (not found inside a hidden folder, outside what it may write).
 */
export const denialsIn = (output: string, policy?: Policy): Array<string> => {
  const found = new Set<string>()
  const hidden = (policy?.hidden ?? []).filter((h) => h !== "" && h !== "/")
  const own = policy?.writable ?? []
  for (const line of output.split("\n")) {
    for (const [pattern, what] of DENIAL_PATTERNS) {
      if (pattern.test(line)) found.add(`${what} (confinement): ${line.trim().slice(0, 300)}`)
    }
    if (/ENOENT|EBUSY|no such file or directory|resource busy/i.test(line) && hidden.some((h) => line.includes(h)) && !own.some((w) => line.includes(`${w}/`))) {
      found.add(`a path outside its checkout was hidden from it (confinement): ${line.trim().slice(0, 300)}`)
    }
    if (found.size >= 20) break
  }
  return [...found]
}

/** Runs `effect` and returns, beside its value, the refusals its confined processes met. */
export const collectDenials = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<[A, ReadonlyArray<string>], E, R> =>
  Effect.suspend(() => {
    const sink: Array<string> = []
    return Effect.map(Effect.locally(effect, denialSink, sink), (a) => [a, [...new Set(sink)]] as [A, ReadonlyArray<string>])
  })

/** What one process needs beyond its checkout when confined: an agent's own home, its stored login, its model API. */
export interface Allowance {
  readonly writable?: ReadonlyArray<string> | undefined
  readonly readable?: ReadonlyArray<string> | undefined
  readonly network?: ReadonlyArray<Endpoint> | undefined
}

/**
 * Adds to the confinement in force, when there is one (an agent backend's allowance).
 * Nothing is added where nothing is confined.
 */
export const allowing = (more: Allowance) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locallyWith(effect, ambient, (policy) =>
    policy === undefined ? undefined : {
      ...policy,
      writable: [...policy.writable, ...(more.writable ?? [])],
      readable: [...(policy.readable ?? []), ...(more.readable ?? [])],
      network: [...(policy.network ?? []), ...(more.network ?? [])]
    })

/** Confinement was asked for (`required`) where it cannot be had. */
export class SandboxUnavailable extends Schema.TaggedError<SandboxUnavailable>()("SandboxUnavailable", {
  reason: Schema.String
}) {
  override get message(): string {
    return `confinement is unavailable: ${this.reason}`
  }
}

/**
 * Confinement is on for this run: the stages confine the processes they start in a checkout
 * (`within`), every one reaching the endpoints here (the plan's `sandbox.network`) and a
 * stream's own. Without this service in the context nothing is confined.
 */
export class Confinement extends Context.Tag("@braid/core/Sandbox/Confinement")<Confinement, {
  readonly network: ReadonlyArray<Endpoint>
  /** Folders every confined process may read even where they are hidden (the plan's folder: its scripts). */
  readonly readable?: ReadonlyArray<string> | undefined
  /** Folders every confined process may write besides its checkout (none by default; a library caller's choice). */
  readonly writable?: ReadonlyArray<string> | undefined
}>() {}

/**
 * The confinement of what a stage starts in a checkout's files, when the run is confined and the
 * files are a directory: the worktree's own policy (`Workspace.Worktree.confinement`), the
 * run's readable folders and endpoints, and `more` (a stream's endpoints). Undefined: run unconfined.
 */
export const policyOf = (
  files: { readonly _tag: string; readonly dir?: string; readonly confinement?: Policy | undefined },
  more: { readonly readable?: ReadonlyArray<string>; readonly network?: ReadonlyArray<Endpoint> } = {}
): Effect.Effect<Policy | undefined> =>
  Effect.map(Effect.serviceOption(Confinement), (on) => {
    if (on._tag === "None" || files.dir === undefined) return undefined
    const own = files.confinement ?? { writable: [files.dir] }
    return {
      ...own,
      writable: [...own.writable, ...(on.value.writable ?? [])],
      readable: [...(own.readable ?? []), ...(on.value.readable ?? []), ...(more.readable ?? [])],
      network: [...(own.network ?? []), ...on.value.network, ...(more.network ?? [])]
    }
  })

/** What a mode comes to on this machine: confined, or not and why. */
export type Decision =
  | { readonly _tag: "Confined" }
  | { readonly _tag: "Unconfined"; readonly reason: string }

/**
 * The mode (default `auto`) on this machine: `off` and an `auto` where confinement is
 * unavailable run unconfined (the reason said once); `required` where it is unavailable fails,
 * naming what is missing.
 */
export const decide = (mode: Mode | undefined): Effect.Effect<Decision, SandboxUnavailable> =>
  mode === "off"
    ? Effect.succeed({ _tag: "Unconfined", reason: "sandbox: off" })
    : Effect.flatMap(unavailable(), (why) =>
      why === undefined
        ? Effect.succeed<Decision>({ _tag: "Confined" })
        : mode === "required"
        ? Effect.fail(new SandboxUnavailable({ reason: why }))
        : Effect.succeed<Decision>({ _tag: "Unconfined", reason: why }))

/** `host:port` (`[v6]:port` too) as an endpoint; undefined when it is not one. */
export const parseEndpoint = (text: string): Endpoint | undefined => {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim())
  if (m === null) return undefined
  const port = Number(m[3])
  return port > 0 && port < 65536 ? { host: (m[1] ?? m[2])!, port } : undefined
}

/** The endpoint a URL connects to (`https://api.anthropic.com` → `api.anthropic.com:443`). */
export const endpointOfUrl = (url: string): Endpoint | undefined => {
  try {
    const u = new URL(url)
    const port = u.port !== "" ? Number(u.port) : u.protocol === "https:" ? 443 : u.protocol === "http:" ? 80 : undefined
    return port === undefined ? undefined : { host: u.hostname.replace(/^\[|\]$/g, ""), port }
  } catch {
    return undefined
  }
}

const loopback = (host: string) => host === "localhost" || host === "::1" || /^127\./.test(host)

/** Where bubblewrap is, or undefined (looked up on `PATH` once). */
const bwrapPath = (() => {
  let found: string | null | undefined
  return (): string | undefined => {
    if (found === undefined) {
      found = null
      for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        const candidate = path.join(dir, "bwrap")
        try {
          fs.accessSync(candidate, fs.constants.X_OK)
          found = candidate
          break
        } catch {
          // not here
        }
      }
    }
    return found ?? undefined
  }
})()

/** Whether bubblewrap can confine here: why not, or undefined when it can (tried once, then remembered). */
let probed: { readonly why: string | undefined } | undefined
export const unavailable = (): Effect.Effect<string | undefined> =>
  Effect.sync(() => {
    probed ??= { why: probe() }
    return probed.why
  })

const probe = (): string | undefined => {
  if (process.platform !== "linux") return `${process.platform} has no bubblewrap (confinement runs on Linux)`
  const bwrap = bwrapPath()
  if (bwrap === undefined) return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
  const tried = spawnSync(bwrap, [...namespaces(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"], {
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 10_000
  })
  return tried.status === 0 ? undefined : `bwrap cannot make namespaces here: ${String(tried.stderr ?? "").trim() || `exit ${tried.status}`}`
}

const namespaces = () => [
  ...(process.getuid?.() === 0 ? [] : ["--unshare-user"]),
  "--unshare-pid",
  "--unshare-net",
  "--unshare-ipc",
  "--unshare-uts",
  "--unshare-cgroup-try",
  "--die-with-parent",
  "--new-session"
]

/** The folder a file is in, up to the install prefix of a program (`…/bin/node` → `…`). */
const prefixOf = (file: string) => {
  const dir = path.dirname(file)
  return path.basename(dir) === "bin" ? path.dirname(dir) : dir
}

/** What a program needs to run: the `node_modules` it is installed in (its dependencies too), else its install prefix. */
const installOf = (file: string) => {
  const at = file.indexOf(`${path.sep}node_modules${path.sep}`)
  return at >= 0 ? file.slice(0, at + `${path.sep}node_modules`.length) : prefixOf(file)
}

const inside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep)

/**
 * The relay run inside the sandbox in front of the program (`node -e`): listens on loopback
 * for each endpoint (its own port) and as a `CONNECT` proxy, bridging to the Unix sockets
 * bound in; then runs the program and exits with its code. argv: the relay spec (JSON), `--`, the program.
 */
const RELAY = `
const net = require("node:net"), { spawn } = require("node:child_process")
const spec = JSON.parse(process.argv[1]), argv = process.argv.slice(3)
const bridge = (socket, path, head) => { const up = net.connect(path); up.on("error", () => socket.destroy()); socket.on("error", () => up.destroy()); if (head) up.write(head); up.pipe(socket); socket.pipe(up) }
const listening = []
for (const e of spec.direct) listening.push(new Promise((ok, no) => net.createServer((s) => bridge(s, e.socket)).on("error", no).listen(e.port, "127.0.0.1", ok)))
if (spec.proxy.length > 0) listening.push(new Promise((ok, no) => net.createServer((s) => {
  let buf = Buffer.alloc(0)
  const onData = (d) => { buf = Buffer.concat([buf, d]); const end = buf.indexOf("\\r\\n\\r\\n"); if (end < 0) { if (buf.length > 8192) s.destroy(); return }
    s.off("data", onData); const m = /^CONNECT ([^\\s]+) HTTP\\/1\\.[01]/.exec(buf.subarray(0, end).toString("latin1"))
    const target = m && spec.proxy.find((e) => e.name === m[1].toLowerCase())
    if (!target) { s.end("HTTP/1.1 403 Forbidden\\r\\nContent-Length: 0\\r\\n\\r\\n"); return }
    s.write("HTTP/1.1 200 Connection Established\\r\\n\\r\\n"); bridge(s, target.socket, buf.subarray(end + 4)) }
  s.on("data", onData); s.on("error", () => {})
}).on("error", no).listen(spec.proxyPort, "127.0.0.1", ok)))
Promise.all(listening).then(() => {
  const child = spawn(argv[0], argv.slice(1), { stdio: "inherit" })
  child.on("error", (e) => { process.stderr.write(String(e.message) + "\\n"); process.exit(127) })
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)))
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => child.kill(sig))
}, (e) => { process.stderr.write("braid sandbox relay: " + e.message + "\\n"); process.exit(126) })
`

/**
 * The shell run first inside the sandbox (its own process namespace): runs the program, then
 * names on stderr every process the program left running (ended as the sandbox closes) and
 * exits with the program's code.
 */
const REAPER = `"$@"; s=$?; for p in /proc/[0-9]*; do n=\${p#/proc/}; [ "$n" = 1 ] || [ "$n" = $$ ] || { read -r c 2>/dev/null < "$p/comm" && echo "braid sandbox: $c (pid $n) was left running by the command; ended with its sandbox" >&2; }; done; exit $s`

/** The port the relay's `CONNECT` proxy listens on inside the sandbox. */
export const PROXY_PORT = 3128

/** A program's argv and environment additions, confined. */
export interface Confined {
  readonly argv: ReadonlyArray<string>
  readonly env: Record<string, string>
}

/**
 * `argv` confined by `policy`: the bubblewrap command line to run instead, and what to add to
 * its environment. The forwarders to the allowed endpoints listen until the scope closes.
 */
export const confine = (
  argv: ReadonlyArray<string>,
  policy: Policy,
  options: { readonly cwd?: string | undefined } = {}
): Effect.Effect<Confined, SandboxUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const why = yield* unavailable()
    if (why !== undefined) return yield* new SandboxUnavailable({ reason: why })
    const real = (p: string) => {
      try {
        return fs.realpathSync(p)
      } catch {
        return path.resolve(p)
      }
    }
    const writable = policy.writable.map(real)
    const hidden = (policy.hidden ?? []).map(real)
    const readable = (policy.readable ?? []).map(real)
    // The programs themselves stay visible: node and the program, when installed under a hidden
    // folder or the private /tmp — the whole node_modules a script of a package runs from.
    const program = argv[0]!.includes("/") ? real(argv[0]!) : undefined
    for (const file of [process.execPath, program]) {
      if (file !== undefined && [...hidden, "/tmp"].some((h) => inside(file, h))) readable.push(installOf(file))
    }
    const bwrap = bwrapPath()!
    const args: Array<string> = [...namespaces(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    // Deeper folders after shallower ones, so a folder inside another is mounted over it: the
    // repository shown read-only inside a hidden home, its .braid hidden again inside it, the
    // checkout writable inside that. Writable folders last: nothing hides or freezes them.
    const depth = (p: string) => p.split(path.sep).length
    const mounts = [
      ...hidden.map((dir) => ({ dir, args: ["--tmpfs", dir] })),
      ...readable.map((dir) => ({ dir, args: ["--ro-bind", dir, dir] }))
    ].filter((m) => fs.existsSync(m.dir))
    for (const m of mounts.sort((a, b) => depth(a.dir) - depth(b.dir))) args.push(...m.args)
    for (const dir of [...writable].sort((a, b) => depth(a) - depth(b))) args.push("--bind", dir, dir)
    // Hidden folders are empty and read-only (only that mount: what is shown inside keeps its
    // own mode): a write into the user's home fails there and says so, rather than vanishing.
    // (One inside a writable folder is that folder's again once it is bound over it: not remounted.)
    for (const m of mounts) {
      if (hidden.includes(m.dir) && !writable.some((w) => inside(m.dir, w))) args.push("--remount-ro", m.dir)
    }
    const env: Record<string, string> = { TMPDIR: "/tmp" }
    let command: ReadonlyArray<string> = argv
    const endpoints = policy.network ?? []
    if (endpoints.length > 0) {
      const sockets = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "braid-net-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const direct: Array<{ port: number; socket: string }> = []
      const proxy: Array<{ name: string; socket: string }> = []
      for (const [i, e] of endpoints.entries()) {
        const socket = path.join(sockets, `${i}.sock`)
        yield* forwarder(socket, e)
        if (loopback(e.host)) direct.push({ port: e.port, socket })
        proxy.push({ name: `${e.host.includes(":") ? `[${e.host}]` : e.host}:${e.port}`.toLowerCase(), socket })
      }
      args.push("--bind", sockets, sockets)
      const spec = JSON.stringify({ direct, proxy, proxyPort: PROXY_PORT })
      command = [process.execPath, "-e", RELAY, spec, "--", ...argv]
      const proxyUrl = `http://127.0.0.1:${PROXY_PORT}`
      Object.assign(env, {
        HTTPS_PROXY: proxyUrl,
        https_proxy: proxyUrl,
        HTTP_PROXY: proxyUrl,
        http_proxy: proxyUrl,
        NO_PROXY: "localhost,127.0.0.1,::1",
        no_proxy: "localhost,127.0.0.1,::1"
      })
    }
    if (options.cwd !== undefined) args.push("--chdir", real(options.cwd))
    return { argv: [bwrap, ...args, "--", "/bin/sh", "-c", REAPER, "braid-sandbox", ...command], env }
  })

/** A Unix socket that connects whatever reaches it to `endpoint`, closed with the scope. */
const forwarder = (socket: string, endpoint: Endpoint) =>
  Effect.acquireRelease(
    Effect.async<net.Server>((resume) => {
      const server = net.createServer((client) => {
        const up = net.connect(endpoint.port, endpoint.host)
        up.on("error", () => client.destroy())
        client.on("error", () => up.destroy())
        up.pipe(client)
        client.pipe(up)
      })
      server.once("error", (e) => resume(Effect.die(e)))
      server.listen(socket, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )
