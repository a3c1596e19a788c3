/**
 * Kept for callers of the earlier API: the journal's fold now lives in `RunState`.
 *
 * @since 0.1.0
 */
import * as RunState from "./RunState.js"

/** A process an agent started, as journaled. */
export type AgentProcessRecord = RunState.AgentProcessRecord

/** What the journal says a run had done. */
export type State = RunState.RunState

/** Rebuilds the run's state from its journal records (`RunState.fold`). */
export const replay = (records: ReadonlyArray<RunState.FoldEntry>): State => RunState.fold(records)
