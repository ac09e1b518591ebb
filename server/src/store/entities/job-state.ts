/**
 * A job's state as stored in Postgres (the `job_state` enum). Mirrors `jobwire.v1.JobState`;
 * who moves a job into and out of each state is written down on the proto enum.
 */
export type JobStateName =
  | "scheduled"
  | "pending"
  | "blocked"
  | "paused"
  | "running"
  | "succeeded"
  | "failed"
  | "cancelled";

/** States a job never leaves by itself; only RetryJob moves a failed or cancelled job on. */
export const terminalStates: readonly JobStateName[] = ["succeeded", "failed", "cancelled"];

/** A phase's state as stored in Postgres (the `phase_state` enum). */
export type PhaseStateName = "pending" | "succeeded" | "cancelled";
