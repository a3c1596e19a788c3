import assert from "node:assert/strict"
import { test } from "node:test"
import { handle } from "../src/server.js"

test("GET /health answers ok", async () => {
  assert.deepEqual(await handle("GET", "/health"), { status: 200, body: "ok" })
})

test("an unknown route is a 404", async () => {
  assert.equal((await handle("GET", "/nope")).status, 404)
})
