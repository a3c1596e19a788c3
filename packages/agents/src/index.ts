/**
 * @braid/agents — agent, reviewer and conflict-resolver implementations and the role map.
 * The test doubles (the harness and its mock backend, the scripted model servers) are
 * `@braid/testkit`'s.
 *
 * @since 0.1.0
 */
export * as AgentResolver from "./AgentResolver.js"
export * as Aider from "./Aider.js"
export * as Backend from "./Backend.js"
export * as ClaudeCode from "./ClaudeCode.js"
export * as Codex from "./Codex.js"
export * as CommandAgent from "./CommandAgent.js"
export * as CommandReviewer from "./CommandReviewer.js"
export * as Gemini from "./Gemini.js"
export * as Judge from "./Judge.js"
export * as Llm from "./Llm.js"
export * as Pricing from "./Pricing.js"
export * as Prompt from "./Prompt.js"
export * as Registry from "./Registry.js"
export * as Reviewers from "./Reviewers.js"
export * as Roles from "./Roles.js"
export * as ScriptAgent from "./ScriptAgent.js"
export * as ScriptResolver from "./ScriptResolver.js"
export * as Settings from "./Settings.js"
