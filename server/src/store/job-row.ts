import type { JobStateName, PhaseStateName } from "./entities/job-state.js";
import type { StoredJobError } from "./entities/job.js";

/**
 * A job as the store hands it to the rest of the server, whether it was read through the
 * ORM or returned by a hand-written statement. Times come from the database clock.
 */
export interface JobRow {
  id: string;
  queue: string;
  kind: string;
  state: JobStateName;
  priority: number;
  payload: unknown;
  metadata: Record<string, string>;
  owner: string;
  attempt: number;
  maxAttempts: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  backoffMultiplier: number;
  backoffJitter: number;
  leaseTimeoutMs: number;
  executionTimeoutMs: number | null;
  runAt: Date;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  cancelRequestedAt: Date | null;
  cancelReason: string | null;
  progress: unknown;
  result: unknown;
  lastError: StoredJobError | null;
  /** The key the job was enqueued with; null if none. */
  idempotencyKey: string | null;
  /** While paused: the state ResumeJob returns it to. Null in every other state. */
  pausedFrom: JobStateName | null;
  phases: PhaseRow[];
}

/** A declared phase of a job, in declaration order. */
export interface PhaseRow {
  name: string;
  state: PhaseStateName;
  result: unknown;
  finishedAt: Date | null;
}
