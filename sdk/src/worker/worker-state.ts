import { IllegalStateError } from "./errors.js";

/**
 * Where a {@link Worker} stands. One line per state: who moves it in, and out.
 * - `new`: constructed. Out: `start()` → `connecting`; `shutdown()` → `stopped`.
 * - `connecting`: opening the LeaseJobs stream. Out: registered → `running`; the stream
 *   fails → `reconnecting`; `shutdown()` → `draining`.
 * - `running`: registered, receiving leases. Out: the stream drops → `reconnecting`;
 *   `shutdown()` → `draining`.
 * - `reconnecting`: waiting a jittered backoff before connecting again; handlers in flight
 *   keep running and heartbeating. Out: → `connecting`; `shutdown()` → `draining`.
 * - `draining`: no new leases; waiting for handlers in flight, aborting them past the
 *   grace time. Out: → `stopped`.
 * - `stopped`: stream and connections closed. Final.
 */
export type WorkerState = "new" | "connecting" | "running" | "reconnecting" | "draining" | "stopped";

const allowed: Record<WorkerState, readonly WorkerState[]> = {
  new: ["connecting", "stopped"],
  connecting: ["running", "reconnecting", "draining"],
  running: ["reconnecting", "draining"],
  reconnecting: ["connecting", "draining"],
  draining: ["stopped"],
  stopped: [],
};

/** Returns `to` if the transition from `from` is allowed; throws {@link IllegalStateError} otherwise. */
export function nextWorkerState(from: WorkerState, to: WorkerState): WorkerState {
  if (!allowed[from].includes(to)) throw new IllegalStateError(`worker cannot go from ${from} to ${to}`);
  return to;
}
