/**
 * Landing: the verified integration commit becomes the target branch (fast-forward only).
 *
 * @since 0.1.0
 */
import { DateTime, Effect, Schema } from "effect"
import * as Progress from "./Progress.js"
import * as Workspace from "./Workspace.js"

/** The target could not be advanced (it moved, or the working tree is dirty). */
export class LandingRefused extends Schema.TaggedError<LandingRefused>()("LandingRefused", {
  message: Schema.String
}) {}

/** Advances the target to the integration commit. */
export const land = () =>
  Effect.gen(function*() {
    const workspace = yield* Workspace.Workspace
    const progress = yield* Progress.Progress
    const landing = yield* workspace.land()
    yield* progress.publish({ _tag: "Landed", at: DateTime.formatIso(yield* DateTime.now), target: landing.target, commit: landing.commit, previous: landing.previous })
    return landing
  }).pipe(Effect.mapError((e) => new LandingRefused({ message: e.message })))
