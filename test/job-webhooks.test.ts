import { toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { ListWebhookSecretsResponseSchema } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { startWebhookReceiver, verifyWebhook, type WebhookReceiver } from "./support/webhook-receiver.js";

const secret = "whsec_" + Buffer.from("the-first-secret-of-a-job").toString("base64");
const rotated = "whsec_" + Buffer.from("the-rotated-secret-of-a-job").toString("base64");

let server: JobwireServer;
let client: JobwireClient;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  server = await startTestServer({ webhookAllowCidrs: ["127.0.0.1/32"], webhookBackoffMs: 50, webhookMaxAttempts: 3, fallbackPollMs: 200 });
  client = createJobwireClient({ baseUrl: server.url });
});
afterAll(() => receiver.close());

async function jobEvents(jobId: string) {
  const { rows } = await server.db.pool.query<{ id: string; type: string; data: Record<string, unknown> }>(
    "SELECT id::text, type, data FROM job_event WHERE job_id = $1 ORDER BY id",
    [jobId],
  );
  return rows;
}

async function countRows(table: string): Promise<number> {
  const { rows } = await server.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(rows[0]!.n);
}

describe("webhook targets of one job", () => {
  it("deliver the job's chosen events, signed with the named secret, which reads never reveal", async () => {
    await client.putWebhookSecret("billing", secret);
    const job = await client.enqueue("jw-signed", "k", { n: 1 }, {
      delayMs: 60_000,
      webhooks: [{ url: `${receiver.url}/job-signed`, secretName: "billing", eventTypes: ["cancelled"] }],
    });
    expect(job.webhooks.map((t) => ({ url: t.url, secretName: t.secretName, eventTypes: t.eventTypes }))).toEqual([
      { url: `${receiver.url}/job-signed`, secretName: "billing", eventTypes: ["cancelled"] },
    ]);
    expect(JSON.stringify((await client.getJob(job.id)).webhooks)).not.toContain("secret-of");
    await client.cancelJob(job.id);
    const [request] = await waitFor("the cancelled delivery", async () => {
      const got = receiver.received.filter((r) => r.path === "/job-signed");
      return got.length > 0 && got;
    });
    expect(verifyWebhook(request!, secret)).toBe(true);
    const body = JSON.parse(request!.body) as { type: string; jobId: string };
    expect(body).toMatchObject({ type: "cancelled", jobId: job.id });
    await waitFor("the delivered event", async () => (await jobEvents(job.id)).some((e) => e.type === "webhook_delivered"));
    // Only the chosen type: the enqueued event was not sent.
    expect(receiver.received.filter((r) => r.path === "/job-signed")).toHaveLength(1);
    const listed = await client.raw.listWebhookSecrets({});
    expect(listed.secrets.map((s) => s.name)).toContain("billing");
    expect(toJsonString(ListWebhookSecretsResponseSchema, listed)).not.toContain("secret-of");
  });

  it("sign with the rotated secret once it is replaced", async () => {
    await client.putWebhookSecret("rotating", secret);
    const job = await client.enqueue("jw-rotate", "k", null, {
      delayMs: 60_000,
      webhooks: [{ url: `${receiver.url}/rotate`, secretName: "rotating", eventTypes: ["cancelled"] }],
    });
    await client.putWebhookSecret("rotating", rotated);
    await client.cancelJob(job.id);
    const [request] = await waitFor("the delivery", async () => {
      const got = receiver.received.filter((r) => r.path === "/rotate");
      return got.length > 0 && got;
    });
    expect(verifyWebhook(request!, rotated)).toBe(true);
    expect(verifyWebhook(request!, secret)).toBe(false);
  });

  it("fail a delivery whose secret was deleted, without sending it", async () => {
    await client.putWebhookSecret("doomed", secret);
    const job = await client.enqueue("jw-doomed", "k", null, {
      delayMs: 60_000,
      webhooks: [{ url: `${receiver.url}/doomed`, secretName: "doomed", eventTypes: ["cancelled"] }],
    });
    await client.raw.deleteWebhookSecret({ name: "doomed" });
    await client.cancelJob(job.id);
    const failed = await waitFor("the webhook_failed event", async () => (await jobEvents(job.id)).find((e) => e.type === "webhook_failed"));
    expect(String(failed.data.error)).toContain("webhook secret doomed does not exist");
    expect(failed.data.attempts).toBe(1);
    expect(receiver.received.filter((r) => r.path === "/doomed")).toHaveLength(0);
    expect((await failureOf(client.raw.deleteWebhookSecret({ name: "doomed" }))).code).toBe(Code.NotFound);
  });

  it("refuse unknown secrets, refused addresses and bad event types naming the field, writing nothing", async () => {
    await client.putWebhookSecret("known", secret);
    const jobsBefore = await countRows("job");
    const cases: { webhooks: { url: string; secretName: string; eventTypes?: string[] }[]; field: string }[] = [
      { webhooks: [{ url: `${receiver.url}/x`, secretName: "unknown" }], field: "jobs[1].webhooks[0].secret_name" },
      { webhooks: [{ url: "http://169.254.169.254/latest", secretName: "known" }], field: "jobs[1].webhooks[0].url" },
      { webhooks: [{ url: "http://10.1.2.3/", secretName: "known" }], field: "jobs[1].webhooks[0].url" },
      { webhooks: [{ url: "http://[::ffff:10.0.0.1]/", secretName: "known" }], field: "jobs[1].webhooks[0].url" },
      { webhooks: [{ url: `${receiver.url}/x`, secretName: "" }], field: "jobs[1].webhooks[0].secret_name" },
      { webhooks: [{ url: `${receiver.url}/x`, secretName: "known", eventTypes: ["webhook_delivered"] }], field: "jobs[1].webhooks[0].event_types[0]" },
      { webhooks: Array.from({ length: 11 }, () => ({ url: `${receiver.url}/x`, secretName: "known" })), field: "jobs[1].webhooks" },
    ];
    for (const { webhooks, field } of cases) {
      const error = await failureOf(client.enqueueBatch([{ queue: "jw-bad", kind: "k" }, { queue: "jw-bad", kind: "k", webhooks }]));
      expect(error.code, field).toBe(Code.InvalidArgument);
      expect(error.rawMessage, field).toMatch(new RegExp(`^${field.replace(/[[\].]/g, "\\$&")} `));
    }
    const single = await failureOf(client.enqueue("jw-bad", "k", null, { webhooks: [{ url: `${receiver.url}/x`, secretName: "unknown" }] }));
    expect(single.rawMessage).toMatch(/^job\.webhooks\[0\]\.secret_name names no stored webhook secret/);
    expect(await countRows("job")).toBe(jobsBefore);
    for (const [request, field] of [
      [{ name: "", secret }, "name"],
      [{ name: "short", secret: "too-short" }, "secret"],
      [{ name: "bad name!", secret }, "name"],
    ] as const) {
      const error = await failureOf(client.raw.putWebhookSecret(request));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(new RegExp(`^${field} `));
    }
  });

  it("deliver to the job's targets and its queue's subscriptions alike, each once", async () => {
    await client.putWebhookSecret("both", secret);
    await client.raw.createWebhookSubscription({ queue: "jw-both", url: `${receiver.url}/queue-sub`, secret, eventTypes: ["succeeded", "cancelled"] });
    const job = await client.enqueue("jw-both", "k", null, {
      delayMs: 60_000,
      webhooks: [{ url: `${receiver.url}/job-target`, secretName: "both", eventTypes: ["cancelled"] }],
    });
    const other = await client.enqueue("jw-both", "k", null, { delayMs: 60_000 });
    await client.cancelJob(job.id);
    await client.cancelJob(other.id);
    await waitFor("three deliveries recorded", async () => {
      const { rows } = await server.db.pool.query("SELECT 1 FROM webhook_delivery WHERE queue = 'jw-both' AND state = 'delivered'");
      return rows.length === 3;
    });
    const bodies = (path: string) => receiver.received.filter((r) => r.path === path).map((r) => (JSON.parse(r.body) as { jobId: string }).jobId);
    expect(bodies("/job-target")).toEqual([job.id]);
    expect(bodies("/queue-sub").sort()).toEqual([job.id, other.id].sort());
  });

  it("write the job's succeeded event before the delivery is made and its webhook_delivered event written", async () => {
    await client.putWebhookSecret("done", secret);
    const job = await client.enqueue("jw-done", "work", { n: 2 }, {
      webhooks: [{ url: `${receiver.url}/done`, secretName: "done", eventTypes: ["succeeded"] }],
    });
    const worker = new Worker({ baseUrl: server.url, queues: ["jw-done"], handlers: { work: async () => ({ ok: true }) } });
    await worker.start();
    try {
      await waitFor("the delivered event", async () => (await jobEvents(job.id)).some((e) => e.type === "webhook_delivered"));
    } finally {
      await worker.shutdown({ graceMs: 2_000 });
    }
    const events = await jobEvents(job.id);
    const succeeded = events.find((e) => e.type === "succeeded")!;
    const delivered = events.find((e) => e.type === "webhook_delivered")!;
    expect(delivered.data.event).toBe(succeeded.id);
    expect(BigInt(delivered.id)).toBeGreaterThan(BigInt(succeeded.id));
    const [request] = receiver.received.filter((r) => r.path === "/done");
    expect(JSON.parse(request!.body)).toMatchObject({ type: "succeeded", eventId: succeeded.id, jobId: job.id });
  });
});
