/**
 * Landing: the verified integration commit reaches the target in one of the modes of
 * `LandingMode` (`local`, `push`, `pr`, re-exported here); the orchestrator runs the chosen one
 * as the durable step `land/<commit>`.
 *
 * @since 0.1.0
 */
import { DateTime, Effect } from "effect"
import { LandingRefused, type Mode, type Request } from "./LandingMode.js"
import * as Progress from "../ports/Progress.js"
import * as Workspace from "../ports/Workspace.js"

export {
  type Landed,
  LandingRefused,
  local,
  type Mode,
  ModeName,
  modeNamed,
  modes,
  pullBranch,
  pullRequest,
  push,
  type Request
} from "./LandingMode.js"

/** Lands the integration commit in a mode and publishes `Landed`. */
export const land = Effect.fn("Landing.land")(function*(mode: Mode, request: Request, target: Workspace.Target) {
  yield* Effect.annotateCurrentSpan({ "braid.run_id": request.runId, "braid.landing.mode": mode.name, "braid.target": request.target })
  const progress = yield* Progress.Progress
  const landing = new Workspace.Landing(yield* mode.land(request, target))
  yield* progress.publish({
    _tag: "Landed",
    at: DateTime.formatIso(yield* DateTime.now),
    target: landing.target,
    commit: landing.commit,
    previous: landing.previous,
    ...(landing.mode !== undefined ? { mode: landing.mode } : {}),
    ...(landing.remote !== undefined ? { remote: landing.remote } : {}),
    ...(landing.pullRequest !== undefined ? { pullRequest: landing.pullRequest.url } : {})
  })
  return landing
}, Effect.mapError((e) => e._tag === "LandingRefused" ? e : new LandingRefused({ message: e.message })))
