/**
 * The mock backend's field in a plan's tasks, `mock:`: the scores a task's attempts get and the
 * files they write. The mock backend declares it (`Harness.backend.taskFields`), so plans are
 * decoded with it wherever the mock is offered (the CLI provides it in `Plan.BackendFields`); core's
 * plan knows nothing of it. Kept apart from the harness so reading a plan loads no backend.
 *
 * @since 0.1.0
 */
// By path, not @braid/core's index: the CLI's start-up path (`braid runs`, `braid status`) imports this module.
import * as Plan from "@braid/core/Plan"
import { Schema } from "effect"

/** Scripting for the mock backend's agents (`agent: mock`): what each attempt scores, and the files it writes. */
export class MockScript extends Schema.Class<MockScript>("MockScript")({
  scores: Schema.optional(Schema.Array(Schema.Number.pipe(Schema.between(0, 100)))),
  files: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
}) {}

/** `mock:` in a task. Its texts are one line each, but a file's content (`files.<path>`) may span lines. */
export const field: Plan.TaskField<MockScript> = Plan.taskField("mock", MockScript, {
  multiLine: (path) => path.length === 2 && path[0] === "files"
})
