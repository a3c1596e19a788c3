/**
 * The landing modes: how the verified integration commit reaches the target — `local`
 * (fast-forward the target branch in the repository), `push` (push it to the target branch of a
 * remote, fast-forward only) or `pr` (push the integration branch to a remote and open, or
 * update, a pull request into the target on the plan's `githubRepo`). Each mode is one value in
 * `modes`, and every Schema that names a mode takes `ModeName`, made from that list; `Landing`
 * runs the chosen one as the durable step `land/<commit>`. This module imports no braid module
 * that names a mode, so `Workspace`, `Progress` and `RunReport` can take the names from it.
 *
 * @since 0.1.0
 */
import { Array as Arr, Effect, Option, Schema } from "effect"
import * as GitHub from "../ports/GitHub.js"
import * as Steps from "../ports/Steps.js"
import type * as Workspace from "../ports/Workspace.js"

/** The target could not be reached (it moved, the working tree is dirty, a push was rejected or failed). */
export class LandingRefused extends Schema.TaggedError<LandingRefused>()("LandingRefused", {
  message: Schema.String
}) {}

/** What a mode is asked to land. */
export interface Request {
  readonly runId: string
  /** The branch the landing advances (or the pull request's base). */
  readonly target: string
  /** The remote `push` and `pr` push to. */
  readonly remote: string
  /** The pull request's title and body (`pr`). */
  readonly title: string
  readonly body: string
  /** Labels of the pull request (`pr`). */
  readonly labels: ReadonlyArray<string>
}

/** Where a mode landed: the fields of the `Workspace.Landing` journaled and reported. */
export type Landed = ConstructorParameters<typeof Workspace.Landing>[0]

/** One way of landing: a value in `modes`. */
export interface Mode<N extends string = string> {
  readonly name: N
  readonly description: string
  /** Whether it needs the `GitHub` service (a `githubRepo` and a token). */
  readonly needsGitHub: boolean
  /** Whether it touches the local target branch (so a dirty checkout of it is refused before the run). */
  readonly local: boolean
  /** Lands the verified integration commit on the run's target. */
  readonly land: (
    request: Request,
    workspace: Workspace.Target
  ) => Effect.Effect<Landed, Workspace.WorkspaceError | GitHub.GitHubFailed | LandingRefused, Steps.Steps>
}

/** Fast-forwards the target branch in the repository (the default). */
export const local: Mode<"local"> = {
  name: "local",
  description: "fast-forward the target branch in the repository",
  needsGitHub: false,
  local: true,
  land: (_, workspace) => Effect.map(workspace.land, (l) => ({ ...l, mode: "local" }))
}

/** Where a push to the remote landed (`push`: the target branch; `pr`: the pull request's head, into the target). */
const pushedTo = (request: Request, pushed: Workspace.Pushed, mode: ModeName): Landed => ({
  target: request.target,
  commit: pushed.commit,
  previous: pushed.previous ?? "",
  fastForward: true,
  mode,
  remote: request.remote
})

/** Pushes the verified commit to the target branch of a remote, fast-forward only. */
export const push: Mode<"push"> = {
  name: "push",
  description: "push the verified commit to the target branch on the remote (fast-forward only, never forced)",
  needsGitHub: false,
  local: false,
  land: (request, workspace) =>
    Effect.map(workspace.push({ remote: request.remote, branch: request.target }), (pushed) => pushedTo(request, pushed, "push"))
}

/** The branch `pr` pushes and proposes. */
export const pullBranch = (runId: string) => `braid/${runId}/integration`

/** Pushes the integration branch and opens (or, continuing a run, updates) a pull request into the target. */
export const pullRequest: Mode<"pr"> = {
  name: "pr",
  description: "push the integration branch to the remote and open (or update) a pull request into the target on githubRepo",
  needsGitHub: true,
  local: false,
  land: (request, workspace) =>
    Effect.gen(function*() {
      const steps = yield* Steps.Steps
      const github = yield* Effect.serviceOption(GitHub.GitHub)
      if (Option.isNone(github)) {
        return yield* new LandingRefused({ message: "--land pr needs GitHub: the plan's githubRepo and GITHUB_TOKEN (and not --no-github)" })
      }
      const gh = github.value
      const head = pullBranch(request.runId)
      const pushed = yield* workspace.push({ remote: request.remote, branch: head })
      // Journaled the moment it exists: a run continued after a crash updates it, never opens another.
      const noted = yield* steps.recall(GitHub.keys.pull, GitHub.PullNoted)
      const found = Option.isSome(noted)
        ? Option.some({ number: noted.value.number, html_url: noted.value.url, state: "open" })
        : yield* gh.findPull(head, request.target)
      const pull = Option.isSome(found)
        ? yield* gh.updatePull(found.value.number, { title: request.title, body: request.body })
        : yield* gh.createPull({ title: request.title, head, base: request.target, body: request.body })
      if (Option.isNone(noted)) {
        yield* steps.record(GitHub.keys.pull, GitHub.PullNoted, new GitHub.PullNoted({ number: pull.number, url: pull.html_url, head, base: request.target }))
      }
      if (request.labels.length > 0) yield* gh.addLabels(pull.number, request.labels)
      return { ...pushedTo(request, pushed, "pr"), pullRequest: { number: pull.number, url: pull.html_url, head } }
    })
}

/** Every landing mode; `--land` and the journal accept their names. */
export const modes = [local, push, pullRequest] as const

/** The landing modes' names, as a Schema (made from `modes`). */
export const ModeName = Schema.Literal(...Arr.map(modes, (m) => m.name))
export type ModeName = typeof ModeName.Type

/** The mode with this name. */
export const modeNamed = (name: ModeName): Mode => modes.find((m) => m.name === name)!
