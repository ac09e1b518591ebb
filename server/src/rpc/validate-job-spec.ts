import type { JobSpec } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { v7 as uuidv7 } from "uuid";
import { jobDefaults, jobLimits, namePattern } from "../jobs/defaults.js";
import type { NewJob } from "../store/sql/job-insert-many.js";
import { invalidArgument } from "./connect-errors.js";
import { checkStorableString, jsonTextFromValue } from "./json-value.js";
import { dateFromTimestamp, millisFromDuration } from "./proto-time.js";

/**
 * Validates a JobSpec at the edge and fills in its defaults, giving the job its id (a
 * UUIDv7, so ids sort by creation time). Throws `INVALID_ARGUMENT` naming the first bad
 * field under `field` (e.g. `jobs[3].retry_policy.max_attempts`); nothing is written.
 */
export function newJobFromSpec(spec: JobSpec | undefined, field: string): NewJob {
  if (!spec) throw invalidArgument(field, "is required");
  const queue = checkName(spec.queue, `${field}.queue`);
  const kind = checkName(spec.kind, `${field}.kind`);
  if (!Number.isInteger(spec.priority) || spec.priority < jobLimits.priorityMin || spec.priority > jobLimits.priorityMax) {
    throw invalidArgument(`${field}.priority`, `must be between ${jobLimits.priorityMin} and ${jobLimits.priorityMax}`);
  }
  const payloadJson = jsonTextFromValue(spec.payload, `${field}.payload`, jobLimits.payloadMaxBytes);
  const metadataJson = JSON.stringify(checkMetadata(spec.metadata, `${field}.metadata`));
  const policy = spec.retryPolicy;
  const policyField = `${field}.retry_policy`;
  const maxAttempts = policy?.maxAttempts || jobDefaults.maxAttempts;
  if (maxAttempts < 1 || maxAttempts > jobLimits.maxAttemptsMax) {
    throw invalidArgument(`${policyField}.max_attempts`, `must be between 1 and ${jobLimits.maxAttemptsMax}`);
  }
  const backoffInitialMs = policy?.initialBackoff
    ? millisFromDuration(policy.initialBackoff, `${policyField}.initial_backoff`, 0, jobLimits.backoffInitialMaxMs)
    : jobDefaults.backoffInitialMs;
  const backoffMaxMs = policy?.maxBackoff
    ? millisFromDuration(policy.maxBackoff, `${policyField}.max_backoff`, 0, jobLimits.backoffMaxMaxMs)
    : Math.max(jobDefaults.backoffMaxMs, backoffInitialMs);
  if (backoffMaxMs < backoffInitialMs) {
    throw invalidArgument(`${policyField}.max_backoff`, "must be at least initial_backoff");
  }
  // NaN is falsy, so it must be refused before `||` would turn it into the default.
  if (Number.isNaN(policy?.backoffMultiplier)) throw invalidArgument(`${policyField}.backoff_multiplier`, "must be a number");
  const backoffMultiplier = policy?.backoffMultiplier || jobDefaults.backoffMultiplier;
  if (!(backoffMultiplier >= 1 && backoffMultiplier <= jobLimits.backoffMultiplierMax)) {
    throw invalidArgument(`${policyField}.backoff_multiplier`, `must be between 1 and ${jobLimits.backoffMultiplierMax}`);
  }
  const backoffJitter = policy?.jitter ?? jobDefaults.backoffJitter;
  if (!(backoffJitter >= 0 && backoffJitter <= 1)) {
    throw invalidArgument(`${policyField}.jitter`, "must be between 0 and 1");
  }
  const leaseTimeoutMs = spec.leaseTimeout
    ? millisFromDuration(spec.leaseTimeout, `${field}.lease_timeout`, jobLimits.leaseTimeoutMinMs, jobLimits.leaseTimeoutMaxMs)
    : jobDefaults.leaseTimeoutMs;
  const executionTimeoutMs = spec.executionTimeout
    ? millisFromDuration(spec.executionTimeout, `${field}.execution_timeout`, jobLimits.executionTimeoutMinMs, jobLimits.executionTimeoutMaxMs)
    : null;
  let runAt: Date | null = null;
  let delayMs: number | null = null;
  if (spec.schedule.case === "runAt") runAt = dateFromTimestamp(spec.schedule.value, `${field}.run_at`);
  if (spec.schedule.case === "delay") delayMs = millisFromDuration(spec.schedule.value, `${field}.delay`, 0, jobLimits.delayMaxMs);
  return {
    id: uuidv7(),
    queue,
    kind,
    priority: spec.priority,
    payloadJson,
    metadataJson,
    maxAttempts,
    backoffInitialMs,
    backoffMaxMs,
    backoffMultiplier,
    backoffJitter,
    leaseTimeoutMs,
    executionTimeoutMs,
    runAt,
    delayMs,
    phases: checkPhases(spec.phases, `${field}.phases`),
  };
}

/** Checks a queue, kind or phase name against {@link namePattern}. */
export function checkName(name: string, field: string): string {
  if (name === "") throw invalidArgument(field, "is required");
  if (!namePattern.test(name)) {
    throw invalidArgument(field, `must be 1 to ${jobLimits.nameMaxLength} letters or digits or the marks dot underscore hyphen colon and start with a letter or digit`);
  }
  return name;
}

/** Checks a metadata map (from a JobSpec or a ListJobs filter) against the limits. */
export function checkMetadata(metadata: Record<string, string>, field: string): Record<string, string> {
  const entries = Object.entries(metadata);
  if (entries.length > jobLimits.metadataMaxEntries) {
    throw invalidArgument(field, `must have at most ${jobLimits.metadataMaxEntries} entries`);
  }
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > jobLimits.metadataKeyMaxLength) {
      throw invalidArgument(field, `keys must be 1 to ${jobLimits.metadataKeyMaxLength} characters`);
    }
    if (value.length > jobLimits.metadataValueMaxLength) {
      throw invalidArgument(`${field}[${JSON.stringify(key)}]`, `must be at most ${jobLimits.metadataValueMaxLength} characters`);
    }
    checkStorableString(key, field);
    checkStorableString(value, `${field}[${JSON.stringify(key)}]`);
  }
  return metadata;
}

function checkPhases(phases: string[], field: string): string[] {
  if (phases.length > jobLimits.phasesMax) throw invalidArgument(field, `must have at most ${jobLimits.phasesMax} entries`);
  const seen = new Set<string>();
  phases.forEach((name, index) => {
    checkName(name, `${field}[${index}]`);
    if (seen.has(name)) throw invalidArgument(`${field}[${index}]`, `duplicates phase ${JSON.stringify(name)}`);
    seen.add(name);
  });
  return phases;
}
