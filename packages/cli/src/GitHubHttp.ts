/**
 * The live `GitHub` port over GitHub's REST API, through `@effect/platform`'s HttpClient:
 * `Authorization: Bearer <GITHUB_TOKEN>` (read through `Config.redacted`, never printed), the
 * API version header, and GitHub's limits honoured — `x-ratelimit-remaining`/`reset`,
 * `retry-after`, 403/429 and secondary limits wait and try again, 5xx and network failures
 * back off; a wait longer than `maxWaitMs` gives up (a warning for the sync, never a stall).
 *
 * @since 0.3.0
 */
import { GitHub, type Plan, Secrets } from "@braid/core"
import { HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { Config, Duration, Effect, Layer, Option, Redacted, Schema, type Scope } from "effect"

/** The default API base URL. */
export const DEFAULT_API_URL = "https://api.github.com"

/** Whether a run syncs to GitHub, and with what; or why not. */
export type Settings =
  | { readonly _tag: "On"; readonly repo: string; readonly apiUrl: string; readonly token: Redacted.Redacted<string> }
  | { readonly _tag: "Off"; readonly reason: string }

/**
 * Decides whether sync happens: the plan's `githubRepo`, a `GITHUB_TOKEN`, and not
 * `--no-github`. The API URL is `github.apiUrl` (plan or `braid.config.yaml`), else
 * `GITHUB_API_URL`, else api.github.com.
 */
export const settings = (plan: Plan.Plan, options: { readonly noGithub: boolean }): Effect.Effect<Settings> =>
  Effect.gen(function*() {
    if (options.noGithub) return { _tag: "Off", reason: "--no-github" } as const
    if (plan.githubRepo === undefined) return { _tag: "Off", reason: "the plan has no githubRepo" } as const
    const token = yield* Config.option(Config.redacted("GITHUB_TOKEN")).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isNone(token) || Redacted.value(token.value).trim() === "") {
      return { _tag: "Off", reason: "GITHUB_TOKEN is not set" } as const
    }
    const fromEnv = yield* Config.option(Config.string("GITHUB_API_URL")).pipe(Effect.orElseSucceed(() => Option.none()))
    const env = Option.getOrUndefined(fromEnv)?.trim()
    const apiUrl = (plan.github.apiUrl ?? (env !== undefined && env !== "" ? env : undefined) ?? DEFAULT_API_URL).replace(/\/+$/, "")
    return { _tag: "On", repo: plan.githubRepo, apiUrl, token: token.value } as const
  })

/** Describes the settings in one line (for `braid plan`); never the token. */
export const describe = (s: Settings): string =>
  s._tag === "On" ? `GitHub sync: on (${s.repo} via ${s.apiUrl})` : `GitHub sync: off (${s.reason})`

/** Limits of the client's patience. */
export interface Limits {
  /** Retries of one request after a rate limit, a 5xx or a network failure (default 3). */
  readonly retries: number
  /** The longest single wait for a rate limit to lift (default 60 s); longer gives up. */
  readonly maxWaitMs: number
  /** The first backoff after a 5xx or a network failure (default 250 ms, doubling). */
  readonly backoffMs: number
  /** One request's timeout (default 30 s). */
  readonly timeoutMs: number
}

const defaultLimits: Limits = { retries: 3, maxWaitMs: 60_000, backoffMs: 250, timeoutMs: 30_000 }

const ErrorBody = Schema.Struct({ message: Schema.optional(Schema.String) })

const header = (response: HttpClientResponse.HttpClientResponse, name: string): string | undefined => {
  const value = response.headers[name]
  return typeof value === "string" ? value : undefined
}

/** What a client of one repository is made with. */
interface ClientOptions {
  readonly repo: string
  readonly apiUrl: string
  readonly token: Redacted.Redacted<string>
  readonly limits?: Partial<Limits>
}

/** Requests to one repository's REST API, with GitHub's limits honoured (shared by `make` and `issues`). */
const client = (options: ClientOptions) =>
  Effect.gen(function*() {
    const limits = { ...defaultLimits, ...options.limits }
    const http = yield* HttpClient.HttpClient
    const base = `${options.apiUrl}/repos/${options.repo}`
    // When GitHub said no requests are left, nothing is sent before this time (ms since epoch).
    let blockedUntil = 0

    const send = <A, I>(
      operation: string,
      request: HttpClientRequest.HttpClientRequest,
      schema: Schema.Schema<A, I> | undefined,
      accept: (status: number) => boolean = (s) => s >= 200 && s < 300
    ): Effect.Effect<A | undefined, GitHub.GitHubFailed> =>
      Effect.gen(function*() {
        const authorized = request.pipe(
          HttpClientRequest.setHeaders({
            accept: "application/vnd.github+json",
            "x-github-api-version": "2022-11-28",
            "user-agent": "braid"
          }),
          HttpClientRequest.bearerToken(Redacted.value(options.token))
        )
        const fail = (status: number | null, message: string) => new GitHub.GitHubFailed({ operation, status, message: Secrets.scrub(message) })
        const wait = (ms: number, why: string) =>
          ms > limits.maxWaitMs
            ? Effect.fail(fail(null, `${why}; it lifts in ${Math.ceil(ms / 1000)} s, longer than braid waits (${Math.round(limits.maxWaitMs / 1000)} s)`))
            : Effect.sleep(Duration.millis(Math.max(0, ms)))
        for (let attempt = 0;; attempt++) {
          const now = Date.now()
          if (blockedUntil > now) yield* wait(blockedUntil - now, "GitHub's rate limit is used up")
          const result = yield* http.execute(authorized).pipe(
            Effect.timeout(Duration.millis(limits.timeoutMs)),
            Effect.either
          )
          if (result._tag === "Left") {
            if (attempt >= limits.retries) return yield* fail(null, `GitHub did not answer: ${result.left.message}`)
            yield* Effect.sleep(Duration.millis(limits.backoffMs * 2 ** attempt))
            continue
          }
          const response = result.right
          const remaining = header(response, "x-ratelimit-remaining")
          const reset = Number(header(response, "x-ratelimit-reset") ?? "")
          if (remaining === "0" && Number.isFinite(reset)) blockedUntil = reset * 1000
          const status = response.status
          if (accept(status)) {
            if (schema === undefined || status === 204) return undefined
            const body = yield* response.json.pipe(Effect.mapError((e) => fail(status, `unreadable answer: ${e.message}`)))
            return yield* Schema.decodeUnknown(schema, { onExcessProperty: "ignore" })(body).pipe(
              Effect.mapError((e) => fail(status, `unexpected answer: ${e.message}`))
            )
          }
          const text = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
          const message = Option.getOrUndefined(
            Option.flatMap(Schema.decodeUnknownOption(Schema.parseJson(ErrorBody))(text), (b) => Option.fromNullable(b.message))
          ) ?? text.slice(0, 200)
          const retryAfter = Number(header(response, "retry-after") ?? "")
          const limited = (status === 403 || status === 429) &&
            (Number.isFinite(retryAfter) && header(response, "retry-after") !== undefined || remaining === "0" || /rate limit/i.test(message))
          if (limited && attempt < limits.retries) {
            const ms = header(response, "retry-after") !== undefined && Number.isFinite(retryAfter)
              ? retryAfter * 1000
              : remaining === "0" && Number.isFinite(reset)
              ? reset * 1000 - Date.now() + 250
              // A secondary limit without a hint: a minute, as GitHub's documentation advises.
              : 60_000 * 2 ** attempt
            yield* wait(ms, `rate limited (${status}: ${message})`)
            continue
          }
          if (status >= 500 && attempt < limits.retries) {
            yield* Effect.sleep(Duration.millis(limits.backoffMs * 2 ** attempt))
            continue
          }
          return yield* fail(status, `${request.method} ${request.url.replace(options.apiUrl, "")} answered ${status}${message !== "" ? `: ${message}` : ""}`)
        }
      }).pipe(Effect.withSpan("GitHubHttp.send", { attributes: { operation } }))

    // Every body sent (comments, the pull request, statuses) is scrubbed of credentials here, whatever built it.
    const json = (method: "POST" | "PATCH", url: string, body: unknown) =>
      HttpClientRequest.make(method)(url).pipe(HttpClientRequest.bodyUnsafeJson(Secrets.scrubValue(body)))
    const must = <A>(effect: Effect.Effect<A | undefined, GitHub.GitHubFailed>) => effect as Effect.Effect<A, GitHub.GitHubFailed>
    return { send, json, must, base }
  })

/** A GitHub service over HTTP for one repository. */
export const make = (options: ClientOptions): Effect.Effect<GitHub.Service, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const { base, json, must, send } = yield* client(options)
    const service: GitHub.Service = {
      repo: options.repo,
      listComments: (issue) =>
        must(send("list comments", HttpClientRequest.get(`${base}/issues/${issue}/comments?per_page=100`), Schema.Array(GitHub.Comment))),
      createComment: (issue, body) => must(send("comment", json("POST", `${base}/issues/${issue}/comments`, { body }), GitHub.Comment)),
      updateComment: (id, body) => must(send("edit comment", json("PATCH", `${base}/issues/comments/${id}`, { body }), GitHub.Comment)),
      getIssue: (issue) => must(send("read issue", HttpClientRequest.get(`${base}/issues/${issue}`), GitHub.Issue)),
      addLabels: (issue, labels) => Effect.asVoid(send("add labels", json("POST", `${base}/issues/${issue}/labels`, { labels }), undefined)),
      removeLabel: (issue, label) =>
        Effect.asVoid(send("remove label", HttpClientRequest.del(`${base}/issues/${issue}/labels/${encodeURIComponent(label)}`), undefined, (s) => (s >= 200 && s < 300) || s === 404)),
      closeIssue: (issue) => Effect.asVoid(send("close issue", json("PATCH", `${base}/issues/${issue}`, { state: "closed", state_reason: "completed" }), undefined)),
      createStatus: (sha, status) =>
        Effect.asVoid(send("commit status", json("POST", `${base}/statuses/${sha}`, { state: status.state, context: status.context, description: status.description.slice(0, 140) }), undefined)),
      findPull: (head, baseBranch) =>
        Effect.map(
          must<ReadonlyArray<GitHub.Pull>>(send(
            "find pull request",
            HttpClientRequest.get(`${base}/pulls?state=open&head=${encodeURIComponent(`${options.repo.split("/")[0]}:${head}`)}&base=${encodeURIComponent(baseBranch)}`),
            Schema.Array(GitHub.Pull)
          )),
          (pulls) => Option.fromNullable(pulls[0])
        ),
      createPull: (pull) => must(send("open pull request", json("POST", `${base}/pulls`, pull), GitHub.Pull)),
      updatePull: (number, pull) => must(send("update pull request", json("PATCH", `${base}/pulls/${number}`, pull), GitHub.Pull))
    }
    return service
  })

/**
 * The GitHub service for settings that are on, over Node's HTTP client (which lives as long as the scope).
 * The client (undici, with the Node modules it needs) is loaded only here: a command that never
 * syncs to GitHub does not pay for it at start-up.
 */
export const live = (s: Extract<Settings, { _tag: "On" }>, limits?: Partial<Limits>): Effect.Effect<GitHub.Service, never, Scope.Scope> =>
  Effect.promise(() => import("@effect/platform-node/NodeHttpClient")).pipe(
    Effect.flatMap((NodeHttpClient) => Layer.build(NodeHttpClient.layerUndici)),
    Effect.flatMap((context) =>
      make({ repo: s.repo, apiUrl: s.apiUrl, token: s.token, ...(limits !== undefined ? { limits } : {}) }).pipe(Effect.provide(context))
    )
  )

/** An issue with what drafting a plan reads of it: its id (for sub-issues), title and body. */
export const IssueText = Schema.Struct({
  id: Schema.Number,
  number: Schema.Number,
  title: Schema.optionalWith(Schema.String, { default: () => "" }),
  body: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** Present on pull requests, which share the issues' list. */
  pull_request: Schema.optional(Schema.Unknown)
})
export type IssueText = typeof IssueText.Type

/** The issue operations `braid draft` uses: read an issue and its comments, find, create and link issues. */
export interface Issues {
  readonly repo: string
  readonly getIssue: (issue: number) => Effect.Effect<IssueText, GitHub.GitHubFailed>
  readonly listComments: (issue: number) => Effect.Effect<ReadonlyArray<GitHub.Comment>, GitHub.GitHubFailed>
  /** Every issue of the repository, open and closed (at most `pages` pages of 100). */
  readonly listIssues: (pages?: number) => Effect.Effect<ReadonlyArray<IssueText>, GitHub.GitHubFailed>
  readonly createIssue: (issue: { readonly title: string; readonly body: string }) => Effect.Effect<IssueText, GitHub.GitHubFailed>
  /** Makes `subIssueId` (an issue's id, not its number) a sub-issue of `parent`; false where the endpoint is not found (404). */
  readonly addSubIssue: (parent: number, subIssueId: number) => Effect.Effect<boolean, GitHub.GitHubFailed>
  readonly updateBody: (issue: number, body: string) => Effect.Effect<void, GitHub.GitHubFailed>
}

/** The issue operations over HTTP for settings that are on, over Node's HTTP client (which lives as long as the scope). */
export const issues = (s: Extract<Settings, { _tag: "On" }>, limits?: Partial<Limits>): Effect.Effect<Issues, never, Scope.Scope> =>
  Effect.promise(() => import("@effect/platform-node/NodeHttpClient")).pipe(
    Effect.flatMap((NodeHttpClient) => Layer.build(NodeHttpClient.layerUndici)),
    Effect.flatMap((context) =>
      Effect.gen(function*() {
        const { base, json, must, send } = yield* client({ repo: s.repo, apiUrl: s.apiUrl, token: s.token, ...(limits !== undefined ? { limits } : {}) })
        const service: Issues = {
          repo: s.repo,
          getIssue: (issue) => must(send("read issue", HttpClientRequest.get(`${base}/issues/${issue}`), IssueText)),
          listComments: (issue) =>
            must(send("list comments", HttpClientRequest.get(`${base}/issues/${issue}/comments?per_page=100`), Schema.Array(GitHub.Comment))),
          listIssues: (pages = 10) =>
            Effect.gen(function*() {
              const all: Array<IssueText> = []
              for (let page = 1; page <= pages; page++) {
                const got = yield* must<ReadonlyArray<IssueText>>(
                  send("list issues", HttpClientRequest.get(`${base}/issues?state=all&per_page=100&page=${page}`), Schema.Array(IssueText))
                )
                all.push(...got.filter((i) => i.pull_request === undefined))
                if (got.length < 100) break
              }
              return all
            }),
          createIssue: (issue) => must(send("create issue", json("POST", `${base}/issues`, issue), IssueText)),
          addSubIssue: (parent, subIssueId) =>
            send("add sub-issue", json("POST", `${base}/issues/${parent}/sub_issues`, { sub_issue_id: subIssueId }), undefined).pipe(
              Effect.as(true),
              // GitHub Enterprise versions and repositories without sub-issues answer 404: the caller falls back to a task list.
              Effect.catchAll((e) => e.status === 404 ? Effect.succeed(false) : Effect.fail(e))
            ),
          updateBody: (issue, body) => Effect.asVoid(send("edit issue", json("PATCH", `${base}/issues/${issue}`, { body }), undefined))
        }
        return service
      }).pipe(Effect.provide(context))
    )
  )
