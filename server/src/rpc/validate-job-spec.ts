import type { JobSpec } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { v7 as uuidv7 } from "uuid";
import { jobLimits, namePattern } from "../jobs/defaults.js";
import type { NewJob } from "../store/sql/job-insert-many.js";
import { invalidArgument } from "./connect-errors.js";
import { checkStorableString, jsonTextFromValue } from "./json-value.js";
import { dateFromTimestamp, millisFromDuration } from "./proto-time.js";
import { jobSettingsFrom } from "./validate-job-settings.js";
import { checkDependencies } from "./validate-job-graph.js";
import { checkWebhookTargets, type WebhookUrlRefusal } from "./validate-webhook-target.js";

/**
 * Validates a JobSpec at the edge, giving the job its id (a UUIDv7, so ids sort by
 * creation time). Unset settings stay null: the insert fills them from the queue's
 * defaults, then the server's. Throws `INVALID_ARGUMENT` naming the first bad
 * field under `field` (e.g. `jobs[3].retry_policy.max_attempts`); nothing is written.
 * Webhook target URLs are checked with `webhookUrlRefusal` (the SSRF guard); whether the
 * secrets they name exist is left to the caller.
 */
export function newJobFromSpec(spec: JobSpec | undefined, field: string, webhookUrlRefusal: WebhookUrlRefusal): NewJob {
  if (!spec) throw invalidArgument(field, "is required");
  const queue = checkName(spec.queue, `${field}.queue`);
  const kind = checkName(spec.kind, `${field}.kind`);
  if (!Number.isInteger(spec.priority) || spec.priority < jobLimits.priorityMin || spec.priority > jobLimits.priorityMax) {
    throw invalidArgument(`${field}.priority`, `must be between ${jobLimits.priorityMin} and ${jobLimits.priorityMax}`);
  }
  const payloadJson = jsonTextFromValue(spec.payload, `${field}.payload`, jobLimits.payloadMaxBytes);
  const metadataJson = JSON.stringify(checkMetadata(spec.metadata, `${field}.metadata`));
  const settings = jobSettingsFrom(spec.retryPolicy, spec.leaseTimeout, spec.executionTimeout, field);
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
    ...settings,
    runAt,
    delayMs,
    phases: checkPhases(spec.phases, `${field}.phases`),
    webhooks: checkWebhookTargets(spec.webhooks, `${field}.webhooks`, webhookUrlRefusal),
    ref: spec.ref === "" ? null : checkName(spec.ref, `${field}.ref`),
    dependsOn: checkDependencies(spec.dependsOn, `${field}.depends_on`),
    cancelUnneededParents: spec.cancelUnneededParents,
    barrier: spec.barrier,
    concurrencyKey: spec.concurrencyKey === "" ? null : checkName(spec.concurrencyKey, `${field}.concurrency_key`),
    weight: checkWeight(spec.weight, `${field}.weight`),
    idempotencyKey: checkIdempotencyKey(spec.idempotencyKey, `${field}.idempotency_key`),
  };
}

/** Checks an idempotency key: unset is none; when set, 1..256 characters Postgres can store. */
function checkIdempotencyKey(key: string | undefined, field: string): string | null {
  if (key === undefined) return null;
  if (key === "") throw invalidArgument(field, "must not be empty when set");
  if (key.length > jobLimits.idempotencyKeyMaxLength) {
    throw invalidArgument(field, `must be at most ${jobLimits.idempotencyKeyMaxLength} characters`);
  }
  checkStorableString(key, field);
  return key;
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

/** Checks a job's weight: 0 (unset) means 1. */
function checkWeight(weight: number, field: string): number {
  if (weight === 0) return 1;
  if (!Number.isInteger(weight) || weight < 1 || weight > jobLimits.weightMax) throw invalidArgument(field, `must be between 1 and ${jobLimits.weightMax}`);
  return weight;
}
