import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { JobState, PhaseState, type Job } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { WorkerService, type Lease, type LeaseJobsResponse } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { startTestServer } from "./support/server.js";

let server: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;
let workers: Client<typeof WorkerService>;

beforeAll(async () => {
  server = await startTestServer();
  client = grpcQueueClient(server.url);
  workers = createClient(WorkerService, createGrpcTransport({ baseUrl: server.url }));
});

const checkViolation = "23514";

async function enqueuePending(queue = "constraints", phases: string[] = []): Promise<Job> {
  const { job } = await client.enqueue({ job: { queue, kind: "k", phases } });
  expect(job?.state).toBe(JobState.PENDING);
  return job!;
}

/** The whole job row as JSON, to show that a refused statement changed nothing. */
async function jobSnapshot(id: string): Promise<unknown> {
  const { rows } = await server.db.pool.query(`SELECT to_jsonb(j) AS row FROM job j WHERE id = $1`, [id]);
  expect(rows).toHaveLength(1);
  return rows[0].row;
}

/** The Postgres error a statement failed with; fails the test if it succeeded. */
async function sqlFailure(sql: string, params: unknown[]): Promise<{ code?: string; constraint?: string; message: string }> {
  const outcome = await server.db.pool.query(sql, params).then(
    () => undefined,
    (error: { code?: string; constraint?: string; message: string }) => error,
  );
  if (!outcome) throw new Error(`expected Postgres to refuse: ${sql}`);
  return outcome;
}

/** Checks that Postgres refuses `set` on a fresh pending job with a CHECK violation, leaving it as it was. */
async function expectJobUpdateRefused(set: string): Promise<void> {
  const job = await enqueuePending();
  const before = await jobSnapshot(job.id);

  const error = await sqlFailure(`UPDATE job SET ${set} WHERE id = $1`, [job.id]);

  expect(error.code, error.message).toBe(checkViolation);
  expect(await jobSnapshot(job.id)).toEqual(before);
}

/** Times of a job compared in the database, at full (microsecond) precision. */
async function timeOrder(id: string) {
  const { rows } = await server.db.pool.query(
    `SELECT state,
            created_at <= run_at AS created_le_run,
            created_at <= updated_at AS created_le_updated,
            started_at IS NULL OR created_at <= started_at AS created_le_started,
            started_at IS NULL OR run_at <= started_at AS run_le_started,
            finished_at IS NULL OR coalesce(started_at, created_at) <= finished_at AS started_le_finished,
            started_at IS NOT NULL AS started, finished_at IS NOT NULL AS finished,
            (SELECT bool_and(e.at >= j.created_at) FROM job_event e WHERE e.job_id = j.id) AS events_after_created
     FROM job j WHERE id = $1`,
    [id],
  );
  expect(rows).toHaveLength(1);
  return rows[0];
}

const ordered = {
  created_le_run: true,
  created_le_updated: true,
  created_le_started: true,
  run_le_started: true,
  started_le_finished: true,
  events_after_created: true,
};

/** A raw LeaseJobs stream on one queue, read message by message; closed when the test ends. */
function openWorkerStream(queue: string) {
  const abort = new AbortController();
  // The deadline bounds every wait on the stream: a lease that never comes fails the test.
  const iterator = workers
    .leaseJobs({ workerName: "constraints-test", queues: [queue], capacity: 1 }, { signal: abort.signal, timeoutMs: 30_000 })
    [Symbol.asyncIterator]();
  onTestFinished(() => abort.abort());
  return {
    async next(): Promise<LeaseJobsResponse["message"]> {
      for (;;) {
        const { value, done } = await iterator.next();
        if (done) throw new Error("the LeaseJobs stream ended");
        if (value.message.case !== "keepAlive") return value.message;
      }
    },
    async lease(): Promise<Lease> {
      const message = await this.next();
      if (message.case !== "lease") throw new Error(`expected a lease, got ${message.case}`);
      return message.value;
    },
  };
}

describe("CHECK constraints refuse impossible job rows (SQLSTATE 23514)", () => {
  it.each([
    ["started_at before created_at", "started_at = created_at - interval '1 microsecond'"],
    ["finished_at on a pending job", "finished_at = clock_timestamp()"],
    ["finished_at before created_at on a failed job", "state = 'failed', finished_at = created_at - interval '1 second'"],
    [
      "finished_at before started_at",
      "state = 'failed', started_at = created_at + interval '2 seconds', finished_at = created_at + interval '1 second'",
    ],
    ["a failed job without finished_at", "state = 'failed'"],
    ["a cancelled job without finished_at", "state = 'cancelled'"],
    ["a succeeded job without finished_at", "state = 'succeeded', started_at = clock_timestamp()"],
    ["a succeeded job that never started", "state = 'succeeded', finished_at = clock_timestamp()"],
    ["a running job without a lease", "state = 'running', started_at = clock_timestamp()"],
    [
      "a running job with a lease token but no lease expiry",
      "state = 'running', started_at = clock_timestamp(), lease_token = 1, lease_worker = 'w'",
    ],
    [
      "a running job that never started",
      "state = 'running', lease_token = 1, lease_worker = 'w', lease_expires_at = clock_timestamp() + interval '1 minute'",
    ],
    ["a pending job with a lease expiry", "lease_expires_at = clock_timestamp() + interval '1 minute'"],
    ["a result on a job that has not succeeded", `result = '{"done": true}'`],
    ["an execution deadline on a job that is not running", "deadline_at = clock_timestamp() + interval '1 minute'"],
    ["priority 1001", "priority = 1001"],
    ["a negative attempt", "attempt = -1"],
    ["max_attempts 0", "max_attempts = 0"],
    ["backoff_max_ms below backoff_initial_ms", "backoff_initial_ms = 10, backoff_max_ms = 5"],
    ["backoff_multiplier below 1", "backoff_multiplier = 0.5"],
    ["backoff_jitter above 1", "backoff_jitter = 1.5"],
    ["a zero lease timeout", "lease_timeout_ms = 0"],
    ["a zero execution timeout", "execution_timeout_ms = 0"],
    ["a kind that breaks the name rules", "kind = 'two words'"],
    ["metadata that is not an object", `metadata = '["a"]'`],
  ])("refuses %s", async (_name, set) => {
    await expectJobUpdateRefused(set);
  });

  it("refuses a queue name that breaks the name rules", async () => {
    const error = await sqlFailure(`INSERT INTO queue (namespace, name) VALUES ('default', $1)`, ["bad queue"]);

    expect(error.code).toBe(checkViolation);
  });

  it.each([
    ["finished_at on a pending phase", "finished_at = clock_timestamp()"],
    ["a succeeded phase without finished_at", "state = 'succeeded'"],
    ["a cancelled phase without finished_at", "state = 'cancelled'"],
    ["a result on a pending phase", `result = '1'`],
    ["a result on a cancelled phase", `state = 'cancelled', finished_at = clock_timestamp(), result = '1'`],
  ])("refuses %s", async (_name, set) => {
    const job = await enqueuePending("constraints", ["only"]);

    const error = await sqlFailure(`UPDATE job_phase SET ${set} WHERE job_id = $1`, [job.id]);

    expect(error.code, error.message).toBe(checkViolation);
    const { rows } = await server.db.pool.query(`SELECT state, result, finished_at FROM job_phase WHERE job_id = $1`, [job.id]);
    expect(rows).toEqual([{ state: "pending", result: null, finished_at: null }]);
  });

  it("accepts the same columns when they agree with the state", async () => {
    const job = await enqueuePending();

    await server.db.pool.query(
      `UPDATE job SET state = 'succeeded', started_at = t.now, finished_at = t.now, result = '{"done": true}'
       FROM (SELECT clock_timestamp() AS now) t WHERE id = $1`,
      [job.id],
    );

    expect(await timeOrder(job.id)).toMatchObject({ state: "succeeded", ...ordered, started: true, finished: true });
  });
});

describe("timestamps of real flows are ordered: created_at <= started_at <= finished_at", () => {
  it("an enqueued job: created_at <= run_at and updated_at", async () => {
    const job = await enqueuePending();

    expect(await timeOrder(job.id)).toEqual({ state: "pending", ...ordered, started: false, finished: false });
  });

  it("a delayed job runs exactly its delay after created_at, on the database clock", async () => {
    const { job } = await client.enqueue({ job: { queue: "constraints", kind: "k", schedule: { case: "delay", value: { seconds: 90n } } } });

    const { rows } = await server.db.pool.query(`SELECT run_at - created_at = interval '90 seconds' AS exact FROM job WHERE id = $1`, [job!.id]);

    expect(job?.state).toBe(JobState.SCHEDULED);
    expect(rows[0].exact).toBe(true);
    expect(await timeOrder(job!.id)).toMatchObject(ordered);
  });

  it("a job whose run_at is in the past runs at its created_at, never before it", async () => {
    const { job } = await client.enqueue({
      job: { queue: "constraints", kind: "k", schedule: { case: "runAt", value: { seconds: 0n, nanos: 0 } } },
    });

    const { rows } = await server.db.pool.query(`SELECT run_at = created_at AS same FROM job WHERE id = $1`, [job!.id]);

    expect(job?.state).toBe(JobState.PENDING);
    expect(rows[0].same).toBe(true);
  });

  it("a batch's jobs share one created_at and are ordered", async () => {
    const { jobIds } = await client.enqueueBatch({ jobs: Array.from({ length: 20 }, () => ({ queue: "constraints", kind: "k" })) });

    const { rows } = await server.db.pool.query(`SELECT count(DISTINCT created_at)::int AS n FROM job WHERE id = ANY($1::uuid[])`, [jobIds]);

    expect(rows[0].n).toBe(1);
    for (const id of jobIds.slice(0, 3)) expect(await timeOrder(id)).toMatchObject(ordered);
  });

  it("a cancelled pending job: created_at <= finished_at, and again after a retry and a second cancel", async () => {
    const job = await enqueuePending("constraints", ["a"]);

    await client.cancelJob({ id: job.id, reason: "first" });
    expect(await timeOrder(job.id)).toEqual({ state: "cancelled", ...ordered, started: false, finished: true });
    await client.retryJob({ id: job.id });
    expect(await timeOrder(job.id)).toEqual({ state: "pending", ...ordered, started: false, finished: false });
    await client.cancelJob({ id: job.id, reason: "second" });
    expect(await timeOrder(job.id)).toEqual({ state: "cancelled", ...ordered, started: false, finished: true });
  });

  it("a job leased by a worker and completed: created_at <= run_at <= started_at <= finished_at", async () => {
    const stream = openWorkerStream("constraints-complete");
    expect((await stream.next()).case).toBe("registered");
    const job = await enqueuePending("constraints-complete");

    const lease = await stream.lease();
    expect(lease.jobId).toBe(job.id);
    expect(await timeOrder(job.id)).toEqual({ state: "running", ...ordered, started: true, finished: false });
    await workers.completeJob({ lease: { jobId: lease.jobId, leaseToken: lease.leaseToken } });

    expect(await timeOrder(job.id)).toEqual({ state: "succeeded", ...ordered, started: true, finished: true });
  });

  it("a running job cancelled through its worker: ordered times, cancelled phases and one cancelled event", async () => {
    const stream = openWorkerStream("constraints-cancel");
    expect((await stream.next()).case).toBe("registered");
    const job = await enqueuePending("constraints-cancel", ["one", "two"]);
    const lease = await stream.lease();

    const { job: requested } = await client.cancelJob({ id: job.id, reason: "stop" });
    expect(requested?.state).toBe(JobState.RUNNING);
    const cancel = await stream.next();
    expect(cancel.case).toBe("cancel");
    await workers.failJob({ lease: { jobId: lease.jobId, leaseToken: lease.leaseToken }, message: "stopped on request" });

    expect(await timeOrder(job.id)).toEqual({ state: "cancelled", ...ordered, started: true, finished: true });
    const { job: after } = await client.getJob({ id: job.id });
    expect(after?.state).toBe(JobState.CANCELLED);
    expect(after?.phases.map((phase) => phase.state)).toEqual([PhaseState.CANCELLED, PhaseState.CANCELLED]);
    const events = await server.db.pool.query(`SELECT count(*)::int AS n FROM job_event WHERE job_id = $1 AND type = 'cancelled'`, [job.id]);
    expect(events.rows[0].n).toBe(1);
    // Cancelling it again changes nothing and writes no second event.
    const { job: again } = await client.cancelJob({ id: job.id, reason: "again" });
    expect(again?.state).toBe(JobState.CANCELLED);
    const eventsAfter = await server.db.pool.query(`SELECT count(*)::int AS n FROM job_event WHERE job_id = $1 AND type = 'cancelled'`, [job.id]);
    expect(eventsAfter.rows[0].n).toBe(1);
  });

  it("a completed job cannot be cancelled: FAILED_PRECONDITION, times unchanged", async () => {
    const stream = openWorkerStream("constraints-done");
    expect((await stream.next()).case).toBe("registered");
    const job = await enqueuePending("constraints-done");
    const lease = await stream.lease();
    await workers.completeJob({ lease: { jobId: lease.jobId, leaseToken: lease.leaseToken } });
    const before = await jobSnapshot(job.id);

    const error = await client.cancelJob({ id: job.id }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );

    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(await jobSnapshot(job.id)).toEqual(before);
  });
});
