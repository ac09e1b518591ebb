import { JobState, Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { startServerProcess } from "./support/server-process.js";
import { withTimeout } from "./support/with-timeout.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { startWorkerProcess } from "./support/worker-process.js";

// Workers and servers die without warning here (SIGKILL: no cleanup, no goodbye). What
// must hold is that no job is lost and none completes twice.

const workers: Worker[] = [];
afterAll(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 1_000, abortWaitMs: 500 })));
});

interface EventRow {
  job_id: string;
  type: string;
  attempt: number;
  data: Record<string, any>;
}

async function eventsOf(pool: pg.Pool, jobIds: readonly string[]): Promise<Map<string, EventRow[]>> {
  const { rows } = await pool.query<EventRow>("SELECT job_id, type, attempt, data FROM job_event WHERE job_id = ANY($1::uuid[]) ORDER BY id", [jobIds]);
  const byJob = new Map<string, EventRow[]>(jobIds.map((id) => [id, []]));
  for (const row of rows) byJob.get(row.job_id)!.push(row);
  return byJob;
}

async function countInState(pool: pg.Pool, queue: string, state: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job WHERE queue = $1 AND state = $2", [queue, state]);
  return rows[0]!.n;
}

describe("a worker process killed with SIGKILL mid-job", () => {
  let server: JobwireServer;
  let client: JobwireClient;

  beforeAll(async () => {
    server = await startTestServer({ fallbackPollMs: 60_000 });
    client = createJobwireClient({ baseUrl: server.url });
  });

  it("has its jobs released at once when its stream closes, leased again (attempt 2) by another worker, and each completed once", async () => {
    const ids = await client.enqueueBatch(Array.from({ length: 6 }, (_, n) => ({ queue: "crash", kind: "crash", payload: { n } })));
    const doomed = await startWorkerProcess({ url: server.url, queues: ["crash"], handlers: { crash: "block-until-killed" }, concurrency: 6 });
    const started = await doomed.waitForLines(6, (line) => line.event === "started", "6 started lines");
    expect(new Set(started.map((line) => line.jobId))).toEqual(new Set(ids));
    expect(started.every((line) => line.attempt === 1)).toBe(true);
    // The survivor registers while the doomed worker holds every job: nothing for it yet.
    // With a 60 s fallback poll, only the wake-up sent with the release can reach it in time.
    const survivor = await startWorkerProcess({ url: server.url, queues: ["crash"], handlers: { crash: "noop" }, concurrency: 6 });

    const killed = await doomed.kill();
    expect(killed.signal).toBe("SIGKILL");

    // Released because the stream closed, well before the 30 s lease could expire.
    await waitFor("a released event for each job of the killed worker", async () => {
      const { rows } = await server.db.pool.query<{ n: number }>(
        "SELECT count(DISTINCT job_id)::int AS n FROM job_event WHERE job_id = ANY($1::uuid[]) AND type = 'released'",
        [ids],
      );
      return rows[0]!.n === ids.length;
    }, 10_000);
    const retried = await survivor.waitForLines(6, (line) => line.event === "finished", "6 finished lines from the survivor", 5_000);
    expect(new Set(retried.map((line) => line.jobId))).toEqual(new Set(ids));
    expect(retried.every((line) => line.attempt === 2)).toBe(true);
    await waitFor("every job to succeed", async () => (await countInState(server.db.pool, "crash", "succeeded")) === ids.length, 10_000);

    const events = await eventsOf(server.db.pool, ids);
    for (const id of ids) {
      const jobEvents = events.get(id)!;
      expect(jobEvents.map((e) => e.type)).toEqual(["enqueued", "leased", "released", "retry_scheduled", "leased", "succeeded"]);
      const [, firstLease, released, , secondLease, succeeded] = jobEvents;
      expect(firstLease!.data.worker).toBe(doomed.workerId);
      expect(released!.attempt).toBe(1);
      expect(released!.data.worker).toBe(doomed.workerId);
      expect(secondLease!.data.worker).toBe(survivor.workerId);
      expect(succeeded!.attempt).toBe(2);
      const job = await client.getJob(id);
      expect(job.state).toBe(JobState.SUCCEEDED);
      expect(job.attempt).toBe(2);
    }
    // The survivor, unlike its peer, is stopped gracefully: it drains and exits 0.
    expect(await survivor.stop()).toEqual({ code: 0, signal: null });
    expect(survivor.lines.at(-1)).toMatchObject({ event: "stopped", report: { timedOut: false, aborted: 0, abandoned: 0 } });
  });
});

describe("a server process killed with SIGKILL", () => {
  it("loses no job: the SDK reconnects to the restarted server adopting its held leases, and every job succeeds exactly once", async () => {
    const databaseUrl = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    onTestFinished(() => pool.end());
    const serverEnv = { JOBWIRE_FALLBACK_POLL_MS: "250" };
    const first = await startServerProcess({ database: { databaseUrl }, env: serverEnv });
    const producer = createJobwireClient({ baseUrl: first.url });

    // The lease timeout must outlast the kill and the restart, so that held leases are still
    // current to be adopted (the SDK heartbeats every 10 s at first); it also bounds how long
    // a lease claimed but never delivered before the kill stays stuck.
    const jobOptions = { leaseTimeoutMs: 10_000, retry: { initialBackoffMs: 0, maxBackoffMs: 0 } };
    const total = 2_000;
    const heldCount = 8;
    // Held jobs run first (higher priority) and stay in their handlers across the restart.
    const heldIds = await producer.enqueueBatch(
      Array.from({ length: heldCount }, () => ({ queue: "load", kind: "held", priority: 10, ...jobOptions })),
    );
    const quickIds: string[] = [];
    while (quickIds.length < total - heldCount) {
      const size = Math.min(1_000, total - heldCount - quickIds.length);
      const batch = Array.from({ length: size }, (_, n) => ({ queue: "load", kind: "quick", payload: { n }, ...jobOptions }));
      quickIds.push(...(await producer.enqueueBatch(batch)));
    }
    expect(heldIds.length + quickIds.length).toBe(total);

    const invocations = new Map<string, number>();
    const count = (id: string) => invocations.set(id, (invocations.get(id) ?? 0) + 1);
    const heldStarted = new Set<string>();
    const allHeldStarted = Promise.withResolvers<void>();
    const releaseHeld = Promise.withResolvers<void>();
    const refusedReports: string[] = [];
    const worker = new Worker({
      baseUrl: first.url,
      queues: ["load"],
      concurrency: 16,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      logger: {
        info() {},
        warn(message, fields) {
          if (message.includes("not accepted")) refusedReports.push(`${message} ${JSON.stringify(fields)}`);
        },
        error(message, fields) {
          refusedReports.push(`${message} ${JSON.stringify(fields)}`);
        },
      },
      handlers: {
        held: async (_payload, ctx) => {
          count(ctx.jobId);
          heldStarted.add(ctx.jobId);
          if (heldStarted.size === heldCount) allHeldStarted.resolve();
          await releaseHeld.promise;
          return { held: true };
        },
        quick: async (payload: { n: number }, ctx) => {
          count(ctx.jobId);
          await new Promise((resolve) => setImmediate(resolve));
          return { n: payload.n };
        },
      },
    });
    workers.push(worker);
    await worker.start();
    const firstWorkerId = worker.workerId;

    await withTimeout(allHeldStarted.promise, 10_000, "the held jobs to start");
    await waitFor("500 jobs to succeed before the kill", async () => (await countInState(pool, "load", "succeeded")) >= 500, 20_000);
    const killed = await first.kill();
    expect(killed.signal).toBe("SIGKILL");
    const succeededAtKill = await countInState(pool, "load", "succeeded");
    expect(succeededAtKill).toBeLessThan(total);

    const second = await startServerProcess({ database: { databaseUrl }, env: { ...serverEnv, JOBWIRE_PORT: String(new URL(first.url).port) } });
    expect(second.url).toBe(first.url);
    const reconnected = await second.waitForLog((line) => line.msg === "worker connected" && Number(line.adopted) > 0, 15_000);
    // Every held handler is still running, so every held lease was named and adopted.
    expect(Number(reconnected.adopted)).toBeGreaterThanOrEqual(heldCount);
    releaseHeld.resolve();

    await waitFor(`all ${total} jobs to succeed`, async () => (await countInState(pool, "load", "succeeded")) === total, 25_000);

    const { rows: perJob } = await pool.query<{ job_id: string; leased: number; succeeded: number; lease_expired: number }>(
      `SELECT job_id, count(*) FILTER (WHERE type = 'leased')::int AS leased,
              count(*) FILTER (WHERE type = 'succeeded')::int AS succeeded,
              count(*) FILTER (WHERE type = 'lease_expired')::int AS lease_expired
       FROM job_event WHERE queue = 'load' GROUP BY job_id`,
    );
    expect(perJob).toHaveLength(total);
    expect(perJob.filter((row) => row.succeeded !== 1)).toEqual([]);
    // A job leased twice is one whose first lease was claimed but never reached the worker
    // before the kill: it expired, and the handler still ran only once.
    expect(perJob.filter((row) => row.leased !== 1 + row.lease_expired)).toEqual([]);
    // At most the stream's lease capacity: concurrency 16 plus the default prefetch of 16.
    expect(perJob.filter((row) => row.lease_expired > 0).length).toBeLessThanOrEqual(32);
    expect(perJob.filter((row) => heldIds.includes(row.job_id) && row.leased !== 1)).toEqual([]);
    expect(invocations.size).toBe(total);
    expect([...invocations].filter(([, n]) => n !== 1)).toEqual([]);
    expect(refusedReports).toEqual([]);
    expect(worker.workerId).not.toBe(firstWorkerId);
    const heldJob = await producer.getJob(heldIds[0]!);
    expect(heldJob.state).toBe(JobState.SUCCEEDED);
    expect(heldJob.attempt).toBe(1);
  });

  it("retries a CompleteJob that was in flight when the server died, on the restarted server, so the finished handler is not run again", async () => {
    const databaseUrl = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    const holder = new pg.Client({ connectionString: databaseUrl });
    await holder.connect();
    onTestFinished(async () => {
      await holder.end().catch(() => undefined);
      await pool.end();
    });
    const serverEnv = { JOBWIRE_FALLBACK_POLL_MS: "250" };
    const first = await startServerProcess({ database: { databaseUrl }, env: serverEnv });
    const producer = createJobwireClient({ baseUrl: first.url });
    // Long enough that only a retried report, never a lease expiry, can finish the job in time.
    const job = await producer.enqueue("in-flight", "finish", null, { leaseTimeoutMs: 30_000, retry: { initialBackoffMs: 0, maxBackoffMs: 0 } });

    let invocations = 0;
    const handlerDone = Promise.withResolvers<void>();
    const lockTaken = Promise.withResolvers<void>();
    const givenUp: string[] = [];
    const worker = new Worker({
      baseUrl: first.url,
      queues: ["in-flight"],
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      logger: {
        info() {},
        // "lease stream failed" is expected while the server is down; a report given up is not.
        warn(message, fields) {
          if (message.includes("not accepted")) givenUp.push(`${message} ${JSON.stringify(fields)}`);
        },
        error(message, fields) {
          givenUp.push(`${message} ${JSON.stringify(fields)}`);
        },
      },
      handlers: {
        finish: async () => {
          invocations++;
          handlerDone.resolve();
          await lockTaken.promise;
          return { finished: true };
        },
      },
    });
    workers.push(worker);
    await worker.start();
    await withTimeout(handlerDone.promise, 10_000, "the handler to run");

    // Hold the job's row so that the server's CompleteJob statement waits inside Postgres.
    await holder.query("BEGIN");
    await holder.query("SELECT id FROM job WHERE id = $1 FOR UPDATE", [job.id]);
    lockTaken.resolve();
    const blockedPid = await waitFor("the server's CompleteJob to wait on the held row", async () => {
      const { rows } = await pool.query<{ pid: number }>(
        "SELECT pid FROM pg_locks WHERE NOT granted AND $1 = ANY(pg_blocking_pids(pid))",
        [(holder as unknown as { processID: number }).processID],
      );
      return rows[0]?.pid;
    }, 10_000);

    await first.kill();
    // The dead server's statement must not commit later: as if it never reached Postgres.
    await pool.query("SELECT pg_terminate_backend($1)", [blockedPid]);
    await waitFor("the dead server's backend to be gone", async () => {
      const { rows } = await pool.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [blockedPid]);
      return rows.length === 0;
    }, 10_000);
    await holder.query("ROLLBACK");
    expect((await pool.query("SELECT state FROM job WHERE id = $1", [job.id])).rows[0].state).toBe("running");

    await startServerProcess({ database: { databaseUrl }, env: { ...serverEnv, JOBWIRE_PORT: String(new URL(first.url).port) } });
    await waitFor("the retried CompleteJob to succeed the job on the restarted server", async () => {
      const { rows } = await pool.query("SELECT state FROM job WHERE id = $1", [job.id]);
      return rows[0].state === "succeeded";
    }, 8_000).catch((error: unknown) => {
      throw new Error(`${String(error)}; the worker logged: ${JSON.stringify(givenUp)}`);
    });
    expect(invocations).toBe(1);
    expect(givenUp).toEqual([]);
    const { rows } = await pool.query<{ type: string }>("SELECT type FROM job_event WHERE job_id = $1 ORDER BY id", [job.id]);
    expect(rows.map((row) => row.type)).toEqual(["enqueued", "leased", "succeeded"]);
  });
});
