import { create } from "@bufbuild/protobuf";
import {
  JobErrorSchema,
  JobSchema,
  JobState,
  PhaseSchema,
  PhaseState,
  RetryPolicySchema,
  type Job,
} from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { JobStateName, PhaseStateName } from "../store/entities/job-state.js";
import type { JobRow } from "../store/job-row.js";
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
    phases: row.phases.map((phase) =>
      create(PhaseSchema, {
        name: phase.name,
        state: phaseStates[phase.state],
        result: valueFromJson(phase.result),
        finishedAt: timestampFromNullableDate(phase.finishedAt),
      }),
    ),
    progress: valueFromJson(row.progress),
    result: valueFromJson(row.result),
    lastError: row.lastError
      ? create(JobErrorSchema, {
          message: row.lastError.message,
          details: valueFromJson(row.lastError.details),
          attempt: row.lastError.attempt,
          phase: row.lastError.phase ?? "",
          at: timestampFromNullableDate(new Date(row.lastError.at)),
          retryable: row.lastError.retryable,
        })
      : undefined,
    createdAt: timestampFromNullableDate(row.createdAt),
    runAt: timestampFromNullableDate(row.runAt),
    startedAt: timestampFromNullableDate(row.startedAt),
    finishedAt: timestampFromNullableDate(row.finishedAt),
    updatedAt: timestampFromNullableDate(row.updatedAt),
    leaseTimeout: durationFromMillis(row.leaseTimeoutMs),
    executionTimeout: row.executionTimeoutMs === null ? undefined : durationFromMillis(row.executionTimeoutMs),
    cancelReason: row.cancelReason ?? "",
  });
}
