import { JobState, Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { withTimeout } from "./support/with-timeout.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

// Two replicas of the server on one database, each with its own worker: all coordination
// goes through Postgres (row locks for claims, LISTEN/NOTIFY for wake-ups and cancels).
// The fallback poll is far longer than any wait here, so nothing passes by polling.

let replica1: JobwireServer;
let replica2: JobwireServer;
let via1: JobwireClient;
let via2: JobwireClient;
const workers: Worker[] = [];

beforeAll(async () => {
  const databaseUrl = await createTestDatabase();
  const config = { databaseUrl, fallbackPollMs: 60_000, cancelGraceMs: 30_000, dbPoolSize: 10 };
  // One after the other: the first runs the migrations, the second finds them applied.
  replica1 = await startTestServer(config);
  replica2 = await startTestServer(config);
  via1 = createJobwireClient({ baseUrl: replica1.url });
  via2 = createJobwireClient({ baseUrl: replica2.url });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 2_000, abortWaitMs: 500 })));
});

function startWorker(server: JobwireServer, options: Omit<ConstructorParameters<typeof Worker>[0], "baseUrl">): Worker {
  const worker = new Worker({ baseUrl: server.url, ...options });
  workers.push(worker);
  return worker;
}

describe("two server replicas on one database", () => {
  it("complete each of 5,000 jobs exactly once between a worker on each replica", async () => {
    const total = 5_000;
    const runs = new Map<string, string[]>();
    let done = 0;
    const allRun = Promise.withResolvers<void>();
    const handlerFor = (name: string) => async (_payload: unknown, ctx: { jobId: string }) => {
      const byWhom = runs.get(ctx.jobId) ?? [];
      byWhom.push(name);
      runs.set(ctx.jobId, byWhom);
      if (++done === total) allRun.resolve();
    };
    const worker1 = startWorker(replica1, { queues: ["shared"], concurrency: 32, handlers: { unit: handlerFor("worker1") } });
    const worker2 = startWorker(replica2, { queues: ["shared"], concurrency: 32, handlers: { unit: handlerFor("worker2") } });
    await Promise.all([worker1.start(), worker2.start()]);

    // Batches alternate between the replicas, so each replica's enqueues wake the other's worker.
    const ids: string[] = [];
    for (let batch = 0; batch < total / 500; batch++) {
      const client = batch % 2 === 0 ? via1 : via2;
      ids.push(...(await client.enqueueBatch(Array.from({ length: 500 }, (_, n) => ({ queue: "shared", kind: "unit", payload: { batch, n } })))));
    }
    await withTimeout(allRun.promise, 25_000, () => `${total} handler runs (got ${done})`);
    await waitFor(`${total} jobs to succeed`, async () => {
      const { rows } = await replica1.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job WHERE queue = 'shared' AND state = 'succeeded'");
      return rows[0]!.n === total;
    }, 10_000);

    expect(runs.size).toBe(total);
    expect([...runs].filter(([, byWhom]) => byWhom.length !== 1)).toEqual([]);
    const perWorker = { worker1: 0, worker2: 0 };
    for (const [byWhom] of runs.values()) perWorker[byWhom as keyof typeof perWorker]++;
    expect(perWorker.worker1).toBeGreaterThan(0);
    expect(perWorker.worker2).toBeGreaterThan(0);

    const { rows: perJob } = await replica2.db.pool.query<{ job_id: string; leased: number; succeeded: number; other: number }>(
      `SELECT job_id, count(*) FILTER (WHERE type = 'leased')::int AS leased,
              count(*) FILTER (WHERE type = 'succeeded')::int AS succeeded,
              count(*) FILTER (WHERE type NOT IN ('enqueued', 'leased', 'succeeded'))::int AS other
       FROM job_event WHERE queue = 'shared' GROUP BY job_id`,
    );
    expect(perJob).toHaveLength(total);
    expect(new Set(perJob.map((row) => row.job_id))).toEqual(new Set(ids));
    expect(perJob.filter((row) => row.leased !== 1 || row.succeeded !== 1 || row.other !== 0)).toEqual([]);
    // The leases were spread over both replicas' worker streams.
    const { rows: streams } = await replica1.db.pool.query<{ worker: string; n: number }>(
      "SELECT data->>'worker' AS worker, count(*)::int AS n FROM job_event WHERE queue = 'shared' AND type = 'leased' GROUP BY 1",
    );
    expect(new Set(streams.map((row) => row.worker))).toEqual(new Set([worker1.workerId, worker2.workerId]));
  });

  it("delivers a CancelJob sent through replica 1 to the job's worker on replica 2: its signal aborts with CANCELLED and the job is cancelled once", async () => {
    const started = Promise.withResolvers<string>();
    const aborted = Promise.withResolvers<string | undefined>();
    const worker = startWorker(replica2, {
      queues: ["cross-cancel"],
      handlers: {
        wait: async (_payload, ctx) => {
          started.resolve(ctx.jobId);
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          aborted.resolve(ctx.abortReason);
          throw ctx.signal.reason;
        },
      },
    });
    await worker.start();
    // A long lease: the worker's heartbeat, which would also report the cancel, is 10 s away.
    const job = await via2.enqueue("cross-cancel", "wait", null, { leaseTimeoutMs: 60_000 });
    expect(await withTimeout(started.promise, 10_000, "the job to start on the worker of replica 2")).toBe(job.id);

    const requested = await via1.cancelJob(job.id, "stop from replica 1");
    expect(requested.state).toBe(JobState.RUNNING);
    expect(await withTimeout(aborted.promise, 5_000, "the handler's signal to abort (pushed through replica 2's stream)")).toBe("CANCELLED");
    const cancelled = await waitFor("the job to be cancelled", async () => {
      const current = await via1.getJob(job.id);
      return current.state === JobState.CANCELLED ? current : undefined;
    }, 10_000);
    expect(cancelled.attempt).toBe(1);

    const { rows } = await replica1.db.pool.query<{ type: string; data: Record<string, any> }>(
      "SELECT type, data FROM job_event WHERE job_id = $1 ORDER BY id",
      [job.id],
    );
    expect(rows.map((row) => row.type)).toEqual(["enqueued", "leased", "cancel_requested", "cancelled"]);
    expect(rows[1]!.data.worker).toBe(worker.workerId);
    // Cancelled because the worker stopped and said so, not revoked after the grace period.
    expect(rows[3]!.data.cause).toBe("failed");
  });

  it("leases a job enqueued through replica 1 to an idle worker connected only to replica 2, woken without the fallback poll", async () => {
    const ran = Promise.withResolvers<string>();
    const worker = startWorker(replica2, { queues: ["cross-wake"], handlers: { touch: async (_payload, ctx) => ran.resolve(ctx.jobId) } });
    await worker.start();
    const job = await via1.enqueue("cross-wake", "touch");
    expect(await withTimeout(ran.promise, 5_000, "replica 2's worker to run the job (fallback poll is 60 s)")).toBe(job.id);
    await waitFor("the job to succeed", async () => (await via1.getJob(job.id)).state === JobState.SUCCEEDED, 10_000);
  });
});
