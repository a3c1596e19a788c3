#!/usr/bin/env node
// Screenshots the timeline of an HTML report page (as docs/timeline.png was made):
//   node scripts/screenshot-timeline.mjs <timeline.html> <out.png>
// with Debian's chromium (/usr/bin/chromium, apt-get install -y chromium) driven by playwright-core.
import { chromium } from "playwright-core"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const [html, out] = process.argv.slice(2)
if (html === undefined || out === undefined) {
  console.error("usage: node scripts/screenshot-timeline.mjs <timeline.html> <out.png>")
  process.exit(2)
}
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "braid-chromium-"))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1220, height: 900 }
})
try {
  const page = await context.newPage()
  await page.goto(`file://${path.resolve(html)}`)
  // A retried attempt selected, so its details show under the chart.
  const retried = page.locator('#timeline [data-outcome="retried"]').first()
  if (await retried.count() > 0) await retried.click()
  const box = await page.locator("#detail").boundingBox()
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1220, height: Math.ceil((box?.y ?? 500) + (box?.height ?? 80) + 16) } })
} finally {
  await context.close()
  fs.rmSync(profile, { recursive: true, force: true })
}
