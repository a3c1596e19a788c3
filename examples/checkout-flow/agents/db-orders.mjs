// database-engineer: the orders store and its migration.
import { logRun, write } from "./lib.mjs"
logRun()
write("db/migrations/001_orders.sql", `CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  items TEXT NOT NULL,
  total_cents INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
`)
write("src/db/orders.js", `/** An in-memory orders table with the shape of db/migrations/001_orders.sql. */
const rows = []

export const insertOrder = (items, totalCents) => {
  const order = { id: rows.length + 1, items, totalCents, createdAt: new Date().toISOString() }
  rows.push(order)
  return order
}

export const findOrder = (id) => rows.find((o) => o.id === id)

export const countOrders = () => rows.length
`)
write("test/db/orders.test.js", `import assert from "node:assert/strict"
import { test } from "node:test"
import { findOrder, insertOrder } from "../../src/db/orders.js"

test("an inserted order can be found by id", () => {
  const order = insertOrder([{ sku: "A", quantity: 1, priceCents: 500 }], 500)
  assert.equal(findOrder(order.id).totalCents, 500)
})
`)
console.log("orders table, store and test written")
