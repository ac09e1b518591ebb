import { toJson } from "@bufbuild/protobuf";
import { ValueSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { JobState, PhaseState, type Job } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { startTestServer } from "./support/server.js";
import { failureOf } from "./support/failure-of.js";

let server: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;

beforeAll(async () => {
  server = await startTestServer();
  client = grpcQueueClient(server.url);
});

// ---- factories: jobs through the API, states the API cannot reach yet through SQL ----

/** Enqueues a job that is PENDING (ready now). */
async function enqueuePending(phases: string[] = []): Promise<Job> {
  const { job } = await client.enqueue({ job: { queue: "cancel-retry", kind: "work", phases } });
  expect(job?.state).toBe(JobState.PENDING);
  return job!;
}

/** Enqueues a job that is SCHEDULED an hour from now. */
async function enqueueScheduled(phases: string[] = []): Promise<Job> {
  const { job } = await client.enqueue({
    job: { queue: "cancel-retry", kind: "work", phases, schedule: { case: "delay", value: { seconds: 3600n, nanos: 0 } } },
  });
  expect(job?.state).toBe(JobState.SCHEDULED);
  return job!;
}

/** Moves a pending job to FAILED the way the CHECK constraints allow. */
async function markFailed(id: string): Promise<void> {
  await updateOne(
    `UPDATE job SET state = 'failed', finished_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1`,
    [id],
  );
}

/** Moves a pending job to SUCCEEDED (started and finished at one instant of the database clock). */
async function markSucceeded(id: string): Promise<void> {
  await updateOne(
    `UPDATE job SET state = 'succeeded', started_at = t.now, finished_at = t.now, updated_at = t.now, attempt = attempt + 1
     FROM (SELECT clock_timestamp() AS now) t WHERE id = $1`,
    [id],
  );
}

/** Leases a pending job to a made-up worker, as the dispatch loop would. */
async function markRunning(id: string): Promise<void> {
  await updateOne(
    `UPDATE job SET state = 'running', started_at = t.now, updated_at = t.now, attempt = attempt + 1,
                    lease_token = nextval('job_lease_token_seq'), lease_worker = 'test-worker',
                    lease_expires_at = t.now + interval '1 hour'
     FROM (SELECT clock_timestamp() AS now) t WHERE id = $1`,
    [id],
  );
}

/** Puts a pending job into another waiting state: BLOCKED through SQL, PAUSED through PauseJob. */
async function markWaiting(id: string, state: "blocked" | "paused"): Promise<void> {
  if (state === "paused") {
    await client.pauseJob({ id });
    return;
  }
  await updateOne(`UPDATE job SET state = $2::job_state, updated_at = clock_timestamp() WHERE id = $1`, [id, state]);
}

/** Completes one phase with a stored result, as CompletePhase would. */
async function completePhase(id: string, name: string, result: unknown): Promise<void> {
  await updateOne(
    `UPDATE job_phase SET state = 'succeeded', result = $3::jsonb, finished_at = clock_timestamp() WHERE job_id = $1 AND name = $2`,
    [id, name, JSON.stringify(result)],
  );
}

/** A job with one pending phase, brought into `state` through the API or, where it cannot yet, SQL. */
async function jobInState(state: "pending" | "scheduled" | "running" | "succeeded" | "failed"): Promise<Job> {
  if (state === "scheduled") return enqueueScheduled(["a"]);
  const job = await enqueuePending(["a"]);
  if (state === "running") await markRunning(job.id);
  if (state === "succeeded") await markSucceeded(job.id);
  if (state === "failed") await markFailed(job.id);
  return job;
}

async function updateOne(sql: string, params: unknown[]): Promise<void> {
  const result = await server.db.pool.query(sql, params);
  expect(result.rowCount, sql).toBe(1);
}

/** The types of a job's events, oldest first. */
async function eventTypes(id: string): Promise<string[]> {
  const { rows } = await server.db.pool.query<{ type: string }>(`SELECT type FROM job_event WHERE job_id = $1 ORDER BY id`, [id]);
  return rows.map((row) => row.type);
}

async function eventsOfType(id: string, type: string): Promise<{ attempt: number; data: Record<string, unknown> }[]> {
  const { rows } = await server.db.pool.query<{ attempt: number; data: Record<string, unknown> }>(
    `SELECT attempt, data FROM job_event WHERE job_id = $1 AND type = $2 ORDER BY id`,
    [id, type],
  );
  return rows;
}

/** The columns a transition changes. The ORM's pool hands timestamps back as text. */
async function jobRowState(id: string): Promise<{ state: string; finished_at: string | null; updated_at: string; cancel_reason: string | null }> {
  const { rows } = await server.db.pool.query(`SELECT state, finished_at, updated_at, cancel_reason FROM job WHERE id = $1`, [id]);
  expect(rows).toHaveLength(1);
  return rows[0];
}

async function phaseRows(id: string): Promise<{ name: string; state: string; result: unknown; finished_at: string | null }[]> {
  const { rows } = await server.db.pool.query(
    `SELECT name, state, result, finished_at FROM job_phase WHERE job_id = $1 ORDER BY position`,
    [id],
  );
  return rows;
}

function phaseSummary(job: Job | undefined) {
  return job?.phases.map((phase) => ({
    name: phase.name,
    state: phase.state,
    result: phase.result ? toJson(ValueSchema, phase.result) : undefined,
    finished: phase.finishedAt !== undefined,
  }));
}

describe("CancelJob", () => {
  it("cancelling a pending job makes it CANCELLED at once, cancels its unfinished phases and writes one cancelled event", async () => {
    const job = await enqueuePending(["fetch", "render", "send"]);
    await completePhase(job.id, "fetch", { bytes: 512 });

    const { job: cancelled } = await client.cancelJob({ id: job.id, reason: "customer left" });

    expect(cancelled?.state).toBe(JobState.CANCELLED);
    expect(cancelled?.cancelReason).toBe("customer left");
    expect(cancelled?.finishedAt).toBeDefined();
    expect(phaseSummary(cancelled)).toEqual([
      { name: "fetch", state: PhaseState.SUCCEEDED, result: { bytes: 512 }, finished: true },
      { name: "render", state: PhaseState.CANCELLED, result: undefined, finished: true },
      { name: "send", state: PhaseState.CANCELLED, result: undefined, finished: true },
    ]);
    const { job: got } = await client.getJob({ id: job.id });
    expect(got?.state).toBe(JobState.CANCELLED);
    expect(phaseSummary(got)).toEqual(phaseSummary(cancelled));
    expect((await phaseRows(job.id)).map((phase) => phase.state)).toEqual(["succeeded", "cancelled", "cancelled"]);
    const events = await eventsOfType(job.id, "cancelled");
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({ reason: "customer left", by: "local" });
    expect(await eventTypes(job.id)).toEqual(["enqueued", "cancelled"]);
  });

  it("cancelling a scheduled job makes it CANCELLED at once with its phases", async () => {
    const job = await enqueueScheduled(["only"]);

    const { job: cancelled } = await client.cancelJob({ id: job.id, reason: "" });

    expect(cancelled?.state).toBe(JobState.CANCELLED);
    expect(phaseSummary(cancelled)).toEqual([{ name: "only", state: PhaseState.CANCELLED, result: undefined, finished: true }]);
    expect((await jobRowState(job.id)).state).toBe("cancelled");
    expect(await eventsOfType(job.id, "cancelled")).toHaveLength(1);
  });

  it.each(["blocked", "paused"] as const)("cancelling a %s job makes it CANCELLED at once", async (state) => {
    const job = await enqueuePending(["step"]);
    await markWaiting(job.id, state);

    const { job: cancelled } = await client.cancelJob({ id: job.id, reason: "operator" });

    expect(cancelled?.state).toBe(JobState.CANCELLED);
    expect(cancelled?.phases.map((phase) => phase.state)).toEqual([PhaseState.CANCELLED]);
    expect(await eventsOfType(job.id, "cancelled")).toHaveLength(1);
  });

  it("cancelling a cancelled job again is a no-op that returns the job unchanged", async () => {
    const job = await enqueuePending(["a"]);
    const { job: first } = await client.cancelJob({ id: job.id, reason: "first reason" });
    const before = await jobRowState(job.id);
    const eventsBefore = await eventTypes(job.id);

    const { job: again } = await client.cancelJob({ id: job.id, reason: "second reason" });

    expect(again?.state).toBe(JobState.CANCELLED);
    expect(again?.cancelReason).toBe("first reason");
    expect(again?.finishedAt).toEqual(first?.finishedAt);
    expect(phaseSummary(again)).toEqual(phaseSummary(first));
    expect(await jobRowState(job.id)).toEqual(before);
    expect(await eventTypes(job.id)).toEqual(eventsBefore);
    expect(await eventsOfType(job.id, "cancelled")).toHaveLength(1);
  });

  it.each(["succeeded", "failed"] as const)("cancelling a %s job is FAILED_PRECONDITION and changes nothing", async (state) => {
    const job = await jobInState(state);
    const before = await jobRowState(job.id);

    const error = await failureOf(client.cancelJob({ id: job.id, reason: "too late" }));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain(state);
    expect(await jobRowState(job.id)).toEqual(before);
    expect((await phaseRows(job.id)).map((phase) => phase.state)).toEqual(["pending"]);
    expect(await eventTypes(job.id)).toEqual(["enqueued"]);
  });

  it("cancelling a running job records one cancel request and leaves it RUNNING for its worker", async () => {
    const job = await enqueuePending(["a"]);
    await markRunning(job.id);

    const { job: first } = await client.cancelJob({ id: job.id, reason: "stop please" });
    const { job: second } = await client.cancelJob({ id: job.id, reason: "really stop" });

    expect(first?.state).toBe(JobState.RUNNING);
    expect(second?.state).toBe(JobState.RUNNING);
    expect(second?.phases.map((phase) => phase.state)).toEqual([PhaseState.PENDING]);
    expect(await eventsOfType(job.id, "cancel_requested")).toHaveLength(1);
    expect(await eventsOfType(job.id, "cancelled")).toHaveLength(0);
  });

  it("20 concurrent CancelJob calls on one pending job all answer CANCELLED and write exactly one cancelled event", async () => {
    const job = await enqueuePending(["a", "b"]);

    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.cancelJob({ id: job.id, reason: `caller ${i}` })),
    );

    expect(answers.map((answer) => answer.job?.state)).toEqual(Array(20).fill(JobState.CANCELLED));
    // Every caller sees the reason of the one call that cancelled it.
    expect(new Set(answers.map((answer) => answer.job?.cancelReason)).size).toBe(1);
    expect(await eventsOfType(job.id, "cancelled")).toHaveLength(1);
    expect(await eventTypes(job.id)).toEqual(["enqueued", "cancelled"]);
  });

  it("20 concurrent CancelJob calls on one running job write exactly one cancel_requested event", async () => {
    const job = await enqueuePending();
    await markRunning(job.id);

    await Promise.all(Array.from({ length: 20 }, () => client.cancelJob({ id: job.id, reason: "stop" })));

    expect(await eventTypes(job.id)).toEqual(["enqueued", "cancel_requested"]);
  });
});

describe("answers of Enqueue, CancelJob and RetryJob", () => {
  it("are the job exactly as GetJob returns it afterwards", async () => {
    const { job } = await client.enqueue({
      job: {
        queue: "cancel-retry",
        kind: "work",
        phases: ["a", "b"],
        metadata: { team: "core" },
        payload: { kind: { case: "listValue", value: { values: [{ kind: { case: "numberValue", value: 1.5 } }] } } },
        retryPolicy: { maxAttempts: 7, backoffMultiplier: 1.5, jitter: 0 },
        executionTimeout: { seconds: 90n, nanos: 0 },
      },
    });
    expect(job).toEqual((await client.getJob({ id: job!.id })).job);
    await completePhase(job!.id, "a", { ok: true });

    const { job: cancelled } = await client.cancelJob({ id: job!.id, reason: "compare" });
    expect(cancelled).toEqual((await client.getJob({ id: job!.id })).job);
    const { job: retried } = await client.retryJob({ id: job!.id });
    expect(retried).toEqual((await client.getJob({ id: job!.id })).job);
    expect(retried?.retryPolicy).toEqual(job?.retryPolicy);
  });
});

describe("RetryJob", () => {
  it("retrying a failed job makes it PENDING again with one retried event", async () => {
    const job = await enqueuePending();
    await markFailed(job.id);

    const { job: retried } = await client.retryJob({ id: job.id });

    expect(retried?.state).toBe(JobState.PENDING);
    expect(retried?.finishedAt).toBeUndefined();
    const row = await jobRowState(job.id);
    expect(row.state).toBe("pending");
    expect(row.finished_at).toBeNull();
    expect(await eventTypes(job.id)).toEqual(["enqueued", "retried"]);
    expect((await eventsOfType(job.id, "retried"))[0]?.data).toMatchObject({ from_start: false, by: "local" });
  });

  it("retrying a cancelled job makes it PENDING again and clears its cancel reason", async () => {
    const job = await enqueuePending(["a"]);
    await client.cancelJob({ id: job.id, reason: "oops" });

    const { job: retried } = await client.retryJob({ id: job.id, fromStart: true });

    expect(retried?.state).toBe(JobState.PENDING);
    expect(retried?.cancelReason).toBe("");
    expect(retried?.phases.map((phase) => phase.state)).toEqual([PhaseState.PENDING]);
    expect(await eventTypes(job.id)).toEqual(["enqueued", "cancelled", "retried"]);
    expect((await eventsOfType(job.id, "retried"))[0]?.data).toMatchObject({ from_start: true });
  });

  it("retrying a job whose attempts are used up grants it one more attempt", async () => {
    const job = await enqueuePending();
    await updateOne(`UPDATE job SET attempt = 3, max_attempts = 3 WHERE id = $1`, [job.id]);
    await markFailed(job.id);

    const { job: retried } = await client.retryJob({ id: job.id });

    expect(retried?.attempt).toBe(3);
    expect(retried?.retryPolicy?.maxAttempts).toBe(4);
  });

  it.each(["pending", "scheduled", "running", "succeeded"] as const)("retrying a %s job is FAILED_PRECONDITION and changes nothing", async (state) => {
    const job = await jobInState(state);
    const before = await jobRowState(job.id);
    const eventsBefore = await eventTypes(job.id);

    const error = await failureOf(client.retryJob({ id: job.id }));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain(state);
    expect(await jobRowState(job.id)).toEqual(before);
    expect(await eventTypes(job.id)).toEqual(eventsBefore);
  });

  it("retrying with from_start=false keeps succeeded phase results and resets cancelled phases to pending", async () => {
    const job = await enqueuePending(["extract", "transform", "load"]);
    await completePhase(job.id, "extract", { rows: 42, file: "s3://bucket/a.csv" });
    const { job: cancelled } = await client.cancelJob({ id: job.id, reason: "pause the pipeline" });
    const extractFinishedAt = cancelled?.phases[0]?.finishedAt;

    const { job: retried } = await client.retryJob({ id: job.id, fromStart: false });

    expect(retried?.state).toBe(JobState.PENDING);
    expect(phaseSummary(retried)).toEqual([
      { name: "extract", state: PhaseState.SUCCEEDED, result: { rows: 42, file: "s3://bucket/a.csv" }, finished: true },
      { name: "transform", state: PhaseState.PENDING, result: undefined, finished: false },
      { name: "load", state: PhaseState.PENDING, result: undefined, finished: false },
    ]);
    expect(retried?.phases[0]?.finishedAt).toEqual(extractFinishedAt);
    const { job: got } = await client.getJob({ id: job.id });
    expect(phaseSummary(got)).toEqual(phaseSummary(retried));
    expect(await phaseRows(job.id)).toEqual([
      { name: "extract", state: "succeeded", result: { rows: 42, file: "s3://bucket/a.csv" }, finished_at: expect.anything() },
      { name: "transform", state: "pending", result: null, finished_at: null },
      { name: "load", state: "pending", result: null, finished_at: null },
    ]);
  });

  it("retrying a failed job with from_start=false resumes at its first unfinished phase", async () => {
    const job = await enqueuePending(["one", "two", "three"]);
    await completePhase(job.id, "one", 1);
    await completePhase(job.id, "two", "two");
    await markFailed(job.id);

    const { job: retried } = await client.retryJob({ id: job.id });

    expect(phaseSummary(retried)).toEqual([
      { name: "one", state: PhaseState.SUCCEEDED, result: 1, finished: true },
      { name: "two", state: PhaseState.SUCCEEDED, result: "two", finished: true },
      { name: "three", state: PhaseState.PENDING, result: undefined, finished: false },
    ]);
  });

  it("retrying with from_start=true resets every phase and drops stored results", async () => {
    const job = await enqueuePending(["extract", "transform", "load"]);
    await completePhase(job.id, "extract", { rows: 42 });
    await completePhase(job.id, "transform", [1, 2, 3]);
    await client.cancelJob({ id: job.id, reason: "" });

    const { job: retried } = await client.retryJob({ id: job.id, fromStart: true });

    expect(retried?.state).toBe(JobState.PENDING);
    expect(phaseSummary(retried)).toEqual(
      ["extract", "transform", "load"].map((name) => ({ name, state: PhaseState.PENDING, result: undefined, finished: false })),
    );
    expect(await phaseRows(job.id)).toEqual(
      ["extract", "transform", "load"].map((name) => ({ name, state: "pending", result: null, finished_at: null })),
    );
  });

  it("10 concurrent RetryJob calls on one failed job: one wins, the others are FAILED_PRECONDITION, one retried event", async () => {
    const job = await enqueuePending();
    await markFailed(job.id);

    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => client.retryJob({ id: job.id })));

    const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const lost = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [ConnectError.from(outcome.reason).code] : []));
    expect(won).toHaveLength(1);
    expect(lost).toEqual(Array(9).fill(Code.FailedPrecondition));
    expect(await eventTypes(job.id)).toEqual(["enqueued", "retried"]);
  });

  it("a job retried after a cancel keeps its timestamps ordered and its created_at", async () => {
    const job = await enqueuePending();
    await client.cancelJob({ id: job.id, reason: "" });

    const { job: retried } = await client.retryJob({ id: job.id });

    expect(retried?.createdAt).toEqual(job.createdAt);
    expect(timestampDate(retried!.updatedAt!).getTime()).toBeGreaterThanOrEqual(timestampDate(job.createdAt!).getTime());
    expect(timestampDate(retried!.runAt!).getTime()).toBeGreaterThanOrEqual(timestampDate(job.createdAt!).getTime());
  });
});
