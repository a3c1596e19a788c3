#!/usr/bin/env node
// The `braid` command's entry point. It exists before the first build, so `npm ci` links it
// (npm links a bin only when its file is there); the command itself is the built dist/bin.js.
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const built = fileURLToPath(new URL("../dist/bin.js", import.meta.url))
if (!existsSync(built)) {
  process.stderr.write(`braid: not built yet (${built} is missing): run \`npm run build\` in the braid repository\n`)
  process.exit(2)
}
await import(built)
