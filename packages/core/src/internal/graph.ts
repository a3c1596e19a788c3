/**
 * Graph walks over plans, iterative so that a chain of 10,000 tasks is no deeper for the
 * stack than one task.
 *
 * @internal
 */

/**
 * The strongly connected components reachable from `roots` (Tarjan's algorithm with its own
 * stack of frames), each listed after every component it reaches.
 */
export const components = (
  roots: Iterable<string>,
  edges: (v: string) => Iterable<string>
): Array<Array<string>> => {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: Array<string> = []
  const found: Array<Array<string>> = []
  const open = (v: string) => {
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    return { v, next: [...edges(v)], at: 0 }
  }
  for (const root of roots) {
    if (index.has(root)) continue
    const frames = [open(root)]
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!
      if (frame.at < frame.next.length) {
        const w = frame.next[frame.at++]!
        if (!index.has(w)) frames.push(open(w))
        else if (onStack.has(w)) low.set(frame.v, Math.min(low.get(frame.v)!, index.get(w)!))
        continue
      }
      frames.pop()
      const parent = frames[frames.length - 1]
      if (parent !== undefined) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(frame.v)!))
      if (low.get(frame.v) === index.get(frame.v)) {
        const component: Array<string> = []
        let w: string
        do {
          w = stack.pop()!
          onStack.delete(w)
          component.push(w)
        } while (w !== frame.v)
        found.push(component)
      }
    }
  }
  return found
}
