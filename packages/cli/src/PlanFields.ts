/**
 * The fields the command's backends add to a plan's tasks (`Backend.taskFields`: the mock's
 * `mock:`), with which every command decodes plans: `Main` provides them as `Plan.TaskFields`
 * around each command, so `braid run`, `plan`, `resume`, `status`, `report` and a cluster's
 * runners read a plan the same way. Listed apart from the backends (`Backends.ts`) so that
 * `braid runs` and `status` load none; `preflight.test.ts` checks the list against theirs.
 *
 * @since 0.1.0
 */
import type * as Plan from "@braid/core/Plan"
import * as MockField from "@braid/testkit/MockField"

/** The task fields of `Backends.all`, in its order. */
export const taskFields: ReadonlyArray<Plan.TaskField> = [MockField.field]
