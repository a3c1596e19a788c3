/**
 * The conflict forecast of `braid plan` (and `braid draft`): before any agent starts, where two
 * streams that run side by side will change the same files, so their merge conflicts. Three
 * signs, each only between streams (or tasks) with no path of dependencies between them in
 * either direction — a dependency serialises them, so they do not collide:
 *
 * - `scope`: two streams' scopes overlap (`src/` and `src/api/`; `src/api/` and `src/apix/` do not);
 * - `file`: tasks of two streams name the same file in their title, description or acceptance
 *   criteria (a path at HEAD, or a path inside a stream's scope);
 * - `cochange`: the repository's recent history shows a file of one stream's scope changing
 *   together with a file of the other's, or a file outside every scope (a route registry)
 *   changing together with files of both.
 *
 * Two git processes at most (the files at HEAD, a bounded log); without git or a repository the
 * history part finds nothing. Never fails.
 *
 * @since 0.1.0
 */
import * as ExecutionPlan from "@braid/core/ExecutionPlan"
import * as GitWorkspace from "@braid/core/GitWorkspace"
import * as Plan from "@braid/core/Plan"
import type { CommandExecutor } from "@effect/platform"
import { Effect } from "effect"

/**
 * One foreseen collision between two streams.
 *
 * @since 0.1.0
 */
export interface Collision {
  readonly kind: "scope" | "file" | "cochange"
  readonly streams: readonly [string, string]
  /** The ids of the tasks involved. */
  readonly tasks: ReadonlyArray<string>
  readonly paths: ReadonlyArray<string>
  /** The suggested fix, one sentence. */
  readonly fix: string
  /** One line naming the streams, the tasks and the paths. */
  readonly message: string
}

/**
 * How far back the history is read: the last 500 commits that are not merges.
 *
 * @since 0.1.0
 */
export const HISTORY_COMMITS = 500

/**
 * A commit touching more files than this is a sweep (a rename, a reformat, a version bump): it
 * says nothing about which files belong together, and is left out of the co-change count.
 *
 * @since 0.1.0
 */
export const SWEEP_FILES = 50

/**
 * Two files change together when they were changed in the same commit at least this often…
 *
 * @since 0.1.0
 */
export const COCHANGE_MIN_COMMITS = 2

/**
 * …and in at least this share of the commits touching the less often changed of the two.
 *
 * @since 0.1.0
 */
export const COCHANGE_MIN_SHARE = 0.5

/**
 * What the repository says: its files at HEAD, and the files of each recent commit.
 *
 * @since 0.1.0
 */
export interface Repository {
  readonly files: ReadonlySet<string>
  /** Per commit (newest first, merges left out), the paths it changed. */
  readonly history: ReadonlyArray<ReadonlyArray<string>>
}

/** Nothing known about the repository. */
const empty: Repository = { files: new Set(), history: [] }

/**
 * The path prefix a scope entry stands for: the entry itself, or for a glob the folder before
 * its first wildcard (`src/**\/*.ts` → `src`); undefined for one covering the whole repository
 * (`.`, `*.md`), which would overlap everything and say nothing.
 *
 * @since 0.1.0
 */
export const prefixOf = (entry: string): string | undefined => {
  const wild = entry.search(/[*?[]/)
  const literal = wild < 0 ? entry : entry.slice(0, entry.lastIndexOf("/", wild) + 1)
  const prefix = literal.replace(/\/+$/, "")
  return prefix === "" || prefix === "." ? undefined : prefix
}

/** Each stream's scope as path prefixes (the plan's own parser, `Plan.scopePathsOf`). */
const scopesOf = (plan: Plan.Plan): ReadonlyMap<string, ReadonlyArray<string>> =>
  new Map(plan.streams.map((s) => [s.name, [...new Set(Plan.scopePathsOf(s).flatMap((e) => prefixOf(e) ?? []))]]))

/** A file extension: a letter first, so version numbers (`1.2.3`, `v2.0`) are none. */
const EXTENSION = /\.[A-Za-z][A-Za-z0-9]{0,9}$/

/**
 * The words of `text` that look like paths into the repository, conservatively: with a `/` or a
 * file extension, relative (no `/route`, `~/x`, URL or address), of path characters only, with the
 * quotes, brackets and punctuation around them taken off. Whether they name real files is
 * decided by the caller.
 *
 * @since 0.1.0
 */
export const pathsIn = (text: string): Array<string> => {
  const found: Array<string> = []
  for (const raw of text.split(/\s+/)) {
    if (raw.includes("://") || /^www\./i.test(raw) || raw.includes("@")) continue
    let word = raw.replace(/^[`'"([{<*_]+/, "")
    if (/^[/~$\\]/.test(word)) continue
    word = word.replace(/^(\.\/)+/, "").replace(/[^A-Za-z0-9_]+$/, "")
    if (word === "" || !/^[A-Za-z0-9_.\-+/]+$/.test(word)) continue
    if (word.split("/").some((segment) => segment === "" || segment === "." || segment === "..")) continue
    // "e.g", "i.e": abbreviations, not files.
    if (word.includes("/") || (EXTENSION.test(word) && !/^[A-Za-z]\.[A-Za-z]$/.test(word))) found.push(word)
  }
  return found
}

/** The texts of a task a person writes files into. */
const textsOf = (task: Plan.Task): Array<string> => [
  task.title,
  task.description ?? "",
  ...(task.acceptanceCriteria === undefined ? [] : typeof task.acceptanceCriteria === "string" ? [task.acceptanceCriteria] : task.acceptanceCriteria)
]

/** `a` and `b` joined for a sentence: `a`, `a and b`, `a, b and c`. */
const listed = (items: ReadonlyArray<string>, max = 4): string => {
  const shown = items.length > max ? [...items.slice(0, max - 1), `${items.length - max + 1} more`] : [...items]
  return shown.length <= 1 ? shown.join("") : `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)}`
}

/**
 * How much work each part of the forecast does at most (steps of its walks over the plan's
 * dependencies, its scopes, its named files, the history), so that a plan of 10,000 streams or
 * tasks is forecast in moments: past it, a part gives what it found so far.
 *
 * @since 0.1.0
 */
export const WORK = 1_000_000

/**
 * At most this many collisions of each kind are reported: a plan with more wants rethinking, not a list.
 *
 * @since 0.1.0
 */
export const MAX_COLLISIONS = 50

/** A budget of steps: `spend(n)` is false once it is used up. */
const budgetOf = (steps: number) => {
  let left = steps
  return { spend: (n = 1) => (left -= n) >= 0, spent: () => left < 0 }
}

/**
 * Which tasks and streams wait for which, through every path of dependencies (`dependsOn`, and a
 * stream's order): for telling the pairs that can run side by side from those that are serialised.
 * Each walk is done once, when first asked.
 */
const dependencies = (plan: Plan.Plan, budget: ReturnType<typeof budgetOf>) => {
  const preds = ExecutionPlan.predecessors(plan)
  const reach = (starts: Iterable<string>): Set<string> => {
    const seen = new Set<string>()
    const stack = [...starts]
    while (stack.length > 0 && budget.spend()) {
      for (const p of preds.get(stack.pop()!) ?? []) {
        if (!seen.has(p)) {
          seen.add(p)
          stack.push(p)
        }
      }
    }
    return seen
  }
  const taskAncestors = new Map<string, Set<string>>()
  const ancestorsOf = (task: string) => {
    let found = taskAncestors.get(task)
    if (found === undefined) taskAncestors.set(task, found = reach([task]))
    return found
  }
  const streamAncestors = new Map<string, Set<string>>()
  const streamsBefore = (stream: string) => {
    let found = streamAncestors.get(stream)
    if (found === undefined) {
      const tasks = Plan.streamNamed(plan, stream)?.tasks.map((t) => t.id) ?? []
      found = new Set([...reach(tasks)].map((t) => plan.streamOf.get(t)!))
      streamAncestors.set(stream, found)
    }
    return found
  }
  return {
    /** A path of dependencies joins the two tasks, either way. */
    tasksOrdered: (a: string, b: string) => ancestorsOf(a).has(b) || ancestorsOf(b).has(a),
    /** A path of dependencies joins some task of one stream to some task of the other, either way. */
    streamsOrdered: (a: string, b: string) => streamsBefore(a).has(b) || streamsBefore(b).has(a)
  }
}

/** `p` and the folders above it, `src/api/x.js`, `src/api`, `src`: the prefixes that hold it (by path segments: `src/apix` is not under `src/api`). */
const selfAndAbove = (p: string): Array<string> => {
  const found = [p]
  for (let i = p.lastIndexOf("/"); i > 0; i = p.lastIndexOf("/", i - 1)) found.push(p.slice(0, i))
  return found
}

const byText = (x: string, y: string) => x < y ? -1 : x > y ? 1 : 0

/**
 * The collisions of `plan` given what the repository says (pure; `forecast` reads the repository).
 * Only candidates are paired (streams whose scopes, named files or changed files meet), so a plan
 * of 10,000 streams costs what its overlaps cost. Each collision names its two streams in the
 * plan's order; the collisions come by kind (scope, file, cochange), then in the plan's order.
 *
 * @since 0.1.0
 */
export const collisions = (plan: Plan.Plan, repository: Repository = empty): Array<Collision> => {
  const order = dependencies(plan, budgetOf(WORK))
  const scopes = scopesOf(plan)
  const index = new Map(plan.streams.map((s, i) => [s.name, i]))
  const byPlan = (x: string, y: string) => index.get(x)! - index.get(y)!
  const tasksOf = (stream: string) => Plan.streamNamed(plan, stream)?.tasks.map((t) => t.id) ?? []
  /** Scope prefix → the streams whose scope it is. */
  const owners = new Map<string, Array<string>>()
  for (const [name, prefixes] of scopes) for (const p of prefixes) owners.set(p, [...(owners.get(p) ?? []), name])
  const streamsOfPathMemo = new Map<string, ReadonlyArray<string>>()
  /** The streams whose scope holds `p`, in the plan's order. */
  const streamsOfPath = (p: string): ReadonlyArray<string> => {
    let found = streamsOfPathMemo.get(p)
    if (found === undefined) streamsOfPathMemo.set(p, found = [...new Set(selfAndAbove(p).flatMap((q) => owners.get(q) ?? []))].sort(byPlan))
    return found
  }
  const verdicts = new Map<string, boolean>()
  /** Two streams (in the plan's order) run side by side: both have tasks, and no path of dependencies joins them. */
  const sideBySide = (a: string, b: string): boolean => {
    const key = `${a}\0${b}`
    let verdict = verdicts.get(key)
    if (verdict === undefined) {
      verdict = a !== b && tasksOf(a).length > 0 && tasksOf(b).length > 0 && !order.streamsOrdered(a, b)
      verdicts.set(key, verdict)
    }
    return verdict
  }
  /** Findings grouped by pair of streams (a before b in the plan), at most MAX_COLLISIONS pairs. */
  const grouped = <A>() => {
    const groups = new Map<string, { readonly a: string; readonly b: string; readonly items: Array<A> }>()
    return {
      add: (a: string, b: string, item: A, same: (x: A, y: A) => boolean) => {
        const key = `${a}\0${b}`
        let group = groups.get(key)
        if (group === undefined) {
          if (groups.size >= MAX_COLLISIONS || !sideBySide(a, b)) return
          groups.set(key, group = { a, b, items: [] })
        }
        if (!group.items.some((i) => same(i, item))) group.items.push(item)
      },
      inOrder: () => [...groups.values()].sort((x, y) => byPlan(x.a, y.a) || byPlan(x.b, y.b))
    }
  }
  /** The stream-level fix: the second stream's first task waits for the first's last. */
  const serialise = (a: string, b: string) => `add dependsOn: [${tasksOf(a).at(-1)}] to task ${tasksOf(b)[0]} (so ${b} starts from ${a}'s work)`
  const found: Array<Collision> = []

  // 1. Overlapping scopes: each prefix against itself and the folders above it.
  const overlaps = grouped<readonly [string, string]>()
  let budget = budgetOf(WORK)
  scopes: for (const stream of plan.streams) {
    for (const p of scopes.get(stream.name)!) {
      for (const q of selfAndAbove(p)) {
        for (const other of owners.get(q) ?? []) {
          if (!budget.spend()) break scopes
          if (other === stream.name) continue
          const [a, b] = byPlan(stream.name, other) < 0 ? [stream.name, other] : [other, stream.name]
          overlaps.add(a, b, a === stream.name ? [p, q] : [q, p], (x, y) => x[0] === y[0] && x[1] === y[1])
        }
      }
    }
  }
  for (const { a, b, items } of overlaps.inOrder()) {
    const paths = [...new Set(items.flat())].sort(byText)
    const tasks = [...tasksOf(a), ...tasksOf(b)]
    found.push({
      kind: "scope",
      streams: [a, b],
      tasks,
      paths,
      fix: `Let one stream own ${listed(paths)} by narrowing the other's scope, or ${serialise(a, b)}.`,
      message: `streams ${a} and ${b} overlap in scope (${listed(items.map(([p, q]) => p === q ? `${p}/ in both` : `${p}/ of ${a} and ${q}/ of ${b}`))}): ` +
        `their tasks ${listed(tasks)} may change the same files side by side`
    })
  }

  // 2. Files named in tasks of two streams.
  const named = new Map<string, Map<string, Set<string>>>() // path → stream → task ids
  for (const stream of plan.streams) {
    for (const task of stream.tasks) {
      for (const p of new Set(textsOf(task).flatMap(pathsIn))) {
        if (!repository.files.has(p) && streamsOfPath(p).length === 0) continue
        const byStream = named.get(p) ?? new Map<string, Set<string>>()
        named.set(p, byStream)
        const ids = byStream.get(stream.name) ?? new Set<string>()
        byStream.set(stream.name, ids.add(task.id))
      }
    }
  }
  const clashes = grouped<{ readonly path: string; readonly x: string; readonly y: string }>()
  budget = budgetOf(WORK)
  files: for (const [p, byStream] of [...named].sort(([x], [y]) => byText(x, y))) {
    const names = [...byStream.keys()].sort(byPlan)
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        for (const x of byStream.get(names[i]!)!) {
          for (const y of byStream.get(names[j]!)!) {
            if (!budget.spend()) break files
            if (!order.tasksOrdered(x, y)) clashes.add(names[i]!, names[j]!, { path: p, x, y }, (u, v) => u.path === v.path && u.x === v.x && u.y === v.y)
          }
        }
      }
    }
  }
  for (const { a, b, items } of clashes.inOrder()) {
    const paths = [...new Set(items.map((c) => c.path))].sort(byText)
    const xs = [...new Set(items.map((c) => c.x))]
    const ys = [...new Set(items.map((c) => c.y))]
    const first = items[0]!
    found.push({
      kind: "file",
      streams: [a, b],
      tasks: [...xs, ...ys],
      paths,
      fix: `Add dependsOn: [${first.x}] to task ${first.y}, let one stream own ${listed(paths)}, or merge ${first.x} and ${first.y} into one task.`,
      message: `streams ${a} and ${b} both change ${listed(paths)}: tasks ${listed(xs)} (${a}) and ` +
        `${listed(ys)} (${b}) name ${paths.length === 1 ? "it" : "them"}, and neither waits for the other`
    })
  }

  // 3. Co-change from history: counts of each file's commits, and of each pair with a file in some scope.
  const commits = repository.history.filter((files) => files.length > 1 && files.length <= SWEEP_FILES)
  const changes = new Map<string, number>()
  const together = new Map<string, Map<string, number>>()
  budget = budgetOf(WORK)
  history: for (const files of commits) {
    const unique = [...new Set(files)]
    for (const f of unique) changes.set(f, (changes.get(f) ?? 0) + 1)
    for (const f of unique) {
      // Only pairs with a file in some scope can make a collision.
      if (streamsOfPath(f).length === 0) continue
      const row = together.get(f) ?? new Map<string, number>()
      together.set(f, row)
      for (const g of unique) {
        if (!budget.spend()) break history
        if (g !== f) row.set(g, (row.get(g) ?? 0) + 1)
      }
    }
  }
  /** Whether f and g change together, and how often ("3 of 4 commits"). */
  const coupling = (f: string, g: string): string | undefined => {
    const both = together.get(f)?.get(g) ?? 0
    const fewer = Math.min(changes.get(f) ?? 0, changes.get(g) ?? 0)
    return both >= COCHANGE_MIN_COMMITS && both >= COCHANGE_MIN_SHARE * fewer ? `${both} of ${fewer} commits` : undefined
  }
  const links = grouped<{ readonly text: string; readonly paths: ReadonlyArray<string> }>()
  const samePaths = (x: { readonly paths: ReadonlyArray<string> }, y: { readonly paths: ReadonlyArray<string> }) =>
    [...x.paths].sort(byText).join("\0") === [...y.paths].sort(byText).join("\0")
  const scoped = [...together.keys()].sort(byText)
  /** A file in no scope (a shared registry) → the scoped files it changes together with. */
  const outside = new Map<string, Array<{ readonly file: string; readonly how: string }>>()
  for (const f of scoped) {
    for (const g of [...together.get(f)!.keys()].sort(byText)) {
      const how = coupling(f, g)
      if (how === undefined) continue
      if (streamsOfPath(g).length === 0) {
        outside.set(g, [...(outside.get(g) ?? []), { file: f, how }])
        continue
      }
      if (g < f) continue // each pair of scoped files once
      for (const a of streamsOfPath(f)) {
        for (const b of streamsOfPath(g)) {
          if (a === b) continue
          if (byPlan(a, b) < 0) links.add(a, b, { text: `${f} (${a}) and ${g} (${b}) changed together in ${how}`, paths: [f, g] }, samePaths)
          else links.add(b, a, { text: `${g} (${b}) and ${f} (${a}) changed together in ${how}`, paths: [g, f] }, samePaths)
        }
      }
    }
  }
  budget = budgetOf(WORK)
  registry: for (const [o, partners] of [...outside].sort(([x], [y]) => byText(x, y))) {
    for (const p of partners) {
      for (const q of partners) {
        for (const a of streamsOfPath(p.file)) {
          for (const b of streamsOfPath(q.file)) {
            if (!budget.spend()) break registry
            if (a === b || byPlan(a, b) > 0) continue
            links.add(a, b, {
              text: `${o} (in no scope) changed with ${p.file} (${a}) in ${p.how} and with ${q.file} (${b}) in ${q.how}`,
              paths: [o, p.file, q.file]
            }, samePaths)
          }
        }
      }
    }
  }
  for (const { a, b, items } of links.inOrder()) {
    const paths = [...new Set(items.flatMap((l) => l.paths))].sort(byText)
    const shared = [...new Set(items.filter((l) => l.paths.length === 3).map((l) => l.paths[0]!))]
    const tasks = [...tasksOf(a), ...tasksOf(b)]
    found.push({
      kind: "cochange",
      streams: [a, b],
      tasks,
      paths,
      fix: shared.length > 0
        ? `Let one stream own ${listed(shared)} (widen its scope to it), or ${serialise(a, b)}.`
        : `Let one stream own these files, or ${serialise(a, b)}.`,
      message: `streams ${a} and ${b} (tasks ${listed(tasks)}) change files that the last ${HISTORY_COMMITS} commits changed together: ${
        listed(items.map((l) => l.text), 3)
      }`
    })
  }
  return found
}

/** The files at HEAD, and the files of each of the last commits (merges and renames aside); nothing where git fails. */
const read = (repository: string): Effect.Effect<Repository, never, CommandExecutor.CommandExecutor> =>
  Effect.all([
    GitWorkspace.runGit(["ls-tree", "-r", "-z", "--name-only", "HEAD"], { cwd: repository, operation: "forecast: files at HEAD", timeoutMs: 60_000 }).pipe(
      Effect.map((out) => new Set(out.split("\0").filter((p) => p !== ""))),
      Effect.orElseSucceed(() => new Set<string>())
    ),
    // -z: paths as they are (no quoting); each commit starts with \x01.
    GitWorkspace.runGit(
      ["log", "--no-merges", "--no-renames", `--max-count=${HISTORY_COMMITS}`, "-z", "--name-only", "--format=%x01", "HEAD", "--"],
      { cwd: repository, operation: "forecast: history", timeoutMs: 60_000 }
    ).pipe(
      Effect.map((out) => out.split("\x01").map((commit) => commit.split("\0").map((p) => p.replace(/^\n+/, "")).filter((p) => p !== "")).filter((c) => c.length > 0)),
      Effect.orElseSucceed((): Array<Array<string>> => [])
    )
  ], { concurrency: 2 }).pipe(
    Effect.map(([files, history]) => ({ files, history })),
    // Any other surprise: the forecast goes on without the repository.
    Effect.catchAllDefect(() => Effect.succeed(empty))
  )

/**
 * The conflict forecast of `plan` in `repository`: every collision between two streams (or two
 * of their tasks) that no dependency serialises. Never fails; outside a repository, or without
 * git, it goes by the plan alone.
 *
 * @since 0.1.0
 */
export const forecast = (plan: Plan.Plan, repository: string): Effect.Effect<ReadonlyArray<Collision>, never, CommandExecutor.CommandExecutor> =>
  Effect.map(read(repository), (r) => collisions(plan, r)).pipe(Effect.withSpan("Forecast.forecast"))
