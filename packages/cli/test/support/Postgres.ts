/**
 * A real Postgres for the cluster tests. `.ci/run` starts one throwaway server and names it
 * in `BRAID_TEST_DATABASE_URL`; each test file gets a database of its own on it. A test that
 * must restart the server (or a machine without the shared one) starts its own: Debian's
 * `postgresql` binaries, a cluster made by `initdb` in a temporary folder, on a free port of
 * 127.0.0.1, as the `postgres` user when the tests run as root (Postgres refuses root).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export interface Server {
  /** A new, empty database on the server: its URL. */
  readonly database: () => string
  /** Restarts the server (`pg_ctl restart`), returning once it accepts connections again. */
  readonly restart: () => void
  readonly stop: () => void
}

/**
 * Why the cluster tests cannot run here, outside CI: no Postgres server binaries and no shared
 * server. In CI (`CI=true`) they always run, and a missing server fails them.
 */
export const skipReason = (): string | undefined =>
  process.env.CI === "true" || (process.env.BRAID_TEST_DATABASE_URL ?? "") !== "" || installed() !== undefined
    ? undefined
    : "no Postgres server here (apt-get install -y postgresql); CI installs it and runs these tests"

const installed = (): string | undefined => {
  const base = "/usr/lib/postgresql"
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, "bin", "initdb"))) : []
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0]
  return newest === undefined ? undefined : path.join(base, newest, "bin")
}

/** The folder of the newest installed Postgres server's binaries. */
const binaries = (): string => {
  const bin = installed()
  if (bin === undefined) throw new Error("the cluster tests need a Postgres server: install Debian's postgresql package (apt-get install -y postgresql; .ci/run does)")
  return bin
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const root = process.getuid?.() === 0

/** Runs a Postgres binary, as the `postgres` user when we are root. */
const pg = (bin: string, ...args: Array<string>) =>
  execFileSync(root ? "runuser" : bin, root ? ["-u", "postgres", "--", bin, ...args] : args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" })

const psql = (url: string, sql: string) => execFileSync("psql", [url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], { stdio: ["ignore", "pipe", "pipe"] })

let count = 0
const databaseOn = (serverUrl: string) => () => {
  const name = `braid_test_${process.pid}_${Date.now().toString(36)}_${count++}`
  psql(serverUrl, `CREATE DATABASE ${name}`)
  const u = new URL(serverUrl)
  u.pathname = `/${name}`
  return u.toString()
}

/** A server of the test's own: made, started, and removed by `stop`. */
export const own = async (): Promise<Server> => {
  const bin = binaries()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "braid-pg-"))
  if (root) execFileSync("chown", ["postgres", dir])
  const data = path.join(dir, "data")
  const port = await freePort()
  pg(path.join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "braid", "--no-sync")
  const ctl = (...args: Array<string>) =>
    pg(path.join(bin, "pg_ctl"), "-D", data, "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "-l", path.join(dir, "log"), "-w", ...args)
  ctl("start")
  const url = `postgres://braid:test-secret@127.0.0.1:${port}/postgres`
  return {
    database: databaseOn(url),
    restart: () => void ctl("-m", "fast", "restart"),
    stop: () => {
      try {
        ctl("-m", "immediate", "stop")
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}

/** The shared server `.ci/run` started, or one of the test's own. */
export const shared = async (): Promise<Server> => {
  const url = process.env.BRAID_TEST_DATABASE_URL
  if (url === undefined || url === "") return own()
  return {
    database: databaseOn(url),
    restart: () => {
      throw new Error("the shared test server is not restarted: start one of the test's own")
    },
    stop: () => {}
  }
}
