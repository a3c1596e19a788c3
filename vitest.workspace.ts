import * as path from "node:path"
import { defineWorkspace } from "vitest/config"

const alias = {
  "@braid/core": path.resolve(__dirname, "packages/core/src/index.ts"),
  "@braid/agents": path.resolve(__dirname, "packages/agents/src/index.ts"),
  "@braid/cli": path.resolve(__dirname, "packages/cli/src/index.ts")
}

export default defineWorkspace(
  ["core", "agents", "cli"].map((name) => ({
    resolve: { alias },
    test: {
      name,
      root: path.resolve(__dirname, "packages", name),
      include: ["test/**/*.test.ts"],
      testTimeout: 60_000,
      hookTimeout: 60_000
    }
  }))
)
