import type { JobStateName, PhaseStateName } from "./entities/job-state.js";
import type { StoredJobError, StoredWebhookTarget } from "./entities/job.js";

/**
 * A job as the store hands it to the rest of the server, whether it was read through the
 * ORM or returned by a hand-written statement. Times come from the database clock.
 */
export interface JobRow {
  id: string;
  /** The namespace (tenant) it belongs to. */
  namespace: string;
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
  /** The job's own webhook targets; null if it has none. */
  webhooks: StoredWebhookTarget[] | null;
  batchId: string | null;
  ref: string | null;
  /** The jobs it depends on, by parent id. */
  dependencies: DependencyRow[];
  cancelUnneededParents: boolean;
  barrier: boolean;
  concurrencyKey: string | null;
  weight: number;
  /** False while a pending job waits for its concurrency limit to admit it. */
  admitted: boolean;
  /** The cron schedule that enqueued the job; null for jobs enqueued otherwise. */
  scheduleId: string | null;
  /** The schedule's tick the job was enqueued for; null exactly when `scheduleId` is. */
  scheduleTick: Date | null;
  /** The key the job was enqueued with; null if none. */
  idempotencyKey: string | null;
  /** While paused: the state ResumeJob returns it to. Null in every other state. */
  pausedFrom: JobStateName | null;
  phases: PhaseRow[];
}

/** An edge from a job to one of its parents. */
export interface DependencyRow {
  jobId: string;
  requiresSuccess: boolean;
}

/** A declared phase of a job, in declaration order. */
export interface PhaseRow {
  name: string;
  state: PhaseStateName;
  result: unknown;
  finishedAt: Date | null;
}
