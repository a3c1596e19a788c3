/**
 * Reads git's index file (versions 2 to 4) without starting git: what is staged, path by
 * path, so that an attempt's changed files can be had by comparing the index before and
 * after `git add --all` instead of by another git process. Anything unusual (a split or
 * sparse index, conflict stages, intent-to-add entries, an unknown version) reads as
 * undefined: git is asked then.
 *
 * @internal
 */
import * as fs from "node:fs"

/** Path → "<mode> <object id>" of every staged entry. */
export type Entries = ReadonlyMap<string, string>

const decodeVarint = (buf: Buffer, at: number): { readonly value: number; readonly next: number } => {
  let c = buf[at++]!
  let value = c & 127
  while (c & 128) {
    c = buf[at++]!
    value = ((value + 1) << 7) + (c & 127)
  }
  return { value, next: at }
}

/** The entries of the index file `file` whose object ids are `oidBytes` long (20: SHA-1, 32: SHA-256). */
export const read = (file: string, oidBytes: number): Entries | undefined => {
  let buf: Buffer
  try {
    buf = fs.readFileSync(file)
  } catch {
    return undefined
  }
  try {
    if (buf.length < 12 + oidBytes || buf.toString("latin1", 0, 4) !== "DIRC") return undefined
    const version = buf.readUInt32BE(4)
    if (version < 2 || version > 4) return undefined
    const count = buf.readUInt32BE(8)
    const entries = new Map<string, string>()
    let off = 12
    let previous: Buffer = Buffer.alloc(0)
    for (let i = 0; i < count; i++) {
      const start = off
      const mode = buf.readUInt32BE(start + 24)
      const oid = buf.toString("hex", start + 40, start + 40 + oidBytes)
      const flags = buf.readUInt16BE(start + 40 + oidBytes)
      if (((flags >> 12) & 3) !== 0) return undefined
      let at = start + 42 + oidBytes
      if (flags & 0x4000) {
        if (version < 3) return undefined
        // Intent-to-add (0x2000) or skip-worktree (0x4000): staged state git itself must read.
        if (buf.readUInt16BE(at) & 0x6000) return undefined
        at += 2
      }
      let name: Buffer
      if (version === 4) {
        const strip = decodeVarint(buf, at)
        const nul = buf.indexOf(0, strip.next)
        if (nul < 0 || strip.value > previous.length) return undefined
        name = Buffer.concat([previous.subarray(0, previous.length - strip.value), buf.subarray(strip.next, nul)])
        off = nul + 1
      } else {
        const length = flags & 0xfff
        const nul = length < 0xfff ? at + length : buf.indexOf(0, at)
        if (nul < 0 || buf[nul] !== 0) return undefined
        name = buf.subarray(at, nul)
        // Entries are padded with NULs to a multiple of eight bytes.
        off = start + ((nul - start + 8) & ~7)
      }
      previous = name
      entries.set(name.toString("utf8"), `${mode.toString(8)} ${oid}`)
    }
    // Extensions: a split index ("link") or a sparse one ("sdir") holds entries elsewhere.
    while (off + 8 <= buf.length - oidBytes) {
      const signature = buf.toString("latin1", off, off + 4)
      if (signature === "link" || signature === "sdir") return undefined
      off += 8 + buf.readUInt32BE(off + 4)
    }
    return entries
  } catch {
    return undefined
  }
}

/** Paths staged differently in `after` than in `before` (added, removed or changed), sorted. */
export const changed = (before: Entries, after: Entries): Array<string> => {
  const paths: Array<string> = []
  for (const [p, entry] of after) if (before.get(p) !== entry) paths.push(p)
  for (const p of before.keys()) if (!after.has(p)) paths.push(p)
  return paths.sort()
}
