#!/usr/bin/env node
/**
 * The `braid` executable: runs the command and maps every outcome to an exit code —
 * 0 success, 1 a run that finished with something failed or needing review (or an
 * operational failure), 2 invalid input or usage, 130 interrupted. User mistakes print
 * one clear message, never a stack trace.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import * as Main from "./Main.js"

// The first Ctrl-C (or SIGTERM) interrupts the run gracefully (the runtime handles it);
// a second one exits at once.
let signals = 0
const onSignal = () => {
  if (++signals >= 2) {
    process.stderr.write("\nbraid: stopped at once\n")
    process.exit(130)
  }
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

Main.main(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown: (exit, onExit) =>
      onExit(Exit.isFailure(exit) ? (Cause.isInterruptedOnly(exit.cause) ? 130 : 1) : (Number(process.exitCode ?? 0)))
  })
)
