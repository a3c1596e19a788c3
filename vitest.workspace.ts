/**
 * The vitest projects: one per package, each testing `test/**` against the sources (the
 * aliases below, so no build is needed but for the CLI tests that run the built command).
 * The one list of them; `vitest.config.ts` hands it to `test.projects` (vitest 3.2 warns
 * about a workspace file it loads itself, not about this list imported into `projects`).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { defineProject, type TestProjectConfiguration } from "vitest/config"

/**
 * One module of @braid/core by its name (`@braid/core/Plan`), as the command's start-up path
 * imports it: where its source is, read from the package's own `exports` (`./Plan` →
 * `./dist/run/Plan.js` → `src/run/Plan.ts`), the one list of its public modules.
 */
const coreExports: Record<string, { readonly default: string } | null> = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, "packages/core/package.json"), "utf8")
).exports
const coreModules = Object.entries(coreExports).flatMap(([name, target]) =>
  name === "." || target === null || name.includes("*") ? [] : [{
    find: `@braid/core/${name.slice(2)}`,
    replacement: path.resolve(__dirname, "packages/core", target.default.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts"))
  }]
)

const alias = [
  ...coreModules,
  { find: "@braid/core", replacement: path.resolve(__dirname, "packages/core/src/index.ts") },
  { find: /^@braid\/agents\/(.+)$/, replacement: path.resolve(__dirname, "packages/agents/src/$1.ts") },
  { find: "@braid/agents", replacement: path.resolve(__dirname, "packages/agents/src/index.ts") },
  { find: /^@braid\/testkit\/(.+)$/, replacement: path.resolve(__dirname, "packages/testkit/src/$1.ts") },
  { find: "@braid/testkit", replacement: path.resolve(__dirname, "packages/testkit/src/index.ts") },
  { find: "@braid/cluster", replacement: path.resolve(__dirname, "packages/cluster/src/index.ts") },
  { find: "@braid/cli", replacement: path.resolve(__dirname, "packages/cli/src/index.ts") }
]

/** The packages with tests, each a vitest project of its name. */
export const packages = ["core", "agents", "testkit", "cluster", "cli"] as const

const projects: Array<TestProjectConfiguration> = packages.map((name) =>
  defineProject({
    resolve: { alias },
    test: {
      name,
      root: path.resolve(__dirname, "packages", name),
      include: ["test/**/*.test.ts"],
      // A cache folder per test file (the default home of a run's checkouts), never ~/.cache.
      setupFiles: [path.resolve(__dirname, "vitest.setup.ts")],
      testTimeout: 60_000,
      // Tests never reach GitHub: a token in the caller's environment would turn sync on for
      // plans with a githubRepo (the seed-shaped example); the GitHub tests set their own.
      env: { GITHUB_TOKEN: "", GITHUB_API_URL: "" },
      hookTimeout: 60_000
    }
  })
)

export default projects
