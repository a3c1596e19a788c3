import { assert, describe, it } from "@effect/vitest"
import { FileTree } from "../src/internal/tree.js"

/** A small seeded random source, so a failure replays. */
const rng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const paths = Array.from({ length: 300 }, (_, i) => `dir${i % 7}/file${i}.ts`)

/** The same writes to a tree and to a plain Map. */
const mutate = (next: () => number, tree: FileTree, map: Map<string, string>, n: number) => {
  for (let i = 0; i < n; i++) {
    const p = paths[Math.floor(next() * paths.length)]!
    if (next() < 0.2) {
      tree = tree.delete(p)
      map.delete(p)
    } else {
      const v = `v${Math.floor(next() * 4)}`
      tree = tree.set(p, v)
      map.set(p, v)
    }
  }
  return tree
}

const mapDiff = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) =>
  [...new Set([...a.keys(), ...b.keys()])].filter((p) => a.get(p) !== b.get(p)).sort()

describe("FileTree", () => {
  it("reads like the map it was written like, and every version stays as it was", () => {
    const next = rng(1)
    const map = new Map<string, string>()
    const first = mutate(next, FileTree.empty, map, 200)
    const snapshot = new Map(map)
    const second = mutate(next, first, map, 100)
    assert.deepStrictEqual(new Map(first), snapshot)
    assert.deepStrictEqual(new Map(second), map)
    assert.strictEqual(second.size, map.size)
    assert.deepStrictEqual(second.paths(), [...map.keys()].sort())
    for (const p of paths) assert.strictEqual(second.get(p), map.get(p))
  })

  it("diff and three-way merge agree with the same operations on maps", () => {
    const next = rng(2)
    for (let round = 0; round < 500; round++) {
      const baseMap = new Map<string, string>()
      const base = mutate(next, FileTree.empty, baseMap, Math.floor(next() * 60))
      const mineMap = new Map(baseMap)
      const mine = mutate(next, base, mineMap, Math.floor(next() * 40))
      // Theirs sometimes builds on mine, as a stream that absorbed another one does.
      const onMine = next() < 0.3
      const theirsMap = new Map(onMine ? mineMap : baseMap)
      const theirs = mutate(next, onMine ? mine : base, theirsMap, Math.floor(next() * 40))
      assert.deepStrictEqual(FileTree.diff(mine, theirs), mapDiff(mineMap, theirsMap))

      const conflicts: Array<string> = []
      const merged = FileTree.merge(base, mine, theirs, (p, _b, m, t) => {
        conflicts.push(p)
        return p.length % 2 === 0 ? `${m}+${t}` : undefined
      })
      const expected = new Map(mineMap)
      const expectedConflicts: Array<string> = []
      for (const p of mapDiff(baseMap, theirsMap)) {
        const [b, m, t] = [baseMap.get(p), mineMap.get(p), theirsMap.get(p)]
        if (m === t) continue
        const v = m === b ? t : (expectedConflicts.push(p), p.length % 2 === 0 ? `${m}+${t}` : undefined)
        if (v === undefined) expected.delete(p)
        else expected.set(p, v)
      }
      assert.deepStrictEqual(conflicts.sort(), expectedConflicts)
      assert.deepStrictEqual(new Map(merged), expected)
    }
  })
})
