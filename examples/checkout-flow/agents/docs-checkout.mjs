// documentation-writer: the checkout API reference and the README's feature list.
import { logRun, read, write } from "./lib.mjs"
logRun()
write("docs/checkout.md", `# Checkout API

## POST /checkout

Body: \`{ "items": [{ "sku": "A", "quantity": 2, "priceCents": 300 }] }\`

Answers \`201 { "id": 1, "totalCents": 600 }\`; an empty cart is \`400\`.

## GET /checkout

The checkout form (HTML).
`)
const readme = read("README.md")
if (!readme.includes("/checkout")) {
  write("README.md", readme.trimEnd() + "\n- `POST /checkout` places an order (see docs/checkout.md).\n")
}
console.log("checkout docs written")
