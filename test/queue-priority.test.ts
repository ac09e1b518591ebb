import { Code } from "@connectrpc/connect";
import { JobState, Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

let server: JobwireServer;
let client: JobwireClient;
const workers: Worker[] = [];

beforeAll(async () => {
  server = await startTestServer({ fallbackPollMs: 60_000 });
  client = createJobwireClient({ baseUrl: server.url });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 2_000, abortWaitMs: 500 })));
});

async function startWorker(
  queues: string[],
  concurrency: number,
  handler: (payload: unknown, ctx: { jobId: string; queue: string }) => Promise<null>,
  prefetch = concurrency,
) {
  const worker = new Worker({ baseUrl: server.url, queues, concurrency, prefetch, handlers: { k: handler } });
  workers.push(worker);
  await worker.start();
}

describe("queue priority", () => {
  it("leases the ready jobs of a higher-priority queue first, whatever their age", async () => {
    await client.raw.updateQueue({ name: "qp-low", defaults: { priority: -5 } });
    await client.raw.updateQueue({ name: "qp-high", defaults: { priority: 10 } });
    const low = await client.enqueueBatch(Array.from({ length: 5 }, () => ({ queue: "qp-low", kind: "k" })));
    const high = await client.enqueueBatch(Array.from({ length: 5 }, () => ({ queue: "qp-high", kind: "k" })));
    const order: string[] = [];
    // One slot and no prefetch: one claim at a time. With two slots, two claims may be in
    // flight for the stream (so that one's commit overlaps the next), and the second skips
    // the rows the first holds: near the end of the high queue it may take a low job,
    // which can reach the worker first.
    await startWorker(
      ["qp-low", "qp-high"],
      1,
      async (_payload, ctx) => {
        order.push(ctx.jobId);
        return null;
      },
      0,
    );
    await waitFor("all ten to run", async () => order.length === 10);
    expect(new Set(order.slice(0, 5))).toEqual(new Set(high));
    expect(new Set(order.slice(5))).toEqual(new Set(low));
    expect((await client.getQueue("qp-high")).defaults?.priority).toBe(10);
    expect((await failureOf(client.raw.updateQueue({ name: "qp-bad", defaults: { priority: 5000 } }))).rawMessage).toMatch(/^defaults\.priority /);
  });
});

describe("a queue's concurrency key", () => {
  it("is carried by the queue's jobs that bring none, so a limit on it bounds the whole queue", async () => {
    await client.raw.updateQueue({ name: "qk-bounded", defaults: { concurrencyKey: "queue:qk-bounded" } });
    await client.setConcurrencyLimit("queue:qk-bounded", { maxRunning: 1 });
    const ids = await client.enqueueBatch(Array.from({ length: 3 }, () => ({ queue: "qk-bounded", kind: "k" })));
    const own = await client.enqueue("qk-bounded", "k", null, { concurrencyKey: "elsewhere" });
    expect((await client.getJob(ids[0]!)).concurrencyKey).toBe("queue:qk-bounded");
    expect(own.concurrencyKey).toBe("elsewhere");
    const gates = new Map(ids.map((id) => [id, Promise.withResolvers<void>()]));
    const running = new Set<string>();
    let most = 0;
    await startWorker(["qk-bounded"], 4, async (_payload, ctx) => {
      running.add(ctx.jobId);
      most = Math.max(most, [...running].filter((id) => gates.has(id)).length);
      await gates.get(ctx.jobId)?.promise;
      running.delete(ctx.jobId);
      return null;
    });
    // The job with its own key is not bound by the queue's limit.
    await waitFor("the job with its own key and one of the queue's to run", async () => {
      const state = (await client.getJob(own.id)).state;
      return state === JobState.SUCCEEDED && [...running].some((id) => gates.has(id));
    });
    for (const id of ids) {
      await waitFor("a queue job to run", async () => running.has(id) || (await client.getJob(id)).state === JobState.SUCCEEDED);
      gates.get(id)!.resolve();
    }
    await waitFor("all to succeed", async () => (await Promise.all(ids.map((id) => client.getJob(id)))).every((j) => j.state === JobState.SUCCEEDED));
    expect(most).toBe(1);
    const bad = await failureOf(client.raw.updateQueue({ name: "qk-bad", defaults: { concurrencyKey: "no spaces" } }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toMatch(/^defaults\.concurrency_key /);
  });
});
