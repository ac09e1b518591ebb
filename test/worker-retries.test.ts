import { JobState, PhaseState, Worker, createJobwireClient, retryAfter, type JobwireClient } from "@jobwire/sdk";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { JobwireServer } from "@jobwire/server";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { withTimeout } from "./support/with-timeout.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

// Retries, backoff and timeouts with short policies. The fallback poll is far longer than
// any wait here: every retry must be woken by its due time, never found by polling.

let server: JobwireServer;
let client: JobwireClient;
const workers: Worker[] = [];
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

async function startWorker(options: Omit<ConstructorParameters<typeof Worker>[0], "baseUrl">): Promise<Worker> {
  const worker = new Worker({ baseUrl: server.url, ...options });
  workers.push(worker);
  await worker.start();
  return worker;
}

/** A job's events with their times as epoch milliseconds (computed by Postgres). */
interface EventRow {
  type: string;
  attempt: number;
  atMs: number;
  runAtMs: number | null;
  data: Record<string, any>;
}

async function eventsOf(jobId: string): Promise<EventRow[]> {
  const { rows } = await server.db.pool.query<EventRow>(
    `SELECT type, attempt, data,
            extract(epoch FROM at) * 1000 AS "atMs",
            extract(epoch FROM (data->>'run_at')::timestamptz) * 1000 AS "runAtMs"
     FROM job_event WHERE job_id = $1 ORDER BY id`,
    [jobId],
  );
  return rows.map((row) => ({ ...row, atMs: Number(row.atMs), runAtMs: row.runAtMs === null ? null : Number(row.runAtMs) }));
}

async function jobInState(jobId: string, state: JobState) {
  return waitFor(`job ${jobId} to reach state ${JobState[state]}`, async () => {
    const job = await client.getJob(jobId);
    return job.state === state ? job : undefined;
  }, 15_000);
}

const shortPolicy = { initialBackoffMs: 50, maxBackoffMs: 200, jitter: 0 };

describe("retries", () => {
  it("retries a failing job with exponential backoff capped at the maximum, and it succeeds on a later attempt", async () => {
    const job = await client.enqueue("backoff", "flaky", null, { retry: { maxAttempts: 5, ...shortPolicy } });
    const attempts: number[] = [];
    await startWorker({
      queues: ["backoff"],
      handlers: {
        flaky: async (_payload, ctx) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt < 5) throw new Error(`flaky #${ctx.attempt}`);
          return { attempt: ctx.attempt };
        },
      },
    });
    await jobInState(job.id, JobState.SUCCEEDED);
    expect(attempts).toEqual([1, 2, 3, 4, 5]);

    const events = await eventsOf(job.id);
    const scheduled = events.filter((e) => e.type === "retry_scheduled");
    const leased = events.filter((e) => e.type === "leased");
    expect(scheduled.map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    expect(leased.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5]);
    // With no jitter the delays are 50, 100, 200 and then 200 (400 capped).
    expect(scheduled.map((e) => e.data.delay_ms)).toEqual([50, 100, 200, 200]);
    // No attempt started before its backoff ran out.
    scheduled.forEach((retry, i) => expect(leased[i + 1]!.atMs).toBeGreaterThanOrEqual(retry.runAtMs!));
    expect(scheduled[0]!.data.message).toBe("flaky #1");
  });

  it("fails a job for good once its attempts are used up, keeping the last error", async () => {
    const job = await client.enqueue("exhaust", "always-fails", null, { retry: { maxAttempts: 3, ...shortPolicy } });
    let runs = 0;
    await startWorker({
      queues: ["exhaust"],
      handlers: {
        "always-fails": async (_payload, ctx) => {
          runs++;
          throw new Error(`boom on attempt ${ctx.attempt} of ${ctx.maxAttempts}`);
        },
      },
    });
    const failed = await jobInState(job.id, JobState.FAILED);
    expect(runs).toBe(3);
    expect(failed.attempt).toBe(3);
    expect(failed.lastError?.message).toBe("boom on attempt 3 of 3");
    expect(failed.lastError?.retryable).toBe(false);
    const types = (await eventsOf(job.id)).map((e) => e.type);
    expect(types.filter((t) => t === "retry_scheduled")).toHaveLength(2);
    expect(types.filter((t) => t === "failed")).toHaveLength(1);
    expect(types.at(-1)).toBe("failed");
  });

  it("retries after the time a handler gives with retryAfter(ms), overriding the policy's backoff", async () => {
    const job = await client.enqueue("retry-after", "rate-limited", null, { retry: { maxAttempts: 3, ...shortPolicy } });
    const attempts: number[] = [];
    await startWorker({
      queues: ["retry-after"],
      handlers: {
        "rate-limited": async (_payload, ctx) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt === 1) retryAfter(1_500, "upstream says 429");
          return { ok: true };
        },
      },
    });
    await jobInState(job.id, JobState.SUCCEEDED);
    expect(attempts).toEqual([1, 2]);

    const job2 = await client.getJob(job.id);
    expect(job2.lastError?.message).toBe("upstream says 429");
    const events = await eventsOf(job.id);
    const retry = events.find((e) => e.type === "retry_scheduled")!;
    // The delay the server applied is the one the handler asked for, exactly.
    expect(retry.data.delay_ms).toBe(1_500);
    const secondLease = events.filter((e) => e.type === "leased")[1]!;
    expect(secondLease.atMs).toBeGreaterThanOrEqual(retry.runAtMs!);
  });

  it("aborts a handler past its execution timeout with TIMEOUT, ends the attempt at its deadline with cause timeout, and retries it", async () => {
    const job = await client.enqueue("timeout", "slow", null, { executionTimeoutMs: 1_000, retry: { maxAttempts: 2, ...shortPolicy } });
    const aborted = Promise.withResolvers<string | undefined>();
    let deadlineMs: number | undefined;
    await startWorker({
      queues: ["timeout"],
      handlers: {
        slow: async (_payload, ctx) => {
          if (ctx.attempt === 2) return { attempt: 2 };
          // The first attempt's deadline, read while it runs (the timeout clears it).
          const { rows } = await server.db.pool.query("SELECT extract(epoch FROM deadline_at) * 1000 AS ms FROM job WHERE id = $1", [job.id]);
          deadlineMs = Number(rows[0].ms);
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          aborted.resolve(ctx.abortReason);
          throw ctx.signal.reason;
        },
      },
    });
    expect(await withTimeout(aborted.promise, 5_000, "the handler's signal to abort")).toBe("TIMEOUT");
    // The SDK stops at the deadline and reports nothing: ending the attempt is the server's.
    await waitFor("the server to end the attempt with a timeout event (fallback poll is 60 s)", async () => {
      const { rows } = await server.db.pool.query("SELECT 1 FROM job_event WHERE job_id = $1 AND type = 'timeout'", [job.id]);
      return rows.length === 1;
    }, 3_000);
    const done = await jobInState(job.id, JobState.SUCCEEDED);
    expect(done.attempt).toBe(2);

    const events = await eventsOf(job.id);
    expect(events.map((e) => e.type)).toEqual(["enqueued", "leased", "timeout", "retry_scheduled", "ready", "leased", "succeeded"]);
    const timedOut = events[2]!;
    expect(timedOut.attempt).toBe(1);
    expect(events[3]!.data.cause).toBe("timeout");
    // Not before the deadline, a second after the lease. (The leased event is written a
    // moment after the lease takes its clock: measured from it, this read 999.4 ms once.)
    expect(deadlineMs! - events[1]!.atMs).toBeGreaterThan(900);
    expect(timedOut.atMs).toBeGreaterThanOrEqual(deadlineMs!);
  });

  it("on RetryJob with from_start=false after a failure, keeps the completed phase's result and does not run its step again", async () => {
    const job = await client.enqueue("resume", "etl", { source: "s3://bucket/file" }, { phases: ["extract", "load"], retry: { maxAttempts: 1 } });
    const extractRuns: number[] = [];
    const loadRuns: number[] = [];
    let failLoad = true;
    await startWorker({
      queues: ["resume"],
      handlers: {
        etl: async (_payload, ctx) => {
          const extracted = await ctx.step("extract", async () => {
            extractRuns.push(ctx.attempt);
            return { rows: 7 };
          });
          const loaded = await ctx.step("load", async () => {
            loadRuns.push(ctx.attempt);
            if (failLoad) throw new Error("warehouse unavailable");
            return { loaded: extracted.rows };
          });
          return loaded;
        },
      },
    });
    const failed = await jobInState(job.id, JobState.FAILED);
    expect(failed.lastError?.message).toBe("warehouse unavailable");
    expect(failed.lastError?.phase).toBe("load");
    expect(failed.phases.map((p) => p.state)).toEqual([PhaseState.SUCCEEDED, PhaseState.PENDING]);

    failLoad = false;
    const retried = await client.retryJob(job.id, { fromStart: false });
    expect(retried.state).toBe(JobState.PENDING);
    const done = await jobInState(job.id, JobState.SUCCEEDED);
    expect(extractRuns).toEqual([1]);
    expect(loadRuns).toEqual([1, 2]);
    expect(done.result && toJson(ValueSchema, done.result)).toEqual({ loaded: 7 });
    expect(done.phases.map((p) => p.state)).toEqual([PhaseState.SUCCEEDED, PhaseState.SUCCEEDED]);
    const phaseEvents = (await eventsOf(job.id)).filter((e) => e.type === "phase_completed").map((e) => e.data.phase);
    expect(phaseEvents).toEqual(["extract", "load"]);
  });

  it("shows the progress a running handler reports through GetJob while the job runs", async () => {
    const job = await client.enqueue("progress", "long", null);
    const finish = gate();
    await startWorker({
      queues: ["progress"],
      handlers: {
        long: async (_payload, ctx) => {
          await ctx.progress({ done: 1, of: 3, stage: "downloading" });
          await finish.promise;
          return { done: 3 };
        },
      },
    });
    const running = await waitFor("GetJob to show the progress", async () => {
      const current = await client.getJob(job.id);
      return current.progress ? current : undefined;
    }, 10_000);
    expect(running.state).toBe(JobState.RUNNING);
    expect(toJson(ValueSchema, running.progress!)).toEqual({ done: 1, of: 3, stage: "downloading" });
    expect((await eventsOf(job.id)).map((e) => e.type)).toEqual(["enqueued", "leased", "progress"]);

    finish.resolve();
    await jobInState(job.id, JobState.SUCCEEDED);
  });
});

describe("leases of handlers that run longer than their lease timeout", () => {
  it("keeps a 1 s lease alive by heartbeats for a handler that runs past it, on a worker that was idle when the job arrived", async () => {
    const finish = gate();
    // Started before the job exists: the worker is idle when the lease arrives.
    const worker = await startWorker({
      queues: ["long-lease"],
      handlers: {
        long: async () => {
          await finish.promise;
          return { ok: true };
        },
      },
    });
    const job = await client.enqueue("long-lease", "long", null, { leaseTimeoutMs: 1_000, retry: { maxAttempts: 2, ...shortPolicy } });
    const { rows: [leased] } = await waitFor("the job to be leased", async () => {
      const result = await server.db.pool.query<{ expires_ms: number }>(
        "SELECT extract(epoch FROM lease_expires_at) * 1000 AS expires_ms FROM job WHERE id = $1 AND state = 'running'",
        [job.id],
      );
      return result.rows.length === 1 ? result : undefined;
    }, 10_000);
    const firstExpiryMs = Number(leased!.expires_ms);
    // Three lease periods' worth of extensions: only heartbeats can do that.
    await waitFor("heartbeats to extend the 1 s lease past 3 s", async () => {
      const { rows } = await server.db.pool.query<{ state: string; expires_ms: number | null }>(
        "SELECT state, extract(epoch FROM lease_expires_at) * 1000 AS expires_ms FROM job WHERE id = $1",
        [job.id],
      );
      if (rows[0]!.state !== "running") throw new Error(`job left running: ${rows[0]!.state}`);
      return Number(rows[0]!.expires_ms) >= firstExpiryMs + 2_000;
    }, 5_000);
    finish.resolve();
    const done = await jobInState(job.id, JobState.SUCCEEDED);
    expect(done.attempt).toBe(1);
    expect((await eventsOf(job.id)).map((e) => e.type)).toEqual(["enqueued", "leased", "succeeded"]);
    expect(worker.state).toBe("running");
  });
});

describe("a timed-out attempt whose handler ignores its signal", () => {
  it("does not hide the retry that the same worker runs meanwhile: shutdown still aborts and waits for the retry's handler", async () => {
    // A short fallback poll ends the timed-out attempt soon (see the execution timeout test).
    const quickServer = await startTestServer({ fallbackPollMs: 100 });
    const producer = createJobwireClient({ baseUrl: quickServer.url });
    const job = await producer.enqueue("overlap", "stubborn", null, { executionTimeoutMs: 2_000, retry: { maxAttempts: 3, ...shortPolicy } });
    const firstStarted = Promise.withResolvers<void>();
    const secondStarted = Promise.withResolvers<void>();
    const firstGate = gate();
    const secondAbort: (string | undefined)[] = [];
    const lateReport = Promise.withResolvers<{ message: string; fields?: object }>();
    const worker = new Worker({
      baseUrl: quickServer.url,
      queues: ["overlap"],
      concurrency: 2,
      logger: { info() {}, warn: (message, fields) => lateReport.resolve({ message, fields }), error: (message, fields) => lateReport.resolve({ message, fields }) },
      handlers: {
        stubborn: async (_payload, ctx) => {
          if (ctx.attempt === 1) {
            firstStarted.resolve();
            await firstGate.promise; // ignores its TIMEOUT abort
            return { attempt: 1 };
          }
          secondStarted.resolve();
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          secondAbort.push(ctx.abortReason);
          throw ctx.signal.reason;
        },
      },
    });
    workers.push(worker);
    await worker.start();
    await withTimeout(firstStarted.promise, 10_000, "attempt 1 to start");
    await withTimeout(secondStarted.promise, 10_000, "attempt 2 to start on the same worker after attempt 1 timed out");

    // Attempt 1's handler returns at last; its completion is refused (the server ended it).
    firstGate.resolve();
    const late = await withTimeout(lateReport.promise, 10_000, "attempt 1's late CompleteJob to be answered");
    expect(late.fields).toMatchObject({ jobId: job.id, code: "FailedPrecondition" });

    // Attempt 2 is still running: shutdown must abort it and wait for its FailJob.
    const report = await withTimeout(worker.shutdown({ graceMs: 300, abortWaitMs: 3_000 }), 10_000, "shutdown to resolve");
    expect(report).toEqual({ timedOut: true, aborted: 1, abandoned: 0 });
    expect(secondAbort).toEqual(["SHUTDOWN"]);
    const { rows } = await quickServer.db.pool.query<{ type: string; attempt: number }>(
      "SELECT type, attempt FROM job_event WHERE job_id = $1 AND attempt = 2 ORDER BY id",
      [job.id],
    );
    expect(rows.map((row) => row.type)).toEqual(["leased", "retry_scheduled"]);
  });
});
