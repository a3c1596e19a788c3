/**
 * @braid/testkit — braid's test doubles, for braid's own tests and for users testing their
 * plans and integrations: the harness of scripted agents, reviewers and resolvers
 * (`Harness.make`), the scripted model servers the real agent CLIs run against offline
 * (`ScriptedServer` with `AnthropicServer`, `OpenAiServer`, `GeminiServer`), and a local
 * GitHub REST stand-in (`FakeGitHub`).
 *
 * The harness also makes the `mock` agent backend (`Harness.backend`, driven by each task's
 * `mock:` field, `MockField`). `agent: mock` is a backend users run — `--workspace memory`
 * and `npm run demo` use it to try a plan without a tool or a model — so `@braid/cli`
 * depends on this package and composes its backend list from `@braid/agents`' and this
 * one. Dependencies flow testkit → agents → core: neither of those imports this package.
 *
 * @since 0.1.0
 */
export * as AnthropicServer from "./AnthropicServer.js"
export * as FakeGitHub from "./FakeGitHub.js"
export * as GeminiServer from "./GeminiServer.js"
export * as Harness from "./Harness.js"
export * as MockField from "./MockField.js"
export * as OpenAiServer from "./OpenAiServer.js"
export * as ScriptedServer from "./ScriptedServer.js"
