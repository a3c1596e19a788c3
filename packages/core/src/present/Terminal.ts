/**
 * Text from a plan or an agent, made safe to print: a terminal acts on control characters
 * (ESC starts colour, cursor and window-title sequences; a bare CR rewrites the line), so
 * printing them as they are lets a plan or an agent's output repaint the user's screen or
 * set their terminal's title. `safe` shows them as visible escapes instead.
 *
 * @since 0.1.0
 */

// C0 controls but tab and line feed, DEL, and C1 controls (U+0080–U+009F: U+009B acts as CSI in some terminals).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g

const escapeOf = (c: string): string => c === "\r" ? "\\r" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`

/**
 * `text` with every control character a terminal would act on shown as a visible escape
 * (ESC as `\x1b`, BEL as `\x07`, CSI as `\x9b`, CR as `\r`); tabs and line breaks stay. Apply it to
 * the data (names, titles, agents' output) before adding braid's own colours, not to the output.
 */
export const safe = (text: string): string => CONTROL.test(text) ? text.replace(CONTROLS, escapeOf) : text

/** `text` as one line: `safe`, and line breaks and tabs shown as `\n` and `\t` too. */
export const safeLine = (text: string): string =>
  safe(text).replace(/[\n\t]/g, (c) => (c === "\n" ? "\\n" : "\\t"))
