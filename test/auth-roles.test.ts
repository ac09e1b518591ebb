import { randomUUID } from "node:crypto";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createJobwireClient, EventType, JobState, transportFor, Worker, type Event, type JobwireClient } from "@jobwire/sdk";
import { WorkerService, type Lease } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { authorizationTable, roles, type JobwireServer, type Role } from "@jobwire/server";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { apiKeyOn, bearer } from "./support/api-keys.js";
import { callWithEmptyRequest } from "./support/any-rpc.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { withTimeout } from "./support/with-timeout.js";

let server: JobwireServer;
const keys = {} as Record<"admin" | "alice" | "bob" | "reader" | "worker", string>;
const clients = {} as Record<keyof typeof keys, JobwireClient>;

beforeAll(async () => {
  server = await startTestServer({
    auth: { enabled: true, bootstrapKeyFile: undefined },
    retentionIntervalMs: 50,
    fallbackPollMs: 100,
  });
  keys.admin = await apiKeyOn(server, { principal: "ops", role: "admin" });
  keys.alice = await apiKeyOn(server, { principal: "alice", role: "producer" });
  keys.bob = await apiKeyOn(server, { principal: "bob", role: "producer" });
  keys.reader = await apiKeyOn(server, { principal: "auditor", role: "reader" });
  keys.worker = await apiKeyOn(server, { principal: "mailer", role: "worker", queues: ["mail"] });
  for (const name of Object.keys(keys) as (keyof typeof keys)[]) {
    clients[name] = createJobwireClient({ baseUrl: server.url, apiKey: keys[name] });
  }
});

function workerClient(key: string): Client<typeof WorkerService> {
  return createClient(WorkerService, transportFor({ baseUrl: server.url, apiKey: key }));
}

/** Opens a LeaseJobs stream and returns its first lease (after the registration). */
async function leaseOne(key: string, queue: string): Promise<Lease> {
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const stream = workerClient(key).leaseJobs({ workerName: "test", queues: [queue], capacity: 1 }, { signal: abort.signal });
  const reading = (async () => {
    for await (const response of stream) {
      if (response.message.case === "lease") return response.message.value;
      if (response.message.case === "leaseBatch") return response.message.value.leases[0]!;
    }
    throw new Error("the lease stream ended");
  })();
  return withTimeout(reading, 15_000, `a lease on ${queue}`);
}

/** Reads events from an iterator until one matches `last`; returns all read. */
async function eventsUntil(events: AsyncIterable<Event>, last: (event: Event) => boolean): Promise<Event[]> {
  const read: Event[] = [];
  const reading = (async () => {
    for await (const event of events) {
      read.push(event);
      if (last(event)) return read;
    }
    throw new Error("the event stream ended");
  })();
  return withTimeout(reading, 15_000, () => `the last event (read ${read.length})`);
}

const ownerOfJob = async (jobId: string | null) =>
  jobId === null ? undefined : (await server.db.pool.query<{ owner: string }>("SELECT owner FROM job WHERE id = $1", [jobId])).rows[0]?.owner;

describe("roles", () => {
  it("each role may call exactly the RPCs the authorization table gives it; others are PERMISSION_DENIED naming the role", async () => {
    const transport = transportFor({ baseUrl: server.url });
    const keyOf: Record<Role, string> = { admin: keys.admin, producer: keys.alice, worker: keys.worker, reader: keys.reader };
    expect(roles).toEqual(["admin", "producer", "worker", "reader"]);
    for (const { service, methods } of authorizationTable.values()) {
      for (const method of service.methods) {
        const rule = methods.get(method.name)!;
        if (rule.allow === "public") continue;
        for (const role of roles) {
          const error = await callWithEmptyRequest(transport, service, method, { authorization: bearer(keyOf[role]) });
          const what = `${role} calling ${service.name}.${method.name}`;
          if (rule.allow.includes(role)) {
            expect([Code.Unauthenticated, Code.PermissionDenied], what).not.toContain(error?.code);
          } else {
            expect(error?.code, what).toBe(Code.PermissionDenied);
            expect(error!.rawMessage, what).toBe(`role ${role} may not call ${service.name}.${method.name}`);
          }
        }
      }
    }
  });

  it("keeps producers, readers and workers to their trade, as docs/security.md says", async () => {
    const denied = async (call: Promise<unknown>) => expect((await failureOf(call)).code).toBe(Code.PermissionDenied);
    // Producers: no queue settings, webhooks, keys or worker calls.
    await denied(clients.alice.raw.updateQueue({ name: "q", defaults: {} }));
    await denied(clients.alice.raw.createWebhookSubscription({ queue: "q", url: "https://example.com", secret: "s".repeat(32) }));
    await denied(clients.alice.putWebhookSecret("name", "s".repeat(32)));
    await denied(clients.alice.admin.createApiKey({ principal: "x", role: 1 }));
    await denied(workerClient(keys.alice).heartbeat({}));
    // Readers: read everything, change nothing.
    await denied(clients.reader.enqueue("q", "k"));
    await denied(clients.reader.raw.cancelJob({ id: randomUUID() }));
    await denied(clients.reader.admin.listApiKeys({}));
    expect((await clients.reader.raw.listWebhookSecrets({})).secrets).toEqual([]);
    // Workers: the worker service only.
    await denied(clients.worker.enqueue("mail", "k"));
    await denied(clients.worker.getJob(randomUUID()));
    await denied(clients.worker.raw.listJobs({}));
    await denied(clients.worker.events.listEvents({}));
  });
});

describe("ownership", () => {
  it("a producer reads only its own jobs: another's job and a missing one are the same PERMISSION_DENIED", async () => {
    const job = await clients.alice.enqueue("own", "k", { secret: "alice's" });
    expect(job.owner).toBe("alice");
    expect((await clients.alice.getJob(job.id)).id).toBe(job.id);
    expect((await clients.reader.getJob(job.id)).id).toBe(job.id);
    expect((await clients.admin.getJob(job.id)).id).toBe(job.id);

    const missing = randomUUID();
    const others = await failureOf(clients.bob.getJob(job.id));
    const none = await failureOf(clients.bob.getJob(missing));
    expect(others.code).toBe(Code.PermissionDenied);
    expect(none.code).toBe(Code.PermissionDenied);
    expect(others.rawMessage.replace(job.id, "<id>")).toBe(none.rawMessage.replace(missing, "<id>"));
    expect(others.rawMessage).toBe(`permission denied on job ${job.id}`);
    // An admin (or a reader) is told the truth.
    expect((await failureOf(clients.admin.getJob(missing))).code).toBe(Code.NotFound);
    // A malformed id is still the caller's input error.
    expect((await failureOf(clients.bob.getJob("nope"))).code).toBe(Code.InvalidArgument);
  });

  it("the owner may cancel and retry its job, another producer may not, and an admin may and is recorded as who did", async () => {
    const job = await clients.alice.enqueue("own", "k", null, { delayMs: 3_600_000 });
    for (const call of [() => clients.bob.cancelJob(job.id), () => clients.bob.retryJob(job.id)]) {
      const refused = await failureOf(call());
      expect(refused.code).toBe(Code.PermissionDenied);
      expect(refused.rawMessage).toBe(`permission denied on job ${job.id}`);
    }
    expect((await clients.alice.getJob(job.id)).state).toBe(JobState.SCHEDULED);

    expect((await clients.alice.cancelJob(job.id, "mine")).state).toBe(JobState.CANCELLED);
    expect((await clients.alice.retryJob(job.id)).state).toBe(JobState.PENDING);
    expect((await clients.admin.cancelJob(job.id, "by the operator")).state).toBe(JobState.CANCELLED);
    const { rows } = await server.db.pool.query<{ type: string; by: string }>(
      "SELECT type, data->>'by' AS by FROM job_event WHERE job_id = $1 AND data ? 'by' ORDER BY id",
      [job.id],
    );
    expect(rows).toEqual([
      { type: "enqueued", by: "alice" },
      { type: "cancelled", by: "alice" },
      { type: "retried", by: "alice" },
      { type: "cancelled", by: "ops" },
    ]);
  });

  it("a producer may make its jobs depend on its own jobs only; a refused request inserts nothing", async () => {
    const parent = await clients.alice.enqueue("own", "k", null, { delayMs: 3_600_000 });
    const count = async () => (await server.db.pool.query("SELECT count(*)::int AS n FROM job WHERE owner = 'bob'")).rows[0].n as number;
    const before = await count();
    const single = await failureOf(clients.bob.enqueue("own", "k", null, { dependsOn: [{ jobId: parent.id }] }));
    expect(single.code).toBe(Code.PermissionDenied);
    const batch = await failureOf(clients.bob.createBatch([{ queue: "own", kind: "k" }, { queue: "own", kind: "k", dependsOn: [{ jobId: parent.id }] }]));
    expect(batch.code).toBe(Code.PermissionDenied);
    expect(await count()).toBe(before);
    const child = await clients.alice.enqueue("own", "k", null, { dependsOn: [{ jobId: parent.id }] });
    expect(child.state).toBe(JobState.BLOCKED);
  });

  it("idempotency keys are scoped to the principal: another producer's key never returns (or reveals) its job", async () => {
    const queue = `own-keys-${randomUUID()}`;
    const first = await clients.alice.enqueueOnce(queue, "k", "order-42", null, { delayMs: 60_000 });
    const again = await clients.alice.enqueueOnce(queue, "k", "order-42", null, { delayMs: 60_000 });
    expect(again).toMatchObject({ deduplicated: true, job: { id: first.job.id } });
    const other = await clients.bob.enqueueOnce(queue, "k", "order-42", null, { delayMs: 60_000 });
    expect(other.deduplicated).toBe(false);
    expect(other.job.id).not.toBe(first.job.id);
    expect(other.job.owner).toBe("bob");
  });

  it("ListJobs and ListBatches show a producer its own only; readers and admins see all", async () => {
    const alices = await clients.alice.enqueue("listed", "k");
    const bobs = await clients.bob.enqueue("listed", "k");
    const ids = async (client: JobwireClient) => (await client.listJobs({ queues: ["listed"] })).jobs.map((job) => job.id);
    expect(await ids(clients.bob)).toEqual([bobs.id]);
    expect(await ids(clients.alice)).toEqual([alices.id]);
    expect(await ids(clients.reader)).toEqual([bobs.id, alices.id]);
    expect(await ids(clients.admin)).toEqual([bobs.id, alices.id]);

    const { batchId } = await clients.alice.createBatch([{ queue: "listed-batch", kind: "k" }]);
    const batchIds = async (client: JobwireClient) => (await client.raw.listBatches({})).batches.map((batch) => batch.id);
    expect(await batchIds(clients.bob)).not.toContain(batchId);
    expect(await batchIds(clients.alice)).toContain(batchId);
    expect(await batchIds(clients.reader)).toContain(batchId);
    for (const call of [() => clients.bob.getBatch(batchId), () => clients.bob.cancelBatch(batchId), () => clients.bob.raw.getJobGraph({ batchId })]) {
      const refused = await failureOf(call());
      expect(refused.code).toBe(Code.PermissionDenied);
      expect(refused.rawMessage).toBe(`permission denied on batch ${batchId}`);
    }
    expect((await clients.alice.getBatch(batchId)).owner).toBe("alice");
    expect((await clients.reader.raw.getJobGraph({ batchId })).nodes).toHaveLength(1);
  });
});

describe("events", () => {
  it("a producer's StreamEvents and ListEvents carry only its own jobs' and batches' events", async () => {
    // Alice's events commit first: had Bob's stream seen them, they would come before his last.
    const alices = await clients.alice.enqueue("watched", "k", null, { delayMs: 3_600_000 });
    await clients.alice.cancelJob(alices.id);
    const { batchId } = await clients.alice.createBatch([{ queue: "watched", kind: "k", delayMs: 3_600_000 }]);
    await clients.alice.cancelBatch(batchId);
    await waitFor("alice's batch to finish", async () => (await clients.alice.getBatch(batchId)).finishedAt !== undefined);
    const bobs = await clients.bob.enqueue("watched", "k", null, { delayMs: 3_600_000 });
    await clients.bob.cancelJob(bobs.id);
    const isLast = (job: string) => (event: Event) => event.jobId === job && event.type === EventType.CANCELLED;

    const signal = AbortSignal.timeout(20_000);
    const bobStream = await eventsUntil(clients.bob.streamEvents({ fromOldest: true, signal }), isLast(bobs.id));
    expect(new Set(await Promise.all(bobStream.map((event) => ownerOfJob(event.jobId))))).toEqual(new Set(["bob"]));
    expect(bobStream.filter((event) => event.jobId === bobs.id).map((event) => EventType[event.type])).toEqual(["ENQUEUED", "CANCELLED"]);

    const aliceStream = await eventsUntil(clients.alice.streamEvents({ fromOldest: true, signal }), (event) => event.type === EventType.BATCH_FINISHED && event.batchId === batchId);
    expect(aliceStream.some((event) => event.jobId === bobs.id)).toBe(false);
    expect(aliceStream.filter((event) => event.jobId === alices.id).map((event) => EventType[event.type])).toEqual(["ENQUEUED", "CANCELLED"]);

    const bobList = (await clients.bob.events.listEvents({ filter: { queues: ["watched"] }, pageSize: 1000 })).events;
    expect(bobList.map((event) => event.jobId)).toEqual([bobs.id, bobs.id]);
    // Filtering on another's job shows nothing, as filtering on a job that does not exist.
    expect((await clients.bob.events.listEvents({ filter: { jobIds: [alices.id] } })).events).toEqual([]);
    const readerList = (await clients.reader.events.listEvents({ filter: { queues: ["watched"] }, pageSize: 1000 })).events;
    expect(readerList.filter((event) => event.jobId === alices.id || event.jobId === bobs.id)).toHaveLength(4);
  });

  it("the SSE endpoint needs a key, refuses workers, and shows a producer its own events", async () => {
    const alices = await clients.alice.enqueue("sse-owned", "k", null, { delayMs: 3_600_000 });
    const bobs = await clients.bob.enqueue("sse-owned", "k", null, { delayMs: 3_600_000 });
    const url = `${server.url}/v1/events?queue=sse-owned&from=oldest`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    expect(await none.json()).toMatchObject({ code: "unauthenticated" });
    const bad = await fetch(url, { headers: { authorization: "Bearer jw_nope" } });
    expect(bad.status).toBe(401);
    const worker = await fetch(url, { headers: { authorization: bearer(keys.worker) } });
    expect(worker.status).toBe(403);
    expect(await worker.json()).toMatchObject({ code: "permission_denied", message: "role worker may not call EventService.StreamEvents" });

    const abort = new AbortController();
    onTestFinished(() => abort.abort());
    const response = await fetch(url, { headers: { authorization: bearer(keys.bob) }, signal: AbortSignal.any([abort.signal, AbortSignal.timeout(15_000)]) });
    expect(response.status).toBe(200);
    let text = "";
    for await (const chunk of response.body!) {
      text += Buffer.from(chunk as Uint8Array).toString();
      if (text.includes(bobs.id)) break;
    }
    abort.abort();
    expect(text).toContain(bobs.id);
    expect(text).not.toContain(alices.id);
  });

  it("a producer still sees the events of its jobs that retention deleted, DELETED included", async () => {
    const job = await clients.alice.enqueue("retained", "k", null, { delayMs: 3_600_000 });
    await clients.alice.cancelJob(job.id);
    await server.db.pool.query(
      `UPDATE job SET created_at = clock_timestamp() - interval '9 days', finished_at = clock_timestamp() - interval '8 days' WHERE id = $1`,
      [job.id],
    );
    const deleted = await waitFor("the DELETED event", async () => {
      const { events } = await clients.alice.events.listEvents({ filter: { jobIds: [job.id], types: [EventType.DELETED] } });
      return events[0];
    });
    expect(deleted.jobId).toBe(job.id);
    const all = (await clients.alice.events.listEvents({ filter: { jobIds: [job.id] } })).events.map((event) => EventType[event.type]);
    expect(all).toEqual(["ENQUEUED", "CANCELLED", "DELETED"]);
    expect((await clients.bob.events.listEvents({ filter: { jobIds: [job.id] } })).events).toEqual([]);
  });
});

describe("worker keys", () => {
  it("lease only from the queues named on the key", async () => {
    const refuse = async (queues: string[]) => {
      const stream = workerClient(keys.worker).leaseJobs({ workerName: "w", queues, capacity: 1 });
      const error = await failureOf((async () => { for await (const _ of stream) break; })());
      expect(error.code).toBe(Code.PermissionDenied);
      return error.rawMessage;
    };
    expect(await refuse(["other"])).toMatch(/^API key [a-z0-9]{12} may not lease from queue other$/);
    expect(await refuse(["mail", "other"])).toMatch(/may not lease from queue other$/);
    const job = await clients.admin.enqueue("mail", "send");
    expect((await leaseOne(keys.worker, "mail")).jobId).toBe(job.id);
  });

  it("report only on jobs of the key's queues", async () => {
    const job = await clients.admin.enqueue("elsewhere", "k");
    const lease = await leaseOne(keys.admin, "elsewhere");
    expect(lease.jobId).toBe(job.id);
    const ref = { jobId: lease.jobId, leaseToken: lease.leaseToken };
    const worker = workerClient(keys.worker);
    for (const call of [
      () => worker.completeJob({ lease: ref }),
      () => worker.failJob({ lease: ref, message: "no" }),
      () => worker.heartbeat({ leases: [ref] }),
      () => worker.reportProgress({ lease: ref }),
      () => worker.completeJobs({ completions: [{ lease: ref }] }),
    ]) {
      const refused = await failureOf(call());
      expect(refused.code).toBe(Code.PermissionDenied);
      expect(refused.rawMessage).toBe(`permission denied on job ${job.id}`);
    }
    expect((await clients.admin.getJob(job.id)).state).toBe(JobState.RUNNING);
    await workerClient(keys.admin).completeJob({ lease: ref });
    expect((await clients.admin.getJob(job.id)).state).toBe(JobState.SUCCEEDED);
  });

  it("run jobs through the SDK Worker; a Worker whose key is refused fails to start and stops", async () => {
    const done = Promise.withResolvers<unknown>();
    const worker = new Worker({ baseUrl: server.url, apiKey: keys.worker, queues: ["mail"], handlers: { greet: async (payload) => done.resolve(payload) } });
    await worker.start();
    onTestFinished(() => worker.shutdown({ graceMs: 100 }).then(() => undefined));
    const job = await clients.alice.enqueue("mail", "greet", { to: "ada" });
    expect(await withTimeout(done.promise, 15_000, "the handler")).toEqual({ to: "ada" });
    await waitFor("the job to succeed", async () => (await clients.alice.getJob(job.id)).state === JobState.SUCCEEDED);

    const wrongQueue = new Worker({ baseUrl: server.url, apiKey: keys.worker, queues: ["other"], handlers: { greet: async () => {} } });
    expect((await failureOf(wrongQueue.start())).code).toBe(Code.PermissionDenied);
    expect(wrongQueue.state).toBe("stopped");
    const noKey = new Worker({ baseUrl: server.url, queues: ["mail"], handlers: { greet: async () => {} } });
    expect((await failureOf(noKey.start())).code).toBe(Code.Unauthenticated);
    expect(noKey.state).toBe("stopped");
  });
});
