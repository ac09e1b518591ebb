import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import { createJobwireClient, EventType, JobState, Worker, type Job, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { readEvents } from "./support/read-events.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { withTimeout } from "./support/with-timeout.js";

// Two replicas on one database. The fallback poll is far longer than any wait here, so a
// job that gets leased was leased because something woke a dispatcher, not by polling.

let replica1: JobwireServer;
let replica2: JobwireServer;
let client: JobwireClient;
let client2: JobwireClient;
let receiver: { url: string; received: { type: string; jobId: string }[]; close(): Promise<void> };
const workers: Worker[] = [];

beforeAll(async () => {
  receiver = await startReceiver();
  const databaseUrl = await createTestDatabase();
  const config = { databaseUrl, fallbackPollMs: 60_000, webhookAllowCidrs: ["127.0.0.1/32"], webhookBackoffMs: 50 };
  replica1 = await startTestServer(config);
  replica2 = await startTestServer(config);
  client = createJobwireClient({ baseUrl: replica1.url });
  client2 = createJobwireClient({ baseUrl: replica2.url });
});
afterAll(() => receiver.close());

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 2_000, abortWaitMs: 500 })));
});

/** A loopback webhook receiver that records the type and job of every delivery. */
function startReceiver(): Promise<typeof receiver> {
  const received: { type: string; jobId: string }[] = [];
  const server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const parsed = JSON.parse(body) as { type: string; jobId: string };
      received.push({ type: parsed.type, jobId: parsed.jobId });
      response.writeHead(200).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, received, close: () => new Promise<void>((done) => server.close(() => done())) });
    }),
  );
}

/** A worker that records which jobs its handlers ran, resolving `ran(id)` when job `id` has run. */
function startRecordingWorker(server: JobwireServer, queues: string[]) {
  const done = new Map<string, PromiseWithResolvers<void>>();
  const runs: string[] = [];
  const ran = (id: string) => {
    if (!done.has(id)) done.set(id, Promise.withResolvers());
    return withTimeout(done.get(id)!.promise, 10_000, () => `job ${id} to run (ran so far: ${runs.join(", ") || "none"})`);
  };
  const worker = new Worker({
    baseUrl: server.url,
    queues,
    concurrency: 4,
    handlers: {
      work: async (_payload, ctx) => {
        runs.push(ctx.jobId);
        if (!done.has(ctx.jobId)) done.set(ctx.jobId, Promise.withResolvers());
        done.get(ctx.jobId)!.resolve();
      },
    },
  });
  workers.push(worker);
  return { worker, runs, ran };
}

async function eventRows(jobId: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const { rows } = await replica1.db.pool.query("SELECT type, data FROM job_event WHERE job_id = $1 ORDER BY id", [jobId]);
  return rows;
}

const eventTypesOf = async (jobId: string) => (await eventRows(jobId)).map((row) => row.type);

async function updateOne(sql: string, params: unknown[]): Promise<void> {
  const result = await replica1.db.pool.query(sql, params);
  expect(result.rowCount, sql).toBe(1);
}

/** Leases a pending job to a made-up worker, as the dispatcher would. */
const markRunning = (id: string) =>
  updateOne(
    `UPDATE job SET state = 'running', started_at = t.now, updated_at = t.now, attempt = attempt + 1,
                    lease_token = nextval('job_lease_token_seq'), lease_worker = 'made-up-worker',
                    lease_expires_at = t.now + interval '1 hour'
     FROM (SELECT clock_timestamp() AS now) t WHERE id = $1`,
    [id],
  );

/** Moves a pending job to BLOCKED, as dependencies will. */
const markBlocked = (id: string) => updateOne("UPDATE job SET state = 'blocked', updated_at = clock_timestamp() WHERE id = $1", [id]);

/** Moves a pending job to a finished state. */
const markFinished = (id: string, state: "succeeded" | "failed") =>
  updateOne(
    `UPDATE job SET state = $2::job_state, started_at = t.now, finished_at = t.now, updated_at = t.now, attempt = attempt + 1
     FROM (SELECT clock_timestamp() AS now) t WHERE id = $1`,
    [id, state],
  );

const inAnHour = { delayMs: 3_600_000 };

describe("PauseJob and ResumeJob", () => {
  it("a pending job pauses with a PAUSED event and resumes to PENDING with a RESUMED event", async () => {
    const job = await client.enqueue("pause-states", "work");

    const paused = await client.pauseJob(job.id, "waiting for the vendor");
    const resumed = await client.resumeJob(job.id);

    expect(paused).toMatchObject({ state: JobState.PAUSED, pausedFrom: JobState.PENDING });
    expect(resumed).toMatchObject({ state: JobState.PENDING, pausedFrom: JobState.UNSPECIFIED });
    const events = await eventRows(job.id);
    expect(events.map((event) => event.type)).toEqual(["enqueued", "paused", "resumed"]);
    expect(events[1]!.data).toEqual({ from: "pending", reason: "waiting for the vendor", by: "local" });
    expect(events[2]!.data).toEqual({ state: "pending", by: "local" });
  });

  it("a scheduled job resumes to SCHEDULED with its run_at unchanged", async () => {
    const job = await client.enqueue("pause-states", "work", null, inAnHour);

    const paused = await client.pauseJob(job.id);
    const resumed = await client.resumeJob(job.id);

    expect(paused.pausedFrom).toBe(JobState.SCHEDULED);
    expect(resumed.state).toBe(JobState.SCHEDULED);
    expect(resumed.runAt).toEqual(job.runAt);
  });

  it("a paused scheduled job is not promoted when its run_at passes, and resumes to PENDING afterwards", async () => {
    const job = await client.enqueue("pause-due", "work", null, inAnHour);
    await client.pauseJob(job.id);
    await updateOne("UPDATE job SET run_at = clock_timestamp() WHERE id = $1", [job.id]);
    // A job due at once makes the maintenance loop run a promotion pass after the change above.
    const sentinel = await client.enqueue("pause-due", "work", null, { delayMs: 1 });
    await waitFor("the sentinel to be promoted", async () => (await client.getJob(sentinel.id)).state === JobState.PENDING);
    expect((await client.getJob(job.id)).state).toBe(JobState.PAUSED);

    const resumed = await client.resumeJob(job.id);

    expect(resumed.state).toBe(JobState.PENDING);
    expect((await eventRows(job.id)).at(-1)).toEqual({ type: "resumed", data: { state: "pending", by: "local" } });
  });

  it("a blocked job pauses and resumes to BLOCKED", async () => {
    const job = await client.enqueue("pause-states", "work");
    await markBlocked(job.id);

    const paused = await client.pauseJob(job.id);
    const resumed = await client.resumeJob(job.id);

    expect(paused.pausedFrom).toBe(JobState.BLOCKED);
    expect(resumed.state).toBe(JobState.BLOCKED);
  });

  it("pausing a running job is FAILED_PRECONDITION saying running jobs are cancelled, and changes nothing", async () => {
    const job = await client.enqueue("pause-states", "work");
    await markRunning(job.id);

    const error = await failureOf(client.pauseJob(job.id));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toBe(`cannot pause job ${job.id} because it is running - running jobs are cancelled (CancelJob) and not paused`);
    expect((await client.getJob(job.id)).state).toBe(JobState.RUNNING);
    expect(await eventTypesOf(job.id)).toEqual(["enqueued"]);
  });

  it.each(["paused", "succeeded", "failed", "cancelled"] as const)("pausing a %s job is FAILED_PRECONDITION and changes nothing", async (state) => {
    const job = await client.enqueue("pause-states", "work");
    if (state === "paused") await client.pauseJob(job.id);
    if (state === "succeeded" || state === "failed") await markFinished(job.id, state);
    if (state === "cancelled") await client.cancelJob(job.id);
    const before = await client.getJob(job.id);
    const events = await eventTypesOf(job.id);

    const error = await failureOf(client.pauseJob(job.id));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toBe(`cannot pause job ${job.id} because it is ${state}`);
    expect(await client.getJob(job.id)).toEqual(before);
    expect(await eventTypesOf(job.id)).toEqual(events);
  });

  it.each(["pending", "scheduled", "running", "cancelled"] as const)("resuming a %s job is FAILED_PRECONDITION and changes nothing", async (state) => {
    const job = await client.enqueue("pause-states", "work", null, state === "scheduled" ? inAnHour : {});
    if (state === "running") await markRunning(job.id);
    if (state === "cancelled") await client.cancelJob(job.id);
    const events = await eventTypesOf(job.id);

    const error = await failureOf(client.resumeJob(job.id));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toBe(`cannot resume job ${job.id} because it is ${state}`);
    expect(await eventTypesOf(job.id)).toEqual(events);
  });

  it("cancelling a paused job cancels it with one CANCELLED event, and it can no longer be resumed", async () => {
    const job = await client.enqueue("pause-states", "work", null, { phases: ["only"] });
    await client.pauseJob(job.id);

    const cancelled = await client.cancelJob(job.id, "not needed");
    const again = await client.cancelJob(job.id, "again");
    const error = await failureOf(client.resumeJob(job.id));

    expect(cancelled).toMatchObject({ state: JobState.CANCELLED, pausedFrom: JobState.UNSPECIFIED, cancelReason: "not needed" });
    expect(again.state).toBe(JobState.CANCELLED);
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(await eventTypesOf(job.id)).toEqual(["enqueued", "paused", "cancelled"]);
  });

  it("of 20 concurrent PauseJob calls on one job exactly one succeeds, writing one PAUSED event", async () => {
    const job = await client.enqueue("pause-race", "work", null, inAnHour);

    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, n) => (n % 2 === 0 ? client : client2).pauseJob(job.id)));

    expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
    const failures = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason as { code: Code }] : []));
    expect(failures.every((failure) => failure.code === Code.FailedPrecondition)).toBe(true);
    expect(await eventTypesOf(job.id)).toEqual(["enqueued", "paused"]);
  });

  it("answers NOT_FOUND for an unknown job and INVALID_ARGUMENT for a bad id or reason", async () => {
    const raw = grpcQueueClient(replica1.url);
    const unknown = await failureOf(raw.pauseJob({ id: "0193e8f0-0000-7000-8000-000000000000" }));
    const badId = await failureOf(raw.resumeJob({ id: "nope" }));
    const job = await client.enqueue("pause-states", "work");
    const longReason = await failureOf(raw.pauseJob({ id: job.id, reason: "r".repeat(1025) }));

    expect(unknown.code).toBe(Code.NotFound);
    expect(badId.code).toBe(Code.InvalidArgument);
    expect(badId.rawMessage).toMatch(/^id /);
    expect(longReason.rawMessage).toMatch(/^reason must be at most 1024 characters$/);
    expect((await client.getJob(job.id)).state).toBe(JobState.PENDING);
  });

  it("PAUSED and RESUMED events reach event streams filtered by type, SSE and webhooks", async () => {
    await grpcQueueClient(replica1.url).createWebhookSubscription({
      queue: "pause-events",
      url: `${receiver.url}/hook`,
      eventTypes: ["paused", "resumed"],
      secret: "a-secret-of-sixteen-characters-or-more",
    });
    const job = await client.enqueue("pause-events", "work", null, inAnHour);
    await client.pauseJob(job.id, "hold");
    await client.resumeJob(job.id);

    const streamed = await readEvents(client2.streamEvents({ jobIds: [job.id], types: [EventType.PAUSED, EventType.RESUMED], fromOldest: true }), 2);
    expect(streamed.map((event) => event.type)).toEqual([EventType.PAUSED, EventType.RESUMED]);
    expect(streamed[0]!.data).toMatchObject({ from: "scheduled", reason: "hold" });

    const sse = await fetch(`${replica2.url}/v1/events?job_id=${job.id}&type=RESUMED&from=oldest`, { signal: AbortSignal.timeout(10_000) });
    const reader = sse.body!.getReader();
    let text = "";
    // Keep-alive frames (an id and no event) may come first.
    while (!/^data: .*\n\n/m.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the SSE stream ended after ${JSON.stringify(text)}`);
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    expect(text).toContain("event: resumed\n");

    await waitFor("both webhook deliveries", async () => receiver.received.filter((delivery) => delivery.jobId === job.id).length === 2);
    expect(receiver.received.filter((delivery) => delivery.jobId === job.id).map((delivery) => delivery.type).sort()).toEqual(["paused", "resumed"]);
  });

  it("a paused pending job is not leased by a connected worker, and is leased right after ResumeJob", async () => {
    const held = await client.enqueue("pause-worker", "work");
    await client.pauseJob(held.id);
    const { worker, runs, ran } = startRecordingWorker(replica2, ["pause-worker"]);
    await worker.start();

    // The worker leases the next job only by a claim that sees the paused one as well.
    const sentinel = await client.enqueue("pause-worker", "work");
    await ran(sentinel.id);
    expect(runs).toEqual([sentinel.id]);
    expect((await client.getJob(held.id)).state).toBe(JobState.PAUSED);

    await client.resumeJob(held.id);

    await ran(held.id);
    await waitFor("the resumed job to succeed", async () => (await client.getJob(held.id)).state === JobState.SUCCEEDED);
    expect(await eventTypesOf(held.id)).toEqual(["enqueued", "paused", "resumed", "leased", "succeeded"]);
  });
});

describe("PauseQueue and ResumeQueue", () => {
  it("create the queue if needed, show the paused flag in GetQueue, and are idempotent", async () => {
    const raw = grpcQueueClient(replica1.url);
    const paused = await client.pauseQueue("pause-flag");
    const pausedAgain = await client2.pauseQueue("pause-flag");
    const got = await client.getQueue("pause-flag");
    // Replacing the defaults leaves the pause alone.
    await raw.updateQueue({ name: "pause-flag", defaults: {} });
    const afterUpdate = await client.getQueue("pause-flag");
    const resumed = await client.resumeQueue("pause-flag");
    const resumedAgain = await client.resumeQueue("pause-flag");

    expect(paused.paused).toBe(true);
    expect(paused.pausedAt).toBeDefined();
    expect(pausedAgain.pausedAt).toEqual(paused.pausedAt);
    expect(got).toMatchObject({ paused: true, pausedAt: paused.pausedAt });
    expect(afterUpdate.paused).toBe(true);
    expect(resumed.paused).toBe(false);
    expect(resumed.pausedAt).toBeUndefined();
    expect(resumedAgain.paused).toBe(false);
  });

  it("ResumeQueue of an unknown queue is NOT_FOUND; a bad name is INVALID_ARGUMENT naming the field", async () => {
    const unknown = await failureOf(client.resumeQueue("never-seen"));
    const badName = await failureOf(client.pauseQueue("no spaces"));

    expect(unknown.code).toBe(Code.NotFound);
    expect(badName.code).toBe(Code.InvalidArgument);
    expect(badName.rawMessage).toMatch(/^name /);
  });

  it("a paused queue keeps accepting jobs and lets running ones finish, leases none to a connected worker, and leases at once after ResumeQueue", async () => {
    const release = Promise.withResolvers<void>();
    const started = Promise.withResolvers<string>();
    const runs: string[] = [];
    const ran = new Map<string, PromiseWithResolvers<void>>();
    const runOf = (id: string) => {
      if (!ran.has(id)) ran.set(id, Promise.withResolvers());
      return ran.get(id)!;
    };
    const worker = new Worker({
      baseUrl: replica1.url,
      queues: ["qp-paused", "qp-open"],
      concurrency: 4,
      handlers: {
        hold: async (_payload, ctx) => {
          started.resolve(ctx.jobId);
          await release.promise;
        },
        work: async (_payload, ctx) => {
          runs.push(ctx.jobId);
          runOf(ctx.jobId).resolve();
        },
      },
    });
    workers.push(worker);
    await worker.start();
    const running = await client.enqueue("qp-paused", "hold");
    await withTimeout(started.promise, 10_000, "the long job to start");

    await client.pauseQueue("qp-paused");
    const waiting = [await client.enqueue("qp-paused", "work"), await client2.enqueue("qp-paused", "work")];
    // Scheduled jobs of a paused queue still become pending when due.
    const due = await client.enqueue("qp-paused", "work", null, { delayMs: 1 });
    await waitFor("the scheduled job to become pending", async () => (await client.getJob(due.id)).state === JobState.PENDING);
    waiting.push({ ...due, state: JobState.PENDING });
    release.resolve();
    await waitFor("the running job to succeed", async () => (await client.getJob(running.id)).state === JobState.SUCCEEDED);
    const sentinel = await client.enqueue("qp-open", "work");
    await withTimeout(runOf(sentinel.id).promise, 10_000, "the sentinel job to run");

    expect(runs).toEqual([sentinel.id]);
    for (const job of waiting) {
      expect(job.state).toBe(JobState.PENDING);
      expect(await eventTypesOf(job.id)).not.toContain("leased");
    }

    await client.resumeQueue("qp-paused");

    await withTimeout(Promise.all(waiting.map((job) => runOf(job.id).promise)), 10_000, "the waiting jobs to run after ResumeQueue");
  });

  it("a queue paused through one replica leases nothing to a worker on the other, which is woken at once by ResumeQueue", async () => {
    const { worker, runs, ran } = startRecordingWorker(replica2, ["qr-paused", "qr-open"]);
    await worker.start();

    await client.pauseQueue("qr-paused");
    const waiting: Job[] = [await client.enqueue("qr-paused", "work"), await client2.enqueue("qr-paused", "work")];
    const sentinel = await client.enqueue("qr-open", "work");
    await ran(sentinel.id);
    expect(runs).toEqual([sentinel.id]);
    expect(await Promise.all(waiting.map(async (job) => (await client.getJob(job.id)).state))).toEqual([JobState.PENDING, JobState.PENDING]);

    await client.resumeQueue("qr-paused");

    await Promise.all(waiting.map((job) => ran(job.id)));
    expect(new Set(runs)).toEqual(new Set([sentinel.id, ...waiting.map((job) => job.id)]));
  });
});

describe("the schema", () => {
  it("refuses a paused job without the state it was paused from, and a paused_from outside the waiting states", async () => {
    const job = await client.enqueue("pause-schema", "work");
    const refusal = (sql: string) =>
      replica1.db.pool.query(sql, [job.id]).then(
        () => undefined,
        (error: { code: string; constraint: string }) => ({ code: error.code, constraint: error.constraint }),
      );

    expect(await refusal("UPDATE job SET state = 'paused' WHERE id = $1")).toEqual({ code: "23514", constraint: "job_paused_from_iff_paused" });
    expect(await refusal("UPDATE job SET paused_from = 'pending' WHERE id = $1")).toEqual({ code: "23514", constraint: "job_paused_from_iff_paused" });
    expect(await refusal("UPDATE job SET state = 'paused', paused_from = 'running' WHERE id = $1")).toEqual({
      code: "23514",
      constraint: "job_paused_from_waiting",
    });
  });
});
