import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { JobSpecSchema, type Job, type JobSpec, type JobState } from "./gen/jobwire/v1/job_pb.js";
import { QueueService, type Queue } from "./gen/jobwire/v1/queue_service_pb.js";
import { EventService, type Event } from "./gen/jobwire/v1/event_service_pb.js";
import { streamEvents, type StreamEventsOptions } from "./event-stream.js";
import { durationFromMillis } from "./duration.js";
import { noDelaySessionOptions } from "./no-delay.js";
import { valueFromJson, type JsonValue } from "./json.js";

/** How to reach a Jobwire server. */
export interface ConnectionOptions {
  /** The server, e.g. `http://127.0.0.1:7233`. Required unless `transport` is given. */
  baseUrl?: string;
  /**
   * Wire protocol: `grpc` (HTTP/2, the default) or `connect` (HTTP/1.1 or HTTP/2, JSON-able).
   */
  protocol?: "grpc" | "connect";
  /** A ready transport; overrides `baseUrl` and `protocol`. */
  transport?: Transport;
}

/** Options of {@link JobwireClient.enqueue}; every one has the server's default. */
export interface EnqueueOptions {
  /** Larger runs first. Default 0; range -1000..1000. */
  priority?: number;
  /** Earliest start. Default: now. Mutually exclusive with `delayMs`. */
  runAt?: Date;
  /** Earliest start, from now. Mutually exclusive with `runAt`. */
  delayMs?: number;
  /** Labels, filterable with {@link JobwireClient.listJobs}. */
  metadata?: Record<string, string>;
  /** Declared phases, for checkpointed steps (`ctx.step`). */
  phases?: string[];
  /** Retry policy; unset fields take the server defaults (25 attempts, 1 s doubling to 1 h, 20% jitter). */
  retry?: {
    maxAttempts?: number;
    initialBackoffMs?: number;
    maxBackoffMs?: number;
    backoffMultiplier?: number;
    jitter?: number;
  };
  /** How long a worker may go without a heartbeat. Default 30 s. */
  leaseTimeoutMs?: number;
  /** Longest run of one attempt. Default: no limit. */
  executionTimeoutMs?: number;
  /**
   * Deduplicates the enqueue: while a job of the queue holds this key (and for the queue's
   * idempotency window after it finished, 24 hours by default), no job is created and the
   * holder is returned instead. 1..256 characters.
   */
  idempotencyKey?: string;
}

/** One job of {@link JobwireClient.enqueueBatch}. */
export interface BatchJob<P extends JsonValue = JsonValue> extends EnqueueOptions {
  queue: string;
  kind: string;
  payload?: P;
}

/** Filter and page of {@link JobwireClient.listJobs}. */
export interface ListJobsOptions {
  queues?: string[];
  kinds?: string[];
  states?: JobState[];
  createdAfter?: Date;
  createdBefore?: Date;
  /** Jobs whose metadata contains all these entries. */
  metadata?: Record<string, string>;
  /** Default 50, at most 1000. */
  pageSize?: number;
  /** `nextPageToken` of the previous page. */
  pageToken?: string;
}

/**
 * The producer's client: typed helpers over the generated QueueService client, which stays
 * available as {@link JobwireClient.raw}. Errors are `ConnectError`s with the server's code.
 */
export class JobwireClient {
  /** The generated client, for anything the helpers do not cover. */
  readonly raw: Client<typeof QueueService>;
  /** The generated EventService client. */
  readonly events: Client<typeof EventService>;

  constructor(transport: Transport) {
    this.raw = createClient(QueueService, transport);
    this.events = createClient(EventService, transport);
  }

  /**
   * Lifecycle events as an async iterator that reconnects by itself and resumes after the
   * last event delivered: `for await (const event of client.streamEvents({ jobIds: [id] }))`.
   */
  streamEvents(options: StreamEventsOptions = {}): AsyncGenerator<Event> {
    return streamEvents(this.events, options);
  }

  /** Enqueues one job and returns it as stored. */
  async enqueue<P extends JsonValue>(queue: string, kind: string, payload?: P, options: EnqueueOptions = {}): Promise<Job> {
    const { job } = await this.raw.enqueue({ job: jobSpec({ queue, kind, payload, ...options }) });
    return job!;
  }

  /**
   * Enqueues one job unless a job of the queue holds `idempotencyKey` (see
   * {@link EnqueueOptions.idempotencyKey}); returns the created job, or the holder with
   * `deduplicated: true`. The rest of the request, payload included, is not compared.
   */
  async enqueueOnce<P extends JsonValue>(
    queue: string,
    kind: string,
    idempotencyKey: string,
    payload?: P,
    options: Omit<EnqueueOptions, "idempotencyKey"> = {},
  ): Promise<{ job: Job; deduplicated: boolean }> {
    const { job, deduplicated } = await this.raw.enqueue({ job: jobSpec({ queue, kind, payload, ...options, idempotencyKey }) });
    return { job: job!, deduplicated };
  }

  /**
   * Enqueues many jobs atomically (all or none) and returns their ids in order. A job whose
   * idempotency key is held gets the holder's id; `raw.enqueueBatch` also says which were
   * deduplicated.
   */
  async enqueueBatch(jobs: readonly BatchJob[]): Promise<string[]> {
    const { jobIds } = await this.raw.enqueueBatch({ jobs: jobs.map(jobSpec) });
    return jobIds;
  }

  /** Returns one job; rejects with `NotFound` if there is none. */
  async getJob(id: string): Promise<Job> {
    return (await this.raw.getJob({ id })).job!;
  }

  /** Lists jobs, newest first, a page at a time. */
  async listJobs(options: ListJobsOptions = {}): Promise<{ jobs: Job[]; nextPageToken: string }> {
    return this.raw.listJobs({
      queues: options.queues,
      kinds: options.kinds,
      states: options.states,
      createdAfter: options.createdAfter && timestampFromDate(options.createdAfter),
      createdBefore: options.createdBefore && timestampFromDate(options.createdBefore),
      metadata: options.metadata,
      pageSize: options.pageSize,
      pageToken: options.pageToken,
    });
  }

  /** Cancels a job (see CancelJob in the contract for what happens in each state). */
  async cancelJob(id: string, reason = ""): Promise<Job> {
    return (await this.raw.cancelJob({ id, reason })).job!;
  }

  /** Runs a failed or cancelled job again; `fromStart` drops completed phase results. */
  async retryJob(id: string, options: { fromStart?: boolean } = {}): Promise<Job> {
    return (await this.raw.retryJob({ id, fromStart: options.fromStart ?? false })).job!;
  }

  /**
   * Holds a scheduled, pending or blocked job (PAUSED) until {@link resumeJob}. Rejects with
   * `FailedPrecondition` for a running job (cancel it instead), a paused or a finished one.
   */
  async pauseJob(id: string, reason = ""): Promise<Job> {
    return (await this.raw.pauseJob({ id, reason })).job!;
  }

  /**
   * Puts a paused job back in the state it was paused from (a scheduled job now due becomes
   * pending). Rejects with `FailedPrecondition` unless the job is paused.
   */
  async resumeJob(id: string): Promise<Job> {
    return (await this.raw.resumeJob({ id })).job!;
  }

  /** Returns a queue, its defaults and whether it is paused; rejects with `NotFound` if unknown. */
  async getQueue(name: string): Promise<Queue> {
    return (await this.raw.getQueue({ name })).queue!;
  }

  /**
   * Stops leasing the queue's jobs on every server replica until {@link resumeQueue};
   * enqueues are still accepted and running jobs carry on. Pausing a paused queue is a no-op.
   */
  async pauseQueue(name: string): Promise<Queue> {
    return (await this.raw.pauseQueue({ name })).queue!;
  }

  /** Lets the queue's jobs be leased again; workers on every replica are woken at once. */
  async resumeQueue(name: string): Promise<Queue> {
    return (await this.raw.resumeQueue({ name })).queue!;
  }
}

/** Creates a {@link JobwireClient}. */
export function createJobwireClient(options: ConnectionOptions): JobwireClient {
  return new JobwireClient(transportFor(options));
}

/**
 * Payloads may nest 64 JSON levels, and each costs two message levels: raise the decoder's
 * default recursion limit of 100 so that such payloads come back readable.
 */
export const deepJsonOptions = {
  binaryOptions: { recursionLimit: 300 },
  jsonOptions: { recursionLimit: 300 },
} as const;

/** The transport described by `options`. */
export function transportFor(options: ConnectionOptions): Transport {
  if (options.transport) return options.transport;
  if (!options.baseUrl) throw new Error("baseUrl or transport is required");
  return options.protocol === "connect"
    ? createConnectTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", ...deepJsonOptions })
    : createGrpcTransport({ baseUrl: options.baseUrl, nodeOptions: noDelaySessionOptions(options.baseUrl), ...deepJsonOptions });
}

function jobSpec(job: BatchJob): JobSpec {
  if (job.runAt && job.delayMs !== undefined) throw new Error("runAt and delayMs are mutually exclusive");
  return create(JobSpecSchema, {
    queue: job.queue,
    kind: job.kind,
    payload: valueFromJson(job.payload),
    priority: job.priority ?? 0,
    schedule: job.runAt
      ? { case: "runAt", value: timestampFromDate(job.runAt) }
      : job.delayMs !== undefined
        ? { case: "delay", value: durationFromMillis(job.delayMs) }
        : { case: undefined },
    metadata: job.metadata ?? {},
    phases: job.phases ?? [],
    retryPolicy: job.retry && {
      maxAttempts: job.retry.maxAttempts ?? 0,
      initialBackoff: job.retry.initialBackoffMs === undefined ? undefined : durationFromMillis(job.retry.initialBackoffMs),
      maxBackoff: job.retry.maxBackoffMs === undefined ? undefined : durationFromMillis(job.retry.maxBackoffMs),
      backoffMultiplier: job.retry.backoffMultiplier ?? 0,
      jitter: job.retry.jitter,
    },
    leaseTimeout: job.leaseTimeoutMs === undefined ? undefined : durationFromMillis(job.leaseTimeoutMs),
    executionTimeout: job.executionTimeoutMs === undefined ? undefined : durationFromMillis(job.executionTimeoutMs),
    idempotencyKey: job.idempotencyKey,
  });
}
