import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { createJobwireClient, JobState, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

// Two replicas on one database: a key is held in Postgres, so it holds across replicas.
let replica1: JobwireServer;
let replica2: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;
let client2: ReturnType<typeof grpcQueueClient>;
let sdk: JobwireClient;

beforeAll(async () => {
  const databaseUrl = await createTestDatabase();
  // Retention runs often (to show that it frees keys); nothing here finishes days ago unless a test says so.
  const config = { databaseUrl, retentionMs: 86_400_000, retentionIntervalMs: 50, fallbackPollMs: 100 };
  replica1 = await startTestServer(config);
  replica2 = await startTestServer(config);
  client = grpcQueueClient(replica1.url);
  client2 = grpcQueueClient(replica2.url);
  sdk = createJobwireClient({ baseUrl: replica1.url });
});

/** A JobSpec as the generated client takes it. */
type Spec = Exclude<NonNullable<Parameters<typeof client.enqueue>[0]["job"]>, { $typeName: string }>;

/** A job of kind "charge" in `queue` with `idempotencyKey` (undefined: none). */
const spec = (queue: string, idempotencyKey: string | undefined, extra: Partial<Spec> = {}): Spec => ({
  queue,
  kind: "charge",
  idempotencyKey,
  ...extra,
});

const hour = { seconds: 3600n, nanos: 0 };
const json = (value: JsonValue) => fromJson(ValueSchema, value);

async function count(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await replica1.db.pool.query<{ n: number }>(sql, params);
  return rows[0]!.n;
}

const jobsWithKey = (queue: string, key: string) => count("SELECT count(*)::int AS n FROM job WHERE queue = $1 AND idempotency_key = $2", [queue, key]);
const jobsIn = (queue: string) => count("SELECT count(*)::int AS n FROM job WHERE queue = $1", [queue]);
const eventsIn = (queue: string) => count("SELECT count(*)::int AS n FROM job_event WHERE queue = $1", [queue]);

async function holderOf(queue: string, key: string): Promise<string | undefined> {
  const { rows } = await replica1.db.pool.query<{ job_id: string }>("SELECT job_id FROM idempotency_key WHERE queue = $1 AND key = $2", [queue, key]);
  return rows[0]?.job_id;
}

/** Moves a job into a finished state as if it had finished `minutesAgo` minutes ago. */
async function finishedMinutesAgo(jobId: string, minutesAgo: number): Promise<void> {
  await replica1.db.pool.query(
    `UPDATE job SET state = 'cancelled',
                    created_at = clock_timestamp() - ($2::int + 1) * interval '1 minute',
                    finished_at = clock_timestamp() - $2::int * interval '1 minute'
     WHERE id = $1`,
    [jobId, minutesAgo],
  );
}

describe("idempotency keys on Enqueue", () => {
  it("100 concurrent identical enqueues create exactly one job, and all 100 callers get its id", async () => {
    const request = { job: spec("payments", "order-1001", { payload: json({ amount: 42 }) }) };

    const responses = await Promise.all(Array.from({ length: 100 }, () => client.enqueue(request)));

    const ids = new Set(responses.map((response) => response.job!.id));
    expect(ids.size).toBe(1);
    expect(responses.filter((response) => !response.deduplicated)).toHaveLength(1);
    expect(responses.every((response) => response.job!.idempotencyKey === "order-1001")).toBe(true);
    expect(await jobsWithKey("payments", "order-1001")).toBe(1);
    expect(await holderOf("payments", "order-1001")).toBe([...ids][0]);
    expect(await count("SELECT count(*)::int AS n FROM job_event WHERE job_id = $1", [[...ids][0]])).toBe(1);
  });

  it("100 concurrent identical enqueues split over two replicas create exactly one job", async () => {
    const request = { job: spec("payments", "order-1002") };

    const responses = await Promise.all(Array.from({ length: 100 }, (_, n) => (n % 2 === 0 ? client : client2).enqueue(request)));

    expect(new Set(responses.map((response) => response.job!.id)).size).toBe(1);
    expect(responses.filter((response) => !response.deduplicated)).toHaveLength(1);
    expect(await jobsWithKey("payments", "order-1002")).toBe(1);
  });

  it("returns the existing job as it is now, ignoring a different payload, kind or priority", async () => {
    const { job: first, deduplicated: firstDeduplicated } = await client.enqueue({ job: spec("mismatch", "k", { payload: json({ v: 1 }) }) });
    await client.cancelJob({ id: first!.id, reason: "changed my mind" });

    const { job: again, deduplicated } = await client.enqueue({ job: spec("mismatch", "k", { kind: "other", priority: 9, payload: json({ v: 2 }) }) });

    expect(firstDeduplicated).toBe(false);
    expect(deduplicated).toBe(true);
    expect(again!.id).toBe(first!.id);
    expect(again!.kind).toBe("charge");
    expect(toJson(ValueSchema, again!.payload!)).toEqual({ v: 1 });
    expect(again!.state).toBe(JobState.CANCELLED);
    expect(await jobsIn("mismatch")).toBe(1);
  });

  it("scopes keys to their queue, and leaves jobs without a key alone", async () => {
    const a = await client.enqueue({ job: spec("scope-a", "same") });
    const b = await client.enqueue({ job: spec("scope-b", "same") });
    const plain1 = await client.enqueue({ job: spec("scope-a", undefined) });
    const plain2 = await client.enqueue({ job: spec("scope-a", undefined) });

    expect(a.job!.id).not.toBe(b.job!.id);
    expect(b.deduplicated).toBe(false);
    expect(plain1.job!.id).not.toBe(plain2.job!.id);
    expect([plain1.deduplicated, plain2.deduplicated]).toEqual([false, false]);
    expect(plain1.job!.idempotencyKey).toBe("");
    expect((await client.getJob({ id: a.job!.id })).job!.idempotencyKey).toBe("same");
  });

  it("a deduplicated enqueue writes nothing: no job, no event, no queue change", async () => {
    const { job } = await client.enqueue({ job: spec("quiet", "k", { schedule: { case: "delay", value: hour } }) });
    const before = { jobs: await jobsIn("quiet"), events: await eventsIn("quiet") };

    const again = await client.enqueue({ job: spec("quiet", "k") });

    expect(again.deduplicated).toBe(true);
    expect(again.job!.state).toBe(JobState.SCHEDULED);
    expect(again.job!.id).toBe(job!.id);
    expect({ jobs: await jobsIn("quiet"), events: await eventsIn("quiet") }).toEqual(before);
  });

  it("the SDK's enqueueOnce says whether it deduplicated, and enqueue with a key returns the holder", async () => {
    const first = await sdk.enqueueOnce("sdk-keys", "charge", "invoice-7", { amount: 1 });
    const second = await sdk.enqueueOnce("sdk-keys", "charge", "invoice-7", { amount: 2 });
    const third = await sdk.enqueue("sdk-keys", "charge", { amount: 3 }, { idempotencyKey: "invoice-7" });

    expect(first.deduplicated).toBe(false);
    expect(second).toMatchObject({ deduplicated: true, job: { id: first.job.id } });
    expect(third.id).toBe(first.job.id);
  });
});

describe("the idempotency window after a job finished", () => {
  it("by default (24 hours) a finished job still holds its key", async () => {
    const { job } = await client.enqueue({ job: spec("window-default", "k") });
    await client.cancelJob({ id: job!.id });

    const again = await client.enqueue({ job: spec("window-default", "k") });

    expect(again.deduplicated).toBe(true);
    expect(again.job!.id).toBe(job!.id);
  });

  it("an unfinished job holds its key whatever the window, even 0", async () => {
    await client.updateQueue({ name: "window-zero-pending", defaults: { idempotencyWindow: { seconds: 0n, nanos: 0 } } });
    const { job } = await client.enqueue({ job: spec("window-zero-pending", "k") });

    const again = await client.enqueue({ job: spec("window-zero-pending", "k") });

    expect(again).toMatchObject({ deduplicated: true, job: { id: job!.id, state: JobState.PENDING } });
  });

  it("a window of 0 frees the key when the job finishes: the next enqueue creates a job, and the old one keeps its key", async () => {
    const { queue } = await client.updateQueue({ name: "window-zero", defaults: { idempotencyWindow: { seconds: 0n, nanos: 0 } } });
    expect(queue!.defaults!.idempotencyWindow).toMatchObject({ seconds: 0n, nanos: 0 });
    const { job: old } = await client.enqueue({ job: spec("window-zero", "k") });
    await client.cancelJob({ id: old!.id });

    const fresh = await client.enqueue({ job: spec("window-zero", "k") });
    const again = await client.enqueue({ job: spec("window-zero", "k") });

    expect(fresh.deduplicated).toBe(false);
    expect(fresh.job!.id).not.toBe(old!.id);
    expect(fresh.job!.state).toBe(JobState.PENDING);
    expect(again).toMatchObject({ deduplicated: true, job: { id: fresh.job!.id } });
    expect(await holderOf("window-zero", "k")).toBe(fresh.job!.id);
    expect((await client.getJob({ id: old!.id })).job!.idempotencyKey).toBe("k");
  });

  it("the key is free once the queue's window has passed since the job finished, and held before", async () => {
    await client.updateQueue({ name: "window-hour", defaults: { idempotencyWindow: hour } });
    const { job: longAgo } = await client.enqueue({ job: spec("window-hour", "old") });
    const { job: recently } = await client.enqueue({ job: spec("window-hour", "recent") });
    await finishedMinutesAgo(longAgo!.id, 61);
    await finishedMinutesAgo(recently!.id, 59);

    const afterWindow = await client.enqueue({ job: spec("window-hour", "old") });
    const withinWindow = await client.enqueue({ job: spec("window-hour", "recent") });

    expect(afterWindow.deduplicated).toBe(false);
    expect(afterWindow.job!.id).not.toBe(longAgo!.id);
    expect(withinWindow).toMatchObject({ deduplicated: true, job: { id: recently!.id } });
  });

  it("the window is read when an enqueue meets the key, so shrinking it applies to jobs already finished", async () => {
    await client.updateQueue({ name: "window-shrink", defaults: { idempotencyWindow: hour } });
    const { job } = await client.enqueue({ job: spec("window-shrink", "k") });
    await client.cancelJob({ id: job!.id });
    expect((await client.enqueue({ job: spec("window-shrink", "k") })).deduplicated).toBe(true);

    await client.updateQueue({ name: "window-shrink", defaults: { idempotencyWindow: { seconds: 0n, nanos: 0 } } });

    expect((await client.enqueue({ job: spec("window-shrink", "k") })).deduplicated).toBe(false);
  });

  it("retention deleting the holding job frees its key, even within a long window", async () => {
    await client.updateQueue({ name: "window-retention", defaults: { idempotencyWindow: { seconds: BigInt(3650 * 86_400), nanos: 0 } } });
    const { job } = await client.enqueue({ job: spec("window-retention", "k") });
    await finishedMinutesAgo(job!.id, 2 * 24 * 60);

    await waitFor("retention to delete the job and its key", async () => (await holderOf("window-retention", "k")) === undefined && (await jobsIn("window-retention")) === 0);
    const fresh = await client.enqueue({ job: spec("window-retention", "k") });

    expect(fresh.deduplicated).toBe(false);
    expect(fresh.job!.id).not.toBe(job!.id);
  });
});

describe("idempotency keys in EnqueueBatch", () => {
  it("returns the holder's id for a held key and for a key repeated within the batch, flagged per job", async () => {
    const { job: existing } = await client.enqueue({ job: spec("batch-keys", "held") });
    const before = { jobs: await jobsIn("batch-keys"), events: await eventsIn("batch-keys") };

    const { jobIds, deduplicated } = await client.enqueueBatch({
      jobs: [spec("batch-keys", "new-1"), spec("batch-keys", undefined), spec("batch-keys", "held"), spec("batch-keys", "new-1"), spec("batch-keys", "new-2")],
    });

    expect(deduplicated).toEqual([false, false, true, true, false]);
    expect(jobIds[2]).toBe(existing!.id);
    expect(jobIds[3]).toBe(jobIds[0]);
    expect(new Set(jobIds).size).toBe(4);
    expect({ jobs: await jobsIn("batch-keys"), events: await eventsIn("batch-keys") }).toEqual({ jobs: before.jobs + 3, events: before.events + 3 });
    expect(await holderOf("batch-keys", "new-1")).toBe(jobIds[0]);
    expect(await holderOf("batch-keys", "new-2")).toBe(jobIds[4]);
  });

  it("a keyless batch answers one false per job", async () => {
    const { jobIds, deduplicated } = await client.enqueueBatch({ jobs: [spec("batch-plain", undefined), spec("batch-plain", undefined)] });
    expect(jobIds).toHaveLength(2);
    expect(deduplicated).toEqual([false, false]);
  });

  it("stays atomic: when Postgres refuses one job, no job is created and no key is claimed", async () => {
    await replica1.db.pool.query(`
      CREATE FUNCTION test_refuse_kind() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.data->>'kind' = 'refused' THEN RAISE EXCEPTION 'refused by test trigger' USING ERRCODE = 'check_violation'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_refuse_kind BEFORE INSERT ON job_event FOR EACH ROW EXECUTE FUNCTION test_refuse_kind();
    `);
    let error;
    try {
      error = await failureOf(client.enqueueBatch({ jobs: [spec("batch-atomic", "a"), spec("batch-atomic", "b", { kind: "refused" })] }));
    } finally {
      await replica1.db.pool.query("DROP TRIGGER test_refuse_kind ON job_event; DROP FUNCTION test_refuse_kind()");
    }

    expect(error.code).toBe(Code.Internal);
    expect(await jobsIn("batch-atomic")).toBe(0);
    expect(await count("SELECT count(*)::int AS n FROM idempotency_key WHERE queue = 'batch-atomic'", [])).toBe(0);
    const { deduplicated } = await client.enqueueBatch({ jobs: [spec("batch-atomic", "a"), spec("batch-atomic", "b")] });
    expect(deduplicated).toEqual([false, false]);
  });

  it("a batch refused by validation claims no key and creates nothing", async () => {
    const error = await failureOf(client.enqueueBatch({ jobs: [spec("batch-invalid", "a"), spec("batch-invalid", "b", { priority: 5000 })] }));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^jobs\[1\]\.priority /);
    expect(await holderOf("batch-invalid", "a")).toBeUndefined();
  });

  it("concurrent batches over overlapping keys, on both replicas, create one job per key and agree on every id", async () => {
    const keys = Array.from({ length: 50 }, (_, n) => `k${n}`);
    const shuffled = (seed: number) => [...keys].sort((a, b) => ((a.charCodeAt(1) * seed) % 7) - ((b.charCodeAt(1) * seed) % 7) || a.localeCompare(b));

    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, n) =>
        (n % 2 === 0 ? client : client2).enqueueBatch({ jobs: shuffled(n + 1).map((key) => spec("batch-race", key, { payload: json({ key }) })) }),
      ),
    );

    expect(await jobsIn("batch-race")).toBe(50);
    const idOfKey = new Map<string, Set<string>>();
    answers.forEach((answer, n) =>
      shuffled(n + 1).forEach((key, index) => idOfKey.set(key, (idOfKey.get(key) ?? new Set()).add(answer.jobIds[index]!))),
    );
    expect([...idOfKey.values()].every((ids) => ids.size === 1)).toBe(true);
    expect(answers.flatMap((answer) => answer.deduplicated).filter((d) => !d)).toHaveLength(50);
  });
});

describe("idempotency key validation", () => {
  it.each([
    ["an empty key that is set", "", /^job\.idempotency_key must not be empty when set$/],
    ["a key longer than 256 characters", "x".repeat(257), /^job\.idempotency_key must be at most 256 characters$/],
    ["a key with a NUL character", "a\u0000b", /^job\.idempotency_key must not contain NUL characters$/],
  ])("refuses %s, naming the field, and writes nothing", async (_, key, message) => {
    const error = await failureOf(client.enqueue({ job: spec("validation", key) }));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(message);
    expect(await jobsIn("validation")).toBe(0);
  });

  it("accepts a key of exactly 256 characters", async () => {
    const { job } = await client.enqueue({ job: spec("validation-ok", "y".repeat(256)) });
    expect(job!.idempotencyKey).toHaveLength(256);
  });

  it("names the batch entry of a bad key", async () => {
    const error = await failureOf(client.enqueueBatch({ jobs: [spec("validation", "fine"), spec("validation", "")] }));
    expect(error.rawMessage).toMatch(/^jobs\[1\]\.idempotency_key must not be empty when set$/);
    expect(await holderOf("validation", "fine")).toBeUndefined();
  });

  it("tells an empty key sent as JSON over Connect from an absent one", async () => {
    const empty = await postJson(replica1.url, "jobwire.v1.QueueService/Enqueue", { job: { queue: "validation", kind: "k", idempotencyKey: "" } });
    const absent = await postJson(replica1.url, "jobwire.v1.QueueService/Enqueue", { job: { queue: "validation-json", kind: "k" } });

    expect(empty.status).toBe(400);
    expect(empty.body.message).toBe("job.idempotency_key must not be empty when set");
    expect(absent.status).toBe(200);
    expect(absent.body.deduplicated ?? false).toBe(false);
  });

  it("refuses a queue idempotency window out of range, naming the field", async () => {
    const tooLong = await failureOf(client.updateQueue({ name: "validation", defaults: { idempotencyWindow: { seconds: BigInt(3651 * 86_400), nanos: 0 } } }));
    const negative = await failureOf(client.updateQueue({ name: "validation", defaults: { idempotencyWindow: { seconds: -1n, nanos: 0 } } }));

    expect(tooLong.rawMessage).toMatch(/^defaults\.idempotency_window /);
    expect(negative.rawMessage).toMatch(/^defaults\.idempotency_window must not be negative$/);
  });
});
