import * as path from "node:path"
import { defineConfig } from "vitest/config"

const alias = [
  // One module of @braid/core by its path (`@braid/core/Plan`), as the command's start-up path imports it.
  { find: /^@braid\/core\/(.+)$/, replacement: path.resolve(__dirname, "packages/core/src/$1.ts") },
  { find: "@braid/core", replacement: path.resolve(__dirname, "packages/core/src/index.ts") },
  { find: "@braid/agents", replacement: path.resolve(__dirname, "packages/agents/src/index.ts") },
  { find: "@braid/cluster", replacement: path.resolve(__dirname, "packages/cluster/src/index.ts") },
  { find: "@braid/cli", replacement: path.resolve(__dirname, "packages/cli/src/index.ts") }
]

export default defineConfig({
  test: {
    // Vitest's default is one worker fewer than the cores: on a 2-core machine one file at a
    // time. Most tests wait on the processes they start (git, braid, the agent CLIs, timeouts),
    // so three files at once keep both cores busy without starving them.
    maxWorkers: 3,
    minWorkers: 1,
    projects: ["core", "agents", "cluster", "cli"].map((name) => ({
      resolve: { alias },
      test: {
        name,
        root: path.resolve(__dirname, "packages", name),
        include: ["test/**/*.test.ts"],
        testTimeout: 60_000,
        // Tests never reach GitHub: a token in the caller's environment would turn sync on for
        // plans with a githubRepo (the seed-shaped example); the GitHub tests set their own.
        env: { GITHUB_TOKEN: "", GITHUB_API_URL: "" },
        hookTimeout: 60_000
      }
    }))
  }
})
