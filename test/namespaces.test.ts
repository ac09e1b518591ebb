import { Code, createClient, type Client } from "@connectrpc/connect";
import { createJobwireClient, JobState, transportFor, type Job, type JobwireClient } from "@jobwire/sdk";
import { Role } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { WorkerService, type Lease, type LeaseRef } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { authorizationTable, type JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { apiKeyOn, keyIdOf } from "./support/api-keys.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { startWebhookReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";
import { waitFor } from "./support/wait-for.js";
import { withTimeout } from "./support/with-timeout.js";

/**
 * Tenants: two namespaces, `acme` and `globex`, on one server. Acme has a bit of everything
 * (jobs, a batch, queue settings, a webhook subscription and secret, a schedule, a
 * concurrency limit, API keys), all under names globex uses too. Every RPC of the
 * authorization table is called from globex at acme's things: nothing of acme is visible
 * or reachable, and what globex makes under the same names is its own. The last test
 * checks that every RPC was covered.
 */
let server: JobwireServer;
let receiver: WebhookReceiver;
const keys = {} as Record<"acmeAdmin" | "acmeWorker" | "globexAdmin" | "globexProducer" | "globexWorker", string>;
let acme: JobwireClient;
let globex: JobwireClient;
let globexProducer: JobwireClient;
/** Acme's things, made in beforeAll. */
const seed = {} as {
  waiting: Job;
  ready: Job;
  batchId: string;
  batchJobIds: string[];
  subscriptionId: string;
  scheduleId: string;
  keyIds: string[];
};
/** The RPCs a test below has checked, as `Service.Method`. */
const covered = new Set<string>();
const cover = (...rpcs: string[]) => rpcs.forEach((rpc) => covered.add(rpc));
const unknownId = "0190a0b0-0000-7000-8000-000000000000";

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  server = await startTestServer({ auth: { enabled: true, bootstrapKeyFile: undefined }, webhookAllowCidrs: ["127.0.0.1/32"], fallbackPollMs: 200 });
  keys.acmeAdmin = await apiKeyOn(server, { namespace: "acme", principal: "ops", role: "admin" });
  keys.acmeWorker = await apiKeyOn(server, { namespace: "acme", principal: "mailer", role: "worker", queues: ["shared"] });
  // The same principal names as acme's: a name is a namespace's own.
  keys.globexAdmin = await apiKeyOn(server, { namespace: "globex", principal: "ops", role: "admin" });
  keys.globexProducer = await apiKeyOn(server, { namespace: "globex", principal: "shop", role: "producer" });
  keys.globexWorker = await apiKeyOn(server, { namespace: "globex", principal: "mailer", role: "worker", queues: ["shared"] });
  acme = createJobwireClient({ baseUrl: server.url, apiKey: keys.acmeAdmin });
  globex = createJobwireClient({ baseUrl: server.url, apiKey: keys.globexAdmin });
  globexProducer = createJobwireClient({ baseUrl: server.url, apiKey: keys.globexProducer });

  await acme.raw.updateQueue({ name: "shared", defaults: { retryPolicy: { maxAttempts: 7 } } });
  await acme.putWebhookSecret("sig", "acme-secret-0123456789abcdef");
  seed.subscriptionId = (await acme.raw.createWebhookSubscription({ queue: "shared", url: `${receiver.url}/acme`, secret: "acme-hook-secret-0123456789" })).subscription!.id;
  seed.waiting = await acme.enqueue("shared", "mail", { to: "a" }, { delayMs: 3_600_000, idempotencyKey: "k1" });
  seed.ready = await acme.enqueue("shared", "mail", { to: "b" });
  const batch = await acme.createBatch([
    { queue: "graph", kind: "build", ref: "build" },
    { queue: "graph", kind: "test", dependsOn: [{ ref: "build" }] },
  ]);
  seed.batchId = batch.batchId;
  seed.batchJobIds = batch.jobIds;
  seed.scheduleId = (await acme.createSchedule({ name: "nightly", cron: "0 3 * * *", job: { queue: "shared", kind: "report" }, paused: true })).id;
  await acme.setConcurrencyLimit("api", { maxRunning: 3 });
  seed.keyIds = [keyIdOf(keys.acmeAdmin), keyIdOf(keys.acmeWorker)];
});

afterAll(async () => {
  await receiver?.close();
});

/** The failure of `call`, with the ids in its message replaced, for comparing answers. */
async function refusal(call: Promise<unknown>, ...ids: string[]): Promise<{ code: Code; message: string }> {
  const error = await failureOf(call);
  let message = error.rawMessage;
  for (const id of ids) message = message.replaceAll(id, "<id>");
  return { code: error.code, message };
}

/** Acme's job as acme sees it now. */
const acmeJob = (id: string) => acme.getJob(id);

function workerClient(key: string): Client<typeof WorkerService> {
  return createClient(WorkerService, transportFor({ baseUrl: server.url, apiKey: key }));
}

/** Opens a LeaseJobs stream on `queue` and returns the leases of its first lease message. */
async function firstLeases(key: string, queue: string, capacity: number): Promise<Lease[]> {
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const stream = workerClient(key).leaseJobs({ workerName: "test", queues: [queue], capacity }, { signal: abort.signal });
  const reading = (async () => {
    for await (const response of stream) {
      if (response.message.case === "lease") return [response.message.value];
      if (response.message.case === "leaseBatch") return response.message.value.leases;
    }
    throw new Error("the lease stream ended");
  })();
  return withTimeout(reading, 15_000, `a lease on ${queue}`);
}

describe("namespaces", () => {
  it("jobs: another namespace's job is answered exactly as one that does not exist, and stays as it was", async () => {
    const id = seed.waiting.id;
    for (const [rpc, call] of [
      ["QueueService.GetJob", (jobId: string) => globex.getJob(jobId)],
      ["QueueService.CancelJob", (jobId: string) => globex.cancelJob(jobId, "not yours")],
      ["QueueService.RetryJob", (jobId: string) => globex.retryJob(jobId)],
      ["QueueService.PauseJob", (jobId: string) => globex.pauseJob(jobId)],
      ["QueueService.ResumeJob", (jobId: string) => globex.resumeJob(jobId)],
    ] as const) {
      const foreign = await refusal(call(id), id);
      expect(foreign, rpc).toEqual(await refusal(call(unknownId), unknownId));
      expect(foreign.code, rpc).toBe(Code.NotFound);
      cover(rpc);
    }
    // A producer of globex: PERMISSION_DENIED, as for another principal's job.
    expect((await failureOf(globexProducer.cancelJob(id))).code).toBe(Code.PermissionDenied);
    expect((await acmeJob(id)).state).toBe(JobState.SCHEDULED);

    const listed = await globex.listJobs({ queues: ["shared", "graph"] });
    expect(listed.jobs).toEqual([]);
    expect((await globex.listJobs()).jobs.map((job) => job.id)).not.toContain(id);
    cover("QueueService.ListJobs");
  });

  it("enqueue: the same queue name is another queue, with its own defaults, keys and parents", async () => {
    const own = await globex.enqueue("shared", "mail", { to: "c" }, { delayMs: 3_600_000, idempotencyKey: "k1" });
    // Not deduplicated to acme's holder of "k1", and without acme's queue defaults.
    expect(own.id).not.toBe(seed.waiting.id);
    expect(own.retryPolicy?.maxAttempts).not.toBe(7);
    expect((await acme.getQueue("shared")).defaults?.retryPolicy?.maxAttempts).toBe(7);
    // A parent of another namespace is unknown, as one that does not exist.
    const foreignParent = await refusal(globex.enqueue("shared", "mail", null, { dependsOn: [{ jobId: seed.waiting.id }] }), seed.waiting.id);
    expect(foreignParent).toEqual(await refusal(globex.enqueue("shared", "mail", null, { dependsOn: [{ jobId: unknownId }] }), unknownId));
    expect(foreignParent.code).toBe(Code.InvalidArgument);
    const batchParent = await refusal(globex.enqueueBatch([{ queue: "shared", kind: "mail", dependsOn: [{ jobId: seed.waiting.id }] }]), seed.waiting.id);
    expect(batchParent.code).toBe(Code.InvalidArgument);
    // Acme's secret name means nothing here.
    const secret = await failureOf(globex.enqueue("shared", "mail", null, { webhooks: [{ url: `${receiver.url}/g`, secretName: "sig" }] }));
    expect(secret.code).toBe(Code.InvalidArgument);
    expect(secret.rawMessage).toContain("job.webhooks[0].secret_name");
    // EnqueueJobs: the same, job by job.
    const { results } = await globex.raw.enqueueJobs({
      jobs: [
        { queue: "shared", kind: "mail", idempotencyKey: "k1" },
        { queue: "shared", kind: "mail", webhooks: [{ url: `${receiver.url}/g`, secretName: "sig" }] },
      ],
    });
    expect(results[0]?.result.case === "enqueued" && results[0].result.value).toMatchObject({ deduplicated: true, job: { id: own.id } });
    expect(results[1]?.result.case === "refused" && results[1].result.value).toMatchObject({ code: Code.InvalidArgument, message: secret.rawMessage });
    cover("QueueService.Enqueue", "QueueService.EnqueueBatch", "QueueService.EnqueueJobs");
  });

  it("queues: settings and pauses of a queue name are each namespace's own", async () => {
    expect((await failureOf(globex.getQueue("graph"))).code).toBe(Code.NotFound);
    await globex.raw.updateQueue({ name: "shared", defaults: { retryPolicy: { maxAttempts: 2 } } });
    await globex.pauseQueue("shared");
    expect((await acme.getQueue("shared")).defaults?.retryPolicy?.maxAttempts).toBe(7);
    expect((await acme.getQueue("shared")).paused).toBe(false);
    expect((await globex.getQueue("shared")).defaults?.retryPolicy?.maxAttempts).toBe(2);
    await globex.resumeQueue("shared");
    await acme.pauseQueue("graph");
    expect((await failureOf(globex.resumeQueue("graph"))).code).toBe(Code.NotFound);
    expect((await acme.getQueue("graph")).paused).toBe(true);
    await acme.resumeQueue("graph");
    cover("QueueService.GetQueue", "QueueService.UpdateQueue", "QueueService.PauseQueue", "QueueService.ResumeQueue");
  });

  it("webhooks: subscriptions and secrets are per namespace, and a queue's events reach only its own namespace's subscribers", async () => {
    expect((await globex.raw.listWebhookSubscriptions({ queue: "shared" })).subscriptions).toEqual([]);
    const deleted = await refusal(globex.raw.deleteWebhookSubscription({ id: seed.subscriptionId }), seed.subscriptionId);
    expect(deleted).toEqual(await refusal(globex.raw.deleteWebhookSubscription({ id: unknownId }), unknownId));
    expect((await acme.raw.listWebhookSubscriptions({ queue: "shared" })).subscriptions.map((s) => s.id)).toEqual([seed.subscriptionId]);
    const own = (await globex.raw.createWebhookSubscription({ queue: "shared", url: `${receiver.url}/globex`, secret: "globex-hook-secret-012345" })).subscription!;

    expect((await globex.raw.listWebhookSecrets({})).secrets).toEqual([]);
    expect((await failureOf(globex.raw.deleteWebhookSecret({ name: "sig" }))).code).toBe(Code.NotFound);
    await globex.putWebhookSecret("sig", "globex-secret-0123456789abcdef");
    expect((await acme.raw.listWebhookSecrets({})).secrets.map((s) => s.name)).toEqual(["sig"]);

    // One event on each side: each receiver path gets its own namespace's only.
    const acmeJobId = (await acme.enqueue("shared", "hook", null, { delayMs: 3_600_000 })).id;
    const globexJobId = (await globex.enqueue("shared", "hook", null, { delayMs: 3_600_000 })).id;
    const bodiesAt = (path: string) => receiver.received.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as { jobId: string });
    await waitFor("both enqueued events delivered", async () =>
      bodiesAt("/acme").some((b) => b.jobId === acmeJobId) && bodiesAt("/globex").some((b) => b.jobId === globexJobId),
    );
    expect(bodiesAt("/acme").map((b) => b.jobId)).not.toContain(globexJobId);
    expect(bodiesAt("/globex").map((b) => b.jobId)).toEqual([globexJobId]);
    await globex.raw.deleteWebhookSubscription({ id: own.id });
    await globex.raw.deleteWebhookSecret({ name: "sig" });
    expect((await acme.raw.listWebhookSecrets({})).secrets.map((s) => s.name)).toEqual(["sig"]);
    cover(
      "QueueService.CreateWebhookSubscription", "QueueService.DeleteWebhookSubscription", "QueueService.ListWebhookSubscriptions",
      "QueueService.PutWebhookSecret", "QueueService.DeleteWebhookSecret", "QueueService.ListWebhookSecrets",
    );
  });

  it("batches: another namespace's batch is answered as one that does not exist", async () => {
    const id = seed.batchId;
    for (const [rpc, call] of [
      ["QueueService.GetBatch", (batchId: string) => globex.getBatch(batchId)],
      ["QueueService.CancelBatch", (batchId: string) => globex.cancelBatch(batchId)],
      ["QueueService.GetJobGraph", (batchId: string) => globex.raw.getJobGraph({ batchId })],
    ] as const) {
      const foreign = await refusal(call(id), id);
      expect(foreign, rpc).toEqual(await refusal(call(unknownId), unknownId));
      expect(foreign.code, rpc).toBe(Code.NotFound);
      cover(rpc);
    }
    expect((await globex.raw.listBatches({})).batches).toEqual([]);
    expect((await acme.getBatch(id)).counts).not.toHaveProperty("CANCELLED");
    cover("QueueService.ListBatches");
  });

  it("concurrency limits: keys are per namespace, and a limit bounds its own namespace's jobs only", async () => {
    expect((await globex.raw.listConcurrencyLimits({})).limits).toEqual([]);
    expect((await failureOf(globex.raw.deleteConcurrencyLimit({ key: "api" }))).code).toBe(Code.NotFound);
    await globex.pauseConcurrencyKey("api", new Date(Date.now() + 3_600_000));
    await globex.setConcurrencyLimit("api", { maxRunning: 1 });
    const acmeLimits = (await acme.raw.listConcurrencyLimits({})).limits;
    expect(acmeLimits.map((limit) => [limit.key, limit.maxRunning, limit.pausedUntil])).toEqual([["api", 3, undefined]]);
    // Globex's paused key holds globex's jobs; acme's jobs of the same key run. Both have
    // a worker on the queue: the admission pass that leases acme's job looks at globex's too.
    const globexLeases: string[] = [];
    const watching = new AbortController();
    onTestFinished(() => watching.abort());
    const globexCaller = await apiKeyOn(server, { namespace: "globex", principal: "caller", role: "worker", queues: ["limited"] });
    void (async () => {
      for await (const response of workerClient(globexCaller).leaseJobs({ workerName: "test", queues: ["limited"], capacity: 1 }, { signal: watching.signal })) {
        if (response.message.case === "lease") globexLeases.push(response.message.value.jobId);
      }
    })().catch(() => undefined);
    const held = await globex.enqueue("limited", "call", null, { concurrencyKey: "api" });
    const free = await acme.enqueue("limited", "call", null, { concurrencyKey: "api" });
    const acmeCaller = await apiKeyOn(server, { namespace: "acme", principal: "caller", role: "worker", queues: ["limited"] });
    const [lease] = await firstLeases(acmeCaller, "limited", 1);
    expect(lease!.jobId).toBe(free.id);
    expect(globexLeases).toEqual([]);
    expect((await server.db.pool.query("SELECT admitted FROM job WHERE id = $1", [held.id])).rows[0]?.admitted).toBe(false);
    await globex.raw.deleteConcurrencyLimit({ key: "api" });
    expect((await acme.raw.listConcurrencyLimits({})).limits.map((limit) => limit.key)).toEqual(["api"]);
    cover("QueueService.SetConcurrencyLimit", "QueueService.DeleteConcurrencyLimit", "QueueService.ListConcurrencyLimits", "QueueService.PauseConcurrencyKey");
  });

  it("schedules: names are per namespace, and another namespace's schedule is answered as one that does not exist", async () => {
    const own = await globex.createSchedule({ name: "nightly", cron: "0 4 * * *", job: { queue: "shared", kind: "report" }, paused: true });
    expect(own.id).not.toBe(seed.scheduleId);
    expect((await globex.getSchedule("nightly")).id).toBe(own.id);
    const id = seed.scheduleId;
    for (const [rpc, call] of [
      ["ScheduleService.GetSchedule", (scheduleId: string) => globex.getSchedule({ id: scheduleId })],
      ["ScheduleService.PauseSchedule", (scheduleId: string) => globex.pauseSchedule({ id: scheduleId })],
      ["ScheduleService.ResumeSchedule", (scheduleId: string) => globex.resumeSchedule({ id: scheduleId })],
      ["ScheduleService.DeleteSchedule", (scheduleId: string) => globex.deleteSchedule({ id: scheduleId })],
    ] as const) {
      const foreign = await refusal(call(id), id);
      expect(foreign, rpc).toEqual(await refusal(call(unknownId), unknownId));
      expect(foreign.code, rpc).toBe(Code.NotFound);
      cover(rpc);
    }
    expect((await globex.listSchedules()).schedules.map((schedule) => schedule.id)).toEqual([own.id]);
    const acmeNightly = await acme.getSchedule("nightly");
    expect([acmeNightly.id, acmeNightly.paused]).toEqual([id, true]);
    cover("ScheduleService.CreateSchedule", "ScheduleService.ListSchedules");
  });

  it("workers: a worker leases its own namespace's jobs only, and cannot touch another's leases", async () => {
    const own = await globex.enqueue("shared", "mail", { to: "globex" });
    // Both namespaces have a ready job in "shared": one claim could take both.
    const [lease, ...more] = await firstLeases(keys.globexWorker, "shared", 2);
    expect([lease!.jobId, more]).toEqual([own.id, []]);
    expect((await acmeJob(seed.ready.id)).state).toBe(JobState.PENDING);
    const [acmeLease] = await firstLeases(keys.acmeWorker, "shared", 1);
    expect(acmeLease!.jobId).toBe(seed.ready.id);

    const ref: LeaseRef = { $typeName: "jobwire.v1.LeaseRef", jobId: seed.ready.id, leaseToken: acmeLease!.leaseToken };
    const worker = workerClient(keys.globexWorker);
    for (const [rpc, call] of [
      ["WorkerService.Heartbeat", () => worker.heartbeat({ leases: [ref] })],
      ["WorkerService.ReportProgress", () => worker.reportProgress({ lease: ref, progress: { kind: { case: "numberValue", value: 1 } } })],
      ["WorkerService.CompletePhase", () => worker.completePhase({ lease: ref, phase: "send" })],
      ["WorkerService.CompleteJob", () => worker.completeJob({ lease: ref })],
      ["WorkerService.CompleteJobs", () => worker.completeJobs({ completions: [{ lease: ref }] })],
      ["WorkerService.FailJob", () => worker.failJob({ lease: ref, message: "not yours" })],
    ] as const) {
      expect((await failureOf(call())).code, rpc).toBe(Code.PermissionDenied);
      cover(rpc);
    }
    // Nor can it adopt the lease on reconnecting.
    const abort = new AbortController();
    onTestFinished(() => abort.abort());
    const adopting = worker.leaseJobs({ workerName: "thief", queues: ["shared"], capacity: 1, heldLeases: [ref] }, { signal: abort.signal });
    expect((await failureOf((async () => { for await (const _ of adopting) break; })())).code).toBe(Code.PermissionDenied);
    const job = await acmeJob(seed.ready.id);
    expect([job.state, job.progress]).toEqual([JobState.RUNNING, undefined]);
    cover("WorkerService.LeaseJobs");
  });

  it("events: a namespace's streams and listings carry its own events only", async () => {
    const acmeIds = new Set([seed.waiting.id, seed.ready.id, ...seed.batchJobIds]);
    const marker = await globex.enqueue("shared", "marker", null, { delayMs: 3_600_000 });
    const abort = new AbortController();
    onTestFinished(() => abort.abort());
    const streamed: string[] = [];
    const reading = (async () => {
      for await (const event of globex.streamEvents({ fromOldest: true, signal: abort.signal })) {
        streamed.push(event.jobId);
        if (event.jobId === marker.id) return;
      }
    })();
    await withTimeout(reading, 15_000, "globex's marker event");
    expect(streamed.filter((id) => acmeIds.has(id))).toEqual([]);
    const listed = await globex.events.listEvents({ pageSize: 1000 });
    expect(listed.events.map((event) => event.jobId)).toContain(marker.id);
    expect(listed.events.filter((event) => acmeIds.has(event.jobId))).toEqual([]);
    expect((await acme.events.listEvents({ filter: { jobIds: [seed.waiting.id] } })).events.length).toBeGreaterThan(0);
    cover("EventService.StreamEvents", "EventService.ListEvents");
  });

  it("API keys: an admin lists, makes and revokes its own namespace's keys only", async () => {
    const listed = (await globex.admin.listApiKeys({ includeRevoked: true })).apiKeys;
    expect(new Set(listed.map((key) => key.namespace))).toEqual(new Set(["globex"]));
    expect(listed.map((key) => key.id)).not.toContain(seed.keyIds[0]);
    const revoked = await refusal(globex.admin.revokeApiKey({ id: seed.keyIds[0]! }), seed.keyIds[0]!);
    expect(revoked).toEqual(await refusal(globex.admin.revokeApiKey({ id: "zzzzzzzzzzzz" }), "zzzzzzzzzzzz"));
    expect(revoked.code).toBe(Code.NotFound);
    await acme.getJob(seed.waiting.id);
    const created = await globex.admin.createApiKey({ principal: "reports", role: Role.READER });
    expect(created.apiKey?.namespace).toBe("globex");
    const reader = createJobwireClient({ baseUrl: server.url, apiKey: created.secret });
    expect((await failureOf(reader.getJob(seed.waiting.id))).code).toBe(Code.NotFound);
    cover("AdminService.CreateApiKey", "AdminService.ListApiKeys", "AdminService.RevokeApiKey");
  });

  it("covers every RPC of the authorization table but the public health checks", () => {
    const all = [...authorizationTable.values()].flatMap(({ service, methods }) =>
      service.methods.filter((method) => methods.get(method.name)?.allow !== "public").map((method) => `${service.name}.${method.name}`),
    );
    expect([...covered].sort()).toEqual(all.sort());
  });
});

describe("namespace names", () => {
  it("are checked by the database when a key is made", async () => {
    await expect(apiKeyOn(server, { namespace: "Not Valid", principal: "x", role: "reader" })).rejects.toThrow(/namespace_name_format/);
  });
});
