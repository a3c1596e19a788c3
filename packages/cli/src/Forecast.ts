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

/** `p` is `prefix` or lies under it (path segments, not characters: `src/apix` is not under `src/api`). */
const under = (p: string, prefix: string) => p === prefix || p.startsWith(`${prefix}/`)

/**
 * The path prefix a scope entry stands for: the entry itself, or for a glob the folder before
 * its first wildcard (`src/**\/*.ts` → `src`); undefined for one covering the whole repository
 * (`.`, `*.md`), which would overlap everything and say nothing.
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
    if (word.includes("/") || EXTENSION.test(word)) found.push(word)
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
 * Which tasks and streams wait for which, through every path of dependencies (`dependsOn`, and a
 * stream's order): for telling the pairs that can run side by side from those that are serialised.
 */
const dependencies = (plan: Plan.Plan) => {
  const preds = ExecutionPlan.predecessors(plan)
  const reach = (starts: Iterable<string>): Set<string> => {
    const seen = new Set<string>()
    const stack = [...starts]
    while (stack.length > 0) {
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

/**
 * The collisions of `plan` given what the repository says (pure; `forecast` reads the repository).
 * Streams are paired in the plan's order, the stream earlier in it first.
 *
 * @since 0.1.0
 */
export const collisions = (plan: Plan.Plan, repository: Repository = empty): Array<Collision> => {
  const found: Array<Collision> = []
  const scopes = scopesOf(plan)
  const order = dependencies(plan)
  const names = plan.streams.map((s) => s.name)
  const tasksOf = (stream: string) => Plan.streamNamed(plan, stream)?.tasks.map((t) => t.id) ?? []
  const streamsOfPath = (p: string) => names.filter((n) => scopes.get(n)!.some((prefix) => under(p, prefix)))
  const pairs: Array<readonly [string, string]> = []
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      if (tasksOf(names[i]!).length > 0 && tasksOf(names[j]!).length > 0 && !order.streamsOrdered(names[i]!, names[j]!)) pairs.push([names[i]!, names[j]!])
    }
  }
  /** The stream-level fix: the second stream's first task waits for the first's last. */
  const serialise = (a: string, b: string) => `add dependsOn: [${tasksOf(a).at(-1)}] to task ${tasksOf(b)[0]} (so ${b} starts from ${a}'s work)`

  // 1. Overlapping scopes.
  for (const [a, b] of pairs) {
    const overlaps: Array<readonly [string, string]> = []
    for (const p of scopes.get(a)!) for (const q of scopes.get(b)!) if (under(p, q) || under(q, p)) overlaps.push([p, q])
    if (overlaps.length === 0) continue
    const paths = [...new Set(overlaps.flat())].sort()
    const tasks = [...tasksOf(a), ...tasksOf(b)]
    found.push({
      kind: "scope",
      streams: [a, b],
      tasks,
      paths,
      fix: `Let one stream own ${listed(paths)} by narrowing the other's scope, or ${serialise(a, b)}.`,
      message: `streams ${a} and ${b} overlap in scope (${listed(overlaps.map(([p, q]) => p === q ? `${p}/ in both` : `${p}/ of ${a} and ${q}/ of ${b}`))}): ` +
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
  for (const [a, b] of pairs) {
    const clashes: Array<{ readonly path: string; readonly x: string; readonly y: string }> = []
    for (const [p, byStream] of named) {
      for (const x of byStream.get(a) ?? []) {
        for (const y of byStream.get(b) ?? []) if (!order.tasksOrdered(x, y)) clashes.push({ path: p, x, y })
      }
    }
    if (clashes.length === 0) continue
    const paths = [...new Set(clashes.map((c) => c.path))].sort()
    const xs = [...new Set(clashes.map((c) => c.x))]
    const ys = [...new Set(clashes.map((c) => c.y))]
    const first = clashes[0]!
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

  // 3. Co-change from history.
  const commits = repository.history.filter((files) => files.length > 1 && files.length <= SWEEP_FILES)
  if (commits.length > 0 && pairs.length > 0) {
    const changes = new Map<string, number>()
    const together = new Map<string, Map<string, number>>()
    const streamsOf = new Map<string, ReadonlyArray<string>>()
    const streamsOfCached = (p: string) => {
      let s = streamsOf.get(p)
      if (s === undefined) streamsOf.set(p, s = streamsOfPath(p))
      return s
    }
    for (const files of commits) {
      const unique = [...new Set(files)]
      for (const f of unique) changes.set(f, (changes.get(f) ?? 0) + 1)
      // Only pairs with a file in some scope can make a collision.
      for (const f of unique) {
        if (streamsOfCached(f).length === 0) continue
        for (const g of unique) {
          if (g === f) continue
          const row = together.get(f) ?? new Map<string, number>()
          together.set(f, row)
          row.set(g, (row.get(g) ?? 0) + 1)
        }
      }
    }
    /** Whether f and g change together, and how often ("3 of 4 commits"). */
    const coupling = (f: string, g: string): string | undefined => {
      const both = together.get(f)?.get(g) ?? 0
      const fewer = Math.min(changes.get(f) ?? 0, changes.get(g) ?? 0)
      return both >= COCHANGE_MIN_COMMITS && both >= COCHANGE_MIN_SHARE * fewer ? `${both} of ${fewer} commits` : undefined
    }
    const links = new Map<string, Array<{ readonly text: string; readonly paths: ReadonlyArray<string> }>>() // "a\0b" → findings
    const pairKeys = new Set(pairs.map(([a, b]) => `${a}\0${b}`))
    /** A finding between a and b, when they are a pair (in the plan's order) that nothing serialises. */
    const add = (a: string, b: string, text: string, paths: ReadonlyArray<string>) => {
      const key = `${a}\0${b}`
      if (!pairKeys.has(key)) return
      const list = links.get(key) ?? []
      links.set(key, list)
      if (!list.some((l) => l.text === text)) list.push({ text, paths })
    }
    const scoped = [...together.keys()].sort()
    for (const f of scoped) {
      for (const [g] of [...together.get(f)!].sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0)) {
        const gStreams = streamsOfCached(g)
        if (gStreams.length > 0 && f < g) {
          const how = coupling(f, g)
          if (how === undefined) continue
          for (const a of streamsOfCached(f)) {
            for (const b of gStreams) {
              add(a, b, `${f} (${a}) and ${g} (${b}) changed together in ${how}`, [f, g])
              add(b, a, `${g} (${b}) and ${f} (${a}) changed together in ${how}`, [g, f])
            }
          }
        }
      }
    }
    // A file in no scope (a shared registry) changing with files of two streams.
    const outside = new Map<string, Array<{ readonly file: string; readonly how: string }>>()
    for (const f of scoped) {
      for (const [o] of together.get(f)!) {
        if (streamsOfCached(o).length > 0) continue
        const how = coupling(f, o)
        if (how !== undefined) outside.set(o, [...(outside.get(o) ?? []), { file: f, how }])
      }
    }
    for (const [o, partners] of [...outside].sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0)) {
      for (const p of partners) {
        for (const q of partners) {
          for (const a of streamsOfCached(p.file)) {
            for (const b of streamsOfCached(q.file)) {
              add(a, b, `${o} (in no scope) changed with ${p.file} (${a}) in ${p.how} and with ${q.file} (${b}) in ${q.how}`, [o, p.file, q.file])
            }
          }
        }
      }
    }
    for (const [a, b] of pairs) {
      const list = links.get(`${a}\0${b}`)
      if (list === undefined) continue
      // Two streams' files beside one registry can be found twice (each file of a stream under both scopes).
      const seen = new Set<string>()
      const unique = list.filter((l) => {
        const key = [...l.paths].sort().join("\0")
        return seen.has(key) ? false : (seen.add(key), true)
      })
      const paths = [...new Set(unique.flatMap((l) => l.paths))].sort()
      const shared = [...new Set(unique.filter((l) => l.paths.length === 3).map((l) => l.paths[0]!))]
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
          listed(unique.map((l) => l.text), 3)
        }`
      })
    }
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
    // git missing altogether, or any other surprise: the forecast goes on without the repository.
    Effect.catchAllCause(() => Effect.succeed(empty))
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
