/**
 * What a working tree looked like when braid last looked, so that changes made behind its
 * back (an agent writing outside its own worktree) can be found without running git each
 * time: the stat of every file and folder git does not ignore, and the dirty paths git
 * reported with a fingerprint each. Comparing the stats is a few microseconds a file; git
 * is asked (`git status`) only when something changed.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** A working tree as last seen. Paths are relative to its root, with "/" separators. */
export interface Snapshot {
  /** Dirty paths (as `git status` listed them) → fingerprint of the file when seen. */
  readonly dirty: ReadonlyMap<string, string>
  /** Every file and folder walked ("" is the root) → its stat key. */
  readonly seen: ReadonlyMap<string, string>
  /** Paths git ignores (folders without their trailing "/"): not walked. */
  readonly ignored: ReadonlySet<string>
}

/** What `git status --porcelain -z --untracked-files=all --ignored=matching` says. */
export interface Status {
  readonly dirty: ReadonlyArray<string>
  readonly ignored: ReadonlyArray<string>
}

/** The status arguments a snapshot is built from. */
export const statusArgs = ["status", "--porcelain", "-z", "--untracked-files=all", "--ignored=matching", "--no-renames"]

/**
 * Reads porcelain v1 `-z` status output. A rename or copy record carries its source path in
 * the next field, which is dirty too. Folders (an untracked nested repository, an ignored
 * folder) lose their trailing "/".
 */
export const parseStatus = (text: string): Status => {
  const fields = text.split("\0")
  const dirty: Array<string> = []
  const ignored: Array<string> = []
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!
    if (field.length < 4) continue
    const xy = field.slice(0, 2)
    const p = field.slice(3).replace(/\/$/, "")
    if (xy === "!!") {
      ignored.push(p)
      continue
    }
    dirty.push(p)
    if (xy.includes("R") || xy.includes("C")) {
      const source = fields[++i]
      if (source !== undefined && source !== "") dirty.push(source.replace(/\/$/, ""))
    }
  }
  return { dirty, ignored }
}

/**
 * Longer than a file timestamp's granularity (a clock tick): a file changed this recently
 * before a look could change again within the same tick unseen, so it is looked at again.
 */
export const TICK = 20

const keyOf = (st: fs.Stats): string => `${st.mode}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`

const MISSING = "missing"

/** The stat key of a path now ("missing" when there is none). */
export const fingerprint = (root: string, relative: string): string => {
  const st = fs.lstatSync(path.join(root, relative), { throwIfNoEntry: false })
  return st === undefined ? MISSING : keyOf(st)
}

/**
 * Walks a working tree (not following links, never into `.git`, nor into ignored paths or
 * those `skip` accepts). Entries changed at or after `recentSince` (epoch ms) get an
 * impossible key, so the next comparison looks again: a write racing the `git status` this
 * walk follows must not pass unseen.
 */
export const walk = (
  root: string,
  ignored: ReadonlySet<string>,
  skip: (relative: string) => boolean = () => false,
  recentSince = Number.POSITIVE_INFINITY
): Map<string, string> => {
  const seen = new Map<string, string>()
  const visit = (relative: string, st: fs.Stats) => {
    seen.set(relative, st.mtimeMs >= recentSince || st.ctimeMs >= recentSince ? "recent" : keyOf(st))
    if (!st.isDirectory()) return
    let names: Array<string>
    try {
      names = fs.readdirSync(path.join(root, relative))
    } catch {
      return
    }
    for (const name of names) {
      if (name === ".git") continue
      const child = relative === "" ? name : `${relative}/${name}`
      if (ignored.has(child) || skip(child)) continue
      const childStat = fs.lstatSync(path.join(root, child), { throwIfNoEntry: false })
      if (childStat !== undefined) visit(child, childStat)
    }
  }
  const top = fs.lstatSync(root, { throwIfNoEntry: false })
  if (top !== undefined) visit("", top)
  return seen
}

/** Whether every file and folder of the snapshot is as it was (a new entry changes its folder). */
export const unchanged = (root: string, snapshot: Snapshot): boolean => {
  for (const [relative, key] of snapshot.seen) {
    if (fingerprint(root, relative) !== key) return false
  }
  return true
}

/** A snapshot from a status taken at `statusAt` (epoch ms) and a walk made after it. */
export const make = (
  root: string,
  status: Status,
  skip: (relative: string) => boolean,
  statusAt: number
): Snapshot => {
  const ignored = new Set(status.ignored)
  const seen = walk(root, ignored, skip, statusAt - TICK)
  const dirty = new Map<string, string>()
  for (const p of status.dirty) if (!skip(p)) dirty.set(p, fingerprint(root, p))
  return { dirty, seen, ignored }
}

/** Paths that are dirty now and were not, or were but changed since, or were dirty and are not any more; sorted. */
export const changes = (before: Snapshot, after: Snapshot): Array<string> => {
  const found = new Set<string>()
  for (const [p, key] of after.dirty) if (before.dirty.get(p) !== key) found.add(p)
  for (const p of before.dirty.keys()) if (!after.dirty.has(p)) found.add(p)
  return [...found].sort()
}
