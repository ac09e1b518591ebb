import { create } from "@bufbuild/protobuf";
import {
  JobErrorSchema,
  JobSchema,
  JobState,
  PhaseSchema,
  PhaseState,
  JobDependencySchema,
  RetryPolicySchema,
  WebhookTargetSchema,
  ScheduleTickSchema,
  type Job,
} from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { JobStateName, PhaseStateName } from "../store/entities/job-state.js";
import type { StoredJobError } from "../store/entities/job.js";
import type { JobRow, PhaseRow } from "../store/job-row.js";
import { valueFromJson } from "./json-value.js";
import { durationFromMillis, timestampFromNullableDate } from "./proto-time.js";

const jobStates: Record<JobStateName, JobState> = {
  scheduled: JobState.SCHEDULED,
  pending: JobState.PENDING,
  blocked: JobState.BLOCKED,
  paused: JobState.PAUSED,
  running: JobState.RUNNING,
  succeeded: JobState.SUCCEEDED,
  failed: JobState.FAILED,
  cancelled: JobState.CANCELLED,
};

const phaseStates: Record<PhaseStateName, PhaseState> = {
  pending: PhaseState.PENDING,
  succeeded: PhaseState.SUCCEEDED,
  cancelled: PhaseState.CANCELLED,
};

/** The proto JobState of a stored state name. */
export function jobStateMessage(name: JobStateName): JobState {
  return jobStates[name];
}

/** The stored state name of a proto JobState; undefined for UNSPECIFIED or unknown numbers. */
export function jobStateName(state: JobState): JobStateName | undefined {
  return (Object.keys(jobStates) as JobStateName[]).find((name) => jobStates[name] === state);
}

/** The wire form of a stored job. */
export function jobMessage(row: JobRow): Job {
  return create(JobSchema, {
    id: row.id,
    queue: row.queue,
    kind: row.kind,
    state: jobStates[row.state],
    payload: valueFromJson(row.payload),
    priority: row.priority,
    metadata: row.metadata,
    owner: row.owner,
    attempt: row.attempt,
    retryPolicy: create(RetryPolicySchema, {
      maxAttempts: row.maxAttempts,
      initialBackoff: durationFromMillis(row.backoffInitialMs),
      maxBackoff: durationFromMillis(row.backoffMaxMs),
      backoffMultiplier: row.backoffMultiplier,
      jitter: row.backoffJitter,
    }),
    phases: jobMessagePhases(row.phases),
    progress: valueFromJson(row.progress),
    result: valueFromJson(row.result),
    lastError: lastErrorMessage(row.lastError),
    createdAt: timestampFromNullableDate(row.createdAt),
    runAt: timestampFromNullableDate(row.runAt),
    startedAt: timestampFromNullableDate(row.startedAt),
    finishedAt: timestampFromNullableDate(row.finishedAt),
    updatedAt: timestampFromNullableDate(row.updatedAt),
    leaseTimeout: durationFromMillis(row.leaseTimeoutMs),
    executionTimeout: row.executionTimeoutMs === null ? undefined : durationFromMillis(row.executionTimeoutMs),
    cancelReason: row.cancelReason ?? "",
    batchId: row.batchId ?? "",
    ref: row.ref ?? "",
    dependencies: row.dependencies.map((d) => create(JobDependencySchema, { jobId: d.jobId, requiresSuccess: d.requiresSuccess })),
    cancelUnneededParents: row.cancelUnneededParents,
    barrier: row.barrier,
    concurrencyKey: row.concurrencyKey ?? "",
    weight: row.weight,
    waitingReason:
      row.state === "pending" && !row.admitted
        ? `waiting for the concurrency limit covering key ${row.concurrencyKey ?? ""} to admit it (full, paused or rate-limited), or for a free slot of a worker that takes it`
        : "",
    webhooks: (row.webhooks ?? []).map((target) =>
      create(WebhookTargetSchema, { url: target.url, eventTypes: target.event_types, secretName: target.secret_name }),
    ),
    fromSchedule: row.scheduleId === null
      ? undefined
      : create(ScheduleTickSchema, { scheduleId: row.scheduleId, tickAt: timestampFromNullableDate(row.scheduleTick) }),
    idempotencyKey: row.idempotencyKey ?? "",
    pausedFrom: row.pausedFrom ? jobStates[row.pausedFrom] : JobState.UNSPECIFIED,
  });
}

/** The wire form of a job's phases. */
export function jobMessagePhases(phases: readonly PhaseRow[]) {
  return phases.map((phase) =>
    create(PhaseSchema, {
      name: phase.name,
      state: phaseStates[phase.state],
      result: valueFromJson(phase.result),
      finishedAt: timestampFromNullableDate(phase.finishedAt),
    }),
  );
}

/** The wire form of a stored failure; undefined when there is none. */
export function lastErrorMessage(error: unknown) {
  if (error === null || error === undefined) return undefined;
  const stored = error as StoredJobError;
  return create(JobErrorSchema, {
    message: stored.message,
    details: valueFromJson(stored.details),
    attempt: stored.attempt,
    phase: stored.phase ?? "",
    at: timestampFromNullableDate(new Date(stored.at)),
    retryable: stored.retryable,
  });
}
