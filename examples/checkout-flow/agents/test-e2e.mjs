// test-engineer: end-to-end checkout through the route table.
import { logRun, write } from "./lib.mjs"
logRun()
write("test/e2e/checkout.e2e.test.js", `import assert from "node:assert/strict"
import { test } from "node:test"
import { countOrders } from "../../src/db/orders.js"
import { handle } from "../../src/server.js"

test("POST /checkout stores an order and returns its total", async () => {
  const before = countOrders()
  const result = await handle("POST", "/checkout", { items: [{ sku: "A", quantity: 2, priceCents: 300 }] })
  assert.equal(result.status, 201)
  assert.equal(result.body.totalCents, 600)
  assert.equal(countOrders(), before + 1)
})
`)
console.log("end-to-end test written")
