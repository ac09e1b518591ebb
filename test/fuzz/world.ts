import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService, Role } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { EventService } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { JobState } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { QueueService } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { ScheduleService } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import { WorkerService } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { fuzzerPrincipal } from "./fuzzer-key.js";
import { farCronExamples } from "./schedule-hints.js";
import { authorizationHeader } from "./senders.js";

/**
 * What exists on the server before fuzzing starts, so that valid-looking requests reach
 * past validation: ids of jobs in every reachable state, lease tokens once issued, event
 * cursors and page tokens the server made.
 *
 * The fuzzer checks that a rejected request changes nothing in the database, so nothing
 * may change it on its own while the fuzzer runs. The world is built for that: no job
 * stays leased (no lease can expire or be released later), scheduled jobs are far in the
 * future, and queues are split by purpose so that a valid request of one RPC cannot start
 * background work through another: workers only ever listen on `idleQueues`, where no job
 * is enqueued; webhooks only subscribe `hookQueues`, where no job is enqueued; only
 * `configQueues` get retention or retry settings. Schedules (the world's and the fuzzer's)
 * only ever have cron expressions whose ticks are days away (`schedule-hints.ts`).
 */
export interface FuzzWorld {
  /** Queues that hold jobs; valid Enqueue requests use these. */
  readonly queues: readonly string[];
  /** Queues no job is ever enqueued to: LeaseJobs listens here, so it never leases anything. */
  readonly idleQueues: readonly string[];
  /** Queues webhook subscriptions are made for: no job there, so no delivery is ever attempted. */
  readonly hookQueues: readonly string[];
  /** Queues UpdateQueue may change. */
  readonly configQueues: readonly string[];
  /** Job kinds in use. */
  readonly kinds: readonly string[];
  /** Phase names in use. */
  readonly phases: readonly string[];
  /** Ids of existing jobs: pending, scheduled, cancelled, succeeded and failed ones. */
  readonly jobIds: readonly string[];
  /** Lease tokens that were issued and are no longer current. */
  readonly leaseTokens: readonly bigint[];
  /** Worker ids the server gave out. */
  readonly workerIds: readonly string[];
  /** Event cursors the server made. */
  readonly eventCursors: readonly string[];
  /** Page tokens the server made: ListJobs, ListSchedules, ListApiKeys (each for its own filter). */
  readonly pageTokens: readonly string[];
  /** Ids of existing webhook subscriptions. */
  readonly subscriptionIds: readonly string[];
  /** Names of existing schedules, active and paused; none ticks during a run. */
  readonly scheduleNames: readonly string[];
  /** Ids of those schedules. */
  readonly scheduleIds: readonly string[];
  /** Public ids of API keys of every role, one expiring, one revoked; never the fuzzer's own. */
  readonly apiKeyIds: readonly string[];
  /** Principals those keys act as. */
  readonly principals: readonly string[];
}

const day = 86_400n;

/**
 * Builds the world on a fresh server at `baseUrl` through the public API, calling as the
 * admin key `apiKey`, and returns what it made. Leaves no stream open and no job leased.
 */
export async function buildWorld(baseUrl: string, apiKey: string): Promise<FuzzWorld> {
  const transport = createGrpcTransport({ baseUrl, interceptors: [authorizationHeader(`Bearer ${apiKey}`)] });
  const queue = createClient(QueueService, transport);
  const worker = createClient(WorkerService, transport);
  const events = createClient(EventService, transport);
  const schedules = createClient(ScheduleService, transport);
  const admin = createClient(AdminService, transport);
  const world = {
    queues: ["fz-a", "fz-b", "fz.c:d_e"],
    idleQueues: ["idle-a", "idle-b"],
    hookQueues: ["hook-a"],
    configQueues: ["conf-a", "conf-b"],
    kinds: ["send", "render"],
    phases: ["fetch", "parse"],
    jobIds: [] as string[],
    leaseTokens: [] as bigint[],
    workerIds: [] as string[],
    eventCursors: [] as string[],
    pageTokens: [] as string[],
    subscriptionIds: [] as string[],
    scheduleNames: ["sched-a", "sched-b", "sched-c", "sched-d"],
    scheduleIds: [] as string[],
    apiKeyIds: [] as string[],
    principals: [fuzzerPrincipal, "fz-producer", "svc@example.com", "team:ops"],
  };

  for (const [index, name] of world.queues.entries()) {
    const { job } = await queue.enqueue({ job: { queue: name, kind: "send", phases: ["fetch", "parse"], payload: { kind: { case: "numberValue", value: index } } } });
    world.jobIds.push(job!.id);
  }
  const { job: scheduled } = await queue.enqueue({ job: { queue: "fz-a", kind: "send", schedule: { case: "delay", value: { seconds: 30n * day } } } });
  const { job: cancelled } = await queue.enqueue({ job: { queue: "fz-b", kind: "render" } });
  await queue.cancelJob({ id: cancelled!.id, reason: "fuzz world" });
  world.jobIds.push(scheduled!.id, cancelled!.id);

  // One job to succeed and one to fail for good, leased on a queue of their own that is
  // then left alone (a RetryJob of the failed one makes it pending there, with no worker).
  const runQueue = "fz-run";
  const { jobIds: ran } = await queue.enqueueBatch({
    jobs: [
      { queue: runQueue, kind: "send", phases: ["fetch"] },
      { queue: runQueue, kind: "send", retryPolicy: { maxAttempts: 1 } },
    ],
  });
  world.jobIds.push(...ran);
  const abort = new AbortController();
  const stream = worker.leaseJobs({ workerName: "fuzz-world", queues: [runQueue], capacity: 2 }, { signal: abort.signal });
  const leases: { jobId: string; leaseToken: bigint }[] = [];
  for await (const message of stream) {
    if (message.message.case === "registered") world.workerIds.push(message.message.value.workerId);
    if (message.message.case === "lease") leases.push(message.message.value);
    if (message.message.case === "leaseBatch") leases.push(...message.message.value.leases);
    if (leases.length === 2) break;
  }
  const [first, second] = leases.sort((a, b) => ran.indexOf(a.jobId) - ran.indexOf(b.jobId));
  await worker.completePhase({ lease: first, phase: "fetch", result: { kind: { case: "stringValue", value: "fetched" } } });
  await worker.completeJob({ lease: first, result: { kind: { case: "boolValue", value: true } } });
  await worker.failJob({ lease: second, message: "fuzz world failure", retryable: false });
  abort.abort();
  world.leaseTokens.push(first!.leaseToken, second!.leaseToken);
  const states = await Promise.all(ran.map(async (id) => (await queue.getJob({ id })).job?.state));
  if (states[0] !== JobState.SUCCEEDED || states[1] !== JobState.FAILED) throw new Error(`fuzz world: jobs ended ${states.join(", ")}`);

  const { subscription } = await queue.createWebhookSubscription({
    queue: "hook-a",
    url: "https://hooks.example.com/jobwire",
    eventTypes: ["succeeded"],
    secret: "whsec_c2VjcmV0LW9mLWF0LWxlYXN0LTE2LWJ5dGVz",
  });
  world.subscriptionIds.push(subscription!.id);
  await queue.updateQueue({ name: "conf-a", defaults: { retention: { seconds: 30n * day } } });

  const page = await events.listEvents({ pageSize: 3 });
  world.eventCursors.push(...page.events.map((event) => event.cursor), page.nextPageToken);
  const jobs = await queue.listJobs({ pageSize: 1 });
  const filtered = await queue.listJobs({ pageSize: 1, queues: ["fz-a"], states: [JobState.PENDING, JobState.SCHEDULED] });
  world.pageTokens.push(jobs.nextPageToken, filtered.nextPageToken);

  // Schedules whose ticks are at least a month away; the second is paused.
  for (const [index, cron] of farCronExamples().entries()) {
    const { schedule } = await schedules.createSchedule({
      schedule: {
        name: world.scheduleNames[index]!,
        cron,
        timeZone: index % 2 === 0 ? "UTC" : "Europe/Berlin",
        template: { queue: "fz-a", kind: "send" },
        paused: index === 1,
      },
    });
    world.scheduleIds.push(schedule!.id);
  }
  world.pageTokens.push((await schedules.listSchedules({ pageSize: 1 })).nextPageToken);

  // Keys of every role (none the fuzzer's own), one that expires in a day, one revoked.
  const [, producer, service, ops] = world.principals;
  const keys = [
    { principal: producer!, role: Role.PRODUCER },
    { principal: service!, role: Role.WORKER, queues: ["idle-a"], description: "worker key" },
    { principal: ops!, role: Role.READER },
    { principal: ops!, role: Role.ADMIN, expiresAt: { seconds: BigInt(Math.floor(Date.now() / 1000)) + day } },
    { principal: producer!, role: Role.PRODUCER, description: "revoked" },
  ];
  for (const key of keys) world.apiKeyIds.push((await admin.createApiKey(key)).apiKey!.id);
  await admin.revokeApiKey({ id: world.apiKeyIds.at(-1)! });
  world.pageTokens.push((await admin.listApiKeys({ pageSize: 1 })).nextPageToken, (await admin.listApiKeys({ pageSize: 1, principal: producer!, includeRevoked: true })).nextPageToken);
  return world;
}
