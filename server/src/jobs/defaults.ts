/** Defaults applied to a JobSpec's unset fields; the proto comments document the same. */
export const jobDefaults = {
  priority: 0,
  maxAttempts: 25,
  backoffInitialMs: 1_000,
  backoffMaxMs: 3_600_000,
  backoffMultiplier: 2,
  backoffJitter: 0.2,
  leaseTimeoutMs: 30_000,
} as const;

/** Bounds on a JobSpec's fields, enforced at the RPC edge before anything is written. */
export const jobLimits = {
  nameMaxLength: 128,
  priorityMin: -1000,
  priorityMax: 1000,
  payloadMaxBytes: 1024 * 1024,
  metadataMaxEntries: 64,
  metadataKeyMaxLength: 128,
  metadataValueMaxLength: 1024,
  maxAttemptsMax: 1000,
  backoffInitialMaxMs: 86_400_000,
  backoffMaxMaxMs: 7 * 86_400_000,
  backoffMultiplierMax: 10,
  phasesMax: 100,
  weightMax: 1_000_000,
  leaseTimeoutMinMs: 1_000,
  leaseTimeoutMaxMs: 3_600_000,
  executionTimeoutMinMs: 1_000,
  executionTimeoutMaxMs: 7 * 86_400_000,
  delayMaxMs: 365 * 86_400_000,
  reasonMaxLength: 1024,
  idempotencyKeyMaxLength: 256,
  idempotencyWindowMaxMs: 3650 * 86_400_000,
  pageSizeDefault: 50,
  pageSizeMax: 1000,
} as const;

/** Queue, kind and phase names: a letter or digit, then letters, digits, `_ . : -`. */
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
