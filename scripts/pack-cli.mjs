#!/usr/bin/env node
/**
 * Packs the `braid` command into one self-contained tarball, `braid-cli-<version>.tgz`:
 *
 *   npm run pack                     # builds, then writes ./braid-cli-<version>.tgz
 *   npm install -g ./braid-cli-<version>.tgz
 *
 * `npm run pack -- --out DIR` writes the tarball into DIR instead.
 *
 * The workspace packages @braid/core, @braid/agents, @braid/testkit (the mock backend's) and
 * @braid/cluster are not published, so a staging folder
 * holds @braid/cli with them under its node_modules, each with only what its package.json
 * `files` names and without its devDependencies (the real agent CLIs: users install the ones they
 * use; braid finds them on PATH). The third-party runtime packages (effect, @effect/*, yaml and
 * what they need) are bundled too, copied from this repository's node_modules as its
 * package-lock.json places them, all listed in `bundleDependencies`. Why not install them from
 * the registry: this repository pins them through root `overrides`, which do not apply to a
 * package installed elsewhere, and npm ignores an npm-shrinkwrap.json inside a local tarball, so
 * the user would get versions nobody tested; and resolving `name@version` needs registry metadata
 * that `npm ci` never caches, so the install could not work offline. Bundled, the install needs no
 * registry at all and runs exactly what the tests ran. Platform-specific optional binaries are
 * left out (see runtimeClosure).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const outArg = process.argv.find((a) => a.startsWith("--out="))?.slice("--out=".length)
  ?? (process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1] : undefined)
const out = path.resolve(outArg ?? root)

const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"))
/** A problem the user can fix, reported as one line (the staging folder is still removed). */
class PackProblem extends Error {}
const fail = (message) => {
  throw new PackProblem(message)
}

/** The workspace packages that travel inside the tarball, by name → folder. */
const bundled = { "@braid/core": "packages/core", "@braid/agents": "packages/agents", "@braid/testkit": "packages/testkit", "@braid/cluster": "packages/cluster" }
const cliDir = path.join(root, "packages/cli")
const cli = readJson(path.join(cliDir, "package.json"))

/** Copies a package's package.json (without devDependencies and scripts) and the entries its `files` names. */
const copyPackage = (from, to) => {
  const manifest = readJson(path.join(from, "package.json"))
  if (!fs.existsSync(path.join(from, "dist"))) fail(`${from}/dist is missing: run \`npm run build\` first`)
  fs.mkdirSync(to, { recursive: true })
  for (const entry of manifest.files ?? []) {
    const source = path.join(from, entry)
    if (fs.existsSync(source)) {
      fs.cpSync(source, path.join(to, entry), {
        recursive: true,
        // Not the start-up snapshot (dist/braid.snapshot and its record): it is for the node that
        // built it, and npm gives every file in a tarball one old modification time, so bin/braid
        // would never find its record matching the node and would only carry 10 MB it cannot use.
        // Its bundle and identity travel: the installed command makes its own snapshot from them.
        filter: (file) => runs(file) && !["braid.snapshot", "braid.snapshot.node"].includes(path.basename(file))
      })
    }
  }
  // No type declarations travel (see `runs`), so no `types` entry points at one.
  const { devDependencies: _dev, scripts: _scripts, types: _types, ...kept } = manifest
  return kept
}

/**
 * Whether a file of a packed package is one node runs or reads at run time. Left out: type
 * declarations, source maps and TypeScript sources (none of them is read by a running `braid`,
 * and they are 60% of the files, 40% of the bytes), and tsc's build info. The installed package
 * is the command: a library user builds against this repository's workspace packages.
 */
const runs = (file) => !/\.(?:[cm]?ts|map|tsbuildinfo)$/.test(file)

const staging = fs.mkdtempSync(path.join(os.tmpdir(), "braid-pack-"))
try {
  const manifest = copyPackage(cliDir, staging)
  for (const [name, dir] of Object.entries(bundled)) {
    const kept = copyPackage(path.join(root, dir), path.join(staging, "node_modules", name))
    fs.writeFileSync(path.join(staging, "node_modules", name, "package.json"), JSON.stringify(kept, null, 2) + "\n")
  }
  const closure = runtimeClosure(manifest)
  for (const key of closure) {
    const from = path.join(root, key)
    if (!fs.existsSync(from)) fail(`${key} is not installed: run \`npm ci\``)
    // A nested node_modules is copied through its own keys, so only what runs is packed.
    fs.cpSync(from, path.join(staging, key), { recursive: true, filter: (file) => file !== path.join(from, "node_modules") && runs(file) })
  }
  // npm packs a bundled package's dependencies but not its peers: every top-level package is
  // listed as a dependency (at the version tested) so that all of them travel.
  for (const key of closure.filter((key) => key.lastIndexOf("node_modules/") === 0)) {
    const name = key.slice("node_modules/".length)
    manifest.dependencies[name] ??= readJson(path.join(staging, key, "package.json")).version
  }
  manifest.bundleDependencies = Object.keys(manifest.dependencies)
  manifest.engines = readJson(path.join(root, "package.json")).engines
  for (const file of ["README.md", "LICENSE"]) {
    if (fs.existsSync(path.join(root, file))) fs.copyFileSync(path.join(root, file), path.join(staging, file))
  }
  fs.writeFileSync(path.join(staging, "package.json"), JSON.stringify(manifest, null, 2) + "\n")

  fs.mkdirSync(out, { recursive: true })
  const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", out], {
    cwd: staging,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 30
  }))
  const tarball = path.join(out, packed[0].filename)
  // npm lists the top-level bundled packages; nested copies (a package's own node_modules) travel inside them.
  const expected = closure.filter((key) => key.lastIndexOf("node_modules/") === 0).length + Object.keys(bundled).length
  const bundledCount = packed[0].bundled?.length ?? 0
  if (bundledCount !== expected) fail(`expected ${expected} bundled packages, npm bundled ${bundledCount}`)
  process.stdout.write(`${tarball}\n`)
  const shown = path.relative(process.cwd(), tarball)
  process.stderr.write(`install it with: npm install -g ${shown.startsWith("..") ? tarball : `./${shown}`}\n`)
} catch (error) {
  if (!(error instanceof PackProblem)) throw error
  process.stderr.write(`pack: ${error.message}\n`)
  process.exitCode = 1
} finally {
  fs.rmSync(staging, { recursive: true, force: true })
}

/**
 * The lock keys (`node_modules/a`, `node_modules/a/node_modules/b`, …) of every registry package
 * the packed package needs at run time, read from this repository's package-lock.json with node's
 * lookup (nearest node_modules first), so nested copies stay nested. Platform-specific packages
 * (an `os` or `cpu` in the lock) are left out: they are optional native speed-ups, and a bundled
 * linux binary is dead weight on a Mac.
 */
function runtimeClosure(manifest) {
  const entries = readJson(path.join(root, "package-lock.json")).packages
  /** Where `name`, needed by the package at lock key `from`, resolves. */
  const resolve = (from, name) => {
    let at = from
    for (;;) {
      const key = `${at === "" ? "" : `${at}/`}node_modules/${name}`
      if (entries[key] !== undefined) return key
      if (at === "") return undefined
      const cut = at.lastIndexOf("/node_modules/")
      at = cut < 0 ? "" : at.slice(0, cut)
    }
  }
  const seen = new Set()
  // The bundled workspace packages sit at the top of the installed tree, so their needs resolve from there.
  const queue = [["", manifest], ...Object.values(bundled).map((dir) => ["", entries[dir]])]
  while (queue.length > 0) {
    const [key, entry] = queue.shift()
    const needs = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((name) => entry.peerDependenciesMeta?.[name]?.optional !== true)
    ]
    for (const name of needs) {
      if (bundled[name] !== undefined) continue
      const found = resolve(key, name)
      if (found === undefined) {
        if (entry.optionalDependencies?.[name] !== undefined) continue
        fail(`${key || manifest.name} needs ${name}, which package-lock.json does not hold: run \`npm install\``)
      }
      if (seen.has(found)) continue
      const needed = entries[found]
      if (needed.os !== undefined || needed.cpu !== undefined) continue
      seen.add(found)
      queue.push([found, needed])
    }
  }
  return [...seen].sort()
}
