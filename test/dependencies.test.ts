import { Code } from "@connectrpc/connect";
import { JobState, NonRetryableError, Worker, createJobwireClient, type BatchJob, type JobwireClient } from "@jobwire/sdk";
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

/** A worker for `queue` whose `step` jobs succeed, or fail for good when their payload says `fail`. */
async function startWorker(queue: string, ran: string[] = []): Promise<string[]> {
  const worker = new Worker({
    baseUrl: server.url,
    queues: [queue],
    concurrency: 4,
    handlers: {
      step: async (payload: { name: string; fail?: boolean }) => {
        ran.push(payload.name);
        if (payload.fail) throw new NonRetryableError(`${payload.name} broke`);
        return { done: payload.name };
      },
    },
  });
  workers.push(worker);
  await worker.start();
  return ran;
}

function step(queue: string, name: string, extra: Partial<BatchJob> = {}): BatchJob {
  return { queue, kind: "step", ref: name, payload: { name }, ...extra };
}

async function statesOf(ids: readonly string[]): Promise<JobState[]> {
  return Promise.all(ids.map(async (id) => (await client.getJob(id)).state));
}

async function settled(ids: readonly string[]): Promise<JobState[]> {
  const finished = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]);
  return waitFor(`jobs ${ids.join(", ")} to finish`, async () => {
    const states = await statesOf(ids);
    return states.every((state) => finished.has(state)) && states;
  });
}

async function eventTypes(jobId: string): Promise<string[]> {
  const { rows } = await server.db.pool.query<{ type: string }>("SELECT type FROM job_event WHERE job_id = $1 ORDER BY id", [jobId]);
  return rows.map((row) => row.type);
}

async function rowCounts(): Promise<{ jobs: number; batches: number; edges: number }> {
  const { rows } = await server.db.pool.query<{ jobs: number; batches: number; edges: number }>(
    "SELECT (SELECT count(*)::int FROM job) AS jobs, (SELECT count(*)::int FROM batch) AS batches, (SELECT count(*)::int FROM job_dependency) AS edges",
  );
  return rows[0]!;
}

describe("job dependencies", () => {
  it("keep children BLOCKED until their parents finish, then run them (a diamond with one failing branch)", async () => {
    const q = "dag-diamond";
    const { jobIds } = await client.createBatch([
      step(q, "a"),
      step(q, "b", { dependsOn: [{ ref: "a" }], payload: { name: "b", fail: true } }),
      step(q, "c", { dependsOn: [{ ref: "a" }] }),
      step(q, "d", { dependsOn: [{ ref: "b" }, { ref: "c" }] }),
    ]);
    const [a, b, c, d] = jobIds as [string, string, string, string];
    expect(await statesOf([a, b, c, d])).toEqual([JobState.PENDING, JobState.BLOCKED, JobState.BLOCKED, JobState.BLOCKED]);
    const ran = await startWorker(q);
    expect(await settled(jobIds)).toEqual([JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED, JobState.CANCELLED]);
    expect(ran[0]).toBe("a");
    expect(ran).not.toContain("d");
    const cancelled = await client.getJob(d);
    expect(cancelled.cancelReason).toBe(`dependency ${b} failed`);
    expect(cancelled.dependencies.map((dep) => dep.jobId).sort()).toEqual([b, c].sort());
    expect((await eventTypes(d)).filter((type) => type === "cancelled")).toHaveLength(1);
    expect(await eventTypes(c)).toEqual(["enqueued", "unblocked", "leased", "succeeded"]);
  });

  it("cancel everything downstream of a failed build, level by level (a CI pipeline)", async () => {
    const q = "dag-ci";
    const { jobIds } = await client.createBatch([
      step(q, "build", { payload: { name: "build", fail: true } }),
      step(q, "unit", { dependsOn: [{ ref: "build" }] }),
      step(q, "integration", { dependsOn: [{ ref: "build" }] }),
      step(q, "package", { dependsOn: [{ ref: "unit" }, { ref: "integration" }] }),
      step(q, "deploy", { dependsOn: [{ ref: "package" }] }),
    ]);
    const ran = await startWorker(q);
    expect(await settled(jobIds)).toEqual([JobState.FAILED, JobState.CANCELLED, JobState.CANCELLED, JobState.CANCELLED, JobState.CANCELLED]);
    expect(ran).toEqual(["build"]);
    const [build, unit, , pkg, deploy] = jobIds as string[];
    expect((await client.getJob(unit!)).cancelReason).toBe(`dependency ${build} failed`);
    expect((await client.getJob(deploy!)).cancelReason).toBe(`dependency ${pkg} cancelled`);
  });

  it("run a child on a requires_success=false edge after its parent was cancelled", async () => {
    const q = "dag-optional";
    const { jobIds } = await client.createBatch([
      step(q, "parent", { delayMs: 3_600_000 }),
      step(q, "cleanup", { dependsOn: [{ ref: "parent", requiresSuccess: false }] }),
      step(q, "strict", { dependsOn: [{ ref: "parent" }] }),
    ]);
    const [parent, cleanup, strict] = jobIds as [string, string, string];
    await startWorker(q);
    await client.cancelJob(parent, "not today");
    expect(await settled([cleanup, strict])).toEqual([JobState.SUCCEEDED, JobState.CANCELLED]);
    expect((await client.getJob(cleanup)).dependencies).toEqual([expect.objectContaining({ jobId: parent, requiresSuccess: false })]);
  });

  it("resume a child paused while blocked to where its finished parents left it", async () => {
    const q = "dag-paused";
    const { jobIds } = await client.createBatch([
      step(q, "parent", { delayMs: 3_600_000 }),
      step(q, "child", { dependsOn: [{ ref: "parent", requiresSuccess: false }] }),
    ]);
    const [parent, child] = jobIds as [string, string];
    expect((await client.pauseJob(child)).state).toBe(JobState.PAUSED);
    await client.cancelJob(parent);
    await waitFor("the resolver to settle the parent", async () => {
      const { rows } = await server.db.pool.query("SELECT 1 FROM job WHERE id = $1 AND NOT graph_pending", [parent]);
      return rows.length === 1;
    });
    expect((await client.getJob(child)).state).toBe(JobState.PAUSED);
    expect(await eventTypes(child)).toContain("unblocked");
    await startWorker(q);
    expect((await client.resumeJob(child)).state).toBe(JobState.PENDING);
    expect(await settled([child])).toEqual([JobState.SUCCEEDED]);
  });

  it("wait for an existing job named by id, in Enqueue as in EnqueueBatch", async () => {
    const q = "dag-existing";
    const parent = await client.enqueue(q, "step", { name: "parent" });
    const child = await client.enqueue(q, "step", { name: "child" }, { dependsOn: [{ jobId: parent.id }] });
    expect(child.state).toBe(JobState.BLOCKED);
    expect(child.dependencies.map((d) => [d.jobId, d.requiresSuccess])).toEqual([[parent.id, true]]);
    await startWorker(q);
    expect(await settled([parent.id, child.id])).toEqual([JobState.SUCCEEDED, JobState.SUCCEEDED]);
    // A parent that already succeeded lets a new child run at once.
    const late = await client.enqueue(q, "step", { name: "late" }, { dependsOn: [{ jobId: parent.id }] });
    expect(await settled([late.id])).toEqual([JobState.SUCCEEDED]);
  });

  it("walk dead ends upward when opted in, stopping at barriers and at parents still needed", async () => {
    const q = "dag-dead-end";
    const later = { delayMs: 3_600_000 };
    const { jobIds } = await client.createBatch([
      step(q, "root", { ...later, barrier: true }),
      step(q, "fetch", { ...later, dependsOn: [{ ref: "root" }] }),
      step(q, "shared", { ...later }),
      step(q, "report", { ...later, dependsOn: [{ ref: "fetch" }, { ref: "shared" }], cancelUnneededParents: true }),
      step(q, "other", { ...later, dependsOn: [{ ref: "shared" }] }),
    ]);
    const [root, fetch, shared, report, other] = jobIds as string[];
    await client.cancelJob(report!, "report dropped");
    await waitFor("fetch to be cancelled as unneeded", async () => (await client.getJob(fetch!)).state === JobState.CANCELLED);
    expect((await client.getJob(fetch!)).cancelReason).toMatch(/no longer needed/);
    // Its graph has settled: the barrier and the parent still needed by `other` stay.
    await waitFor("the resolver to settle fetch", async () => {
      const { rows } = await server.db.pool.query("SELECT 1 FROM job WHERE id = $1 AND NOT graph_pending", [fetch]);
      return rows.length === 1;
    });
    expect(await statesOf([root!, shared!, other!])).toEqual([JobState.SCHEDULED, JobState.SCHEDULED, JobState.BLOCKED]);
  });

  it("does not walk dead ends for jobs that did not opt in", async () => {
    const q = "dag-no-walk";
    const { jobIds } = await client.createBatch([step(q, "p", { delayMs: 3_600_000 }), step(q, "c", { dependsOn: [{ ref: "p" }] })]);
    const [p, c] = jobIds as [string, string];
    await client.cancelJob(c);
    await waitFor("the resolver to settle the child", async () => {
      const { rows } = await server.db.pool.query("SELECT 1 FROM job WHERE id = $1 AND NOT graph_pending", [c]);
      return rows.length === 1;
    });
    expect((await client.getJob(p)).state).toBe(JobState.SCHEDULED);
  });

  it("reject duplicate and unknown references, cycles and unknown parents, naming the job, and insert nothing", async () => {
    const q = "dag-invalid";
    const before = await rowCounts();
    const cases: { jobs: BatchJob[]; field: RegExp }[] = [
      { jobs: [step(q, "a"), step(q, "a")], field: /^jobs\[1\]\.ref duplicates the ref of jobs\[0\]/ },
      { jobs: [step(q, "a"), step(q, "b", { dependsOn: [{ ref: "zzz" }] })], field: /^jobs\[1\]\.depends_on\[0\]\.ref names no job of this request/ },
      { jobs: [step(q, "a", { dependsOn: [{ ref: "b" }] }), step(q, "b", { dependsOn: [{ ref: "a" }] })], field: /^jobs\[0\]\.depends_on forms a dependency cycle: a -> b -> a/ },
      { jobs: [step(q, "a", { dependsOn: [{ ref: "a" }] })], field: /^jobs\[0\]\.depends_on forms a dependency cycle/ },
      { jobs: [step(q, "a"), step(q, "b", { dependsOn: [{ ref: "a" }, { ref: "a" }] })], field: /^jobs\[1\]\.depends_on\[1\] repeats a parent/ },
      {
        jobs: [step(q, "a"), step(q, "b", { dependsOn: [{ jobId: "0190c0de-0000-7000-8000-000000000000" }] })],
        field: /^jobs\[1\]\.depends_on\[0\]\.job_id names no existing job/,
      },
      { jobs: [step(q, "a", { dependsOn: [{ jobId: "not-a-uuid" }] })], field: /^jobs\[0\]\.depends_on\[0\]\.job_id must be a job id/ },
      { jobs: [step(q, "bad ref!")], field: /^jobs\[0\]\.ref must be/ },
    ];
    for (const { jobs, field } of cases) {
      const error = await failureOf(client.createBatch(jobs));
      expect(error.code, String(field)).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(field);
    }
    const single = await failureOf(client.raw.enqueue({ job: { queue: q, kind: "step", ref: "x" } }));
    expect(single.rawMessage).toMatch(/^job\.ref applies only to the jobs of EnqueueBatch/);
    const singleRef = await failureOf(client.raw.enqueue({ job: { queue: q, kind: "step", dependsOn: [{ parent: { case: "ref", value: "x" } }] } }));
    expect(singleRef.rawMessage).toMatch(/^job\.depends_on\[0\]\.ref names no job of this request/);
    expect(await rowCounts()).toEqual(before);
  });
});
