import { JobState, Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { withTimeout } from "./support/with-timeout.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

let server: JobwireServer;
let client: JobwireClient;
const workers: Worker[] = [];
/** Handlers the tests hold open; released after each test so that nothing leaks. */
const gates: PromiseWithResolvers<void>[] = [];

beforeAll(async () => {
  server = await startTestServer({ fallbackPollMs: 60_000 });
  client = createJobwireClient({ baseUrl: server.url });
});

afterEach(async () => {
  for (const gate of gates.splice(0)) gate.resolve();
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 2_000, abortWaitMs: 500 })));
});

function gate(): PromiseWithResolvers<void> {
  const opened = Promise.withResolvers<void>();
  gates.push(opened);
  return opened;
}

function startWorker(options: Omit<ConstructorParameters<typeof Worker>[0], "baseUrl">): Worker {
  const worker = new Worker({ baseUrl: server.url, ...options });
  workers.push(worker);
  return worker;
}

/** Resolves once `count` distinct jobs have called `started`. */
function startedCounter(count: number) {
  const ids: string[] = [];
  const all = Promise.withResolvers<string[]>();
  return {
    started(id: string) {
      ids.push(id);
      if (ids.length === count) all.resolve([...ids]);
    },
    all: () => withTimeout(all.promise, 10_000, () => `${count} handlers to start (got ${ids.length})`),
  };
}

interface EventRow {
  type: string;
  attempt: number;
  at: Date;
  data: Record<string, any>;
}

async function eventsOf(jobId: string): Promise<EventRow[]> {
  const { rows } = await server.db.pool.query<EventRow>("SELECT type, attempt, at, data FROM job_event WHERE job_id = $1 ORDER BY id", [jobId]);
  return rows;
}

async function jobInState(jobId: string, state: JobState) {
  return waitFor(`job ${jobId} to reach state ${JobState[state]}`, async () => {
    const job = await client.getJob(jobId);
    return job.state === state ? job : undefined;
  }, 10_000);
}

describe("Worker.shutdown", () => {
  it("lets handlers in flight finish within the grace time and takes no new lease once it has begun", async () => {
    const ids = await client.enqueueBatch(Array.from({ length: 3 }, () => ({ queue: "drain", kind: "gated" })));
    const counter = startedCounter(3);
    const release = gate();
    const worker = startWorker({
      queues: ["drain"],
      concurrency: 3,
      handlers: {
        gated: async (_payload, ctx) => {
          counter.started(ctx.jobId);
          await release.promise;
          return { finished: ctx.jobId };
        },
      },
    });
    await worker.start();
    expect(new Set(await counter.all())).toEqual(new Set(ids));

    const shutdown = worker.shutdown({ graceMs: 20_000 });
    expect(worker.state).toBe("draining");
    const later = await client.enqueueBatch(Array.from({ length: 4 }, () => ({ queue: "drain", kind: "gated" })));
    // Each completion frees a slot on the server: a worker still taking work would refill it.
    release.resolve();
    const report = await withTimeout(shutdown, 15_000, "shutdown to resolve");
    expect(report).toEqual({ timedOut: false, aborted: 0, abandoned: 0 });
    expect(worker.state).toBe("stopped");
    expect(worker.inFlight).toBe(0);

    for (const id of ids) expect((await client.getJob(id)).state).toBe(JobState.SUCCEEDED);
    for (const id of later) {
      expect((await client.getJob(id)).state).toBe(JobState.PENDING);
      expect((await eventsOf(id)).map((e) => e.type)).toEqual(["enqueued"]);
    }
  });

  it("reports timedOut and the abandoned handler when a handler ignores its signal, still stops, and the server gives the job to another worker", async () => {
    const job = await client.enqueue("stubborn", "ignore", null, { retry: { maxAttempts: 3 } });
    const started = Promise.withResolvers<void>();
    const stubborn = gate();
    // What the stopped worker says when its abandoned handler finally returns.
    const lateReport = Promise.withResolvers<{ message: string; fields?: object }>();
    const worker = startWorker({
      queues: ["stubborn"],
      reportRetryMs: 2_000,
      logger: { info() {}, warn: (message, fields) => lateReport.resolve({ message, fields }), error: (message, fields) => lateReport.resolve({ message, fields }) },
      handlers: {
        ignore: async () => {
          started.resolve();
          // Ignores ctx.signal: only the test ends it, after the worker has stopped.
          await stubborn.promise;
        },
      },
    });
    await worker.start();
    await withTimeout(started.promise, 10_000, "the stubborn handler to start");
    const firstWorkerId = worker.workerId;

    const report = await withTimeout(worker.shutdown({ graceMs: 300, abortWaitMs: 300 }), 10_000, "shutdown to resolve");
    expect(report).toEqual({ timedOut: true, aborted: 1, abandoned: 1 });
    expect(worker.state).toBe("stopped");

    // The stream closed with the lease still held: the server gives the job back at once.
    await waitFor("the abandoned attempt to be released", async () => (await eventsOf(job.id)).some((e) => e.type === "released"), 10_000);
    const ran = Promise.withResolvers<number>();
    const successor = startWorker({ queues: ["stubborn"], handlers: { ignore: async (_payload, ctx) => ran.resolve(ctx.attempt) } });
    await successor.start();
    expect(await withTimeout(ran.promise, 10_000, "the successor to run the job")).toBe(2);
    await jobInState(job.id, JobState.SUCCEEDED);

    const events = await eventsOf(job.id);
    expect(events.map((e) => e.type)).toEqual(["enqueued", "leased", "released", "retry_scheduled", "leased", "succeeded"]);
    expect(events[1]!.data.worker).toBe(firstWorkerId);
    expect(events[2]!.attempt).toBe(1);
    expect(events[4]!.data.worker).toBe(successor.workerId);

    // The abandoned handler returns at last: its completion is fenced off.
    stubborn.resolve();
    const late = await withTimeout(lateReport.promise, 10_000, "the abandoned handler's CompleteJob to be answered");
    expect(late.message).toBe("CompleteJob was not accepted");
    expect(late.fields).toMatchObject({ jobId: job.id, code: "FailedPrecondition" });
    expect((await eventsOf(job.id)).filter((e) => e.type === "succeeded")).toHaveLength(1);
  });

  it("gets a job retried at once (FailJob with retry_after 0) when its handler honours the SHUTDOWN abort", async () => {
    const job = await client.enqueue("polite", "stop-when-asked", null, { retry: { maxAttempts: 3, initialBackoffMs: 60_000, maxBackoffMs: 60_000 } });
    const started = Promise.withResolvers<void>();
    const abortReasons: (string | undefined)[] = [];
    const worker = startWorker({
      queues: ["polite"],
      handlers: {
        "stop-when-asked": async (_payload, ctx) => {
          started.resolve();
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          abortReasons.push(ctx.abortReason);
          throw ctx.signal.reason;
        },
      },
    });
    await worker.start();
    await withTimeout(started.promise, 10_000, "the handler to start");

    const report = await withTimeout(worker.shutdown({ graceMs: 200, abortWaitMs: 5_000 }), 10_000, "shutdown to resolve");
    expect(report).toEqual({ timedOut: true, aborted: 1, abandoned: 0 });
    expect(abortReasons).toEqual(["SHUTDOWN"]);

    const failed = await client.getJob(job.id);
    expect(failed.lastError?.message).toContain("SHUTDOWN");
    const afterFailure = await eventsOf(job.id);
    expect(afterFailure.map((e) => e.type).slice(0, 3)).toEqual(["enqueued", "leased", "retry_scheduled"]);
    expect(afterFailure[2]!.data.cause).toBe("failed");
    // retry_after 0 overrides the policy's 60 s backoff: due no later than the failure itself.
    const { rows: due } = await server.db.pool.query<{ at_once: boolean }>(
      "SELECT (data->>'run_at')::timestamptz <= at AS at_once FROM job_event WHERE job_id = $1 AND type = 'retry_scheduled'",
      [job.id],
    );
    expect(due).toEqual([{ at_once: true }]);

    const ran = Promise.withResolvers<number>();
    const successor = startWorker({ queues: ["polite"], handlers: { "stop-when-asked": async (_payload, ctx) => ran.resolve(ctx.attempt) } });
    await successor.start();
    expect(await withTimeout(ran.promise, 10_000, "the successor to run the job")).toBe(2);
    await jobInState(job.id, JobState.SUCCEEDED);
    expect((await eventsOf(job.id)).map((e) => e.type)).not.toContain("released");
  });
});
