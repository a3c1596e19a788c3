/**
 * A local stand-in for the parts of GitHub's REST API braid uses, on 127.0.0.1: issues with
 * titles, bodies, comments, labels and sub-issues (created, listed, linked by id), commit statuses and pull requests, all in memory; faults on demand (a
 * 403 with rate-limit headers, a 429, a 500) for the next matching requests. braid's tests
 * run against it, and `npm run demo -- --github` shows a run against it.
 *
 * @example
 * const github = await FakeGitHub.start({ repo: "acme/shop", issues: [1, 2], token: "t" })
 * // GITHUB_API_URL=github.url GITHUB_TOKEN=t braid run plan.yaml --land pr
 * github.state.issues.get(1)?.comments
 * await github.close()
 *
 * @since 0.3.0
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** A comment on an issue. */
export interface FakeComment {
  readonly id: number
  body: string
  readonly html_url: string
  /** How many times it was edited. */
  edits: number
}

/** An issue (pull requests share the numbering). */
export interface FakeIssue {
  readonly number: number
  /** Its id (distinct from its number, as on GitHub: sub-issues are linked by id). */
  readonly id: number
  title: string
  body: string
  /** The numbers of its sub-issues, in the order they were added. */
  readonly subIssues: Array<number>
  state: "open" | "closed"
  readonly labels: Set<string>
  readonly comments: Array<FakeComment>
  /** When it was closed (the request's sequence number), for ordering checks. */
  closedAt?: number
}

/** A pull request. */
export interface FakePull {
  readonly number: number
  readonly head: string
  readonly base: string
  title: string
  body: string
  state: "open" | "closed"
  readonly labels: Set<string>
  readonly html_url: string
  edits: number
}

/** A commit status. */
export interface FakeStatus {
  readonly sha: string
  readonly state: string
  readonly context: string
  readonly description: string
}

/** A request the server received. */
export interface FakeRequest {
  readonly seq: number
  readonly method: string
  readonly path: string
  readonly status: number
  readonly authorization: string | undefined
  /** The request's body as sent (empty for none). */
  readonly body: string
}

/** A fault served instead of the next request that matches. */
export interface Fault {
  readonly method?: string
  /** A substring or a pattern of the path (after `/repos/owner/name`). */
  readonly path?: string | RegExp
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly message?: string
  /** How many matching requests get it (default 1). */
  times?: number
}

/** Everything the server holds. */
export interface FakeState {
  readonly issues: Map<number, FakeIssue>
  readonly pulls: Array<FakePull>
  readonly statuses: Array<FakeStatus>
  readonly requests: Array<FakeRequest>
  readonly faults: Array<Fault>
  /** When false, the sub-issue endpoints answer 404 (as where GitHub has none). Default true. */
  subIssues: boolean
}

/** A running fake. */
export interface FakeGitHub {
  /** The API base URL (`GITHUB_API_URL`). */
  readonly url: string
  readonly repo: string
  readonly state: FakeState
  readonly close: () => Promise<void>
}

/** Starts the fake for `repo` with these open issues; with `token`, any other credential is a 401. */
export const start = (options: {
  readonly repo: string
  readonly issues?: ReadonlyArray<number | { readonly number: number; readonly title?: string; readonly body?: string; readonly comments?: ReadonlyArray<string> }>
  readonly token?: string
  /** Whether the sub-issue endpoints exist (default true). */
  readonly subIssues?: boolean
}): Promise<FakeGitHub> => {
  const state: FakeState = { issues: new Map(), pulls: [], statuses: [], requests: [], faults: [], subIssues: options.subIssues ?? true }
  let nextId = 1000
  for (const given of options.issues ?? []) {
    const i = typeof given === "number" ? { number: given } : given
    state.issues.set(i.number, {
      number: i.number,
      id: 500_000 + i.number,
      title: i.title ?? `issue ${i.number}`,
      body: i.body ?? "",
      subIssues: [],
      state: "open",
      labels: new Set(),
      comments: (i.comments ?? []).map((body) => {
        const id = nextId++
        return { id, body, html_url: `#issuecomment-${id}`, edits: 0 }
      })
    })
  }
  let seq = 0
  let url = ""
  const web = () => url.replace(/\/api$/, "")
  const nextNumber = () => Math.max(0, ...state.issues.keys(), ...state.pulls.map((p) => p.number)) + 1
  const labelsOf = (set: Set<string>) => [...set].map((name) => ({ name }))
  const issueJson = (i: FakeIssue) => ({ id: i.id, number: i.number, state: i.state, labels: labelsOf(i.labels), title: i.title, body: i.body })
  const pullJson = (p: FakePull) => ({ number: p.number, html_url: p.html_url, state: p.state, title: p.title, body: p.body, head: { ref: p.head }, base: { ref: p.base }, labels: labelsOf(p.labels) })
  const commentJson = (c: FakeComment) => ({ id: c.id, body: c.body, html_url: c.html_url })

  const server = http.createServer((req, res) => {
    let raw = ""
    req.on("data", (d) => (raw += d))
    req.on("end", () => {
      const current = ++seq
      const parsed = new URL(req.url ?? "/", "http://127.0.0.1")
      const method = req.method ?? "GET"
      const prefix = `/api/repos/${options.repo}`
      const path = parsed.pathname.startsWith(prefix) ? parsed.pathname.slice(prefix.length) : parsed.pathname
      const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        state.requests.push({ seq: current, method, path: `${path}${parsed.search}`, status, authorization: req.headers.authorization, body: raw })
        res.writeHead(status, {
          "content-type": "application/json",
          "x-ratelimit-limit": "5000",
          "x-ratelimit-remaining": "4999",
          "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
          ...headers
        })
        res.end(body === undefined ? "" : JSON.stringify(body))
      }
      if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
        return reply(401, { message: "Bad credentials" })
      }
      const fault = state.faults.find((f) =>
        (f.method === undefined || f.method === method) &&
        (f.path === undefined || (typeof f.path === "string" ? path.includes(f.path) : f.path.test(path)))
      )
      if (fault !== undefined) {
        fault.times = (fault.times ?? 1) - 1
        if (fault.times <= 0) state.faults.splice(state.faults.indexOf(fault), 1)
        return reply(fault.status, { message: fault.message ?? `fault ${fault.status}` }, { ...fault.headers })
      }
      if (!parsed.pathname.startsWith(prefix)) return reply(404, { message: "Not Found" })
      let body: Record<string, unknown> = {}
      try {
        body = raw === "" ? {} : JSON.parse(raw)
      } catch {
        return reply(400, { message: "Problems parsing JSON" })
      }
      const issueOf = (n: string) => state.issues.get(Number(n))
      let m: RegExpMatchArray | null
      if ((m = path.match(/^\/issues\/(\d+)\/comments$/))) {
        const issue = issueOf(m[1]!)
        if (issue === undefined) return reply(404, { message: "Not Found" })
        if (method === "GET") return reply(200, issue.comments.map(commentJson))
        if (method === "POST") {
          const id = nextId++
          const c: FakeComment = { id, body: String(body.body ?? ""), html_url: `${web()}/${options.repo}/issues/${issue.number}#issuecomment-${id}`, edits: 0 }
          issue.comments.push(c)
          return reply(201, commentJson(c))
        }
      }
      if ((m = path.match(/^\/issues\/comments\/(\d+)$/)) && method === "PATCH") {
        const c = [...state.issues.values()].flatMap((i) => i.comments).find((c) => c.id === Number(m![1]))
        if (c === undefined) return reply(404, { message: "Not Found" })
        c.body = String(body.body ?? "")
        c.edits++
        return reply(200, commentJson(c))
      }
      if ((m = path.match(/^\/issues\/(\d+)\/labels$/)) && method === "POST") {
        const n = Number(m[1])
        const target = state.issues.get(n)?.labels ?? state.pulls.find((p) => p.number === n)?.labels
        if (target === undefined) return reply(404, { message: "Not Found" })
        for (const l of (body.labels as Array<string>) ?? []) target.add(l)
        return reply(200, labelsOf(target))
      }
      if ((m = path.match(/^\/issues\/(\d+)\/labels\/(.+)$/)) && method === "DELETE") {
        const issue = issueOf(m[1]!)
        const name = decodeURIComponent(m[2]!)
        if (issue === undefined || !issue.labels.has(name)) return reply(404, { message: "Label does not exist" })
        issue.labels.delete(name)
        return reply(200, labelsOf(issue.labels))
      }
      if (path === "/issues" && method === "GET") {
        const page = Number(parsed.searchParams.get("page") ?? "1")
        const perPage = Number(parsed.searchParams.get("per_page") ?? "30")
        const want = parsed.searchParams.get("state") ?? "open"
        const all = [...state.issues.values()].filter((i) => want === "all" || i.state === want).sort((a, b) => b.number - a.number)
        return reply(200, all.slice((page - 1) * perPage, page * perPage).map(issueJson))
      }
      if (path === "/issues" && method === "POST") {
        if (typeof body.title !== "string" || body.title === "") return reply(422, { message: "Validation Failed: title" })
        const number = nextNumber()
        const issue: FakeIssue = { number, id: 500_000 + number, title: body.title, body: String(body.body ?? ""), subIssues: [], state: "open", labels: new Set(), comments: [] }
        state.issues.set(number, issue)
        return reply(201, issueJson(issue))
      }
      if ((m = path.match(/^\/issues\/(\d+)\/sub_issues$/))) {
        const issue = issueOf(m[1]!)
        if (issue === undefined || !state.subIssues) return reply(404, { message: "Not Found" })
        if (method === "GET") return reply(200, issue.subIssues.flatMap((n) => { const i = state.issues.get(n); return i === undefined ? [] : [issueJson(i)] }))
        if (method === "POST") {
          const child = [...state.issues.values()].find((i) => i.id === Number(body.sub_issue_id))
          if (child === undefined) return reply(422, { message: "Validation Failed: sub_issue_id is not an issue id of this repository" })
          if (issue.subIssues.includes(child.number)) return reply(422, { message: "Validation Failed: already a sub-issue" })
          issue.subIssues.push(child.number)
          return reply(201, issueJson(issue))
        }
      }
      if ((m = path.match(/^\/issues\/(\d+)$/))) {
        const issue = issueOf(m[1]!)
        if (issue === undefined) return reply(404, { message: "Not Found" })
        if (method === "GET") return reply(200, issueJson(issue))
        if (method === "PATCH") {
          if (typeof body.body === "string") issue.body = body.body
          if (typeof body.title === "string") issue.title = body.title
          if (body.state === "closed" && issue.state !== "closed") {
            issue.state = "closed"
            issue.closedAt = current
          }
          return reply(200, issueJson(issue))
        }
      }
      if ((m = path.match(/^\/statuses\/([0-9a-f]{7,40})$/)) && method === "POST") {
        const s: FakeStatus = { sha: m[1]!, state: String(body.state), context: String(body.context ?? "default"), description: String(body.description ?? "") }
        state.statuses.push(s)
        return reply(201, { ...s, id: nextId++ })
      }
      if (path === "/pulls" && method === "GET") {
        const head = parsed.searchParams.get("head")?.split(":").at(-1)
        const base = parsed.searchParams.get("base")
        const want = parsed.searchParams.get("state") ?? "open"
        return reply(200, state.pulls.filter((p) => (head == null || p.head === head) && (base == null || p.base === base) && (want === "all" || p.state === want)).map(pullJson))
      }
      if (path === "/pulls" && method === "POST") {
        const head = String(body.head ?? "")
        if (state.pulls.some((p) => p.head === head && p.state === "open")) {
          return reply(422, { message: `A pull request already exists for ${head}.` })
        }
        const number = nextNumber()
        const p: FakePull = {
          number,
          head,
          base: String(body.base ?? ""),
          title: String(body.title ?? ""),
          body: String(body.body ?? ""),
          state: "open",
          labels: new Set(),
          html_url: `${web()}/${options.repo}/pull/${number}`,
          edits: 0
        }
        state.pulls.push(p)
        return reply(201, pullJson(p))
      }
      if ((m = path.match(/^\/pulls\/(\d+)$/)) && method === "PATCH") {
        const p = state.pulls.find((p) => p.number === Number(m![1]))
        if (p === undefined) return reply(404, { message: "Not Found" })
        if (typeof body.title === "string") p.title = body.title
        if (typeof body.body === "string") p.body = body.body
        p.edits++
        return reply(200, pullJson(p))
      }
      return reply(404, { message: "Not Found" })
    })
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`
      resolve({
        url,
        repo: options.repo,
        state,
        close: () => new Promise<void>((done) => {
          server.closeAllConnections()
          server.close(() => done())
        })
      })
    })
  })
}
