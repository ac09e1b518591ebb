import { JobState, PhaseState, Worker, createJobwireClient, NonRetryableError, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

let server: JobwireServer;
let client: JobwireClient;
const workers: Worker[] = [];

beforeAll(async () => {
  server = await startTestServer({ cancelGraceMs: 2_000 });
  client = createJobwireClient({ baseUrl: server.url });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 2_000, abortWaitMs: 500 })));
});

function startWorker(options: Omit<ConstructorParameters<typeof Worker>[0], "baseUrl">): Worker {
  const worker = new Worker({ baseUrl: server.url, ...options });
  workers.push(worker);
  return worker;
}

async function eventsOf(jobId: string): Promise<string[]> {
  const result = await server.db.pool.query<{ type: string }>("SELECT type FROM job_event WHERE job_id = $1 ORDER BY id", [jobId]);
  return result.rows.map((row) => row.type);
}

async function finalState(jobId: string, states: JobState[]): Promise<JobState> {
  return waitFor(`job ${jobId} to reach ${states.join("/")}`, async () => {
    const job = await client.getJob(jobId);
    return states.includes(job.state) ? job.state : undefined;
  });
}

describe("Worker", () => {
  it("runs every job once with a worker that never holds more leases than its capacity", async () => {
    const ids = await client.enqueueBatch(Array.from({ length: 200 }, (_, i) => ({ queue: "basics", kind: "add", payload: { n: i } })));
    let running = 0;
    let peak = 0;
    const seen = new Map<string, number>();
    const allDone = Promise.withResolvers<void>();
    const worker = startWorker({
      queues: ["basics"],
      concurrency: 8,
      handlers: {
        add: async (payload: { n: number }, ctx) => {
          running++;
          peak = Math.max(peak, running);
          seen.set(ctx.jobId, (seen.get(ctx.jobId) ?? 0) + 1);
          await new Promise((resolve) => setImmediate(resolve));
          running--;
          if (seen.size === ids.length) allDone.resolve();
          return { doubled: payload.n * 2 };
        },
      },
    });
    await worker.start();
    await allDone.promise;
    const last = ids.at(-1)!;
    await finalState(last, [JobState.SUCCEEDED]);
    expect(peak).toBeLessThanOrEqual(8);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    await waitFor("all jobs succeeded", async () => {
      const { rows } = await server.db.pool.query("SELECT count(*)::int AS n FROM job WHERE queue = 'basics' AND state = 'succeeded'");
      return rows[0].n === ids.length;
    });
    const job = await client.getJob(ids[3]!);
    expect(job.result?.kind.case).toBe("structValue");
  });

  it("reports the jobs it finishes in one turn of the event loop in one CompleteJobs call", async () => {
    // Enqueued before the worker starts: its first claim leases all of them in one message.
    const ids = await client.enqueueBatch(Array.from({ length: 50 }, (_, i) => ({ queue: "one-turn", kind: "noop", payload: { n: i } })));
    const worker = startWorker({ queues: ["one-turn"], concurrency: 50, handlers: { noop: async () => ({ ok: true }) } });
    await worker.start();
    const transactions = await waitFor("every job's completion to commit", async () => {
      const { rows } = await server.db.pool.query<{ done: number; transactions: number }>(
        "SELECT count(*)::int AS done, count(DISTINCT tx_id)::int AS transactions FROM job_event WHERE type = 'succeeded' AND job_id = ANY($1::uuid[])",
        [ids],
      );
      return rows[0]!.done === ids.length ? rows[0]!.transactions : undefined;
    });
    // One call, one statement, one commit. Sending the first completions alone put a
    // round trip before the rest of the batch could leave.
    expect(transactions).toBe(1);
  });

  it("checkpoints steps, reports progress, and a retry does not rerun a completed step", async () => {
    const runs: string[] = [];
    const job = await client.enqueue("steps", "pipeline", { x: 1 }, { phases: ["fetch", "store"], retry: { maxAttempts: 3, initialBackoffMs: 0, maxBackoffMs: 0 } });
    const worker = startWorker({
      queues: ["steps"],
      handlers: {
        pipeline: async (_payload, ctx) => {
          const fetched = await ctx.step("fetch", async () => {
            runs.push(`fetch#${ctx.attempt}`);
            return { rows: 3 };
          });
          await ctx.progress({ done: 1, of: 2 });
          if (ctx.attempt === 1) throw new Error("store failed");
          await ctx.step("store", async () => {
            runs.push(`store#${ctx.attempt}`);
            return fetched;
          });
          return { ok: true };
        },
      },
    });
    await worker.start();
    await finalState(job.id, [JobState.SUCCEEDED]);
    expect(runs).toEqual(["fetch#1", "store#2"]);
    const done = await client.getJob(job.id);
    expect(done.attempt).toBe(2);
    expect(done.phases.map((p) => p.state)).toEqual([PhaseState.SUCCEEDED, PhaseState.SUCCEEDED]);
    expect(done.progress?.kind.case).toBe("structValue");
    expect(await eventsOf(job.id)).toEqual([
      "enqueued", "leased", "phase_completed", "progress", "retry_scheduled", "ready", "leased", "progress", "phase_completed", "succeeded",
    ]);
  });

  it("fails a job at once on a NonRetryableError", async () => {
    const job = await client.enqueue("fatal", "explode", null, { retry: { maxAttempts: 5 } });
    const worker = startWorker({ queues: ["fatal"], handlers: { explode: async () => { throw new NonRetryableError("bad input"); } } });
    await worker.start();
    await finalState(job.id, [JobState.FAILED]);
    const failed = await client.getJob(job.id);
    expect(failed.attempt).toBe(1);
    expect(failed.lastError?.message).toBe("bad input");
    expect(failed.lastError?.retryable).toBe(false);
  });

  it("cancels a running job: the handler's signal aborts with CANCELLED and one cancelled event is written", async () => {
    const job = await client.enqueue("cancel", "wait", null, { phases: ["a", "b"] });
    const started = Promise.withResolvers<void>();
    const aborted = Promise.withResolvers<string>();
    const worker = startWorker({
      queues: ["cancel"],
      handlers: {
        wait: async (_payload, ctx) => {
          await ctx.step("a", async () => 1);
          started.resolve();
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          aborted.resolve(ctx.abortReason ?? "none");
          await ctx.step("b", async () => 2);
        },
      },
    });
    await worker.start();
    await started.promise;
    const requested = await client.cancelJob(job.id, "user asked");
    expect(requested.state).toBe(JobState.RUNNING);
    expect(await aborted.promise).toBe("CANCELLED");
    await finalState(job.id, [JobState.CANCELLED]);
    const cancelled = await client.getJob(job.id);
    expect(cancelled.phases.map((p) => p.state)).toEqual([PhaseState.SUCCEEDED, PhaseState.CANCELLED]);
    const events = await eventsOf(job.id);
    expect(events.filter((type) => type === "cancelled")).toHaveLength(1);
    expect(events).toContain("cancel_requested");
  });
});
