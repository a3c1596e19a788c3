#!/usr/bin/env node
/**
 * The `braid` executable: runs the command and maps every outcome to an exit code —
 * 0 success, 1 a run that finished with something failed or needing review (or an
 * operational failure), 2 invalid input or usage, 75 paused by a usage limit, 130
 * interrupted. User mistakes print one clear message, never a stack trace.
 *
 * Help, the version and unknown options are answered from plain data before the engine is
 * loaded; a command loads the engine as one bundled script with V8's code cache (Bundle.ts).
 */
import * as Bundle from "./Bundle.js"
import * as Help from "./Help.js"

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

if (!Help.answer(Help.early(process.argv.slice(2), Help.styleOf(process.stdout, process.env)))) {
  const Main = await Bundle.main()
  Main.start(process.argv)
}
