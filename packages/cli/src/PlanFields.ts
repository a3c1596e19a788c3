/**
 * What the command's backends add to plans, with which every command decodes them: the fields
 * they add to tasks (`Backend.taskFields`: the mock's `mock:`) and each one's settings under
 * `agents.<name>` (`Backend.settings`). `Main` provides them as `Plan.BackendFields` around each
 * command, so `braid run`, `plan`, `resume`, `status`, `report` and a cluster's runners read a
 * plan the same way. Listed apart from the backends (`Backends.ts`) so that `braid runs` and
 * `status` load none; `preflight.test.ts` checks the list against theirs.
 *
 * @since 0.1.0
 */
import * as Settings from "@braid/agents/Settings"
import type * as Plan from "@braid/core/Plan"
import * as MockField from "@braid/testkit/MockField"

/** The task fields of `Backends.all`, in its order. */
export const taskFields: ReadonlyArray<Plan.TaskField> = [MockField.field]

/** The settings Schemas of `Backends.all`, by name, in its order. */
export const settings: Readonly<Record<string, Schema>> = {
  script: Settings.Plain,
  mock: Settings.Plain,
  aider: Settings.Aider,
  command: Settings.Command,
  "claude-code": Settings.ClaudeCode,
  codex: Settings.Codex,
  gemini: Settings.Gemini,
  llm: Settings.Llm
}

type Schema = Plan.Declarations["settings"][string]

/** What plans are decoded with (`Plan.BackendFields`). */
export const declarations: Plan.Declarations = { taskFields, settings }
