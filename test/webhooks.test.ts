import { Code, ConnectError } from "@connectrpc/connect";
import { createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { startWebhookReceiver, verifyWebhook, type ReceivedWebhook, type WebhookReceiver } from "./support/webhook-receiver.js";

const secret = "whsec_" + Buffer.from("a-test-secret-of-enough-bytes").toString("base64");

const verify = (request: ReceivedWebhook) => verifyWebhook(request, secret);

let server: JobwireServer;
let client: JobwireClient;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  // Backoff long enough that the growth of the delays stands out from scheduling noise on a loaded machine.
  server = await startTestServer({ webhookAllowCidrs: ["127.0.0.1/32"], webhookBackoffMs: 200, webhookMaxAttempts: 4, fallbackPollMs: 200 });
  client = createJobwireClient({ baseUrl: server.url });
});
afterAll(() => receiver.close());

async function subscribe(queue: string, path: string, eventTypes: string[] = []) {
  return grpcQueueClient(server.url).createWebhookSubscription({ queue, url: `${receiver.url}${path}`, eventTypes, secret });
}

async function jobEvents(jobId: string) {
  const { rows } = await server.db.pool.query<{ id: string; type: string; data: Record<string, unknown> }>(
    "SELECT id::text, type, data FROM job_event WHERE job_id = $1 ORDER BY id",
    [jobId],
  );
  return rows;
}

describe("webhooks", () => {
  it("deliver each subscribed event signed, with the event id as webhook-id, after the job's own event", async () => {
    await subscribe("wh-signed", "/signed", ["enqueued", "cancelled"]);
    const job = await client.enqueue("wh-signed", "k", { to: "ada" }, { delayMs: 60_000 });
    await client.cancelJob(job.id, "not needed");
    const requests = await waitFor("two deliveries", async () => {
      const got = receiver.received.filter((r) => r.path === "/signed");
      return got.length >= 2 && got;
    });
    expect(requests.every(verify)).toBe(true);
    const bodies = requests.map((r) => JSON.parse(r.body) as { type: string; eventId: string; jobId: string });
    expect(bodies.map((b) => b.type).sort()).toEqual(["cancelled", "enqueued"]);
    expect(requests.map((r) => r.headers["webhook-id"])).toEqual(bodies.map((b) => b.eventId));
    const events = await waitFor("both deliveries recorded", async () => {
      const rows = await jobEvents(job.id);
      return rows.filter((e) => e.type === "webhook_delivered").length === 2 && rows;
    });
    const cancelled = events.find((e) => e.type === "cancelled")!;
    const deliveredForCancel = events.find((e) => e.type === "webhook_delivered" && e.data.event === cancelled.id)!;
    expect(BigInt(deliveredForCancel.id)).toBeGreaterThan(BigInt(cancelled.id));
  });

  it("retry a failing receiver with growing delays, then stop once it accepted", async () => {
    receiver.answers.set("/flaky", [500, 500]);
    await subscribe("wh-flaky", "/flaky", ["enqueued"]);
    const job = await client.enqueue("wh-flaky", "k", null, { delayMs: 60_000 });
    await waitFor("the delivery to succeed", async () => (await jobEvents(job.id)).some((e) => e.type === "webhook_delivered"));
    const attempts = receiver.received.filter((r) => r.path === "/flaky");
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((r) => r.headers["webhook-id"])).size).toBe(1);
    const [first, second, third] = attempts.map((r) => r.at);
    expect(third! - second!).toBeGreaterThan(second! - first!);
    // A later event still goes out: the delivered one is not repeated.
    await client.cancelJob(job.id);
    await waitFor("no further delivery of the first event", async () => (await jobEvents(job.id)).some((e) => e.type === "cancelled"));
    expect(receiver.received.filter((r) => r.path === "/flaky")).toHaveLength(3);
  });

  it("do not follow redirects: a 302 counts as a failure, and the delivery fails after its last attempt", async () => {
    receiver.answers.set("/moved", [302, 302, 302, 302]);
    await subscribe("wh-moved", "/moved", ["enqueued"]);
    const job = await client.enqueue("wh-moved", "k", null, { delayMs: 60_000 });
    const failed = await waitFor("the webhook_failed event", async () => (await jobEvents(job.id)).find((e) => e.type === "webhook_failed"));
    expect(String(failed.data.error)).toContain("HTTP 302");
    expect(receiver.received.filter((r) => r.path === "/moved")).toHaveLength(4);
    expect(receiver.received.filter((r) => r.path === "/redirected")).toHaveLength(0);
  });

  it("still deliver, and record the delivery, after retention deleted the job", async () => {
    const keeper = await startTestServer({
      webhookAllowCidrs: ["127.0.0.1/32"], webhookBackoffMs: 20, webhookMaxAttempts: 30,
      retentionIntervalMs: 50, fallbackPollMs: 100,
    });
    receiver.answers.set("/late", Array.from({ length: 1000 }, () => 500));
    await grpcQueueClient(keeper.url).createWebhookSubscription({ queue: "wh-late", url: `${receiver.url}/late`, secret, eventTypes: ["enqueued"] });
    const job = await createJobwireClient({ baseUrl: keeper.url }).enqueue("wh-late", "k", null, { delayMs: 60_000 });
    await waitFor("a first failed attempt", async () => receiver.received.some((r) => r.path === "/late"));
    await keeper.db.pool.query(
      `UPDATE job SET state = 'cancelled', started_at = clock_timestamp() - interval '9 days',
                      created_at = clock_timestamp() - interval '10 days', finished_at = clock_timestamp() - interval '8 days'
       WHERE id = $1`,
      [job.id],
    );
    await waitFor("retention to delete the job", async () => (await keeper.db.pool.query("SELECT 1 FROM job WHERE id = $1", [job.id])).rowCount === 0);
    receiver.answers.set("/late", []);
    const delivered = await waitFor("the delivery to succeed for the deleted job", async () => {
      const { rows } = await keeper.db.pool.query("SELECT type FROM job_event WHERE job_id = $1 AND type = 'webhook_delivered'", [job.id]);
      return rows[0];
    });
    expect(delivered).toBeDefined();
    const { rows } = await keeper.db.pool.query<{ state: string }>("SELECT state FROM webhook_delivery WHERE job_id = $1", [job.id]);
    expect(rows.map((row) => row.state)).toEqual(["delivered"]);
  });

  it("refuse loopback, private, metadata and IPv4-mapped targets that are not allow-listed", async () => {
    const strict = await startTestServer({ webhookMaxAttempts: 1 });
    const queues = grpcQueueClient(strict.url);
    for (const url of ["http://127.0.0.1:1/x", "http://169.254.169.254/latest", "http://10.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://[::1]/", "ftp://example.com/"]) {
      const error = ConnectError.from(await queues.createWebhookSubscription({ queue: "q", url, secret }).catch((e: unknown) => e));
      expect(error.code, url).toBe(Code.InvalidArgument);
      expect(error.rawMessage, url).toMatch(/^url /);
    }
    // A host name is checked where it is resolved, at delivery: localhost is refused then.
    await queues.createWebhookSubscription({ queue: "wh-localhost", url: "http://localhost:1/x", secret, eventTypes: ["enqueued"] });
    const job = await createJobwireClient({ baseUrl: strict.url }).enqueue("wh-localhost", "k", null, { delayMs: 60_000 });
    const failed = await waitFor("the refused delivery to fail", async () => {
      const { rows } = await strict.db.pool.query<{ type: string; data: { error: string } }>(
        "SELECT type, data FROM job_event WHERE job_id = $1 AND type = 'webhook_failed'",
        [job.id],
      );
      return rows[0];
    });
    expect(failed.data.error).toMatch(/refused/);
  });
});
