/**
 * A persistent map of path → content for the memory workspace: a hash trie (16-way, on a
 * 32-bit FNV-1a hash of the path). Versions share every node they have in common, so taking a
 * snapshot is free, a write copies one path of nodes, and comparing or merging versions of
 * one history visits only the nodes where they differ.
 */

const BITS = 4
const MASK = (1 << BITS) - 1

/** Entries whose paths share one hash (almost always a single entry). */
interface Leaf {
  readonly leaf: true
  readonly hash: number
  readonly entries: ReadonlyArray<readonly [string, string]>
}

interface Branch {
  readonly leaf: false
  readonly children: ReadonlyArray<Node | undefined>
  readonly size: number
}

type Node = Leaf | Branch

const hashOf = (path: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

const sizeOf = (node: Node | undefined): number => node === undefined ? 0 : node.leaf ? node.entries.length : node.size

const branch = (children: Array<Node | undefined>): Node | undefined => {
  let size = 0
  let only: Node | undefined
  let count = 0
  for (const child of children) {
    if (child === undefined) continue
    size += sizeOf(child)
    only = child
    count++
  }
  if (count === 0) return undefined
  // A lone leaf moves up: lookups check the hash, so a leaf may sit at any depth.
  if (count === 1 && only!.leaf) return only
  return { leaf: false, children, size }
}

const lookup = (root: Node | undefined, path: string): string | undefined => {
  const hash = hashOf(path)
  let node = root
  let shift = 0
  while (node !== undefined) {
    if (node.leaf) {
      if (node.hash !== hash) return undefined
      for (const [p, content] of node.entries) if (p === path) return content
      return undefined
    }
    node = node.children[(hash >>> shift) & MASK]
    shift += BITS
  }
  return undefined
}

/** Two leaves of different hashes under one branch, split until their hash bits differ. */
const join = (a: Leaf, b: Leaf, shift: number): Node => {
  const children = new Array<Node | undefined>(1 << BITS).fill(undefined)
  const ia = (a.hash >>> shift) & MASK
  const ib = (b.hash >>> shift) & MASK
  if (ia === ib) children[ia] = join(a, b, shift + BITS)
  else {
    children[ia] = a
    children[ib] = b
  }
  return { leaf: false, children, size: a.entries.length + b.entries.length }
}

/** Sets (content) or removes (undefined) one path; returns the same node when nothing changes. */
const put = (node: Node | undefined, path: string, hash: number, content: string | undefined, shift: number): Node | undefined => {
  if (node === undefined) return content === undefined ? undefined : { leaf: true, hash, entries: [[path, content]] }
  if (node.leaf) {
    if (node.hash !== hash) {
      return content === undefined ? node : join(node, { leaf: true, hash, entries: [[path, content]] }, shift)
    }
    const i = node.entries.findIndex(([p]) => p === path)
    if (i < 0) return content === undefined ? node : { leaf: true, hash, entries: [...node.entries, [path, content]] }
    if (node.entries[i]![1] === content) return node
    if (content === undefined) {
      const entries = node.entries.filter((_, j) => j !== i)
      return entries.length === 0 ? undefined : { leaf: true, hash, entries }
    }
    const entries = [...node.entries]
    entries[i] = [path, content]
    return { leaf: true, hash, entries }
  }
  const i = (hash >>> shift) & MASK
  const child = node.children[i]
  const next = put(child, path, hash, content, shift + BITS)
  if (next === child) return node
  const children = [...node.children]
  children[i] = next
  return branch(children)
}

const collect = (node: Node | undefined, out: Array<readonly [string, string]>): void => {
  if (node === undefined) return
  if (node.leaf) for (const e of node.entries) out.push(e)
  else for (const child of node.children) collect(child, out)
}

const entriesOf = (node: Node | undefined) => {
  const out: Array<readonly [string, string]> = []
  collect(node, out)
  return new Map(out)
}

const isBranch = (node: Node | undefined): node is Branch => node !== undefined && !node.leaf

/** The child at `i` of a node seen as a branch at `shift` (a leaf sits in the slot of its hash). */
const childAt = (node: Node | undefined, i: number, shift: number): Node | undefined =>
  node === undefined ? undefined : node.leaf ? (((node.hash >>> shift) & MASK) === i ? node : undefined) : node.children[i]

const diffNodes = (a: Node | undefined, b: Node | undefined, shift: number, out: Array<string>): void => {
  if (a === b) return
  if (isBranch(a) || isBranch(b)) {
    for (let i = 0; i <= MASK; i++) diffNodes(childAt(a, i, shift), childAt(b, i, shift), shift + BITS, out)
    return
  }
  const ea = entriesOf(a)
  const eb = entriesOf(b)
  for (const [p, content] of ea) if (eb.get(p) !== content) out.push(p)
  for (const p of eb.keys()) if (!ea.has(p)) out.push(p)
}

/**
 * Where mine and theirs both changed a path from the base, differently: the content to keep
 * (undefined: the path is removed).
 */
export type Resolve = (path: string, base: string | undefined, mine: string | undefined, theirs: string | undefined) => string | undefined

const merge3 = (
  b: Node | undefined,
  m: Node | undefined,
  t: Node | undefined,
  shift: number,
  resolve: Resolve
): Node | undefined => {
  // Theirs changed nothing here, or mine nothing (take theirs whole), or both the same.
  if (t === b || m === t) return m
  if (m === b) return t
  if (isBranch(b) || isBranch(m) || isBranch(t)) {
    let children: Array<Node | undefined> | undefined
    for (let i = 0; i <= MASK; i++) {
      const mc = childAt(m, i, shift)
      const tc = childAt(t, i, shift)
      if (mc === tc) continue
      const next = merge3(childAt(b, i, shift), mc, tc, shift + BITS, resolve)
      if (next === mc) continue
      if (children === undefined) {
        children = []
        for (let j = 0; j <= MASK; j++) children.push(childAt(m, j, shift))
      }
      children[i] = next
    }
    return children === undefined ? m : branch(children)
  }
  // Leaves only (one path each, almost always): path by path.
  let out: Node | undefined = m
  const visit = (p: string) => {
    const bv = b === undefined ? undefined : lookup(b, p)
    const mv = m === undefined ? undefined : lookup(m, p)
    const tv = lookup(t, p)
    if (tv === bv || mv === tv) return
    const next = mv === bv ? tv : resolve(p, bv, mv, tv)
    if (next !== mv) out = put(out, p, hashOf(p), next, shift)
  }
  if (t !== undefined && t.leaf) for (const [p] of t.entries) visit(p)
  // Paths theirs removed.
  if (b !== undefined && b.leaf) for (const [p] of b.entries) if (t === undefined || lookup(t, p) === undefined) visit(p)
  return out
}

/** A version of a workspace's files. Reads like a `ReadonlyMap`; writes return a new version. */
export class FileTree {
  private constructor(private readonly root: Node | undefined) {}

  static readonly empty = new FileTree(undefined)

  static fromEntries(entries: Iterable<readonly [string, string]>): FileTree {
    let root: Node | undefined
    for (const [p, content] of entries) root = put(root, p, hashOf(p), content, 0)
    return new FileTree(root)
  }

  get size(): number {
    return sizeOf(this.root)
  }
  get(path: string): string | undefined {
    return lookup(this.root, path)
  }
  has(path: string): boolean {
    return lookup(this.root, path) !== undefined
  }
  set(path: string, content: string): FileTree {
    const root = put(this.root, path, hashOf(path), content, 0)
    return root === this.root ? this : new FileTree(root)
  }
  delete(path: string): FileTree {
    const root = put(this.root, path, hashOf(path), undefined, 0)
    return root === this.root ? this : new FileTree(root)
  }
  /** Every (path, content), in no particular order. */
  entries(): IterableIterator<readonly [string, string]> {
    const out: Array<readonly [string, string]> = []
    collect(this.root, out)
    return out[Symbol.iterator]()
  }
  /** Every path, sorted. */
  paths(): Array<string> {
    return Array.from(this.entries(), ([p]) => p).sort()
  }
  [Symbol.iterator](): IterableIterator<readonly [string, string]> {
    return this.entries()
  }

  /** Paths whose content differs between two versions, sorted. */
  static diff(a: FileTree, b: FileTree): Array<string> {
    const out: Array<string> = []
    diffNodes(a.root, b.root, 0, out)
    return out.sort()
  }

  /**
   * Three-way merge: every change theirs made from the base, where mine still has the base's
   * content or the same change; `resolve` decides the paths both changed differently.
   */
  static merge(base: FileTree, mine: FileTree, theirs: FileTree, resolve: Resolve): FileTree {
    const root = merge3(base.root, mine.root, theirs.root, 0, resolve)
    return root === mine.root ? mine : new FileTree(root)
  }
}
