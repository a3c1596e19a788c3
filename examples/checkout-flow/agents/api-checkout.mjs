// api-developer: POST /checkout. The first attempt forgets quantities when totalling;
// the retry reads the reviewer's feedback (the failing test's output) and fixes it.
import { attempt, feedback, insertBefore, logRun, read, write } from "./lib.mjs"
logRun()
const fixed = attempt > 1 && JSON.stringify(feedback ?? {}).includes("total")
const total = fixed
  ? "items.reduce((sum, item) => sum + item.priceCents * item.quantity, 0)"
  : "items.reduce((sum, item) => sum + item.priceCents, 0)"
write("src/api/checkout.js", `import { insertOrder } from "../db/orders.js"

/** POST /checkout { items: [{ sku, quantity, priceCents }] } → 201 { id, totalCents } */
export const checkout = (body) => {
  const items = body?.items
  if (!Array.isArray(items) || items.length === 0) return { status: 400, body: { error: "items must be a non-empty list" } }
  const totalCents = ${total}
  const order = insertOrder(items, totalCents)
  return { status: 201, body: { id: order.id, totalCents } }
}
`)
write("test/api/checkout.test.js", `import assert from "node:assert/strict"
import { test } from "node:test"
import { checkout } from "../../src/api/checkout.js"

test("checkout totals price times quantity", () => {
  const result = checkout({ items: [{ sku: "A", quantity: 3, priceCents: 250 }, { sku: "B", quantity: 1, priceCents: 100 }] })
  assert.equal(result.status, 201)
  assert.equal(result.body.totalCents, 850, "total must multiply price by quantity")
})

test("checkout refuses an empty cart", () => {
  assert.equal(checkout({ items: [] }).status, 400)
})
`)
if (!read("src/routes.js").includes("POST /checkout")) {
  insertBefore("src/routes.js", /^\/\*\* Method and path/, `import { checkout } from "./api/checkout.js"\n`)
  insertBefore("src/routes.js", /^}/, `  ,"POST /checkout": checkout`)
}
console.log(fixed ? "checkout endpoint fixed: totals multiply by quantity" : "checkout endpoint written")
