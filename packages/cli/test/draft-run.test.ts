/**
 * `braid draft --run --yes`: the drafted plan (here one whose task is a script) is written, then
 * run by `braid run` in the same repository and landed; without `--run` nothing runs (the other
 * draft tests), and `--run` without a terminal or `--yes` is refused (draft.test.ts).
 */
import { AnthropicServer, ScriptedServer } from "@braid/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { braid, git } from "./support/Braid.js"
import { envOf, fenced, setUp } from "./support/Draft.js"

const SCRIPTED = `projectName: checkout-service
featureName: hello
agent: script
streams:
  - { name: api, type: api, scope: src/ }
tasks:
  - id: api-1
    title: A hello module
    stream: api
    streamType: api
    description: Write src/hello.js.
    acceptanceCriteria: [src/hello.js exists]
    effort: XS
    run: [node, -e, "require('fs').writeFileSync('src/hello.js', 'export const hello = 1\\\\n')"]
    checks: [[node, -e, "require('fs').accessSync('src/hello.js')"]]
`

describe("braid draft --run --yes", () => {
  it("writes the plan, then runs it with braid run and lands it", async () => {
    const { dir, out, repo } = setUp()
    const server = await ScriptedServer.listen(AnthropicServer.provider, () => ({ text: fenced(SCRIPTED) }))
    try {
      const run = await braid(["draft", "Say hello", "--repo", repo, "--out", out, "--run", "--yes"], envOf({ ANTHROPIC_BASE_URL: server.url }))
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(fs.readFileSync(out, "utf8"), SCRIPTED)
      assert.include(git(repo, "show", "main:src/hello.js"), "export const hello = 1")
      assert.include(run.stderr, "landed")
      assert.isTrue(fs.existsSync(path.join(repo, ".braid", "runs")))
    } finally {
      await server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 45_000)
})
