#!/usr/bin/env node
/**
 * The `braid` executable: runs the command and maps every outcome to an exit code —
 * 0 success, 1 a run that finished with something failed or needing review (or an
 * operational failure), 2 invalid input or usage. User mistakes print one clear message,
 * never a stack trace.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Main from "./Main.js"

Main.main(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
