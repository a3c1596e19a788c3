/**
 * The `GitHub` port: the few REST operations braid uses on a plan's `githubRepo` — issue
 * comments found again by a hidden marker, status labels, closing an issue, a commit status,
 * and the pull request of `--land pr`. The Schemas here are the parts of GitHub's responses
 * braid reads; the HTTP implementation (`@braid/cli` GitHubHttp) decodes with them.
 *
 * @since 0.3.0
 */
import { Context, type Effect, type Option, Schema } from "effect"

/** A GitHub call failed (HTTP status, network, rate limit not lifted in time); never fatal to a run. */
export class GitHubFailed extends Schema.TaggedError<GitHubFailed>()("GitHubFailed", {
  operation: Schema.String,
  /** The HTTP status, when there was a response. */
  status: Schema.NullOr(Schema.Number),
  message: Schema.String
}) {}

/** An issue comment, as braid reads it. */
export const Comment = Schema.Struct({
  id: Schema.Number,
  body: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  html_url: Schema.optionalWith(Schema.String, { default: () => "" })
})
export type Comment = typeof Comment.Type

/** A label on an issue. */
export const Label = Schema.Struct({ name: Schema.String })

/** An issue, as braid reads it. */
export const Issue = Schema.Struct({
  number: Schema.Number,
  state: Schema.String,
  labels: Schema.Array(Schema.Union(Label, Schema.String))
})
export type Issue = typeof Issue.Type

/** A pull request, as braid reads it. */
export const Pull = Schema.Struct({
  number: Schema.Number,
  html_url: Schema.String,
  state: Schema.String
})
export type Pull = typeof Pull.Type

/** A commit status's state. */
export const StatusState = Schema.Literal("success", "failure", "error", "pending")
export type StatusState = typeof StatusState.Type

/** The GitHub operations braid uses, on one repository. */
export interface Service {
  /** `owner/name`. */
  readonly repo: string
  readonly listComments: (issue: number) => Effect.Effect<ReadonlyArray<Comment>, GitHubFailed>
  readonly createComment: (issue: number, body: string) => Effect.Effect<Comment, GitHubFailed>
  readonly updateComment: (id: number, body: string) => Effect.Effect<Comment, GitHubFailed>
  readonly getIssue: (issue: number) => Effect.Effect<Issue, GitHubFailed>
  readonly addLabels: (issue: number, labels: ReadonlyArray<string>) => Effect.Effect<void, GitHubFailed>
  /** Removes a label (one the issue does not have is not an error). */
  readonly removeLabel: (issue: number, label: string) => Effect.Effect<void, GitHubFailed>
  readonly closeIssue: (issue: number) => Effect.Effect<void, GitHubFailed>
  readonly createStatus: (
    sha: string,
    status: { readonly state: StatusState; readonly context: string; readonly description: string }
  ) => Effect.Effect<void, GitHubFailed>
  /** The open pull request from `head` (a branch of this repository) into `base`, if there is one. */
  readonly findPull: (head: string, base: string) => Effect.Effect<Option.Option<Pull>, GitHubFailed>
  readonly createPull: (pull: { readonly title: string; readonly head: string; readonly base: string; readonly body: string }) => Effect.Effect<Pull, GitHubFailed>
  readonly updatePull: (number: number, pull: { readonly title: string; readonly body: string }) => Effect.Effect<Pull, GitHubFailed>
}

/** The GitHub repository a run syncs to (present only when sync is on). */
export class GitHub extends Context.Tag("@braid/core/GitHub")<GitHub, Service>() {}

/** The status labels braid sets on a task's issue; setting one removes the others. */
export const STATUS_LABELS = ["braid:in-progress", "braid:needs-review", "braid:completed", "braid:failed"] as const
export type StatusLabel = typeof STATUS_LABELS[number]

/** The commit status context of the verification result. */
export const VERIFY_CONTEXT = "braid/verify"

/** The hidden marker that finds a run's comment again (after a restart, on resume). */
export const marker = (runId: string, subject: { readonly taskId: string } | "summary"): string =>
  subject === "summary" ? `<!-- braid:run=${runId} summary -->` : `<!-- braid:run=${runId} task=${subject.taskId} -->`

/** Fact `github/comment/<issue>/<subject>`: the comment braid posted, so not even a lookup is needed again. */
export class CommentNoted extends Schema.TaggedClass<CommentNoted>()("GitHubCommentNoted", {
  issue: Schema.Number,
  commentId: Schema.Number,
  url: Schema.String
}) {}

/** Fact `github/pull`: the pull request `--land pr` opened (updated, never opened again, on resume). */
export class PullNoted extends Schema.TaggedClass<PullNoted>()("GitHubPullNoted", {
  number: Schema.Number,
  url: Schema.String,
  head: Schema.String,
  base: Schema.String
}) {}

/** Journal keys of the GitHub facts. */
export const keys = {
  comment: (issue: number, subject: string) => `github/comment/${issue}/${subject}`,
  pull: "github/pull"
} as const
