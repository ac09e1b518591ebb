import { create } from "@bufbuild/protobuf";
import { CancelReason, LeaseSchema } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import type { Logger } from "../logger.js";
import { jobClaimAvailable, jobReadyExists, type ClaimedJob } from "../store/sql/job-claim.js";
import { jobEndAttempts } from "../store/sql/job-end-attempt.js";
import { jobMessagePhases, lastErrorMessage } from "../rpc/job-message.js";
import { valueFromJson } from "../rpc/json-value.js";
import { durationFromMillis } from "../rpc/proto-time.js";
import { AdmissionSlots } from "./admission-slots.js";
import type { QueueAddress } from "./queue-address.js";
import type { WorkerNotice } from "./notification-listener.js";
import type { Wakeups } from "./wakeups.js";
import type { WorkerStream } from "./worker-stream.js";

/** Claims that may run at once for one stream. */
const maxClaimsInFlight = 2;

/**
 * Leases jobs to the worker streams connected to this replica. Claims are driven by
 * wake-ups (a queue got pending jobs, a slot freed, a resync) and are set-based: one
 * statement leases as many jobs as the stream has free slots. A wake-up that arrives while
 * no claim can start makes the next one run, so none is lost; a stream whose last claim came
 * back short does not claim again until a wake-up says jobs may be ready. Jobs waiting for a
 * concurrency limit are not claimed: the admission loop places them on streams with free
 * slots ({@link Dispatcher.holdAdmissionSlots}) and leases them as it admits them.
 */
export class Dispatcher {
  readonly #streams = new Map<string, WorkerStream>();
  /** Which local stream holds each lease it was given: job id → stream. */
  readonly #holders = new Map<string, WorkerStream>();
  #wakeups: Wakeups | undefined;
  #slotsLeftEmpty: (() => void) | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  /** Where jobs given back by {@link fill} are announced; set before streams register. */
  announceThrough(wakeups: Wakeups): void {
    this.#wakeups = wakeups;
  }

  /**
   * Called whenever a claim leaves slots of a stream empty: jobs waiting for a concurrency
   * limit, which are only ever leased by the admission loop, may fill them.
   */
  onSlotsLeftEmpty(callback: () => void): void {
    this.#slotsLeftEmpty = callback;
  }

  /** Adds a stream and fills it. */
  register(stream: WorkerStream): void {
    this.#streams.set(stream.id, stream);
    // Leases adopted from the worker's previous stream.
    for (const jobId of stream.outstanding.keys()) this.#holders.set(jobId, stream);
    this.fill(stream);
  }

  /** Removes a stream (its leases are the caller's business). */
  unregister(stream: WorkerStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
    for (const jobId of stream.outstanding.keys()) {
      if (this.#holders.get(jobId) === stream) this.#holders.delete(jobId);
    }
  }

  /** Jobs in the queue at `address` (or in any queue) may be ready: fill the streams that serve it. */
  wake(address?: QueueAddress): void {
    for (const stream of this.#streams.values()) {
      if (address !== undefined && !stream.serves(address)) continue;
      stream.woken();
      this.fill(stream);
    }
  }

  /** A lease of a local stream ended (reported, reaped or revoked): free its slot. */
  leaseEnded(stream: WorkerStream, jobId: string): void {
    if (this.#holders.get(jobId) === stream) this.#holders.delete(jobId);
    if (stream.outstanding.delete(jobId)) this.fill(stream);
  }

  /**
   * A worker reported the outcome of a lease (completed or failed it): the worker is no
   * longer running that job, so its stream's slot is free at once, before the report
   * commits. The database still guards the report itself by the lease.
   */
  reportReceived(jobId: string, leaseToken: string): void {
    const stream = this.#holders.get(jobId);
    if (stream && stream.outstanding.get(jobId) === leaseToken) this.leaseEnded(stream, jobId);
  }

  /**
   * Applies a notice to the local stream it names; returns false when that stream is not
   * connected to this replica.
   */
  onWorkerNotice(notice: WorkerNotice): boolean {
    const stream = this.#streams.get(notice.worker);
    if (!stream) return false;
    switch (notice.type) {
      case "cancel":
        if (stream.outstanding.get(notice.job) === notice.lease_token) {
          stream.send({
            case: "cancel",
            value: { lease: { jobId: notice.job, leaseToken: BigInt(notice.lease_token) }, reason: CancelReason.CANCELLED, message: notice.reason },
          });
        }
        break;
      case "lease_ended": {
        const token = stream.outstanding.get(notice.job);
        if (token === undefined || (notice.lease_token !== undefined && notice.lease_token !== token)) break;
        // The worker may still be running it (expired, timed out, revoked): tell it to stop.
        if (notice.cause && notice.cause !== "failed" && notice.cause !== "released") {
          stream.send({
            case: "cancel",
            value: {
              lease: { jobId: notice.job, leaseToken: BigInt(token) },
              reason: notice.cause === "timeout" ? CancelReason.TIMEOUT : CancelReason.LEASE_LOST,
              message: `lease ended: ${notice.cause}`,
            },
          });
        }
        this.leaseEnded(stream, notice.job);
        break;
      }
      case "drain":
        stream.draining = true;
        break;
    }
    return true;
  }

  /**
   * Drops leases that local streams count but that are no longer theirs in the database
   * (the notice that a lease ended was lost, e.g. a replica died after its commit), then
   * fills the streams. Run by the slow fallback poll.
   */
  async reconcile(): Promise<void> {
    const streams = [...this.#streams.values()];
    if (streams.length === 0) return;
    // Only leases counted before the query can be judged by it.
    const counted = streams.map((stream) => [stream, [...stream.outstanding]] as const);
    const result = await this.pool.query<{ id: string; token: string }>(
      "SELECT id, lease_token::text AS token FROM job WHERE state = 'running' AND lease_worker = ANY($1::text[])",
      [streams.map((stream) => stream.id)],
    );
    const current = new Set(result.rows.map((row) => `${row.id}/${row.token}`));
    for (const [stream, leases] of counted) {
      for (const [jobId, token] of leases) {
        if (!current.has(`${jobId}/${token}`) && stream.outstanding.get(jobId) === token) stream.outstanding.delete(jobId);
      }
      stream.woken();
      this.fill(stream);
    }
  }

  /** Closes every stream without releasing leases: workers reconnect and adopt them. */
  closeAll(): void {
    for (const stream of this.#streams.values()) stream.close();
    this.#streams.clear();
    this.#holders.clear();
  }

  /**
   * Claims jobs for a stream's free slots. Up to {@link maxClaimsInFlight} claims run at
   * once for a stream, each for the slots free when it starts, so that one claim's commit
   * overlaps the next; a claim that filled all its slots, or a wake-up that arrived when no
   * claim could start, leads to another.
   */
  fill(stream: WorkerStream): void {
    if (stream.closed) return;
    if (stream.drained) {
      // Nothing was ready at the last claim and nothing has been announced since; free
      // slots are the admission loop's to fill, if jobs wait for a limit (and once enough
      // are free for it to lease into: no pass for each lease that ends before that).
      if (stream.slotsToFill() > 0) this.#slotsLeftEmpty?.();
      return;
    }
    if (stream.claimsInFlight >= maxClaimsInFlight) {
      stream.claimAgain = true;
      return;
    }
    const free = stream.slotsToFill();
    if (free <= 0) {
      // The free slots may all be reserved by a claim in flight that started before the
      // commit behind this wake-up and so cannot see its jobs: claim again when it ends.
      // (Or too few are free yet: the lease that frees the next one brings us back.)
      if (stream.claimsInFlight > 0) stream.claimAgain = true;
      return;
    }
    stream.claimsInFlight++;
    stream.reserved += free;
    stream.claimAgain = false;
    const wakeupsBefore = stream.wakeups;
    let claimed = 0;
    let readyLeft = true;
    this.#claim(stream, free)
      .then(async (count) => {
        claimed = count;
        if (claimed < free) readyLeft = await this.#readyLeft(stream);
      })
      .catch((error: unknown) => this.log.error({ err: error, worker: stream.id }, "claiming jobs failed; the fallback poll retries"))
      .finally(() => {
        stream.claimsInFlight--;
        stream.reserved -= free;
        if (claimed < free) {
          // Nothing left that a claim could take, and no wake-up since this one started.
          if (!readyLeft && stream.wakeups === wakeupsBefore) stream.drained = true;
          this.#slotsLeftEmpty?.();
        }
        if (claimed === free || stream.claimAgain) this.fill(stream);
      });
  }

  /**
   * Holds, for one admission pass, the slots of local streams that may be filled now (see
   * {@link AdmissionSlots}): the pass admits jobs by leasing them into those slots.
   */
  holdAdmissionSlots(): AdmissionSlots {
    return new AdmissionSlots(this.#streams.values(), {
      deliver: (stream, jobs) => {
        this.#deliver(stream, jobs).catch((error: unknown) => this.log.error({ err: error, worker: stream.id }, "giving back leases of a closed stream failed"));
      },
      fill: (stream) => this.fill(stream),
    });
  }

  /** One claim for `limit` slots of `stream`; returns how many jobs it leased. */
  async #claim(stream: WorkerStream, limit: number): Promise<number> {
    const { namespace, queues, kinds } = stream.registration;
    const jobs = await jobClaimAvailable(this.pool, { workerId: stream.id, namespace, queues, kinds, limit });
    await this.#deliver(stream, jobs);
    return jobs.length;
  }

  /** After a short claim: whether jobs the stream takes are still pending (held by another transaction, or newer). */
  async #readyLeft(stream: WorkerStream): Promise<boolean> {
    if (stream.closed) return false;
    const { namespace, queues, kinds } = stream.registration;
    return jobReadyExists(this.pool, { namespace, queues, kinds });
  }

  /** Sends jobs just leased to `stream` to its worker (or gives them back if it closed). */
  async #deliver(stream: WorkerStream, jobs: readonly ClaimedJob[]): Promise<void> {
    if (stream.closed) {
      await this.#releaseUnsent(jobs);
      return;
    }
    for (const job of jobs) {
      stream.outstanding.set(job.id, job.leaseToken);
      this.#holders.set(job.id, stream);
    }
    if (jobs.length > 0) this.#wakeups?.eventsCommitted();
    // One message for the whole claim: one frame and one write instead of one per job.
    if (jobs.length === 1) stream.send({ case: "lease", value: leaseMessage(jobs[0]!) });
    if (jobs.length > 1) stream.send({ case: "leaseBatch", value: { leases: jobs.map(leaseMessage) } });
    const due = jobs.flatMap((job) => (job.deadlineAt ? [job.leaseExpiresAt, job.deadlineAt] : [job.leaseExpiresAt]));
    // The maintenance loop wakes for the earliest expiry or deadline of these leases.
    if (due.length > 0) this.#wakeups?.dueAt(new Date(Math.min(...due.map((d) => d.getTime()))));
  }

  /** The stream closed while a claim ran: give its jobs back at once. */
  async #releaseUnsent(jobs: readonly ClaimedJob[]): Promise<void> {
    for (const job of jobs) {
      const ended = await jobEndAttempts(
        this.pool,
        { by: "lease", jobId: job.id, leaseToken: job.leaseToken },
        { cause: "released", message: "worker stream closed before the lease was sent", retryable: true, immediate: true },
      );
      this.#wakeups?.attemptsEnded(ended, "released");
    }
  }
}

function leaseMessage(job: ClaimedJob) {
  return create(LeaseSchema, {
    jobId: job.id,
    queue: job.queue,
    kind: job.kind,
    payload: valueFromJson(job.payload),
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    leaseToken: BigInt(job.leaseToken),
    leaseExpiresAt: timestampFromDate(job.leaseExpiresAt),
    leaseTimeout: durationFromMillis(job.leaseTimeoutMs),
    deadline: job.deadlineAt ? timestampFromDate(job.deadlineAt) : undefined,
    phases: jobMessagePhases(job.phases),
    metadata: job.metadata,
    lastError: lastErrorMessage(job.lastError),
    progress: valueFromJson(job.progress),
  });
}
