/**
 * Every test file gets a cache folder of its own: a run's checkouts go under
 * `$XDG_CACHE_HOME/braid/worktrees` by default, and tests never write into the user's real
 * `~/.cache`. The `braid` processes the tests start inherit it; it is removed after the file.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

const cache = fs.mkdtempSync(path.join(os.tmpdir(), "braid-cache-"))
process.env.XDG_CACHE_HOME = cache

afterAll(() => {
  fs.rmSync(cache, { recursive: true, force: true })
})
