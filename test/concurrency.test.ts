import { Code } from "@connectrpc/connect";
import { JobState, Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

let server: JobwireServer;
let replica: JobwireServer;
let client: JobwireClient;
const workers: Worker[] = [];

beforeAll(async () => {
  const databaseUrl = await createTestDatabase();
  server = await startTestServer({ databaseUrl, fallbackPollMs: 60_000 });
  replica = await startTestServer({ databaseUrl, fallbackPollMs: 60_000 });
  client = createJobwireClient({ baseUrl: server.url });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 2_000, abortWaitMs: 500 })));
});

/**
 * Gated handlers: each job runs until the test opens its gate. Tracks which jobs run now,
 * and the most that ever ran at once.
 */
function gatedJobs() {
  const gates = new Map<string, PromiseWithResolvers<void>>();
  const running = new Set<string>();
  let most = 0;
  const gate = (id: string) => {
    let g = gates.get(id);
    if (!g) gates.set(id, (g = Promise.withResolvers<void>()));
    return g;
  };
  return {
    running,
    get most() {
      return most;
    },
    open: (id: string) => gate(id).resolve(),
    handler: async (_payload: unknown, ctx: { jobId: string }) => {
      running.add(ctx.jobId);
      most = Math.max(most, running.size);
      await gate(ctx.jobId).promise;
      running.delete(ctx.jobId);
      return null;
    },
  };
}

async function startWorkers(queue: string, handler: (payload: unknown, ctx: { jobId: string }) => Promise<null>, perReplica = 1, concurrency = 4) {
  for (const s of [server, replica]) {
    for (let i = 0; i < perReplica; i++) {
      const worker = new Worker({ baseUrl: s.url, queues: [queue], concurrency, handlers: { k: handler } });
      workers.push(worker);
      await worker.start();
    }
  }
}

async function jobState(id: string): Promise<{ state: JobState; waitingReason: string }> {
  const job = await client.getJob(id);
  return { state: job.state, waitingReason: job.waitingReason };
}

describe("concurrency limits", () => {
  it("hold a key at its limit across two replicas and admit the next job as one finishes", async () => {
    await client.setConcurrencyLimit("tenant-a", { maxRunning: 2 });
    const jobs = gatedJobs();
    const ids = await client.enqueueBatch(Array.from({ length: 6 }, () => ({ queue: "cl-basic", kind: "k", concurrencyKey: "tenant-a" })));
    await startWorkers("cl-basic", jobs.handler);
    await waitFor("two jobs to run", async () => jobs.running.size === 2);
    const waiting = ids.filter((id) => !jobs.running.has(id));
    for (const id of waiting) {
      const { state, waitingReason } = await jobState(id);
      expect(state).toBe(JobState.PENDING);
      expect(waitingReason).toMatch(/concurrency limit covering key tenant-a/);
    }
    // Open the gates one by one: each finished job lets exactly one more in.
    const done = new Set<string>();
    while (done.size < ids.length) {
      const next = [...jobs.running][0]!;
      jobs.open(next);
      done.add(next);
      await waitFor("the job to finish and the next to start", async () =>
        !jobs.running.has(next) && (jobs.running.size === Math.min(2, ids.length - done.size)),
      );
    }
    expect(jobs.most).toBe(2);
    await waitFor("every job to succeed", async () => (await Promise.all(ids.map(jobState))).every((j) => j.state === JobState.SUCCEEDED));
  });

  it("do not let one key's limit hold back another key", async () => {
    await client.setConcurrencyLimit("slow-key", { maxRunning: 1 });
    const jobs = gatedJobs();
    const [held, blocked] = await client.enqueueBatch([
      { queue: "cl-keys", kind: "k", concurrencyKey: "slow-key" },
      { queue: "cl-keys", kind: "k", concurrencyKey: "slow-key" },
    ]);
    await startWorkers("cl-keys", jobs.handler);
    await waitFor("the first slow-key job to run", async () => jobs.running.size === 1);
    const others = await client.enqueueBatch(Array.from({ length: 3 }, () => ({ queue: "cl-keys", kind: "k", concurrencyKey: "fast-key" })));
    await waitFor("the other key's jobs to run", async () => others.every((id) => jobs.running.has(id)));
    expect((await jobState(blocked!)).state).toBe(JobState.PENDING);
    for (const id of [held!, blocked!, ...others]) jobs.open(id);
    await waitFor("all to succeed", async () => (await Promise.all([held!, blocked!, ...others].map(jobState))).every((j) => j.state === JobState.SUCCEEDED));
  });

  it("make a job heavier than the weight left wait, and the jobs behind it, until capacity frees", async () => {
    await client.setConcurrencyLimit("gpu", { maxWeight: 3 });
    const jobs = gatedJobs();
    const first = await client.enqueue("cl-weight", "k", null, { concurrencyKey: "gpu", weight: 2, priority: 10 });
    const heavy = await client.enqueue("cl-weight", "k", null, { concurrencyKey: "gpu", weight: 2, priority: 5 });
    const light = await client.enqueue("cl-weight", "k", null, { concurrencyKey: "gpu", weight: 1, priority: 1 });
    await startWorkers("cl-weight", jobs.handler);
    await waitFor("the first job to run", async () => jobs.running.has(first.id));
    // A probe of another limit, enqueued after them: once it has run, an admission pass
    // has looked at the heavy and the light job too.
    await client.setConcurrencyLimit("gpu-probe", { maxRunning: 1 });
    await startWorkers("cl-weight-probe", async () => null);
    const probe = await client.enqueue("cl-weight-probe", "k", null, { concurrencyKey: "gpu-probe" });
    await waitFor("the probe to run", async () => (await jobState(probe.id)).state === JobState.SUCCEEDED);
    // Weight 2 of 3 in use: the heavy job (2) waits, and the light one (1) does not overtake it.
    expect((await jobState(heavy.id)).state).toBe(JobState.PENDING);
    expect((await jobState(light.id)).state).toBe(JobState.PENDING);
    jobs.open(first.id);
    await waitFor("the heavy and the light job to run together", async () => jobs.running.has(heavy.id) && jobs.running.has(light.id));
    jobs.open(heavy.id);
    jobs.open(light.id);
  });

  it("admit a job by leasing it to a worker with a free slot, and keep it waiting while the workers that take it are busy", async () => {
    await client.setConcurrencyLimit("direct", { maxRunning: 10 });
    const jobs = gatedJobs();
    const worker = new Worker({ baseUrl: server.url, queues: ["cl-direct"], concurrency: 1, prefetch: 0, handlers: { k: jobs.handler } });
    workers.push(worker);
    await worker.start();
    const ids = await client.enqueueBatch(Array.from({ length: 3 }, () => ({ queue: "cl-direct", kind: "k", concurrencyKey: "direct" })));
    await waitFor("one job to run", async () => jobs.running.size === 1);
    // The limit has room for all three, the only worker for one: the others wait unadmitted
    // (no replica admits a job no worker of its own can take).
    const admitted = async () => {
      const { rows } = await server.db.pool.query<{ id: string }>("SELECT id FROM job WHERE id = ANY($1) AND admitted", [ids]);
      return rows.map((row) => row.id);
    };
    expect(await admitted()).toEqual([...jobs.running]);
    // Each finished job lets the next one in at once: no fallback poll (a minute here) needed.
    for (let left = ids.length; left > 0; left--) {
      const current = [...jobs.running][0]!;
      jobs.open(current);
      await waitFor("the next job to start", async () => !jobs.running.has(current) && jobs.running.size === Math.min(1, left - 1));
    }
    await waitFor("every job to succeed", async () => (await Promise.all(ids.map(jobState))).every((j) => j.state === JobState.SUCCEEDED));
    // One lease each: admitted by being leased, never leased twice.
    const { rows } = await server.db.pool.query<{ leases: number }>(
      "SELECT count(*)::int AS leases FROM job_event WHERE job_id = ANY($1) AND type = 'leased' GROUP BY job_id",
      [ids],
    );
    expect(rows.map((row) => row.leases)).toEqual([1, 1, 1]);
  });

  it("hold each limit across two replicas when a pass leases a large admission in two statements side by side", async () => {
    // 150 free slots a replica and two keys: each pass leases one key's jobs on a
    // connection of its own that commits before the pass releases the limits' locks.
    for (const key of ["wide-a", "wide-b"]) await client.setConcurrencyLimit(key, { maxRunning: 100 });
    const jobs = gatedJobs();
    const keyOf = new Map<string, string>();
    const ids = await client.enqueueBatch(Array.from({ length: 300 }, (_, i) => ({ queue: "cl-wide", kind: "k", concurrencyKey: i % 2 === 0 ? "wide-a" : "wide-b" })));
    ids.forEach((id, i) => keyOf.set(id, i % 2 === 0 ? "wide-a" : "wide-b"));
    const mostOfOneKey = { "wide-a": 0, "wide-b": 0 } as Record<string, number>;
    const handler = async (payload: unknown, ctx: { jobId: string }) => {
      const key = keyOf.get(ctx.jobId)!;
      const running = () => [...jobs.running].filter((id) => keyOf.get(id) === key).length;
      const done = jobs.handler(payload, ctx);
      mostOfOneKey[key] = Math.max(mostOfOneKey[key]!, running());
      return done;
    };
    for (const s of [server, replica]) {
      const worker = new Worker({ baseUrl: s.url, queues: ["cl-wide"], concurrency: 150, prefetch: 0, handlers: { k: handler } });
      workers.push(worker);
      await worker.start();
    }
    await waitFor("the limits to fill", async () => jobs.running.size === 200);
    const first = [...jobs.running];
    for (const id of first) jobs.open(id);
    await waitFor("the other hundred to run", async () => jobs.running.size === 100 && first.every((id) => !jobs.running.has(id)));
    for (const id of [...jobs.running]) jobs.open(id);
    await waitFor("every job to succeed", async () => (await Promise.all(ids.map(jobState))).every((j) => j.state === JobState.SUCCEEDED));
    expect(mostOfOneKey).toEqual({ "wide-a": 100, "wide-b": 100 });
    const { rows } = await server.db.pool.query<{ leases: number }>(
      "SELECT count(*)::int AS leases FROM job_event WHERE job_id = ANY($1) AND type = 'leased' GROUP BY job_id",
      [ids],
    );
    expect(rows.length).toBe(300);
    expect(rows.every((row) => row.leases === 1)).toBe(true);
  });

  it("admit into several local workers in one pass, each only the jobs of its own queues, within one limit", async () => {
    await client.setConcurrencyLimit("two-queues", { maxRunning: 3 });
    const jobs = gatedJobs();
    const queueOf = new Map<string, string>();
    const ran = new Map<string, string>();
    for (const queue of ["cl-two-a", "cl-two-b"]) {
      const worker = new Worker({
        baseUrl: server.url,
        queues: [queue],
        concurrency: 4,
        prefetch: 0,
        handlers: {
          k: (payload, ctx) => {
            ran.set(ctx.jobId, queue);
            return jobs.handler(payload, ctx);
          },
        },
      });
      workers.push(worker);
      await worker.start();
    }
    const ids: string[] = [];
    for (const queue of ["cl-two-a", "cl-two-b"]) {
      const batch = await client.enqueueBatch(Array.from({ length: 4 }, () => ({ queue, kind: "k", concurrencyKey: "two-queues" })));
      for (const id of batch) queueOf.set(id, queue);
      ids.push(...batch);
    }
    await waitFor("the limit to fill", async () => jobs.running.size === 3);
    while (ran.size < ids.length) {
      const current = [...jobs.running];
      for (const id of current) jobs.open(id);
      await waitFor("the next jobs to start", async () => current.every((id) => !jobs.running.has(id)) && jobs.running.size === Math.min(3, ids.length - ran.size + jobs.running.size));
    }
    for (const id of [...jobs.running]) jobs.open(id);
    await waitFor("every job to succeed", async () => (await Promise.all(ids.map(jobState))).every((j) => j.state === JobState.SUCCEEDED));
    expect(jobs.most).toBe(3);
    for (const id of ids) expect(ran.get(id)).toBe(queueOf.get(id));
  });

  it("keep a waiting job of a paused queue waiting, and lease it as soon as the queue resumes", async () => {
    await client.setConcurrencyLimit("paused-queue-key", { maxRunning: 5 });
    await client.pauseQueue("cl-paused");
    await startWorkers("cl-paused", async () => null);
    const job = await client.enqueue("cl-paused", "k", null, { concurrencyKey: "paused-queue-key" });
    // A probe of another queue with the same key, enqueued after it: once it has run, an
    // admission pass has looked at the paused queue's job too.
    await startWorkers("cl-paused-probe", async () => null);
    const probe = await client.enqueue("cl-paused-probe", "k", null, { concurrencyKey: "paused-queue-key" });
    await waitFor("the probe to run", async () => (await jobState(probe.id)).state === JobState.SUCCEEDED);
    expect((await jobState(job.id)).state).toBe(JobState.PENDING);
    await client.resumeQueue("cl-paused");
    await waitFor("the job to run once its queue resumes", async () => (await jobState(job.id)).state === JobState.SUCCEEDED);
  });

  it("apply a changed limit at once to jobs already waiting", async () => {
    await client.setConcurrencyLimit("resizable", { maxRunning: 1 });
    const jobs = gatedJobs();
    const ids = await client.enqueueBatch(Array.from({ length: 3 }, () => ({ queue: "cl-live", kind: "k", concurrencyKey: "resizable" })));
    await startWorkers("cl-live", jobs.handler);
    await waitFor("one job to run", async () => jobs.running.size === 1);
    await client.setConcurrencyLimit("resizable", { maxRunning: 3 });
    await waitFor("all three to run", async () => jobs.running.size === 3);
    // Tightening withdraws admissions not yet leased: a new job waits again.
    await client.setConcurrencyLimit("resizable", { maxRunning: 1 });
    const late = await client.enqueue("cl-live", "k", null, { concurrencyKey: "resizable" });
    for (const id of ids) jobs.open(id);
    await waitFor("the late job to run", async () => jobs.running.has(late.id));
    expect(jobs.most).toBe(3);
    jobs.open(late.id);
    await client.raw.deleteConcurrencyLimit({ key: "resizable" });
    expect((await failureOf(client.raw.deleteConcurrencyLimit({ key: "resizable" }))).code).toBe(Code.NotFound);
  });

  it("admit at most N jobs per interval under four competing workers", async () => {
    await client.setConcurrencyLimit("api", { rateCount: 3, rateIntervalMs: 500 });
    const ids = await client.enqueueBatch(Array.from({ length: 9 }, () => ({ queue: "cl-rate", kind: "k", concurrencyKey: "api" })));
    await startWorkers("cl-rate", async () => null, 2);
    await waitFor("all jobs to succeed", async () => (await Promise.all(ids.map(jobState))).every((j) => j.state === JobState.SUCCEEDED), 30_000);
    const { rows } = await server.db.pool.query<{ admitted: number; leased: number }>(
      `SELECT extract(epoch FROM j.admitted_at) * 1000 AS admitted, extract(epoch FROM e.at) * 1000 AS leased
       FROM job j JOIN job_event e ON e.job_id = j.id AND e.type = 'leased' WHERE j.id = ANY($1) ORDER BY j.admitted_at`,
      [ids],
    );
    const admittedAt = rows.map((row) => Number(row.admitted));
    for (const start of admittedAt) expect(admittedAt.filter((t) => t >= start && t < start + 500).length).toBeLessThanOrEqual(3);
    for (const row of rows) expect(Number(row.leased)).toBeGreaterThanOrEqual(Number(row.admitted));
  });

  it("pause a key until a time, after which its jobs flow by themselves", async () => {
    const until = new Date(Date.now() + 1_000);
    await client.pauseConcurrencyKey("upstream", until);
    const ids = await client.enqueueBatch(Array.from({ length: 2 }, () => ({ queue: "cl-pause", kind: "k", concurrencyKey: "upstream" })));
    await startWorkers("cl-pause", async () => null);
    expect((await jobState(ids[0]!)).waitingReason).not.toBe("");
    await waitFor("the jobs to run after the pause", async () => (await Promise.all(ids.map(jobState))).every((j) => j.state === JobState.SUCCEEDED));
    const { rows } = await server.db.pool.query<{ at: Date }>("SELECT at FROM job_event WHERE job_id = ANY($1) AND type = 'leased'", [ids]);
    for (const row of rows) expect(new Date(row.at).getTime()).toBeGreaterThanOrEqual(until.getTime());
  });

  it("govern keys by the most specific limit: a prefix covers its keys together, an exact key overrides it", async () => {
    await client.setConcurrencyLimit("shop-*", { maxRunning: 1 });
    await client.setConcurrencyLimit("shop-vip", { maxRunning: 2 });
    const jobs = gatedJobs();
    const prefixed = await client.enqueueBatch([
      { queue: "cl-prefix", kind: "k", concurrencyKey: "shop-1" },
      { queue: "cl-prefix", kind: "k", concurrencyKey: "shop-2" },
    ]);
    const vip = await client.enqueueBatch(Array.from({ length: 2 }, () => ({ queue: "cl-prefix", kind: "k", concurrencyKey: "shop-vip" })));
    await startWorkers("cl-prefix", jobs.handler);
    await waitFor("one prefixed and both vip jobs to run", async () => jobs.running.size === 3 && vip.every((id) => jobs.running.has(id)));
    for (const id of [...prefixed, ...vip]) jobs.open(id);
    await waitFor("all to succeed", async () => (await Promise.all([...prefixed, ...vip].map(jobState))).every((j) => j.state === JobState.SUCCEEDED));
    expect(jobs.most).toBe(3);
  });

  it("share workers fairly with a per-key limit: a key with a huge backlog does not starve a later one", async () => {
    await client.setConcurrencyLimit("fair-*", { maxRunning: 2, perKey: true });
    const jobs = gatedJobs();
    const big = await client.enqueueBatch(Array.from({ length: 50 }, () => ({ queue: "cl-fair", kind: "k", concurrencyKey: "fair-big" })));
    const small = await client.enqueueBatch(Array.from({ length: 2 }, () => ({ queue: "cl-fair", kind: "k", concurrencyKey: "fair-small" })));
    const worker = new Worker({ baseUrl: server.url, queues: ["cl-fair"], concurrency: 4, handlers: { k: jobs.handler } });
    workers.push(worker);
    await worker.start();
    await waitFor("the small key's jobs to run beside two of the big key's", async () => small.every((id) => jobs.running.has(id)) && jobs.running.size === 4);
    expect(big.filter((id) => jobs.running.has(id))).toHaveLength(2);
    for (const id of [...big, ...small]) jobs.open(id);
    await waitFor("all to succeed", async () => (await Promise.all([...big, ...small].map(jobState))).every((j) => j.state === JobState.SUCCEEDED), 30_000);
    expect((await client.raw.listConcurrencyLimits({})).limits.find((l) => l.key === "fair-*")?.perKey).toBe(true);
    expect((await failureOf(client.raw.setConcurrencyLimit({ limit: { key: "exact", perKey: true, maxRunning: 1 } }))).rawMessage).toMatch(/^limit\.per_key /);
  });

  it("give each waiting key an even share of a pass's slots, however old another key's backlog", async () => {
    await client.setConcurrencyLimit("share-*", { maxRunning: 100, perKey: true });
    const jobs = gatedJobs();
    const old = await client.enqueueBatch(Array.from({ length: 40 }, () => ({ queue: "cl-share", kind: "k", concurrencyKey: "share-old" })));
    const later = await client.enqueueBatch(Array.from({ length: 42 }, (_, n) => ({ queue: "cl-share", kind: "k", concurrencyKey: `share-${n % 7}` })));
    // One pass fills the 16 free slots: 8 keys wait, so each gets 16 / 8 = 2 of them.
    const worker = new Worker({ baseUrl: server.url, queues: ["cl-share"], concurrency: 16, prefetch: 0, handlers: { k: jobs.handler } });
    workers.push(worker);
    await worker.start();
    await waitFor("16 jobs to run", async () => jobs.running.size === 16);
    expect(old.filter((id) => jobs.running.has(id))).toHaveLength(2);
    // Each later key's first two.
    expect(later.slice(0, 14).every((id) => jobs.running.has(id))).toBe(true);
    for (const id of [...old, ...later]) jobs.open(id);
    await waitFor("all to succeed", async () => (await Promise.all([...old, ...later].map(jobState))).every((j) => j.state === JobState.SUCCEEDED), 30_000);
  });

  it("give the share a key leaves unused to the keys that have more waiting, in the same pass", async () => {
    await client.setConcurrencyLimit("spare-*", { maxRunning: 100, perKey: true });
    const jobs = gatedJobs();
    const old = await client.enqueueBatch(Array.from({ length: 40 }, () => ({ queue: "cl-spare", kind: "k", concurrencyKey: "spare-old" })));
    const later = await client.enqueueBatch(Array.from({ length: 7 }, (_, n) => ({ queue: "cl-spare", kind: "k", concurrencyKey: `spare-${n}` })));
    // 8 keys wait, 2 slots each; the 7 later keys have one job each, so the old key gets the
    // 7 slots they leave as well: every slot is filled at once.
    const worker = new Worker({ baseUrl: server.url, queues: ["cl-spare"], concurrency: 16, prefetch: 0, handlers: { k: jobs.handler } });
    workers.push(worker);
    await worker.start();
    await waitFor("16 jobs to run", async () => jobs.running.size === 16);
    expect(later.every((id) => jobs.running.has(id))).toBe(true);
    expect(old.slice(0, 9).every((id) => jobs.running.has(id))).toBe(true);
    const { rows } = await server.db.pool.query<{ passes: number }>(
      "SELECT count(DISTINCT tx_id)::int AS passes FROM job_event WHERE type = 'leased' AND job_id = ANY($1::uuid[])",
      [[...old, ...later]],
    );
    expect(rows[0]!.passes).toBe(1);
    for (const id of [...old, ...later]) jobs.open(id);
    await waitFor("all to succeed", async () => (await Promise.all([...old, ...later].map(jobState))).every((j) => j.state === JobState.SUCCEEDED), 30_000);
  });

  it("refuse bad limits and keys naming the field", async () => {
    const cases: [Promise<unknown>, RegExp][] = [
      [client.raw.setConcurrencyLimit({}), /^limit is required/],
      [client.raw.setConcurrencyLimit({ limit: { key: "bad key!" } }), /^limit\.key /],
      [client.raw.setConcurrencyLimit({ limit: { key: "k", maxRunning: -1 } }), /^limit\.max_running /],
      [client.raw.setConcurrencyLimit({ limit: { key: "k", rateCount: 3 } }), /^limit\.rate_interval /],
      [client.raw.pauseConcurrencyKey({ key: "k" }), /^until is required/],
      [client.enqueue("cl-bad", "k", null, { concurrencyKey: "bad key" }), /^job\.concurrency_key /],
      [client.enqueue("cl-bad", "k", null, { concurrencyKey: "k", weight: -2 }), /^job\.weight /],
    ];
    for (const [call, message] of cases) {
      const error = await failureOf(call);
      expect(error.code, String(message)).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(message);
    }
  });
});
