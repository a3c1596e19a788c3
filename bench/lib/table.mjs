/** Plain-text tables and number formatting for the benchmark's console output. */

/** Renders rows (arrays of cells) under a header; numbers and numeric strings align right. */
export const table = (header, rows) => {
  const all = [header, ...rows].map((r) => r.map((c) => (c === undefined || c === null ? "" : String(c))))
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)))
  const numeric = (s) => /^[-+]?[\d,.]+(?:[×%]|\s?[a-zA-Z]{0,3})?$/.test(s)
  const line = (r) =>
    r.map((c, i) => (numeric(c) && i > 0 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd()
  return [line(all[0]), widths.map((w) => "-".repeat(w)).join("  "), ...all.slice(1).map(line)].join("\n")
}

/** 1234.5 → "1,235"; small numbers keep `digits` decimals. */
export const num = (n, digits = 0) =>
  n === undefined || n === null || Number.isNaN(n)
    ? "–"
    : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

export const ratio = (n, digits = 3) => (n === undefined || Number.isNaN(n) ? "–" : n.toFixed(digits))

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
