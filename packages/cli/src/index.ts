/**
 * @braid/cli — the `braid` command, as a library for embedding or testing.
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"
export * as Forecast from "./Forecast.js"
export * as GitHubHttp from "./GitHubHttp.js"
export * as Main from "./Main.js"
export * as Render from "./Render.js"
export * as Wiring from "./Wiring.js"
