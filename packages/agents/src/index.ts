/**
 * @braid/agents — agent, reviewer and conflict-resolver implementations, the role map,
 * and the mocked-agent test harness.
 *
 * @since 0.1.0
 */
export * as Harness from "./Harness.js"
export * as Roles from "./Roles.js"
