import { defineConfig } from "vitest/config"
import projects from "./vitest.workspace.js"

export default defineConfig({
  test: {
    // Vitest's default is one worker fewer than the cores: on a 2-core machine one file at a
    // time. Most tests wait on the processes they start (git, braid, the agent CLIs, timeouts),
    // so three files at once keep both cores busy without starving them.
    maxWorkers: 3,
    minWorkers: 1,
    // The projects are listed in vitest.workspace.ts.
    projects
  }
})
