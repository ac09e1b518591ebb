import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { JobState } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { CancelReason, ReportOutcome, WorkerService, type Lease, type LeaseJobsResponse } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { startTestServer } from "./support/server.js";

let server: JobwireServer;
let workers: Client<typeof WorkerService>;
let producer: JobwireClient;

beforeAll(async () => {
  server = await startTestServer({ cancelGraceMs: 1_000, fallbackPollMs: 1_000 });
  workers = createClient(WorkerService, createGrpcTransport({ baseUrl: server.url }));
  producer = createJobwireClient({ baseUrl: server.url });
});

/** A raw LeaseJobs stream, read message by message, as a worker without the SDK would. */
function openStream(queue: string, capacity: number) {
  const abort = new AbortController();
  const iterator = workers.leaseJobs({ workerName: "raw", queues: [queue], capacity }, { signal: abort.signal })[Symbol.asyncIterator]();
  onTestFinished(() => abort.abort());
  // A claim of several jobs arrives as one lease batch: hand its leases out one by one.
  const buffered: Lease[] = [];
  const next = async (): Promise<LeaseJobsResponse["message"]> => {
    const lease = buffered.shift();
    if (lease) return { case: "lease", value: lease };
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) throw new Error("stream ended");
      if (value.message.case === "leaseBatch") {
        const [first, ...rest] = value.message.value.leases;
        buffered.push(...rest);
        return { case: "lease", value: first! };
      }
      if (value.message.case !== "keepAlive") return value.message;
    }
  };
  return {
    close: () => abort.abort(),
    next,
    async lease(): Promise<Lease> {
      const message = await next();
      if (message.case !== "lease") throw new Error(`expected a lease, got ${message.case}`);
      return message.value;
    },
  };
}

async function eventsOf(jobId: string): Promise<string[]> {
  const result = await server.db.pool.query<{ type: string }>("SELECT type FROM job_event WHERE job_id = $1 ORDER BY id", [jobId]);
  return result.rows.map((row) => row.type);
}

const ref = (lease: Lease) => ({ jobId: lease.jobId, leaseToken: lease.leaseToken });

describe("WorkerService", () => {
  it("never has more leases outstanding on a stream than its capacity, and refills as leases end", async () => {
    await producer.enqueueBatch(Array.from({ length: 5 }, () => ({ queue: "capacity", kind: "k" })));
    const stream = openStream("capacity", 2);
    expect((await stream.next()).case).toBe("registered");
    const first = await stream.lease();
    const second = await stream.lease();
    const running = await server.db.pool.query("SELECT count(*)::int AS n FROM job WHERE queue = 'capacity' AND state = 'running'");
    expect(running.rows[0].n).toBe(2);
    await workers.completeJob({ lease: ref(first) });
    const third = await stream.lease();
    expect(new Set([first.jobId, second.jobId, third.jobId]).size).toBe(3);
    const after = await server.db.pool.query("SELECT count(*)::int AS n FROM job WHERE queue = 'capacity' AND state = 'running'");
    expect(after.rows[0].n).toBe(2);
  });

  it("fences a stale worker: after its lease expires and another worker completes the job, its completion is refused", async () => {
    const job = await producer.enqueue("fencing", "k", { n: 1 }, { leaseTimeoutMs: 1_000, retry: { initialBackoffMs: 0, maxBackoffMs: 0 } });
    const a = openStream("fencing", 1);
    const registered = await a.next();
    const leaseA = await a.lease();
    expect(leaseA.jobId).toBe(job.id);
    // A stays connected but stalls: it never heartbeats, and takes no new lease (draining).
    await workers.heartbeat({ workerId: registered.case === "registered" ? registered.value.workerId : "", draining: true });
    // The maintenance loop expires A's lease and the job returns.
    const b = openStream("fencing", 1);
    await b.next();
    const leaseB = await b.lease();
    expect(leaseB.jobId).toBe(job.id);
    expect(leaseB.attempt).toBe(2);
    expect(leaseB.leaseToken).toBeGreaterThan(leaseA.leaseToken);
    // A is told its lease is gone.
    const told = await a.next();
    expect(told.case).toBe("cancel");
    expect(told.case === "cancel" && told.value.reason).toBe(CancelReason.LEASE_LOST);
    await workers.completeJob({ lease: ref(leaseB), result: { kind: { case: "stringValue", value: "B" } } });
    const refused = ConnectError.from(await workers.completeJob({ lease: ref(leaseA) }).catch((e: unknown) => e));
    expect(refused.code).toBe(Code.FailedPrecondition);
    const done = await producer.getJob(job.id);
    expect(done.state).toBe(JobState.SUCCEEDED);
    expect(done.result?.kind).toEqual({ case: "stringValue", value: "B" });
    const events = await eventsOf(job.id);
    expect(events.slice(0, 4)).toEqual(["enqueued", "leased", "lease_expired", "retry_scheduled"]);
    expect(events.slice(-2)).toEqual(["leased", "succeeded"]);
  });

  it("answers a repeated CompleteJob or FailJob with the same lease OK, changing nothing", async () => {
    const [okId, failId] = await producer.enqueueBatch([
      { queue: "repeat", kind: "k" },
      { queue: "repeat", kind: "k", retry: { maxAttempts: 1 } },
    ]);
    const stream = openStream("repeat", 2);
    await stream.next();
    const leases = [await stream.lease(), await stream.lease()];
    const ok = leases.find((l) => l.jobId === okId)!;
    const fail = leases.find((l) => l.jobId === failId)!;
    await workers.completeJob({ lease: ref(ok) });
    await workers.completeJob({ lease: ref(ok) });
    const first = await workers.failJob({ lease: ref(fail), message: "boom" });
    const again = await workers.failJob({ lease: ref(fail), message: "boom" });
    expect(first.state).toBe(JobState.FAILED);
    expect(again.state).toBe(JobState.FAILED);
    expect((await eventsOf(okId!)).filter((t) => t === "succeeded")).toHaveLength(1);
    expect((await eventsOf(failId!)).filter((t) => t === "failed")).toHaveLength(1);
  });

  it("releases a worker's leases at once when its stream closes, so another worker gets the job", async () => {
    const job = await producer.enqueue("release", "k");
    const a = openStream("release", 1);
    await a.next();
    const leaseA = await a.lease();
    a.close();
    const b = openStream("release", 1);
    await b.next();
    const leaseB = await b.lease();
    expect(leaseB.jobId).toBe(job.id);
    expect(leaseB.attempt).toBe(2);
    expect(leaseB.lastError?.message).toContain("stream closed");
    const refused = ConnectError.from(await workers.completeJob({ lease: ref(leaseA) }).catch((e: unknown) => e));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(await eventsOf(job.id)).toEqual(["enqueued", "leased", "released", "retry_scheduled", "leased"]);
  });

  it("tells a heartbeating worker which leases were cancelled and which were lost", async () => {
    const [cancelId, lostId] = await producer.enqueueBatch([{ queue: "heartbeat", kind: "k" }, { queue: "heartbeat", kind: "k" }]);
    const stream = openStream("heartbeat", 2);
    await stream.next();
    const leases = [await stream.lease(), await stream.lease()];
    const toCancel = leases.find((l) => l.jobId === cancelId)!;
    const toLose = leases.find((l) => l.jobId === lostId)!;
    await producer.cancelJob(cancelId!, "stop please");
    const pushed = await stream.next();
    expect(pushed.case === "cancel" && pushed.value.reason).toBe(CancelReason.CANCELLED);
    expect(pushed.case === "cancel" && pushed.value.message).toBe("stop please");
    const stale = { jobId: toLose.jobId, leaseToken: toLose.leaseToken + 1000n };
    const answer = await workers.heartbeat({ leases: [ref(toCancel), ref(toLose), stale] });
    expect(answer.extended.map((e) => e.lease?.jobId).sort()).toEqual([cancelId, lostId].sort());
    expect(answer.cancelled.map((c) => c.jobId)).toEqual([cancelId]);
    expect(answer.lost).toEqual([expect.objectContaining({ jobId: lostId, leaseToken: stale.leaseToken })]);
    // The worker stops and reports: the job is cancelled, not retried.
    const reported = await workers.failJob({ lease: ref(toCancel), message: "stopped", cancelled: true });
    expect(reported.state).toBe(JobState.CANCELLED);
    expect((await eventsOf(cancelId!)).filter((t) => t === "cancelled")).toHaveLength(1);
  });

  it("answers each completion of one call on its own, when a job is named twice with an old lease and its current one", async () => {
    const [id, other] = await producer.enqueueBatch([{ queue: "complete-twice", kind: "k" }, { queue: "complete-twice", kind: "k" }]);
    const stream = openStream("complete-twice", 2);
    await stream.next();
    const leases = [await stream.lease(), await stream.lease()];
    const lease = leases.find((l) => l.jobId === id)!;
    const stale = { jobId: id!, leaseToken: lease.leaseToken + 1000n };
    const answer = await workers.completeJobs({
      completions: [
        { lease: stale },
        { lease: ref(lease), result: { kind: { case: "stringValue", value: "done" } } },
        { lease: ref(lease), result: { kind: { case: "stringValue", value: "again" } } },
        { lease: ref(leases.find((l) => l.jobId === other)!) },
      ],
    });
    expect(answer.outcomes).toEqual([ReportOutcome.LEASE_LOST, ReportOutcome.APPLIED, ReportOutcome.REPEATED, ReportOutcome.APPLIED]);
    const { rows } = await server.db.pool.query<{ state: string; result: unknown }>("SELECT state, result FROM job WHERE id = $1", [id]);
    expect(rows[0]).toEqual({ state: "succeeded", result: "done" });
    expect((await eventsOf(id!)).filter((t) => t === "succeeded")).toHaveLength(1);
  });

  it("revokes the lease of a worker that ignores a cancel past the grace period", async () => {
    const job = await producer.enqueue("revoke", "k", null, { phases: ["only"] });
    const stream = openStream("revoke", 1);
    await stream.next();
    const lease = await stream.lease();
    await producer.cancelJob(job.id);
    expect((await stream.next()).case).toBe("cancel");
    // The worker keeps going; after JOBWIRE_CANCEL_GRACE_MS the server cancels the job.
    const revoked = await stream.next();
    expect(revoked.case === "cancel" && revoked.value.reason).toBe(CancelReason.LEASE_LOST);
    const cancelled = await producer.getJob(job.id);
    expect(cancelled.state).toBe(JobState.CANCELLED);
    expect(cancelled.phases[0]?.state).toBe(3);
    const late = ConnectError.from(await workers.completeJob({ lease: ref(lease) }).catch((e: unknown) => e));
    expect(late.code).toBe(Code.FailedPrecondition);
    expect((await eventsOf(job.id)).filter((t) => t === "cancelled")).toHaveLength(1);
  });

  it("a completion that commits before a cancel request wins: the job succeeds and the cancel is refused", async () => {
    const job = await producer.enqueue("race", "k");
    const stream = openStream("race", 1);
    await stream.next();
    const lease = await stream.lease();
    await workers.completeJob({ lease: ref(lease) });
    const refused = ConnectError.from(await producer.cancelJob(job.id).catch((e: unknown) => e));
    expect(refused.code).toBe(Code.FailedPrecondition);
    const events = await eventsOf(job.id);
    expect(events.filter((t) => t === "succeeded" || t === "cancelled")).toEqual(["succeeded"]);
  });

  it("refuses bad worker requests with INVALID_ARGUMENT naming the field", async () => {
    const bad = async (promise: Promise<unknown>) => ConnectError.from(await promise.then(() => undefined, (e: unknown) => e));
    const noQueues = workers.leaseJobs({ queues: [], capacity: 1 })[Symbol.asyncIterator]().next();
    expect((await bad(noQueues)).rawMessage).toMatch(/^queues /);
    const zeroCapacity = workers.leaseJobs({ queues: ["q"], capacity: 0 })[Symbol.asyncIterator]().next();
    expect((await bad(zeroCapacity)).rawMessage).toMatch(/^capacity /);
    // The prefetch buffer is part of the capacity, and at least one slot must run jobs.
    const wholePrefetch = workers.leaseJobs({ queues: ["q"], capacity: 2, prefetch: 2 })[Symbol.asyncIterator]().next();
    expect((await bad(wholePrefetch)).rawMessage).toMatch(/^prefetch /);
    const negativePrefetch = workers.leaseJobs({ queues: ["q"], capacity: 2, prefetch: -1 })[Symbol.asyncIterator]().next();
    expect((await bad(negativePrefetch)).rawMessage).toMatch(/^prefetch /);
    expect((await bad(workers.completeJob({}))).rawMessage).toBe("lease is required");
    const badToken = await bad(workers.completeJob({ lease: { jobId: "01930000-0000-7000-8000-000000000000", leaseToken: -1n } }));
    expect(badToken.code).toBe(Code.InvalidArgument);
    expect(badToken.rawMessage).toMatch(/^lease.lease_token /);
    const unknown = await bad(workers.completeJob({ lease: { jobId: "01930000-0000-7000-8000-000000000000", leaseToken: 1n } }));
    expect(unknown.code).toBe(Code.NotFound);
    const noMessage = await bad(workers.failJob({ lease: { jobId: "01930000-0000-7000-8000-000000000000", leaseToken: 1n } }));
    expect(noMessage.rawMessage).toBe("message is required");
  });
});

describe("scheduling", () => {
  it("leases a delayed job only once its run_at has passed, woken by the due time", async () => {
    const job = await producer.enqueue("delayed", "k", null, { delayMs: 300 });
    expect(job.state).toBe(JobState.SCHEDULED);
    const stream = openStream("delayed", 1);
    await stream.next();
    const lease = await stream.lease();
    expect(lease.jobId).toBe(job.id);
    const row = await server.db.pool.query("SELECT started_at >= run_at AS ok FROM job WHERE id = $1", [job.id]);
    expect(row.rows[0].ok).toBe(true);
  });
});
