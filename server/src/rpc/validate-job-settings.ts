import type { Duration } from "@bufbuild/protobuf/wkt";
import type { RetryPolicy } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { jobLimits } from "../jobs/defaults.js";
import type { JobSettings } from "../store/sql/job-insert-many.js";
import { invalidArgument } from "./connect-errors.js";
import { millisFromDuration } from "./proto-time.js";

/**
 * Validates a retry policy and timeouts (of a JobSpec or of a queue's defaults), leaving
 * what is unset as null for the next level of defaults to fill. Throws `INVALID_ARGUMENT`
 * naming the field under `field`.
 */
export function jobSettingsFrom(
  policy: RetryPolicy | undefined,
  leaseTimeout: Duration | undefined,
  executionTimeout: Duration | undefined,
  field: string,
): JobSettings {
  const policyField = field === "" ? "retry_policy" : `${field}.retry_policy`;
  const prefix = field === "" ? "" : `${field}.`;
  const maxAttempts = policy?.maxAttempts || null;
  if (maxAttempts !== null && (maxAttempts < 1 || maxAttempts > jobLimits.maxAttemptsMax)) {
    throw invalidArgument(`${policyField}.max_attempts`, `must be between 1 and ${jobLimits.maxAttemptsMax}`);
  }
  const backoffInitialMs = policy?.initialBackoff
    ? millisFromDuration(policy.initialBackoff, `${policyField}.initial_backoff`, 0, jobLimits.backoffInitialMaxMs)
    : null;
  const backoffMaxMs = policy?.maxBackoff
    ? millisFromDuration(policy.maxBackoff, `${policyField}.max_backoff`, 0, jobLimits.backoffMaxMaxMs)
    : null;
  if (backoffMaxMs !== null && backoffInitialMs !== null && backoffMaxMs < backoffInitialMs) {
    throw invalidArgument(`${policyField}.max_backoff`, "must be at least initial_backoff");
  }
  // NaN is falsy, so it must be refused before `||` would turn it into "unset".
  if (Number.isNaN(policy?.backoffMultiplier)) throw invalidArgument(`${policyField}.backoff_multiplier`, "must be a number");
  const backoffMultiplier = policy?.backoffMultiplier || null;
  if (backoffMultiplier !== null && !(backoffMultiplier >= 1 && backoffMultiplier <= jobLimits.backoffMultiplierMax)) {
    throw invalidArgument(`${policyField}.backoff_multiplier`, `must be between 1 and ${jobLimits.backoffMultiplierMax}`);
  }
  const backoffJitter = policy?.jitter ?? null;
  if (backoffJitter !== null && !(backoffJitter >= 0 && backoffJitter <= 1)) {
    throw invalidArgument(`${policyField}.jitter`, "must be between 0 and 1");
  }
  return {
    maxAttempts,
    backoffInitialMs,
    backoffMaxMs,
    backoffMultiplier,
    backoffJitter,
    leaseTimeoutMs: leaseTimeout
      ? millisFromDuration(leaseTimeout, `${prefix}lease_timeout`, jobLimits.leaseTimeoutMinMs, jobLimits.leaseTimeoutMaxMs)
      : null,
    executionTimeoutMs: executionTimeout
      ? millisFromDuration(executionTimeout, `${prefix}execution_timeout`, jobLimits.executionTimeoutMinMs, jobLimits.executionTimeoutMaxMs)
      : null,
  };
}
