// The conflict resolver for this example: both sides of every conflicted hunk are kept
// (route tables and import lists are unions). Conflicted paths come in BRAID_CONFLICT_PATHS.
import * as fs from "node:fs"
for (const file of (process.env.BRAID_CONFLICT_PATHS ?? "").split("\n").filter(Boolean)) {
  const text = fs.readFileSync(file, "utf8")
  fs.writeFileSync(file, text.replace(/^<{7}[^\n]*\n([\s\S]*?)^(?:\|{7}[^\n]*\n[\s\S]*?)?={7}\n([\s\S]*?)^>{7}[^\n]*\n/gm, "$1$2"))
  console.log(`kept both sides in ${file}`)
}
