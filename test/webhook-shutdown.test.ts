import net from "node:net";
import { createJobwireClient } from "@jobwire/sdk";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { startServerProcess } from "./support/server-process.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { startWebhookReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";
import { withTimeout } from "./support/with-timeout.js";

const secret = "whsec_" + Buffer.from("a-secret-for-shutdown-tests").toString("base64");
const allowLoopback = { webhookAllowCidrs: ["127.0.0.1/32"] };

let receiver: WebhookReceiver;
let databaseUrl: string;
let pool: pg.Pool;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  databaseUrl = await createTestDatabase();
  pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
});
afterAll(async () => {
  receiver.release(500);
  await receiver.close();
  await pool.end();
});

/** Subscribes `queue` to its `enqueued` events at `path` and enqueues one job there. */
async function enqueueWithDelivery(baseUrl: string, queue: string, path: string): Promise<string> {
  await grpcQueueClient(baseUrl).createWebhookSubscription({ queue, url: `${receiver.url}${path}`, secret, eventTypes: ["enqueued"] });
  return (await createJobwireClient({ baseUrl }).enqueue(queue, "k", null, { delayMs: 600_000 })).id;
}

async function deliveriesOf(jobId: string) {
  const { rows } = await pool.query<{ state: string; attempts: number }>("SELECT state, attempts FROM webhook_delivery WHERE job_id = $1", [jobId]);
  return rows;
}

async function eventsOf(jobId: string, type: string) {
  const { rows } = await pool.query("SELECT 1 FROM job_event WHERE job_id = $1 AND type = $2", [jobId, type]);
  return rows.length;
}

/** Whether a TCP connection to `port` on loopback is refused (the listener is closed). */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

describe("webhooks across shutdown and crash", () => {
  it("shutdown waits for a delivery in flight and records its outcome before it closes the database", async () => {
    const server = await startTestServer({ ...allowLoopback, databaseUrl, shutdownGraceMs: 10_000 });
    receiver.answers.set("/in-flight", ["hold"]);
    const held = receiver.held("/in-flight");
    const jobId = await enqueueWithDelivery(server.url, "wh-in-flight", "/in-flight");
    await withTimeout(held, 10_000, () => "the delivery to reach the receiver");
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await waitFor("the server to stop listening", () => refuses(server.port));
    expect(closed).toBe(false);
    receiver.release(200);
    await withTimeout(closing, 10_000, () => "the server to close");
    expect(await deliveriesOf(jobId)).toEqual([{ state: "delivered", attempts: 1 }]);
    expect(await eventsOf(jobId, "webhook_delivered")).toBe(1);
  });

  it("shutdown gives up waiting after its bound, and the delivery it cut off is made after restart", async () => {
    // One attempt may take 1 s, so the cut-off attempt's claim lapses 3 s after it began.
    const config = { ...allowLoopback, databaseUrl, shutdownGraceMs: 200, webhookTimeoutMs: 1_000 };
    const first = await startTestServer(config);
    receiver.answers.set("/cut-off", ["hold"]);
    const held = receiver.held("/cut-off");
    const jobId = await enqueueWithDelivery(first.url, "wh-cut-off", "/cut-off");
    await withTimeout(held, 10_000, () => "the delivery to reach the receiver");
    await withTimeout(first.close(), 5_000, () => "shutdown to end after its bound");
    expect(await deliveriesOf(jobId)).toEqual([{ state: "pending", attempts: 1 }]);
    // The aborted attempt was recorded as a failure, to be retried with backoff.
    const { rows } = await pool.query<{ last_error: string }>("SELECT last_error FROM webhook_delivery WHERE job_id = $1", [jobId]);
    expect(rows[0]!.last_error).toMatch(/shutting down/);

    await startTestServer(config);
    await waitFor("the delivery to be made after restart", async () => (await deliveriesOf(jobId))[0]?.state === "delivered");
    const requests = receiver.received.filter((r) => r.path === "/cut-off");
    expect(requests).toHaveLength(2);
    expect(requests[1]!.headers["webhook-id"]).toBe(requests[0]!.headers["webhook-id"]);
    expect(await eventsOf(jobId, "webhook_delivered")).toBe(1);
  });

  it("a delivery cut off by a crash (SIGKILL) is made after restart, once", async () => {
    const crashing = await startServerProcess({
      database: { databaseUrl },
      env: { JOBWIRE_WEBHOOK_ALLOW_CIDRS: "127.0.0.1/32", JOBWIRE_WEBHOOK_TIMEOUT_MS: "1000" },
    });
    receiver.answers.set("/crash", ["hold"]);
    const held = receiver.held("/crash");
    const jobId = await enqueueWithDelivery(crashing.url, "wh-crash", "/crash");
    await withTimeout(held, 10_000, () => "the delivery to reach the receiver");
    await crashing.kill();
    expect(await deliveriesOf(jobId)).toEqual([{ state: "pending", attempts: 1 }]);

    await startTestServer({ ...allowLoopback, databaseUrl, webhookTimeoutMs: 1_000 });
    await waitFor("the delivery to be made after restart", async () => (await deliveriesOf(jobId))[0]?.state === "delivered");
    const requests = receiver.received.filter((r) => r.path === "/crash");
    expect(requests).toHaveLength(2);
    expect(requests[1]!.headers["webhook-id"]).toBe(requests[0]!.headers["webhook-id"]);
    expect(await eventsOf(jobId, "webhook_delivered")).toBe(1);
  });
});
