/**
 * The `braid` command as one bundled script, loaded with V8's code cache.
 *
 * Loading the engine as its ~900 ES modules took most of a command's start-up (module
 * resolution, then compiling every file, about 0.6 s for `braid runs`). `npm run build`
 * therefore also writes `dist/braid.cjs` (scripts/bundle-cli.mjs: Main and everything it
 * imports in one file) and `dist/braid.cjs.cache`, the code V8 compiled for it. Node 20 has
 * no compile cache for ES modules, but `vm.Script` takes `cachedData`, so the bundle is a
 * CommonJS script. A cache made by another Node version is rejected by V8 and the bundle is
 * compiled as usual; without a bundle (a `tsc`-only build) the modules are imported as before.
 * Inside the bundle, a module that is reached only through `import()` is initialised when it is
 * first imported, so the commands that do not run a plan never initialise the engine that does
 * (see `lazy` in Cli.ts).
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as vm from "node:vm"
import type * as MainModule from "./Main.js"

/** The bundled command, beside this module once built. */
export const bundleFile = fileURLToPath(new URL("./braid.cjs", import.meta.url))

/** V8's code for the bundle. */
export const cacheFile = `${bundleFile}.cache`

/** The loaded bundle, and whether V8 took the cached code. */
export interface Loaded {
  readonly main: typeof MainModule
  readonly script: vm.Script
  readonly cacheUsed: boolean
}

/** Evaluates the bundle in this context as CommonJS, with the code cache when there is one. */
export const load = (file: string = bundleFile, cache: string | undefined = `${file}.cache`): Loaded => {
  // The bundle is ASCII (scripts/bundle-cli.mjs asks esbuild to escape the rest), so it reads
  // as latin1: the same text, without UTF-8 decoding, which takes Node 20 about 10 ms for 3.6 MB.
  const source = fs.readFileSync(file, "latin1")
  const cachedData = cache !== undefined && fs.existsSync(cache) ? fs.readFileSync(cache) : undefined
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData !== undefined ? { cachedData } : {})
  })
  const module = { exports: {} as typeof MainModule }
  const wrapper = script.runInThisContext() as (...args: ReadonlyArray<unknown>) => void
  wrapper(module.exports, createRequire(file), module, file, path.dirname(file))
  return { main: module.exports, script, cacheUsed: cachedData !== undefined && !script.cachedDataRejected }
}

/** The command's `Main`: the bundle when it has been built, else the modules themselves. */
export const main = async (): Promise<typeof MainModule> =>
  fs.existsSync(bundleFile) ? load().main : await import("./Main.js")
