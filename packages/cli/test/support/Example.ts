/**
 * The bundled example (`examples/checkout-flow`) made ready to run in a temporary folder: its
 * plan without the checkout environment (an `npm ci` and copies per checkout, tested in
 * environment.test.ts, and the test that needs it removed), and a git repository made from its
 * project. Its tasks are the bundled script agents: no model is needed for them.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { exampleWithoutEnvironment, git } from "./Braid.js"

/** A copy of the example in a new temporary folder: its plan file, and the repository made from its project on `main`. */
export const exampleRepo = (prefix: string): { readonly dir: string; readonly plan: string; readonly repo: string } => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
  const copy = exampleWithoutEnvironment(dir)
  const repo = path.join(copy, "project")
  git(repo, "init", "-q", "-b", "main")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "start")
  return { dir, plan: path.join(copy, "plan.yaml"), repo }
}
