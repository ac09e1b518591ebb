import type { JobStateName } from "../store/entities/job-state.js";

/** No job has the id asked for. The RPC layer answers `NOT_FOUND`. */
export class JobNotFoundError extends Error {
  override name = "JobNotFoundError";
  constructor(readonly jobId: string) {
    super(`job ${jobId} not found`);
  }
}

/**
 * The job is in a state from which the requested transition is not allowed. The RPC layer
 * answers `FAILED_PRECONDITION`. `hint`, when given, says what to do instead.
 */
export class JobStateError extends Error {
  override name = "JobStateError";
  constructor(readonly jobId: string, readonly state: JobStateName, action: string, hint?: string) {
    super(`cannot ${action} job ${jobId} because it is ${state}${hint ? ` - ${hint}` : ""}`);
  }
}

/** The principal may not act on another principal's job. Answered `PERMISSION_DENIED`. */
export class NotJobOwnerError extends Error {
  override name = "NotJobOwnerError";
  constructor(readonly jobId: string) {
    super(`permission denied on job ${jobId}`);
  }
}

/** Jobs named as parents of new jobs do not exist; nothing was written. */
export class ParentsNotFoundError extends Error {
  override name = "ParentsNotFoundError";
  constructor(readonly jobIds: readonly string[]) {
    super(`jobs ${jobIds.join(", ")} not found`);
  }
}

/** No batch has the id asked for. The RPC layer answers `NOT_FOUND`. */
export class BatchNotFoundError extends Error {
  override name = "BatchNotFoundError";
  constructor(readonly batchId: string) {
    super(`batch ${batchId} not found`);
  }
}

/** The principal may not act on another principal's batch. Answered `PERMISSION_DENIED`. */
export class NotBatchOwnerError extends Error {
  override name = "NotBatchOwnerError";
  constructor(readonly batchId: string) {
    super(`permission denied on batch ${batchId}`);
  }
}
