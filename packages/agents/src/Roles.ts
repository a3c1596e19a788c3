/**
 * The seed's roles: which specialist carries out each stream type, and what it is told.
 *
 * @since 0.1.0
 */
import { Agent, type Plan } from "@braid/core"

/** Stream type → agent role (database → database-engineer, …, infrastructure → architect). */
export const byStreamType: Readonly<Record<Plan.StreamType, string>> = Agent.roles

/** What each role is responsible for; the opening of an agent's instructions. */
export const descriptions: Readonly<Record<string, string>> = {
  "database-engineer": "You design schemas, migrations and the data layer.",
  "api-developer": "You build the service layer, endpoints and API contracts.",
  "ui-developer": "You build components, forms and the front end.",
  "test-engineer": "You write test suites and validate acceptance criteria.",
  "documentation-writer": "You write technical documentation, API docs and user guides.",
  "architect": "You own infrastructure, build and deployment configuration."
}

/** The role for a stream: its own `agent` role if it names one, else its type's. */
export const roleOf = (stream: Plan.PlannedStream): string => Agent.roleOf(stream)
