import { Code } from "@connectrpc/connect";
import { EventType, JobState, Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { readEvents } from "./support/read-events.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { startWebhookReceiver, verifyWebhook, type WebhookReceiver } from "./support/webhook-receiver.js";

const secret = "whsec_" + Buffer.from("a-secret-for-batch-hooks").toString("base64");

let server: JobwireServer;
let replica: JobwireServer;
let client: JobwireClient;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  const databaseUrl = await createTestDatabase();
  const config = { databaseUrl, webhookAllowCidrs: ["127.0.0.1/32"], cancelGraceMs: 30_000 };
  server = await startTestServer(config);
  replica = await startTestServer(config);
  client = createJobwireClient({ baseUrl: server.url });
});
afterAll(() => receiver.close());

async function batchEvents(batchId: string) {
  const { rows } = await server.db.pool.query<{ type: string; data: { counts: Record<string, number> } }>(
    "SELECT type, data FROM job_event WHERE batch_id = $1 ORDER BY id",
    [batchId],
  );
  return rows;
}

describe("batches", () => {
  it("count their jobs per state, and finish once, with one batch_finished event and its webhook, whichever replica runs the jobs", async () => {
    await client.putWebhookSecret("batches", secret);
    const { batchId, jobIds } = await client.createBatch(
      Array.from({ length: 30 }, (_, n) => ({ queue: "batch-run", kind: "unit", payload: { n } })),
      { webhooks: [{ url: `${receiver.url}/batch`, secretName: "batches", eventTypes: ["batch_finished"] }] },
    );
    expect(jobIds).toHaveLength(30);
    const fresh = await client.getBatch(batchId);
    expect(fresh).toMatchObject({ id: batchId, total: 30, progress: 0, counts: { PENDING: 30 }, owner: "local" });
    expect(fresh.finishedAt).toBeUndefined();
    expect((await client.getJob(jobIds[0]!)).batchId).toBe(batchId);

    const workers = [server, replica].map((s) => new Worker({ baseUrl: s.url, queues: ["batch-run"], concurrency: 4, handlers: { unit: async () => null } }));
    await Promise.all(workers.map((w) => w.start()));
    try {
      const done = await waitFor("the batch to finish", async () => {
        const batch = await client.getBatch(batchId);
        return batch.finishedAt && batch;
      });
      expect(done).toMatchObject({ progress: 1, counts: { SUCCEEDED: 30 } });
    } finally {
      await Promise.all(workers.map((w) => w.shutdown({ graceMs: 2_000 })));
    }
    const [request] = await waitFor("the batch webhook", async () => {
      const got = receiver.received.filter((r) => r.path === "/batch");
      return got.length > 0 && got;
    });
    expect(verifyWebhook(request!, secret)).toBe(true);
    expect(JSON.parse(request!.body)).toMatchObject({ type: "batch_finished", batchId, jobId: null, data: { counts: { succeeded: 30 } } });
    await waitFor("the delivery to be recorded", async () => (await batchEvents(batchId)).some((e) => e.type === "webhook_delivered"));
    const finished = (await batchEvents(batchId)).filter((e) => e.type === "batch_finished");
    expect(finished).toEqual([{ type: "batch_finished", data: { counts: { succeeded: 30 } } }]);
    expect(receiver.received.filter((r) => r.path === "/batch")).toHaveLength(1);
  });

  it("stream a batch's events, its jobs' and its own, with the batch filter", async () => {
    const { batchId, jobIds } = await client.createBatch([{ queue: "batch-stream", kind: "k", delayMs: 3_600_000 }]);
    await client.enqueue("batch-stream", "k", null, { delayMs: 3_600_000 });
    await client.cancelBatch(batchId, "stop");
    const stream = client.streamEvents({ batchIds: [batchId], fromOldest: true });
    const events = await readEvents(stream, 3);
    await stream.return(undefined);
    expect(events.map((e) => [EventType[e.type], e.jobId, e.batchId])).toEqual([
      ["ENQUEUED", jobIds[0], ""],
      ["CANCELLED", jobIds[0], ""],
      ["BATCH_FINISHED", "", batchId],
    ]);
    const listed = await client.events.listEvents({ filter: { batchIds: [batchId] } });
    expect(listed.events.map((e) => EventType[e.type])).toEqual(["ENQUEUED", "CANCELLED", "BATCH_FINISHED"]);
  });

  it("CancelBatch cancels waiting jobs at once, asks running ones to stop, and counts what it left", async () => {
    const started = Promise.withResolvers<void>();
    const worker = new Worker({
      baseUrl: server.url,
      queues: ["batch-cancel"],
      handlers: {
        hold: async (_payload, ctx) => {
          started.resolve();
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          ctx.signal.throwIfAborted();
        },
      },
    });
    const { batchId, jobIds } = await client.createBatch([
      { queue: "batch-cancel", kind: "hold" },
      { queue: "batch-cancel-idle", kind: "k", ref: "first" },
      { queue: "batch-cancel-idle", kind: "k", dependsOn: [{ ref: "first" }] },
      { queue: "batch-cancel-idle", kind: "k", delayMs: 3_600_000 },
    ]);
    const alreadyDone = jobIds[3]!;
    await client.cancelJob(alreadyDone);
    await worker.start();
    try {
      await started.promise;
      expect(await client.cancelBatch(batchId, "project dropped")).toEqual({ cancelled: 2, cancelRequested: 1, alreadyFinished: 1 });
      const batch = await waitFor("the batch to finish", async () => {
        const b = await client.getBatch(batchId);
        return b.finishedAt && b;
      });
      expect(batch.counts).toEqual({ CANCELLED: 4 });
      expect((await client.getJob(jobIds[1]!)).cancelReason).toBe("project dropped");
      // Cancelling again changes nothing.
      expect(await client.cancelBatch(batchId)).toEqual({ cancelled: 0, cancelRequested: 0, alreadyFinished: 4 });
    } finally {
      await worker.shutdown({ graceMs: 2_000 });
    }
    const unknown = await failureOf(client.cancelBatch("0190c0de-0000-7000-8000-000000000000"));
    expect(unknown.code).toBe(Code.NotFound);
  });

  it("GetJobGraph returns the batch's jobs with their refs, the outside parents, and every edge", async () => {
    const outside = await client.enqueue("batch-graph", "k", null, { delayMs: 3_600_000 });
    const { batchId, jobIds } = await client.createBatch([
      { queue: "batch-graph", kind: "k", ref: "a", dependsOn: [{ jobId: outside.id }] },
      { queue: "batch-graph", kind: "k", ref: "b", dependsOn: [{ ref: "a", requiresSuccess: false }] },
    ]);
    const graph = await client.raw.getJobGraph({ batchId });
    expect(graph.nodes.map((n) => [n.jobId, n.ref, n.inBatch, JobState[n.state]])).toEqual([
      [jobIds[0], "a", true, "BLOCKED"],
      [jobIds[1], "b", true, "BLOCKED"],
      [outside.id, "", false, "SCHEDULED"],
    ]);
    expect(graph.edges.map((e) => [e.parentId, e.childId, e.requiresSuccess])).toEqual(
      [[outside.id, jobIds[0], true], [jobIds[0], jobIds[1], false]].sort((x, y) => String(x[1]).localeCompare(String(y[1]))),
    );
    expect((await failureOf(client.raw.getJobGraph({ batchId: "nope" }))).rawMessage).toMatch(/^batch_id /);
  });

  it("ListBatches pages newest first and filters by finished", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.createBatch([{ queue: "batch-list", kind: "k", delayMs: 3_600_000 }])).batchId);
    const first = await client.raw.listBatches({ finished: false, pageSize: 2 });
    expect(first.batches.map((b) => b.id)).toEqual([ids[2], ids[1]]);
    const second = await client.raw.listBatches({ finished: false, pageSize: 2, pageToken: first.nextPageToken });
    expect(second.batches[0]!.id).toBe(ids[0]);
    const finished = await client.raw.listBatches({ finished: true, pageSize: 1000 });
    expect(finished.batches.every((b) => b.finishedAt !== undefined)).toBe(true);
    expect((await failureOf(client.raw.listBatches({ pageToken: first.nextPageToken }))).rawMessage).toMatch(/^page_token /);
  });
});
