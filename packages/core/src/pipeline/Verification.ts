/**
 * Integration verification: the plan's `verify` commands, run in the integration workspace
 * with every stream merged. Every command runs; the stage passes when all exit 0.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Schema } from "effect"
import type * as CommandSpec from "../run/CommandSpec.js"
import * as Progress from "../ports/Progress.js"
import * as RunState from "../run/RunState.js"
import * as Sandbox from "../system/Sandbox.js"
import * as Workspace from "../ports/Workspace.js"

/** The verify commands could not be run at all. */
export class VerificationUnavailable extends Schema.TaggedError<VerificationUnavailable>()("VerificationUnavailable", {
  message: Schema.String
}) {}

/** Runs the verify commands in the run's integration. */
export const verify = Effect.fn("Verification.verify")(
  function*(commands: ReadonlyArray<CommandSpec.Command>, integration: Workspace.Integration) {
    const progress = yield* Progress.Progress
    const started = yield* Clock.currentTimeMillis
    const commit = yield* integration.head
    yield* Effect.annotateCurrentSpan({ "braid.commit": commit, "braid.commands": commands.length })
    yield* progress.publish({
      _tag: "VerificationStarted",
      at: DateTime.formatIso(yield* DateTime.now),
      commit,
      commands: commands.map((c) => c.name)
    })
    // Confined to the integration's checkout when the run is.
    const confine = Sandbox.within(yield* Sandbox.policyOf(integration.files))
    const checks = yield* confine(Effect.forEach(commands, (command) => integration.exec(command)))
    const passed = checks.every((c) => c.exitCode === 0)
    yield* Effect.annotateCurrentSpan("braid.passed", passed)
    yield* progress.publish({
      _tag: "VerificationFinished",
      at: DateTime.formatIso(yield* DateTime.now),
      passed,
      commit,
      checks
    })
    return new RunState.VerificationRecord({
      ran: commands.length > 0,
      passed,
      commit,
      checks,
      durationMs: (yield* Clock.currentTimeMillis) - started
    })
  },
  Effect.mapError((e) => new VerificationUnavailable({ message: e.message }))
)
