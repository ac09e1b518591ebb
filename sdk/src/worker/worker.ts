import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { PhaseState } from "../gen/jobwire/v1/job_pb.js";
import { CancelReason, ReportOutcome, WorkerService, type Lease, type LeaseRef } from "../gen/jobwire/v1/worker_service_pb.js";
import { CompletionBatcher } from "./completion-batcher.js";
import { HandlerSlots } from "./handler-slots.js";
import { deepJsonOptions } from "../client.js";
import { durationFromMillis, millisFromDuration } from "../duration.js";
import { noDelaySessionOptions } from "../no-delay.js";
import { acceptedCompressions } from "../compression.js";
import { apiKeyInterceptors, type TlsOptions } from "../credentials.js";
import { jsonFromValue, valueFromJson, type JsonValue } from "../json.js";
import { IllegalStateError, JobAbortedError, NonRetryableError, RetryAfterError, type AbortReason } from "./errors.js";
import type { JobContext, JobHandler } from "./job-context.js";
import { reportWithRetry } from "./report-with-retry.js";
import { nextWorkerState, type WorkerState } from "./worker-state.js";

/** A minimal logger; `console` fits. */
export interface WorkerLogger {
  info(message: string, fields?: object): void;
  warn(message: string, fields?: object): void;
  error(message: string, fields?: object): void;
}

/** Options of {@link Worker}. */
export interface WorkerOptions {
  /** The server, e.g. `http://127.0.0.1:7233` (gRPC over HTTP/2). */
  baseUrl: string;
  /**
   * The API key (`jw_…`), a worker key naming these `queues` (or an admin key), sent as
   * `Authorization: Bearer <key>`. Required unless the server runs with `JOBWIRE_AUTH=off`.
   */
  apiKey?: string;
  /** For `https://` servers: a CA to trust (a self-signed server) and a client certificate. */
  tls?: TlsOptions;
  /** Ask for gzip-compressed lease batches, for a slow link. Default false (as gRPC's clients). */
  compression?: boolean;
  /** Queues to take jobs from. */
  queues: string[];
  /** A handler per job kind; the worker only leases kinds it has a handler for. */
  handlers: Record<string, JobHandler<any, any>>;
  /** Most handlers running at once. Default 10. */
  concurrency?: number;
  /**
   * Leases held ready beyond `concurrency`, so that a handler slot that frees up starts the
   * next job at once instead of waiting for a claim round trip: the worker registers a lease
   * capacity of `concurrency + prefetch`. Ready jobs are heartbeated like running ones; when
   * the worker shuts down, those not yet started are handed back at once. Default
   * `concurrency`; 0 turns prefetching off. The server refills the buffer in batches,
   * once half of it is free.
   */
  prefetch?: number;
  /** A name for logs and operators. Default `host:pid`. */
  name?: string;
  /** Labels sent with the registration. */
  labels?: Record<string, string>;
  /** Reconnect backoff after the stream drops: first delay and cap. Default 100 ms, 10 s. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** How long a report (complete, fail, …) is retried through network errors. Default 60 s. */
  reportRetryMs?: number;
  /** Where the worker logs. Default: nothing. */
  logger?: WorkerLogger;
}

/** Options of {@link Worker.shutdown}. */
export interface ShutdownOptions {
  /** How long handlers in flight may take to finish before they are aborted. Default 30 s. */
  graceMs?: number;
  /** How long aborted handlers may take to settle before the worker gives up on them. Default 5 s. */
  abortWaitMs?: number;
}

/** What {@link Worker.shutdown} found. */
export interface ShutdownReport {
  /** Some handlers did not finish within the grace time and were aborted. */
  timedOut: boolean;
  /** Handlers aborted at the end of the grace time. */
  aborted: number;
  /** Handlers still running after the abort wait: the worker stopped without them. */
  abandoned: number;
}

/** A job being run by this worker. */
interface RunningJob {
  lease: Lease;
  ref: LeaseRef;
  controller: AbortController;
  phase: string | undefined;
  /** The handler was called (a prefetched job waits for a handler slot first). */
  started: boolean;
  settled: Promise<void>;
}

const silentLogger: WorkerLogger = { info() {}, warn() {}, error() {} };
const sdkVersion = "@jobwire/sdk 0.1.0";

/**
 * A Jobwire worker: registers with the server over a LeaseJobs stream, runs the handler
 * of each leased job with a {@link JobContext}, heartbeats its leases, and reports the
 * outcome. The stream reconnects by itself; handlers in flight keep running and are
 * adopted by the new stream. See {@link WorkerState} for its life cycle.
 */
export class Worker {
  #state: WorkerState = "new";
  readonly #options: Required<Pick<WorkerOptions, "concurrency" | "reportRetryMs">> & WorkerOptions;
  /** Leases held ready beyond `concurrency` (see {@link WorkerOptions.prefetch}). */
  readonly #prefetch: number;
  readonly #handlerSlots: HandlerSlots;
  readonly #log: WorkerLogger;
  readonly #sessions: Http2SessionManager;
  readonly #client: Client<typeof WorkerService>;
  readonly #running = new Map<string, RunningJob>();
  readonly #completions: CompletionBatcher;
  readonly #stop = new AbortController();
  #workerId = "";
  #streamAbort: AbortController | undefined;
  #streamLoop: Promise<void> | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #heartbeatIntervalMs = 10_000;
  #heartbeatDueAt = Number.POSITIVE_INFINITY;
  #registered: { resolve(): void; reject(error: unknown): void; promise: Promise<void> };
  #shutdown: Promise<ShutdownReport> | undefined;

  constructor(options: WorkerOptions) {
    if (options.queues.length === 0) throw new Error("queues: at least one queue is required");
    if (Object.keys(options.handlers).length === 0) throw new Error("handlers: at least one handler is required");
    this.#options = { concurrency: 10, reportRetryMs: 60_000, ...options };
    this.#prefetch = this.#options.prefetch ?? this.#options.concurrency;
    this.#handlerSlots = new HandlerSlots(this.#options.concurrency);
    this.#log = options.logger ?? silentLogger;
    this.#sessions = new Http2SessionManager(
      options.baseUrl,
      { pingIntervalMs: 5_000, pingTimeoutMs: 5_000 },
      { ...noDelaySessionOptions(options.baseUrl), ...options.tls },
    );
    const transport: Transport = createGrpcTransport({
      baseUrl: options.baseUrl,
      sessionManager: this.#sessions,
      interceptors: apiKeyInterceptors(options.apiKey),
      acceptCompression: acceptedCompressions(options.compression),
      ...deepJsonOptions,
    });
    this.#client = createClient(WorkerService, transport);
    this.#completions = new CompletionBatcher(
      async (completions) => (await this.#client.completeJobs({ completions })).outcomes,
      this.#options.reportRetryMs,
    );
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined);
    this.#registered = { resolve, reject, promise };
  }

  /** The current state. */
  get state(): WorkerState {
    return this.#state;
  }

  /** Jobs running right now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** The id the server gave the current stream ("" before registration). */
  get workerId(): string {
    return this.#workerId;
  }

  /**
   * Connects and starts taking jobs; resolves once the server has registered the worker.
   * Rejects, and stops the worker, when the server refuses its API key
   * (`UNAUTHENTICATED`, `PERMISSION_DENIED`) before it ever registered.
   */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new IllegalStateError(`start() called on a ${this.#state} worker`);
    this.#moveTo("connecting");
    this.#streamLoop = this.#runStream();
    this.#scheduleHeartbeat();
    try {
      await this.#registered.promise;
    } catch (error) {
      await this.shutdown({ graceMs: 0 });
      throw error;
    }
  }

  /**
   * Stops in two steps: no new leases, and handlers in flight get `graceMs` to finish; past
   * it, they are aborted with reason SHUTDOWN and get `abortWaitMs` to settle. Whatever
   * happens, the stream and connections are closed before this resolves.
   */
  shutdown(options: ShutdownOptions = {}): Promise<ShutdownReport> {
    this.#shutdown ??= this.#drainAndStop(options.graceMs ?? 30_000, options.abortWaitMs ?? 5_000);
    return this.#shutdown;
  }

  async #drainAndStop(graceMs: number, abortWaitMs: number): Promise<ShutdownReport> {
    const report: ShutdownReport = { timedOut: false, aborted: 0, abandoned: 0 };
    if (this.#state === "new") {
      this.#moveTo("stopped");
      return report;
    }
    this.#moveTo("draining");
    try {
      if (this.#workerId) {
        await this.#client.heartbeat({ workerId: this.#workerId, draining: true, leases: [] }).catch((error: unknown) => {
          this.#log.warn("could not tell the server the worker is draining", { error: String(error) });
        });
      }
      // Prefetched jobs not started yet go back at once rather than wait for a slot.
      for (const job of this.#running.values()) if (!job.started) abort(job, "SHUTDOWN");
      if (!(await this.#allSettled(graceMs))) {
        report.timedOut = true;
        report.aborted = this.#running.size;
        for (const job of this.#running.values()) abort(job, "SHUTDOWN");
        if (!(await this.#allSettled(abortWaitMs))) report.abandoned = this.#running.size;
      }
      return report;
    } finally {
      this.#stop.abort();
      clearTimeout(this.#heartbeatTimer);
      this.#streamAbort?.abort();
      await this.#streamLoop?.catch(() => undefined);
      this.#sessions.abort();
      this.#registered.reject(new IllegalStateError("worker stopped before it registered"));
      this.#moveTo("stopped");
      this.#log.info("worker stopped", report);
    }
  }

  /** Resolves true when no handler runs, false if `timeoutMs` passes first. */
  async #allSettled(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const settled = (async () => {
      while (this.#running.size > 0) await Promise.all([...this.#running.values()].map((job) => job.settled));
      return true as const;
    })();
    try {
      return await Promise.race([settled, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #moveTo(state: WorkerState): void {
    this.#state = nextWorkerState(this.#state, state);
  }

  /** Keeps a LeaseJobs stream open until shutdown, reconnecting with jittered backoff. */
  async #runStream(): Promise<void> {
    const initialDelay = this.#options.reconnect?.initialDelayMs ?? 100;
    const maxDelay = this.#options.reconnect?.maxDelayMs ?? 10_000;
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      this.#streamAbort = new AbortController();
      try {
        const stream = this.#client.leaseJobs(
          {
            workerName: this.#options.name ?? `${process.env.HOSTNAME ?? "worker"}:${process.pid}`,
            queues: this.#options.queues,
            kinds: Object.keys(this.#options.handlers),
            capacity: this.#options.concurrency + this.#prefetch,
            prefetch: this.#prefetch,
            labels: this.#options.labels ?? {},
            sdkVersion,
            heldLeases: [...this.#running.values()].map((job) => job.ref),
          },
          { signal: this.#streamAbort.signal },
        );
        for await (const response of stream) {
          const message = response.message;
          switch (message.case) {
            case "registered":
              failures = 0;
              this.#workerId = message.value.workerId;
              this.#heartbeatIntervalMs = millisFromDuration(message.value.heartbeatInterval) || this.#heartbeatIntervalMs;
              for (const lost of message.value.lostLeases) this.#abortLease(lost, "LEASE_LOST");
              if (this.#state === "connecting") this.#moveTo("running");
              this.#log.info("worker registered", { workerId: this.#workerId });
              this.#registered.resolve();
              break;
            case "lease":
              this.#startJob(message.value);
              break;
            case "leaseBatch":
              for (const lease of message.value.leases) this.#startJob(lease);
              break;
            case "cancel":
              if (message.value.lease) this.#abortLease(message.value.lease, abortReasonOf(message.value.reason));
              break;
            case "keepAlive":
              break;
          }
        }
      } catch (error) {
        if (this.#stop.signal.aborted || this.#state === "draining") break;
        const refusal = ConnectError.from(error);
        // A key refused at the first connection will not get better by reconnecting.
        if (this.#workerId === "" && (refusal.code === Code.Unauthenticated || refusal.code === Code.PermissionDenied)) {
          this.#log.error("the server refused the worker's API key", { code: Code[refusal.code], error: refusal.rawMessage });
          this.#registered.reject(refusal);
          break;
        }
        this.#log.warn("lease stream failed", { error: String(error) });
      }
      if (this.#stop.signal.aborted || this.#state === "draining") break;
      // The server ended the stream (it is restarting) or it failed: connect again.
      this.#moveTo("reconnecting");
      const delay = Math.min(maxDelay, initialDelay * 2 ** failures++) * (0.5 + Math.random() / 2);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#stop.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (this.#state === "reconnecting") this.#moveTo("connecting");
    }
  }

  #abortLease(ref: LeaseRef, reason: AbortReason): void {
    const job = this.#running.get(ref.jobId);
    if (job && job.ref.leaseToken === ref.leaseToken) abort(job, reason);
  }

  #startJob(lease: Lease): void {
    const handler = this.#options.handlers[lease.kind];
    const ref: LeaseRef = { $typeName: "jobwire.v1.LeaseRef", jobId: lease.jobId, leaseToken: lease.leaseToken };
    const controller = new AbortController();
    const job: RunningJob = { lease, ref, controller, phase: undefined, started: false, settled: Promise.resolve() };
    this.#running.set(lease.jobId, job);
    job.settled = this.#runJob(job, handler).finally(() => {
      // A later attempt of the same job may have been leased here meanwhile (this one was
      // lost or timed out): only remove our own entry.
      if (this.#running.get(lease.jobId) === job) this.#running.delete(lease.jobId);
    });
    this.#heartbeatBy(Date.now() + heartbeatIntervalOf(lease, this.#heartbeatIntervalMs));
  }

  async #runJob(job: RunningJob, handler: JobHandler<any, any> | undefined): Promise<void> {
    const { lease, controller } = job;
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (lease.deadline) {
      const ms = timestampDate(lease.deadline).getTime() - Date.now();
      deadlineTimer = setTimeout(() => abort(job, "TIMEOUT"), Math.max(0, ms));
    }
    try {
      if (!handler) throw new NonRetryableError(`no handler for job kind ${JSON.stringify(lease.kind)}`);
      // A prefetched job waits here for a handler slot; a cancel or shutdown meanwhile
      // skips the handler and goes straight to the report.
      const release = await this.#handlerSlots.acquire(controller.signal);
      let result: JsonValue | undefined;
      try {
        controller.signal.throwIfAborted();
        job.started = true;
        result = (await handler(jsonFromValue(lease.payload), this.#context(job))) as JsonValue | undefined;
      } finally {
        release();
      }
      const completion = await this.#completions.complete({ lease: job.ref, result: valueFromJson(result ?? undefined) });
      if ("error" in completion) this.#reportFailed("CompleteJob", job, completion.error);
      else if (completion.outcome === ReportOutcome.LEASE_LOST) this.#reportRefused(job, Code.FailedPrecondition);
      else if (completion.outcome === ReportOutcome.NOT_FOUND) this.#reportRefused(job, Code.NotFound);
    } catch (error) {
      const abortReason = abortReasonFromSignal(controller.signal);
      // Lost or timed-out leases were already ended by the server; a report would be refused.
      if (abortReason === "LEASE_LOST" || abortReason === "TIMEOUT") return;
      const failure = error instanceof Error ? error : new Error(String(error));
      const outcome = await reportWithRetry(
        () =>
          this.#client.failJob({
            lease: job.ref,
            message: failure.message || failure.name,
            details: valueFromJson({ name: failure.name, stack: failure.stack ?? null }),
            retryable: !(failure instanceof NonRetryableError),
            retryAfter:
              failure instanceof RetryAfterError ? durationFromMillis(failure.retryAfterMs)
              : abortReason === "SHUTDOWN" ? durationFromMillis(0)
              : undefined,
            phase: job.phase ?? "",
            cancelled: abortReason === "CANCELLED",
          }),
        this.#options.reportRetryMs,
      );
      if (!outcome.ok) this.#reportFailed("FailJob", job, outcome.error);
    } finally {
      clearTimeout(deadlineTimer);
    }
  }

  #reportRefused(job: RunningJob, code: Code): void {
    this.#reportFailed("CompleteJob", job, new ConnectError("the server refused the completion", code));
  }

  #reportFailed(call: string, job: RunningJob, error: ConnectError): void {
    const level = error.code === Code.FailedPrecondition ? "warn" : "error";
    this.#log[level](`${call} was not accepted`, { jobId: job.lease.jobId, code: Code[error.code], error: error.rawMessage });
  }

  #context(job: RunningJob): JobContext {
    const { lease, controller } = job;
    const client = this.#client;
    const retryMs = this.#options.reportRetryMs;
    return {
      jobId: lease.jobId,
      kind: lease.kind,
      queue: lease.queue,
      attempt: lease.attempt,
      maxAttempts: lease.maxAttempts,
      metadata: lease.metadata,
      lastError: lease.lastError?.message,
      previousProgress: jsonFromValue(lease.progress),
      signal: controller.signal,
      get abortReason() {
        return abortReasonFromSignal(controller.signal);
      },
      async progress(progress) {
        const outcome = await reportWithRetry(() => client.reportProgress({ lease: job.ref, progress: valueFromJson(progress) }), retryMs);
        if (!outcome.ok) throw outcome.error;
      },
      async step(name, fn) {
        const phase = lease.phases.find((p) => p.name === name);
        if (!phase) throw new NonRetryableError(`job ${lease.jobId} declares no phase ${JSON.stringify(name)}`);
        if (phase.state === PhaseState.SUCCEEDED) return jsonFromValue(phase.result) as never;
        controller.signal.throwIfAborted();
        job.phase = name;
        const result = await fn();
        const outcome = await reportWithRetry(
          () => client.completePhase({ lease: job.ref, phase: name, result: valueFromJson(result) }),
          retryMs,
        );
        if (!outcome.ok) throw outcome.error;
        phase.state = PhaseState.SUCCEEDED;
        phase.result = valueFromJson(result);
        job.phase = undefined;
        return result;
      },
    };
  }

  /**
   * Heartbeats every lease in flight, at the interval the server suggested or faster: a
   * third of the shortest lease timeout among the jobs running.
   */
  #scheduleHeartbeat(): void {
    const intervals = [...this.#running.values()].map((job) => heartbeatIntervalOf(job.lease, this.#heartbeatIntervalMs));
    this.#heartbeatBy(Date.now() + Math.min(this.#heartbeatIntervalMs, ...intervals));
  }

  /** Makes sure the next heartbeat happens by `epochMs` (re-arming only to go sooner). */
  #heartbeatBy(epochMs: number): void {
    if (this.#stop.signal.aborted || (this.#heartbeatTimer !== undefined && epochMs >= this.#heartbeatDueAt)) return;
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatDueAt = epochMs;
    this.#heartbeatTimer = setTimeout(() => {
      this.#heartbeatTimer = undefined;
      this.#heartbeat().finally(() => this.#scheduleHeartbeat());
    }, Math.max(0, epochMs - Date.now()));
  }

  async #heartbeat(): Promise<void> {
    const leases = [...this.#running.values()].map((job) => job.ref);
    if (leases.length === 0) return;
    try {
      const answer = await this.#client.heartbeat({ leases, workerId: this.#workerId });
      for (const ref of answer.cancelled) this.#abortLease(ref, "CANCELLED");
      for (const ref of answer.lost) this.#abortLease(ref, "LEASE_LOST");
    } catch (error) {
      this.#log.warn("heartbeat failed", { error: String(error) });
    }
  }
}

/** A third of the lease's timeout (at least 50 ms), capped by the server's suggestion. */
function heartbeatIntervalOf(lease: Lease, suggestedMs: number): number {
  const leaseMs = millisFromDuration(lease.leaseTimeout) || Number.POSITIVE_INFINITY;
  return Math.max(50, Math.min(suggestedMs, leaseMs / 3));
}

function abort(job: RunningJob, reason: AbortReason): void {
  if (!job.controller.signal.aborted) job.controller.abort(new JobAbortedError(reason));
}

function abortReasonFromSignal(signal: AbortSignal): AbortReason | undefined {
  return signal.aborted && signal.reason instanceof JobAbortedError ? signal.reason.reason : undefined;
}

function abortReasonOf(reason: CancelReason): AbortReason {
  switch (reason) {
    case CancelReason.TIMEOUT:
      return "TIMEOUT";
    case CancelReason.LEASE_LOST:
      return "LEASE_LOST";
    default:
      return "CANCELLED";
  }
}
