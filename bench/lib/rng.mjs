/**
 * A small seeded random source (mulberry32) so every generated plan is reproducible.
 */
export const makeRng = (seed) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [lo, hi], both included. */
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1))
  const pick = (list) => list[Math.floor(next() * list.length)]
  /** A standard normal draw (Box–Muller). */
  const normal = () => {
    const u = 1 - next()
    const v = next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }
  return { next, int, pick, normal }
}
