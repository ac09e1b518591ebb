import { defineEntity, p, type InferEntity } from "@mikro-orm/core";
import type { JobStateName, PhaseStateName } from "./job-state.js";

/**
 * A declared phase (step) of a job and its checkpointed result. Table `job_phase`,
 * created by migration 0001.
 */
export const JobPhaseEntity = defineEntity({
  name: "JobPhase",
  tableName: "job_phase",
  properties: {
    job: () => p.manyToOne(JobEntity).primary().fieldName("job_id"),
    position: p.smallint().primary(),
    name: p.text(),
    state: p.text().columnType("phase_state").$type<PhaseStateName>(),
    result: p.json<unknown>().nullable(),
    finishedAt: p.datetime().columnType("timestamptz").nullable(),
  },
});

/**
 * A job row (table `job`, created by migration 0001, extended by later ones). The ORM reads jobs for GetJob and
 * ListJobs; every change of state goes through the reviewed SQL in `store/sql`, never
 * through this entity, so that each change is one guarded statement with its event.
 */
export const JobEntity = defineEntity({
  name: "Job",
  tableName: "job",
  properties: {
    id: p.uuid().primary(),
    namespace: p.text(),
    queue: p.text(),
    kind: p.text(),
    state: p.text().columnType("job_state").$type<JobStateName>(),
    priority: p.smallint(),
    payload: p.json<unknown>(),
    metadata: p.json<Record<string, string>>(),
    owner: p.text(),
    attempt: p.integer(),
    maxAttempts: p.integer(),
    backoffInitialMs: p.bigint("number"),
    backoffMaxMs: p.bigint("number"),
    backoffMultiplier: p.double(),
    backoffJitter: p.double(),
    leaseTimeoutMs: p.integer(),
    executionTimeoutMs: p.integer().nullable(),
    runAt: p.datetime().columnType("timestamptz"),
    createdAt: p.datetime().columnType("timestamptz"),
    updatedAt: p.datetime().columnType("timestamptz"),
    startedAt: p.datetime().columnType("timestamptz").nullable(),
    finishedAt: p.datetime().columnType("timestamptz").nullable(),
    leaseToken: p.bigint("string").nullable(),
    leaseWorker: p.text().nullable(),
    leaseExpiresAt: p.datetime().columnType("timestamptz").nullable(),
    cancelRequestedAt: p.datetime().columnType("timestamptz").nullable(),
    cancelReason: p.text().nullable(),
    progress: p.json<unknown>().nullable(),
    result: p.json<unknown>().nullable(),
    lastError: p.json<StoredJobError>().nullable(),
    webhooks: p.json<StoredWebhookTarget[]>().nullable(),
    batchId: p.uuid().nullable(),
    ref: p.text().nullable(),
    cancelUnneededParents: p.boolean(),
    barrier: p.boolean(),
    concurrencyKey: p.text().nullable(),
    weight: p.integer(),
    admitted: p.boolean(),
    scheduleId: p.uuid().nullable(),
    scheduleTick: p.datetime().columnType("timestamptz").nullable(),
    idempotencyKey: p.text().nullable(),
    pausedFrom: p.text().columnType("job_state").$type<JobStateName>().nullable(),
    phases: () => p.oneToMany(JobPhaseEntity).mappedBy("job").orderBy({ position: "asc" }),
  },
});

/** A job as the ORM loads it. */
export type JobRecord = InferEntity<typeof JobEntity>;
/** A phase as the ORM loads it. */
export type JobPhaseRecord = InferEntity<typeof JobPhaseEntity>;

/** The shape of `job.last_error`, written by the failure paths. */
export interface StoredJobError {
  message: string;
  details?: unknown;
  attempt: number;
  phase?: string;
  at: string;
  retryable: boolean;
}

/**
 * One element of `job.webhooks`: a webhook target of the job. Keys are snake case because
 * the outbox trigger (migration 0007) reads them in SQL.
 */
export interface StoredWebhookTarget {
  url: string;
  /** Lower-case event type names; empty for every type. */
  event_types: string[];
  /** The name of a row of `webhook_secret`. */
  secret_name: string;
}
