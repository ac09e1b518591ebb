/**
 * Thrown by a handler when retrying cannot help (bad input, a permanent refusal): the job
 * goes straight to FAILED whatever its retry policy.
 */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}

/**
 * Thrown by a handler to have the job retried after `retryAfterMs` rather than after the
 * policy's backoff, e.g. honouring an upstream's `Retry-After`. Counts as an attempt.
 */
export class RetryAfterError extends Error {
  override name = "RetryAfterError";
  constructor(readonly retryAfterMs: number, message = `retry after ${retryAfterMs} ms`) {
    super(message);
  }
}

/** Shorthand for `throw new RetryAfterError(ms)`. */
export function retryAfter(ms: number, message?: string): never {
  throw new RetryAfterError(ms, message);
}

/** Why a handler's `ctx.signal` was aborted. */
export type AbortReason =
  /** CancelJob was called for the job. Stop and return or throw; the job becomes CANCELLED. */
  | "CANCELLED"
  /** The lease is no longer this worker's (expired, revoked, stream lost); reports will be refused. */
  | "LEASE_LOST"
  /** The job's execution timeout passed; the server has failed the attempt. */
  | "TIMEOUT"
  /** The worker is shutting down and the grace time is over. */
  | "SHUTDOWN";

/** The `reason` of an aborted `ctx.signal`: an Error, so `fetch` and friends reject with it. */
export class JobAbortedError extends Error {
  override name = "JobAbortedError";
  constructor(readonly reason: AbortReason, message = `job aborted: ${reason}`) {
    super(message);
  }
}

/** A Worker method was called in a state that does not allow it. */
export class IllegalStateError extends Error {
  override name = "IllegalStateError";
}
