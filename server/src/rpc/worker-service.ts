import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ReportOutcome, WorkerService, type LeaseRef } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { v7 as uuidv7 } from "uuid";
import { callerOf } from "../auth/caller.js";
import { WorkerStream } from "../dispatch/worker-stream.js";
import type { Dispatcher } from "../dispatch/dispatcher.js";
import type { Wakeups } from "../dispatch/wakeups.js";
import { jobDefaults, jobLimits } from "../jobs/defaults.js";
import type { Logger } from "../logger.js";
import type { JobStateName } from "../store/entities/job-state.js";
import type { Database } from "../store/orm.js";
import { jobCompleteMany, type Completion, type LeaseReportOutcome } from "../store/sql/job-complete.js";
import { StatementBatcher } from "../store/statement-batcher.js";
import { jobEndAttempts, mayHaveMore } from "../store/sql/job-end-attempt.js";
import {
  jobLeaseAdoptMany,
  jobLeaseExtendMany,
  jobPhaseComplete,
  jobProgressSet,
  type LeaseKey,
} from "../store/sql/job-lease-report.js";
import { invalidArgument } from "./connect-errors.js";
import { checkJobId } from "./job-id.js";
import { jobStateMessage } from "./job-message.js";
import { checkStorableString, jsonTextFromValue } from "./json-value.js";
import { durationFromMillis, millisFromDuration } from "./proto-time.js";
import { checkMetadata, checkName } from "./validate-job-spec.js";

/** What the WorkerService handlers need. */
export interface WorkerServiceDeps {
  db: Database;
  dispatcher: Dispatcher;
  wakeups: Wakeups;
  log: Logger;
  /** Aborted when the server shuts down: streams end without releasing their leases. */
  shutdownSignal: AbortSignal;
  /** How often a stream says something when idle. */
  keepAliveMs: number;
}

const limits = {
  workerNameMax: 256,
  queuesMax: 100,
  kindsMax: 1000,
  capacityMax: 10_000,
  leasesMax: 10_000,
  completionsMax: 1000,
  progressMaxBytes: 64 * 1024,
  detailsMaxBytes: 64 * 1024,
  messageMax: 4096,
  retryAfterMaxMs: 30 * 86_400_000,
};

const reportOutcomes: Record<LeaseReportOutcome["kind"], ReportOutcome> = {
  applied: ReportOutcome.APPLIED,
  repeated: ReportOutcome.REPEATED,
  lost: ReportOutcome.LEASE_LOST,
  not_found: ReportOutcome.NOT_FOUND,
};

/**
 * The WorkerService handlers. LeaseJobs registers a stream with the dispatcher and yields
 * what it queues; the unary reports are guarded by the lease they name, and free the
 * stream's slot when they end the attempt.
 */
export function workerServiceImpl(deps: WorkerServiceDeps): ServiceImpl<typeof WorkerService> {
  const { db, dispatcher, wakeups, log } = deps;
  // Completions arriving together share one statement and one commit.
  const completions = new StatementBatcher<Completion, LeaseReportOutcome>((items) => jobCompleteMany(db.pool, items), {
    maxBatchSize: 1000,
    maxInFlight: 4,
  });

  return {
    async *leaseJobs(request, context) {
      const registration = {
        workerId: uuidv7(),
        // A worker serves the queues of its caller's namespace.
        namespace: callerOf(context).namespace,
        workerName: checkLength(request.workerName, "worker_name", limits.workerNameMax),
        queues: checkNames(request.queues, "queues", 1, limits.queuesMax),
        kinds: checkNames(request.kinds, "kinds", 0, limits.kindsMax),
        capacity: request.capacity,
        prefetch: request.prefetch,
      };
      if (!Number.isInteger(request.capacity) || request.capacity < 1 || request.capacity > limits.capacityMax) {
        throw invalidArgument("capacity", `must be between 1 and ${limits.capacityMax}`);
      }
      if (request.prefetch < 0 || request.prefetch >= request.capacity) {
        throw invalidArgument("prefetch", `must be between 0 and capacity - 1 (${request.capacity - 1})`);
      }
      checkMetadata(request.labels, "labels");
      checkLength(request.sdkVersion, "sdk_version", limits.workerNameMax);
      const held = leaseKeys(request.heldLeases, "held_leases");
      const stream = new WorkerStream(registration);
      const adopted = await jobLeaseAdoptMany(db.pool, stream.id, held);
      for (const lease of adopted) stream.outstanding.set(lease.jobId, lease.leaseToken);
      const adoptedIds = new Set(adopted.map((lease) => `${lease.jobId}/${lease.leaseToken}`));
      const lost = held.filter((lease) => !adoptedIds.has(`${lease.jobId}/${lease.leaseToken}`));
      log.info({ worker: stream.id, name: registration.workerName, queues: registration.queues, capacity: registration.capacity, adopted: adopted.length }, "worker connected");

      const done = AbortSignal.any([context.signal, deps.shutdownSignal]);
      try {
        yield {
          message: {
            case: "registered",
            value: {
              workerId: stream.id,
              heartbeatInterval: durationFromMillis(Math.floor(jobDefaults.leaseTimeoutMs / 3)),
              lostLeases: lost.map((lease) => ({ jobId: lease.jobId, leaseToken: BigInt(lease.leaseToken) })),
            },
          },
        };
        dispatcher.register(stream);
        for (;;) {
          const message = await stream.next(deps.keepAliveMs, done);
          if (!message) break;
          yield { message };
        }
      } finally {
        stream.close();
        dispatcher.unregister(stream);
        // A worker that went away gives its jobs back at once. When the server itself is
        // stopping, the leases stay: the worker reconnects elsewhere and adopts them.
        if (!deps.shutdownSignal.aborted) await releaseWorkerLeases(db, wakeups, stream.id, log);
        log.info({ worker: stream.id }, "worker disconnected");
      }
    },

    async heartbeat(request) {
      const leases = leaseKeys(request.leases, "leases");
      if (request.draining) {
        if (!request.workerId) throw invalidArgument("worker_id", "is required with draining");
        wakeups.workerNotice({ type: "drain", worker: request.workerId });
      }
      const extended = leases.length === 0 ? [] : await jobLeaseExtendMany(db.pool, leases);
      const current = new Set(extended.map((lease) => `${lease.jobId}/${lease.leaseToken}`));
      return {
        extended: extended.map((lease) => ({ lease: leaseRef(lease), leaseExpiresAt: timestampFromDate(lease.leaseExpiresAt) })),
        cancelled: extended.filter((lease) => lease.cancelRequested).map(leaseRef),
        lost: leases.filter((lease) => !current.has(`${lease.jobId}/${lease.leaseToken}`)).map(leaseRef),
      };
    },

    async reportProgress(request) {
      const lease = leaseKey(request.lease, "lease");
      const progress = jsonTextFromValue(request.progress, "progress", limits.progressMaxBytes);
      if (!(await jobProgressSet(db.pool, lease, progress))) await throwLeaseNotCurrent(db, lease);
      wakeups.eventsCommitted();
      return {};
    },

    async completePhase(request) {
      const lease = leaseKey(request.lease, "lease");
      const phase = checkName(request.phase, "phase");
      const result = jsonTextFromValue(request.result, "result", jobLimits.payloadMaxBytes);
      const outcome = await jobPhaseComplete(db.pool, lease, phase, result);
      if (outcome === "unknown_phase") throw invalidArgument("phase", `job ${lease.jobId} declares no phase ${JSON.stringify(phase)}`);
      if (outcome === "lost") await throwLeaseNotCurrent(db, lease);
      if (outcome === "applied") wakeups.eventsCommitted();
      return {};
    },

    async completeJob(request) {
      const lease = leaseKey(request.lease, "lease");
      const result = jsonTextFromValue(request.result, "result", jobLimits.payloadMaxBytes);
      dispatcher.reportReceived(lease.jobId, lease.leaseToken);
      const outcome = await completions.submit({ ...lease, resultJson: result });
      if (outcome.kind === "not_found") throw new ConnectError(`job ${lease.jobId} not found`, Code.NotFound);
      if (outcome.kind === "lost") throw leaseNotCurrent(lease);
      // Frees the stream's slot, on this replica directly or on another by NOTIFY.
      if (outcome.kind === "applied") wakeups.workerNotice({ type: "lease_ended", worker: outcome.workerId, job: lease.jobId, lease_token: lease.leaseToken });
      return {};
    },

    async completeJobs(request) {
      if (request.completions.length === 0) throw invalidArgument("completions", "must not be empty");
      if (request.completions.length > limits.completionsMax) {
        throw invalidArgument("completions", `must have at most ${limits.completionsMax} entries`);
      }
      const items = request.completions.map((completion, index) => ({
        ...leaseKey(completion.lease, `completions[${index}].lease`),
        resultJson: jsonTextFromValue(completion.result, `completions[${index}].result`, jobLimits.payloadMaxBytes),
      }));
      for (const item of items) dispatcher.reportReceived(item.jobId, item.leaseToken);
      const outcomes = await Promise.all(items.map((item) => completions.submit(item)));
      outcomes.forEach((outcome, index) => {
        if (outcome.kind !== "applied") return;
        const item = items[index]!;
        wakeups.workerNotice({ type: "lease_ended", worker: outcome.workerId, job: item.jobId, lease_token: item.leaseToken });
      });
      return { outcomes: outcomes.map((outcome) => reportOutcomes[outcome.kind]) };
    },

    async failJob(request) {
      const lease = leaseKey(request.lease, "lease");
      if (request.message === "") throw invalidArgument("message", "is required");
      checkLength(request.message, "message", limits.messageMax);
      checkStorableString(request.message, "message");
      const details = jsonTextFromValue(request.details, "details", limits.detailsMaxBytes);
      const retryAfterMs = request.retryAfter ? millisFromDuration(request.retryAfter, "retry_after", 0, limits.retryAfterMaxMs) : undefined;
      const phase = request.phase === "" ? undefined : checkName(request.phase, "phase");
      dispatcher.reportReceived(lease.jobId, lease.leaseToken);
      const [ended] = await jobEndAttempts(db.pool, { by: "lease", ...lease }, {
        cause: "failed",
        message: request.message,
        details: JSON.parse(details) as unknown,
        phase,
        retryable: request.retryable ?? true,
        retryAfterMs,
      });
      if (ended) {
        wakeups.attemptsEnded([ended], "failed");
        return { state: jobStateMessage(ended.state) };
      }
      // Not applied: a repeat of the same report is answered with the state it led to.
      const current = await db.pool.query<{ state: JobStateName; token: string | null }>(
        "SELECT state, last_error->>'lease_token' AS token FROM job WHERE id = $1",
        [lease.jobId],
      );
      const row = current.rows[0];
      if (!row) throw new ConnectError(`job ${lease.jobId} not found`, Code.NotFound);
      if (row.state !== "running" && row.token === lease.leaseToken) return { state: jobStateMessage(row.state) };
      throw leaseNotCurrent(lease);
    },
  };
}

/** Gives back every lease a departed worker held, in batches, each a transaction. */
async function releaseWorkerLeases(db: Database, wakeups: Wakeups, workerId: string, log: Logger): Promise<void> {
  try {
    for (;;) {
      const released = await jobEndAttempts(db.pool, { by: "worker", workerId }, {
        cause: "released", message: "the worker's stream closed while it held the lease", retryable: true, immediate: true,
      });
      if (released.length > 0) {
        log.info({ worker: workerId, jobs: released.map((r) => r.id) }, "released leases of a departed worker");
        wakeups.attemptsEnded(released, "released");
      }
      if (!mayHaveMore(released)) return;
    }
  } catch (error) {
    // The leases then expire by themselves; the reaper returns the jobs.
    log.error({ err: error, worker: workerId }, "releasing a departed worker's leases failed");
  }
}

async function throwLeaseNotCurrent(db: Database, lease: LeaseKey): Promise<never> {
  const exists = await db.pool.query("SELECT 1 FROM job WHERE id = $1", [lease.jobId]);
  if (exists.rowCount === 0) throw new ConnectError(`job ${lease.jobId} not found`, Code.NotFound);
  throw leaseNotCurrent(lease);
}

function leaseNotCurrent(lease: LeaseKey): ConnectError {
  return new ConnectError(`lease ${lease.leaseToken} on job ${lease.jobId} is no longer current`, Code.FailedPrecondition);
}

function leaseRef(lease: LeaseKey) {
  return { jobId: lease.jobId, leaseToken: BigInt(lease.leaseToken) };
}

function leaseKey(ref: LeaseRef | undefined, field: string): LeaseKey {
  if (!ref) throw invalidArgument(field, "is required");
  const jobId = checkJobId(ref.jobId, `${field}.job_id`);
  if (ref.leaseToken <= 0n) throw invalidArgument(`${field}.lease_token`, "must be a lease token received in a Lease");
  return { jobId, leaseToken: ref.leaseToken.toString() };
}

function leaseKeys(refs: LeaseRef[], field: string): LeaseKey[] {
  if (refs.length > limits.leasesMax) throw invalidArgument(field, `must have at most ${limits.leasesMax} entries`);
  return refs.map((ref, index) => leaseKey(ref, `${field}[${index}]`));
}

function checkNames(names: string[], field: string, min: number, max: number): string[] {
  if (names.length < min) throw invalidArgument(field, min === 1 ? "must name at least one" : `must have at least ${min} entries`);
  if (names.length > max) throw invalidArgument(field, `must have at most ${max} entries`);
  return [...new Set(names.map((name, index) => checkName(name, `${field}[${index}]`)))];
}

function checkLength(text: string, field: string, max: number): string {
  if (text.length > max) throw invalidArgument(field, `must be at most ${max} characters`);
  checkStorableString(text, field);
  return text;
}

