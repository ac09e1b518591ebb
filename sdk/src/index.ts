/**
 * `@jobwire/sdk`: the Jobwire client for producers (`createJobwireClient`) and workers
 * (`Worker`), plus the generated contract for anything lower level.
 */
export { createJobwireClient, JobwireClient, transportFor } from "./client.js";
export type {
  BatchJob,
  ConnectionOptions,
  CreateScheduleOptions,
  DependencyOptions,
  EnqueueOptions,
  ListJobsOptions,
  ScheduleRef,
  WebhookTargetOptions,
} from "./client.js";
export type { TlsOptions } from "./credentials.js";
export { Role, type ApiKey } from "./gen/jobwire/v1/admin_service_pb.js";
export type { Batch } from "./gen/jobwire/v1/queue_service_pb.js";
export type { JsonValue } from "./json.js";
export type { StreamEventsOptions } from "./event-stream.js";
export { EventType, type Event } from "./gen/jobwire/v1/event_service_pb.js";
export type { Queue } from "./gen/jobwire/v1/queue_service_pb.js";
export { Worker } from "./worker/worker.js";
export type { ShutdownOptions, ShutdownReport, WorkerLogger, WorkerOptions } from "./worker/worker.js";
export type { JobContext, JobHandler } from "./worker/job-context.js";
export type { WorkerState } from "./worker/worker-state.js";
export {
  IllegalStateError,
  JobAbortedError,
  NonRetryableError,
  RetryAfterError,
  retryAfter,
  type AbortReason,
} from "./worker/errors.js";
export { JobState, PhaseState, type Job, type Phase, type ScheduleTick } from "./gen/jobwire/v1/job_pb.js";
export { MissedTickPolicy, type Schedule } from "./gen/jobwire/v1/schedule_service_pb.js";
