import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { format } from "money-format"

// Needs what a fresh checkout lacks: the dependency (node_modules, from the plan's
// environment.share) and the shop's local settings (.env, from environment.copy).
test("prices show in the shop's currency, from .env, through money-format", () => {
  const currency = /^CURRENCY=(.*)$/m.exec(readFileSync(".env", "utf8"))?.[1]
  assert.equal(format(850, currency), "8.50 EUR")
})
