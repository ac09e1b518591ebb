import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { JobSpecSchema, type Job, type JobSpec, type JobState } from "./gen/jobwire/v1/job_pb.js";
import { QueueService, type Batch, type Queue } from "./gen/jobwire/v1/queue_service_pb.js";
import { EventService, type Event } from "./gen/jobwire/v1/event_service_pb.js";
import { MissedTickPolicy, ScheduleService, type Schedule } from "./gen/jobwire/v1/schedule_service_pb.js";
import { AdminService } from "./gen/jobwire/v1/admin_service_pb.js";
import { apiKeyInterceptors, type TlsOptions } from "./credentials.js";
import { streamEvents, type StreamEventsOptions } from "./event-stream.js";
import { durationFromMillis } from "./duration.js";
import { EnqueueCoalescer } from "./enqueue-coalescer.js";
import { acceptedCompressions } from "./compression.js";
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
  /** A ready transport; overrides `baseUrl`, `protocol`, `apiKey` and `tls`. */
  transport?: Transport;
  /**
   * The API key (`jw_…`), sent as `Authorization: Bearer <key>` on every call. Required
   * unless the server runs with `JOBWIRE_AUTH=off`.
   */
  apiKey?: string;
  /** For `https://` servers: a CA to trust (a self-signed server) and a client certificate. */
  tls?: TlsOptions;
  /** Ask for gzip-compressed responses, for a slow link. Default false (as gRPC's clients). */
  compression?: boolean;
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
   * The job's own webhook targets (at most 10), besides its queue's subscriptions. Each
   * names a secret stored with {@link JobwireClient.putWebhookSecret}.
   */
  webhooks?: WebhookTargetOptions[];
  /**
   * Jobs this one waits for (BLOCKED until they have all finished): existing jobs by
   * `jobId`, or, in {@link JobwireClient.createBatch}, jobs of the same batch by `ref`.
   * `requiresSuccess` (default true) cancels this job if that parent fails or is cancelled.
   */
  dependsOn?: DependencyOptions[];
  /** Dead-end cancellation: when this job is cancelled, parents only it needed are cancelled too. */
  cancelUnneededParents?: boolean;
  /** Dead-end cancellation walking up never cancels this job. */
  barrier?: boolean;
  /** A concurrency key: a limit covering it (`setConcurrencyLimit`) bounds its jobs. */
  concurrencyKey?: string;
  /** Weight against the limit's `maxWeight`. Default 1. */
  weight?: number;
  /**
   * Deduplicates the enqueue: while a job of the queue holds this key (and for the queue's
   * idempotency window after it finished, 24 hours by default), no job is created and the
   * holder is returned instead. 1..256 characters.
   */
  idempotencyKey?: string;
}

/** A webhook target of a job or batch. */
export interface WebhookTargetOptions {
  url: string;
  /** A secret stored with {@link JobwireClient.putWebhookSecret}. */
  secretName: string;
  /** Lower-case event type names; default every type. */
  eventTypes?: string[];
}

/** A dependency of a job on a parent: an existing job by id, or a job of the same batch by ref. */
export type DependencyOptions = ({ jobId: string; ref?: never } | { ref: string; jobId?: never }) & {
  /** Default true: the child is cancelled if this parent fails or is cancelled. */
  requiresSuccess?: boolean;
};

/** One job of {@link JobwireClient.enqueueBatch}. */
export interface BatchJob<P extends JsonValue = JsonValue> extends EnqueueOptions {
  queue: string;
  kind: string;
  payload?: P;
  /** A name for this job within its batch, for other jobs of the batch to depend on. */
  ref?: string;
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

/** Options of {@link JobwireClient.createSchedule}. */
export interface CreateScheduleOptions {
  /** Unique name of the schedule (queue name rules). */
  name: string;
  /** 5 fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or a macro such as `@daily`. */
  cron: string;
  /** IANA time zone the expression is read in. Default `UTC`. */
  timeZone?: string;
  /** The job enqueued at each tick; `runAt` is not allowed, `delayMs` counts from the tick's enqueue. */
  job: Omit<BatchJob, "runAt">;
  /**
   * Ticks missed while no server ran (more than a minute late): `latest` (default) enqueues
   * one job for the latest, `skip` none, `all` one for each.
   */
  missedTicks?: "latest" | "skip" | "all";
  /** Create it paused (no ticks until {@link JobwireClient.resumeSchedule}). */
  paused?: boolean;
}

/** A schedule, by name (a plain string) or by id. */
export type ScheduleRef = string | { id: string } | { name: string };

const missedTickPolicies = {
  latest: MissedTickPolicy.LATEST,
  skip: MissedTickPolicy.SKIP,
  all: MissedTickPolicy.ALL,
} as const;

/**
 * The producer's client: typed helpers over the generated QueueService client, which stays
 * available as {@link JobwireClient.raw}. Errors are `ConnectError`s with the server's code.
 */
export class JobwireClient {
  /** The generated client, for anything the helpers do not cover. */
  readonly raw: Client<typeof QueueService>;
  /** Sends `enqueue` and `enqueueOnce`: concurrent ones share EnqueueJobs calls. */
  readonly #enqueues: EnqueueCoalescer;
  /** The generated EventService client. */
  readonly events: Client<typeof EventService>;
  /** The generated ScheduleService client. */
  readonly schedules: Client<typeof ScheduleService>;
  /** The generated AdminService client (API keys; admin keys only). */
  readonly admin: Client<typeof AdminService>;

  constructor(transport: Transport) {
    this.raw = createClient(QueueService, transport);
    this.#enqueues = new EnqueueCoalescer(this.raw);
    this.events = createClient(EventService, transport);
    this.schedules = createClient(ScheduleService, transport);
    this.admin = createClient(AdminService, transport);
  }

  /** Creates a cron schedule that enqueues `options.job` at every tick; returns it with its first `nextRunAt`. */
  async createSchedule(options: CreateScheduleOptions): Promise<Schedule> {
    const { schedule } = await this.schedules.createSchedule({
      schedule: {
        name: options.name,
        cron: options.cron,
        timeZone: options.timeZone ?? "",
        template: jobSpec(options.job),
        missedTickPolicy: options.missedTicks ? missedTickPolicies[options.missedTicks] : MissedTickPolicy.UNSPECIFIED,
        paused: options.paused ?? false,
      },
    });
    return schedule!;
  }

  /** Returns a schedule; rejects with `NotFound` if there is none. */
  async getSchedule(ref: ScheduleRef): Promise<Schedule> {
    return (await this.schedules.getSchedule({ key: scheduleKey(ref) })).schedule!;
  }

  /** Lists schedules in name order, a page at a time (default 50). */
  async listSchedules(options: { pageSize?: number; pageToken?: string } = {}): Promise<{ schedules: Schedule[]; nextPageToken: string }> {
    return this.schedules.listSchedules({ pageSize: options.pageSize, pageToken: options.pageToken });
  }

  /** Deletes a schedule: no further tick anywhere; jobs already enqueued stay. */
  async deleteSchedule(ref: ScheduleRef): Promise<void> {
    await this.schedules.deleteSchedule({ key: scheduleKey(ref) });
  }

  /** Pauses a schedule (no-op if paused). */
  async pauseSchedule(ref: ScheduleRef): Promise<Schedule> {
    return (await this.schedules.pauseSchedule({ key: scheduleKey(ref) })).schedule!;
  }

  /** Resumes a paused schedule from its first tick after now (no-op if active). */
  async resumeSchedule(ref: ScheduleRef): Promise<Schedule> {
    return (await this.schedules.resumeSchedule({ key: scheduleKey(ref) })).schedule!;
  }

  /**
   * Lifecycle events as an async iterator that reconnects by itself and resumes after the
   * last event delivered: `for await (const event of client.streamEvents({ jobIds: [id] }))`.
   */
  streamEvents(options: StreamEventsOptions = {}): AsyncGenerator<Event> {
    return streamEvents(this.events, options);
  }

  /**
   * Enqueues one job and returns it as stored. Calls made while two others are in flight
   * wait for one to end and then share one EnqueueJobs call; each still succeeds or fails
   * on its own, with the code and message Enqueue gives.
   */
  async enqueue<P extends JsonValue>(queue: string, kind: string, payload?: P, options: EnqueueOptions = {}): Promise<Job> {
    const { job } = await this.#enqueues.enqueue(jobSpec({ queue, kind, payload, ...options }));
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
    const { job, deduplicated } = await this.#enqueues.enqueue(jobSpec({ queue, kind, payload, ...options, idempotencyKey }));
    return { job: job!, deduplicated };
  }

  /**
   * Enqueues many jobs atomically (all or none) and returns their ids in order. A job whose
   * idempotency key is held gets the holder's id; `raw.enqueueBatch` also says which were
   * deduplicated.
   */
  async enqueueBatch(jobs: readonly BatchJob[]): Promise<string[]> {
    return (await this.createBatch(jobs)).jobIds;
  }

  /**
   * Enqueues many jobs atomically as a batch, whose jobs may depend on each other by `ref`;
   * returns the batch id (for {@link getBatch}, `cancelBatch`, event filters) and the job
   * ids in order. `webhooks` receive the batch's own events (BATCH_FINISHED).
   */
  async createBatch(jobs: readonly BatchJob[], options: { webhooks?: WebhookTargetOptions[] } = {}): Promise<{ batchId: string; jobIds: string[] }> {
    const { jobIds, batchId } = await this.raw.enqueueBatch({ jobs: jobs.map(jobSpec), webhooks: options.webhooks?.map(webhookTarget) });
    return { batchId, jobIds };
  }

  /**
   * Creates or replaces the concurrency limit of a key, or of every key starting with a
   * prefix (`"tenant-*"`): at most `maxRunning` jobs admitted or running, `maxWeight` total
   * weight, `rateCount` admissions per `rateIntervalMs`. Unset: no bound.
   */
  async setConcurrencyLimit(
    key: string,
    limit: { maxRunning?: number; maxWeight?: number; rateCount?: number; rateIntervalMs?: number; /** Bounds each key of a prefix on its own. */ perKey?: boolean },
  ): Promise<void> {
    await this.raw.setConcurrencyLimit({
      limit: {
        key,
        perKey: limit.perKey ?? false,
        maxRunning: limit.maxRunning ?? 0,
        maxWeight: limit.maxWeight ?? 0,
        rateCount: limit.rateCount ?? 0,
        rateInterval: limit.rateIntervalMs === undefined ? undefined : durationFromMillis(limit.rateIntervalMs),
      },
    });
  }

  /** Admits no job of a key (or `prefix*`) until `until`; they flow again by themselves then. */
  async pauseConcurrencyKey(key: string, until: Date): Promise<void> {
    await this.raw.pauseConcurrencyKey({ key, until: timestampFromDate(until) });
  }

  /** A batch with its job counts per state; rejects with `NotFound` if there is none. */
  async getBatch(id: string): Promise<Batch> {
    return (await this.raw.getBatch({ id })).batch!;
  }

  /** Cancels every unfinished job of a batch; counts what was cancelled, asked to stop, or left. */
  async cancelBatch(id: string, reason = ""): Promise<{ cancelled: number; cancelRequested: number; alreadyFinished: number }> {
    const { cancelled, cancelRequested, alreadyFinished } = await this.raw.cancelBatch({ id, reason });
    return { cancelled, cancelRequested, alreadyFinished };
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
   * Stores (or rotates) a named webhook secret that jobs' webhook targets refer to. The
   * secret is 16..512 characters; `whsec_` + base64 is decoded per Standard Webhooks.
   */
  async putWebhookSecret(name: string, secret: string): Promise<void> {
    await this.raw.putWebhookSecret({ name, secret });
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
  const interceptors = apiKeyInterceptors(options.apiKey);
  const acceptCompression = acceptedCompressions(options.compression);
  return options.protocol === "connect"
    ? createConnectTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", nodeOptions: { ...options.tls }, interceptors, acceptCompression, ...deepJsonOptions })
    : createGrpcTransport({
        baseUrl: options.baseUrl,
        nodeOptions: { ...noDelaySessionOptions(options.baseUrl), ...options.tls },
        interceptors,
        acceptCompression,
        ...deepJsonOptions,
      });
}

function scheduleKey(ref: ScheduleRef): { case: "id"; value: string } | { case: "name"; value: string } {
  if (typeof ref === "string") return { case: "name", value: ref };
  return "id" in ref ? { case: "id", value: ref.id } : { case: "name", value: ref.name };
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
    webhooks: job.webhooks?.map(webhookTarget),
    ref: job.ref ?? "",
    dependsOn: job.dependsOn?.map((dependency) => ({
      parent: dependency.jobId !== undefined ? { case: "jobId" as const, value: dependency.jobId } : { case: "ref" as const, value: dependency.ref },
      requiresSuccess: dependency.requiresSuccess,
    })),
    cancelUnneededParents: job.cancelUnneededParents ?? false,
    barrier: job.barrier ?? false,
    concurrencyKey: job.concurrencyKey ?? "",
    weight: job.weight ?? 0,
    idempotencyKey: job.idempotencyKey,
  });
}

function webhookTarget(target: WebhookTargetOptions) {
  return { url: target.url, secretName: target.secretName, eventTypes: target.eventTypes ?? [] };
}
