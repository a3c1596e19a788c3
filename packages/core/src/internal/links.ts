/**
 * Symbolic links an attempt is about to commit, judged as git will check them out: a link
 * whose target is absolute, or climbs above the repository's top from the link's own folder
 * (also through other links of the commit), would let whoever follows it in a checkout read or
 * write outside the repository (`passwd-link -> /etc/passwd`). Links inside stay allowed.
 *
 * @internal
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as GitIndex from "./gitIndex.js"

/** A link's index mode. */
const LINK_MODE = "120000"

/** At most this many links are followed from one link before it is judged as leading out (loops too). */
const MAX_HOPS = 64

const isAbsolute = (target: string) => target.startsWith("/") || target.startsWith("\\") || /^[A-Za-z]:/.test(target)

/** A target's components; a backslash separates too (it does where the checkout is on Windows). */
const components = (target: string) => target.split(/[\\/]/)

/**
 * Whether the link at `linkPath` (relative to the top, `/`-separated) with `target` leads out
 * of the repository. `linkAt` gives the target of another link of the commit (undefined for
 * anything else), so a `..` after a link is climbed from where that link leads, as the file
 * system would.
 */
export const leadsOut = (linkPath: string, target: string, linkAt: (relative: string) => string | undefined): boolean => {
  if (isAbsolute(target)) return true
  const at = linkPath.split("/").slice(0, -1)
  const todo = components(target)
  let hops = 0
  while (todo.length > 0) {
    const part = todo.shift()!
    if (part === "" || part === ".") continue
    if (part === "..") {
      if (at.length === 0) return true
      at.pop()
      continue
    }
    at.push(part)
    const next = linkAt(at.join("/"))
    if (next === undefined) continue
    if (++hops > MAX_HOPS || isAbsolute(next)) return true
    at.pop()
    todo.unshift(...components(next))
  }
  return false
}

/** The id git gives a blob with these bytes (SHA-1, or SHA-256 for 64-hex ids). */
const blobId = (bytes: Buffer, oid: string) =>
  createHash(oid.length === 64 ? "sha256" : "sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex")

/** A committed link and its target. */
export interface Link {
  readonly path: string
  readonly target: string
}

/** The outward links, or the blobs to read from git first (targets that changed on disk since they were staged). */
export type Judged =
  | { readonly _tag: "Judged"; readonly links: ReadonlyArray<Link> }
  | { readonly _tag: "Unread"; readonly oids: ReadonlyArray<string> }

/**
 * The outward links among `paths` in the index `entries` of the worktree `dir`. Each target is
 * read from the worktree and checked against the staged blob's id; one that differs is taken
 * from `read` (blob id → content), or asked for (`Unread`): read those from git and judge again.
 */
export const outward = (
  dir: string,
  entries: GitIndex.Entries,
  paths: ReadonlyArray<string>,
  read: ReadonlyMap<string, string>
): Judged => {
  const linkOid = (relative: string) => {
    const entry = entries.get(relative)
    return entry !== undefined && entry.startsWith(`${LINK_MODE} `) ? entry.slice(LINK_MODE.length + 1) : undefined
  }
  const changed = paths.filter((p) => linkOid(p) !== undefined)
  if (changed.length === 0) return { _tag: "Judged", links: [] }
  const unread = new Set<string>()
  const targets = new Map<string, string | undefined>()
  const linkAt = (relative: string): string | undefined => {
    if (targets.has(relative)) return targets.get(relative)
    const oid = linkOid(relative)
    let target: string | undefined
    if (oid !== undefined) {
      let bytes: Buffer | undefined
      try {
        bytes = fs.readlinkSync(path.join(dir, relative), { encoding: "buffer" })
      } catch {
        bytes = undefined
      }
      // latin1 keeps every byte one character: "/" and "." are judged as git stored them.
      if (bytes !== undefined && blobId(bytes, oid) === oid) target = bytes.toString("latin1")
      else if (read.has(oid)) target = Buffer.from(read.get(oid)!, "utf8").toString("latin1")
      else unread.add(oid)
    }
    targets.set(relative, target)
    return target
  }
  const links: Array<Link> = []
  for (const p of changed) {
    const target = linkAt(p)
    if (target !== undefined && leadsOut(p, target, linkAt)) {
      links.push({ path: p, target: Buffer.from(target, "latin1").toString("utf8") })
    }
  }
  return unread.size > 0 ? { _tag: "Unread", oids: [...unread] } : { _tag: "Judged", links }
}

/** What judging needs from git when the index file or a link's file cannot tell. */
export interface Git<E> {
  /** `git ls-files --stage -z` (an index this module cannot read itself). */
  readonly stage: () => Effect.Effect<string, E>
  /** `git cat-file blob <oid>`. */
  readonly blob: (oid: string) => Effect.Effect<string, E>
}

/** Parses `git ls-files --stage -z` into index entries (path → "<mode> <oid>"). */
export const parseStage = (text: string): GitIndex.Entries => {
  const entries = new Map<string, string>()
  for (const record of text.split("\0")) {
    const tab = record.indexOf("\t")
    if (tab < 0) continue
    const [mode, oid] = record.slice(0, tab).split(" ")
    if (mode !== undefined && oid !== undefined) entries.set(record.slice(tab + 1), `${mode} ${oid}`)
  }
  return entries
}

/**
 * The outward links among the staged `paths` of the worktree `dir`, whose index entries are
 * `entries` (undefined: git lists them). No git process unless a target changed on disk
 * since it was staged.
 */
export const outwardIn = <E>(
  dir: string,
  entries: GitIndex.Entries | undefined,
  paths: ReadonlyArray<string>,
  git: Git<E>
): Effect.Effect<ReadonlyArray<Link>, E> =>
  Effect.gen(function*() {
    if (paths.length === 0) return []
    const staged = entries ?? parseStage(yield* git.stage())
    const read = new Map<string, string>()
    for (;;) {
      const judged = outward(dir, staged, paths, read)
      if (judged._tag === "Judged") return judged.links
      for (const oid of judged.oids) read.set(oid, yield* git.blob(oid))
    }
  })
