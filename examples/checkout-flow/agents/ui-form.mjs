// ui-developer: the checkout page, served at GET /checkout.
import { insertBefore, logRun, read, write } from "./lib.mjs"
logRun()
write("src/ui/checkout-page.js", `const html = \`<!doctype html>
<title>Checkout</title>
<form method="post" action="/checkout">
  <label>SKU <input name="sku" required></label>
  <label>Quantity <input name="quantity" type="number" min="1" value="1"></label>
  <button>Place order</button>
</form>
\`

/** GET /checkout → the checkout form. */
export const checkoutPage = () => ({ status: 200, body: html })
`)
write("test/ui/checkout-page.test.js", `import assert from "node:assert/strict"
import { test } from "node:test"
import { checkoutPage } from "../../src/ui/checkout-page.js"

test("the checkout page has an order form", () => {
  assert.match(checkoutPage().body, /<form method="post" action="\\/checkout">/)
})
`)
if (!read("src/routes.js").includes("GET /checkout")) {
  insertBefore("src/routes.js", /^\/\*\* Method and path/, `import { checkoutPage } from "./ui/checkout-page.js"\n`)
  insertBefore("src/routes.js", /^}/, `  ,"GET /checkout": checkoutPage`)
}
console.log("checkout page written")
