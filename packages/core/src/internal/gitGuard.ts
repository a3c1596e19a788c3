/**
 * The repository's own git files that could make git run a program or lie, kept as they were
 * when a run was prepared: the common git directory's `config` and `config.worktree`, every
 * file under `hooks/` (but the inert `*.sample`s) and `info/` (attributes, excludes, grafts,
 * sparse-checkout), and each linked worktree's `config.worktree`. Any agent can reach them
 * (`git rev-parse --git-common-dir`); what it writes there would outlive the run in the
 * user's repository.
 *
 * `take` copies them, byte for byte with their modes; `check` compares the files with the
 * copy — by their stats, and by their bytes only when a stat differs (git rewrites `config`
 * with the same bytes when braid deletes a branch) — and puts back every one that changed:
 * changed or removed files get their bytes and mode again, added ones go. It is synchronous
 * and never throws, so it can run before every git process braid starts.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

/** What changed since the copy: each path relative to the common git directory, sorted. */
export interface Tampering {
  /** `config`, `hooks/post-commit`, `info/attributes`, `worktrees/api/config.worktree`, … */
  readonly changed: ReadonlyArray<string>
  /** Those of `changed` that could not be put back (too large to have been copied, or not writable). */
  readonly unrestored: ReadonlyArray<string>
}

/** The guard of one repository's git files. */
export interface Guard {
  /** The repository's common git directory (the main checkout's `.git`). */
  readonly commonDir: string
  /** Finds what changed since the copy and puts it back; undefined when nothing did. */
  readonly check: () => Tampering | undefined
}

/** Files larger than this are fingerprinted, not copied: a change to one is reported, not undone. */
const MAX_COPY = 1024 * 1024
/** At most this many files are looked at under `hooks/` and `info/` (a flood is a change too). */
const MAX_FILES = 2000

interface Copy {
  readonly link: boolean
  /** Permission bits: making a hook executable makes git run it. */
  readonly mode: number
  readonly digest: string
  /** The bytes to put back (a link's target); undefined when the file was too large. */
  readonly bytes: Buffer | undefined
  /** A quick key from `lstat`: while it is the same, the file is. */
  stat: string
}

const statKey = (st: fs.Stats) => `${st.mode}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`

const isWorktreeConfig = (relative: string) => /^worktrees\/[^/]+\/config\.worktree$/.test(relative)

/** The guarded files of `commonDir` now, with their `lstat` (links are not followed). */
const list = (commonDir: string): Map<string, fs.Stats> => {
  const found = new Map<string, fs.Stats>()
  const lstat = (relative: string) => fs.lstatSync(path.join(commonDir, relative), { throwIfNoEntry: false })
  const note = (relative: string, st: fs.Stats | undefined) => {
    // git's own transient locks (`config.lock` while it rewrites config) are not read by git.
    if (st !== undefined && (st.isFile() || st.isSymbolicLink()) && !relative.endsWith(".lock")) found.set(relative, st)
  }
  const walk = (relative: string, depth: number) => {
    // git never runs a hook by any other name than its own: the samples are inert text (and
    // most of what `hooks/` holds, so not looking at them keeps this cheap).
    if (relative.startsWith("hooks/") && relative.endsWith(".sample")) return
    const st = lstat(relative)
    if (st === undefined) return
    if (!st.isDirectory()) return note(relative, st)
    if (depth > 8) return
    let names: Array<string>
    try {
      names = fs.readdirSync(path.join(commonDir, relative))
    } catch {
      return
    }
    for (const name of names.sort()) {
      if (found.size >= MAX_FILES) return
      walk(`${relative}/${name}`, depth + 1)
    }
  }
  note("config", lstat("config"))
  note("config.worktree", lstat("config.worktree"))
  walk("hooks", 0)
  walk("info", 0)
  let worktrees: Array<string> = []
  try {
    worktrees = fs.readdirSync(path.join(commonDir, "worktrees"))
  } catch {
    // No linked worktrees.
  }
  for (const id of worktrees) note(`worktrees/${id}/config.worktree`, lstat(`worktrees/${id}/config.worktree`))
  return found
}

const capture = (commonDir: string, relative: string, st: fs.Stats): Copy => {
  const full = path.join(commonDir, relative)
  const link = st.isSymbolicLink()
  const bytes = link ? fs.readlinkSync(full, { encoding: "buffer" }) : fs.readFileSync(full)
  return {
    link,
    mode: st.mode & 0o7777,
    digest: createHash("sha256").update(link ? "link\0" : "file\0").update(bytes).digest("hex"),
    bytes: bytes.length <= MAX_COPY ? bytes : undefined,
    stat: statKey(st)
  }
}

const same = (a: Copy, b: Copy) => a.link === b.link && a.digest === b.digest && (a.link || a.mode === b.mode)

/** Removes what is at `full` (a file, a link, or a folder that replaced a file). */
const clear = (full: string) => {
  const st = fs.lstatSync(full, { throwIfNoEntry: false })
  if (st === undefined) return
  if (st.isDirectory()) fs.rmSync(full, { recursive: true, force: true })
  else fs.unlinkSync(full)
}

/** Makes the folders of `relative` real folders again (not links an agent put in their place). */
const folders = (commonDir: string, relative: string) => {
  const parts = relative.split("/").slice(0, -1)
  let at = commonDir
  for (const part of parts) {
    at = path.join(at, part)
    const st = fs.lstatSync(at, { throwIfNoEntry: false })
    if (st !== undefined && !st.isDirectory()) fs.unlinkSync(at)
    if (st === undefined || !st.isDirectory()) fs.mkdirSync(at)
  }
}

/** Puts `copy` back at `relative`; false when it cannot be. Written beside it and renamed, so git never reads half a file. */
const restore = (commonDir: string, relative: string, copy: Copy): boolean => {
  if (copy.bytes === undefined) return false
  const full = path.join(commonDir, relative)
  try {
    folders(commonDir, relative)
    if (copy.link) {
      clear(full)
      fs.symlinkSync(copy.bytes, full)
    } else {
      const temporary = `${full}.braid-restore-${process.pid}`
      clear(temporary)
      // "wx": never through a link someone put at that name.
      fs.writeFileSync(temporary, copy.bytes, { mode: copy.mode, flag: "wx" })
      fs.chmodSync(temporary, copy.mode)
      if (fs.lstatSync(full, { throwIfNoEntry: false })?.isDirectory() === true) clear(full)
      fs.renameSync(temporary, full)
    }
    copy.stat = statKey(fs.lstatSync(full))
    return true
  } catch {
    return false
  }
}

/** Copies the guarded files of the repository whose common git directory is `commonDir`. */
export const take = (commonDir: string): Guard => {
  const copies = new Map<string, Copy>()
  for (const [relative, st] of list(commonDir)) {
    try {
      copies.set(relative, capture(commonDir, relative, st))
    } catch {
      // Unreadable now: it is not guarded (git could not read it either).
    }
  }
  const configText = copies.get("config")?.bytes?.toString("utf8") ?? ""
  // With per-worktree configuration on, `git worktree add` may give a new worktree its own
  // config.worktree (a copy of the main one's): braid's own worktrees then have one.
  const worktreeConfig = /^\s*worktreeconfig\s*=\s*(true|yes|on|1)\s*$/im.test(configText)

  const check = (): Tampering | undefined => {
    let now: Map<string, fs.Stats>
    try {
      now = list(commonDir)
    } catch {
      return undefined
    }
    const changed: Array<string> = []
    const unrestored: Array<string> = []
    const toRestore: Array<[string, Copy]> = []
    const toRemove: Array<string> = []
    for (const [relative, copy] of copies) {
      const st = now.get(relative)
      if (st === undefined) {
        // The worktree went away (braid removes its own), and its configuration with it.
        if (isWorktreeConfig(relative) && !fs.existsSync(path.join(commonDir, path.dirname(relative)))) {
          copies.delete(relative)
          continue
        }
        changed.push(relative)
        toRestore.push([relative, copy])
        continue
      }
      if (statKey(st) === copy.stat) continue
      let current: Copy | undefined
      try {
        current = capture(commonDir, relative, st)
      } catch {
        current = undefined
      }
      if (current !== undefined && same(current, copy)) {
        copy.stat = current.stat
        continue
      }
      changed.push(relative)
      toRestore.push([relative, copy])
    }
    for (const [relative, st] of now) {
      if (copies.has(relative)) continue
      if (isWorktreeConfig(relative) && worktreeConfig) {
        try {
          copies.set(relative, capture(commonDir, relative, st))
        } catch {
          // Looked at again next time.
        }
        continue
      }
      changed.push(relative)
      toRemove.push(relative)
    }
    if (changed.length === 0) return undefined
    // What was added goes first: a link put in place of `hooks/` must not be written through.
    for (const relative of toRemove.sort().reverse()) {
      try {
        clear(path.join(commonDir, relative))
      } catch {
        unrestored.push(relative)
      }
    }
    for (const [relative, copy] of toRestore) if (!restore(commonDir, relative, copy)) unrestored.push(relative)
    return { changed: changed.sort(), unrestored: unrestored.sort() }
  }

  return { commonDir, check }
}
