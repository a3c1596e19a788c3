/**
 * The agent backends the command offers: `@braid/agents`' (`Registry.all`) and the mock
 * (`agent: mock`), which is `@braid/testkit`'s `Harness.backend`. The mock is a test double,
 * but also how people try a plan with no tool and no model (`--workspace memory`, `npm run
 * demo`): that is why the command depends on the testkit. Every part of the command that
 * checks or builds backends takes them from here (`Registry.Options.backends`).
 *
 * @since 0.1.0
 */
import { type Backend, Registry } from "@braid/agents"
import * as Harness from "@braid/testkit/Harness"

const [first, ...rest] = Registry.all

/** Every backend, in the order `--help` lists them (`Help.BACKENDS`): the mock after `script`, as it has always been. */
export const all: ReadonlyArray<Backend.Backend> = [first!, Harness.backend, ...rest]

/** The backends' names, as `--agent`, streams and plans choose them. */
export const names: ReadonlyArray<string> = all.map((b) => b.name)
