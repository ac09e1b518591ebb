import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { JobSpecSchema, JobState, RetryPolicySchema, type JobSpec } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { startTestServer } from "./support/server.js";
import { failureOf } from "./support/failure-of.js";

let server: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;

beforeAll(async () => {
  server = await startTestServer();
  client = grpcQueueClient(server.url);
});

/** `count` valid specs in `queue`, each carrying its index in payload and metadata. */
function specs(queue: string, count: number, extra: (index: number) => Omit<MessageInitShape<typeof JobSpecSchema>, "$typeName"> = () => ({})): JobSpec[] {
  return Array.from({ length: count }, (_, index) => create(JobSpecSchema, {
    queue,
    kind: "batch-item",
    payload: { kind: { case: "structValue", value: { fields: { index: { kind: { case: "numberValue", value: index } } } } } },
    metadata: { index: String(index) },
    ...extra(index),
  }));
}

/** Row counts of every table an enqueue writes to. */
async function rowCounts(): Promise<{ job: number; job_phase: number; job_event: number; queue: number }> {
  const { rows } = await server.db.pool.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM job) AS job, (SELECT count(*) FROM job_phase) AS job_phase,
            (SELECT count(*) FROM job_event) AS job_event, (SELECT count(*) FROM queue) AS queue`,
  );
  const counts = rows[0]!;
  return { job: Number(counts.job), job_phase: Number(counts.job_phase), job_event: Number(counts.job_event), queue: Number(counts.queue) };
}

describe("EnqueueBatch", () => {
  it("creates 10,000 jobs in one call and returns their ids in request order", async () => {
    const before = await rowCounts();
    const batch = specs("bulk-10k", 10_000, (index) => (index % 1000 === 0 ? { phases: ["first", "second"] } : {}));

    const { jobIds } = await client.enqueueBatch({ jobs: batch });

    expect(jobIds).toHaveLength(10_000);
    expect(new Set(jobIds).size).toBe(10_000);
    const { rows } = await server.db.pool.query<{ id: string; index: string; meta_index: string; state: string; queue: string }>(
      `SELECT id, payload->>'index' AS index, metadata->>'index' AS meta_index, state, queue FROM job WHERE id = ANY($1::uuid[])`,
      [jobIds],
    );
    expect(rows).toHaveLength(10_000);
    const rowById = new Map(rows.map((row) => [row.id, row]));
    // The i-th id names the job made from the i-th spec.
    const misplaced = jobIds.filter((id, index) => {
      const row = rowById.get(id);
      return row?.index !== String(index) || row.meta_index !== String(index);
    });
    expect(misplaced).toEqual([]);
    expect(new Set(rows.map((row) => row.state))).toEqual(new Set(["pending"]));
    const after = await rowCounts();
    expect(after.job - before.job).toBe(10_000);
    expect(after.job_event - before.job_event).toBe(10_000);
    expect(after.job_phase - before.job_phase).toBe(20);
    expect(after.queue - before.queue).toBe(1);
    const { job } = await client.getJob({ id: jobIds[9_999]! });
    expect(job?.metadata).toEqual({ index: "9999" });
  });

  it("rejects a batch whose 5,000th job is invalid with INVALID_ARGUMENT naming jobs[4999], inserting nothing", async () => {
    const before = await rowCounts();
    const batch = specs("half-bad", 10_000);
    batch[4_999]!.retryPolicy = create(RetryPolicySchema, { maxAttempts: 1001 });
    batch[7_000]!.queue = "also bad";

    const error = await failureOf(client.enqueueBatch({ jobs: batch }));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^jobs\[4999\]\.retry_policy\.max_attempts[:\s]/);
    expect(await rowCounts()).toEqual(before);
  });

  it("names the invalid job's index and field over Connect JSON too, inserting nothing", async () => {
    const before = await rowCounts();
    const jobs = Array.from({ length: 5_000 }, (_, index) => ({ queue: "json-batch", kind: "item", payload: { index } }));
    jobs[4_999] = { ...jobs[4_999]!, kind: "-starts-with-dash" };

    const answer = await postJson(server.url, "jobwire.v1.QueueService/EnqueueBatch", { jobs });

    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("invalid_argument");
    expect(answer.body.message).toMatch(/^jobs\[4999\]\.kind[:\s]/);
    expect(await rowCounts()).toEqual(before);
  });

  it("rejects a batch of 10,001 jobs with RESOURCE_EXHAUSTED, inserting nothing", async () => {
    const before = await rowCounts();

    const error = await failureOf(client.enqueueBatch({ jobs: specs("too-many", 10_001) }));

    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain("jobs");
    expect(error.rawMessage).toContain("10000");
    expect(await rowCounts()).toEqual(before);
  });

  it("rejects an empty batch with INVALID_ARGUMENT naming jobs", async () => {
    const before = await rowCounts();

    const error = await failureOf(client.enqueueBatch({ jobs: [] }));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^jobs[:\s]/);
    expect(await rowCounts()).toEqual(before);
  });

  it("creates ready and delayed jobs of one batch as PENDING and SCHEDULED", async () => {
    const batch = specs("mixed-schedule", 4, (index) =>
      index % 2 === 1 ? { schedule: { case: "delay", value: { seconds: 600n } } } : {},
    );

    const { jobIds } = await client.enqueueBatch({ jobs: batch });

    const states = await Promise.all(jobIds.map(async (id) => (await client.getJob({ id })).job?.state));
    expect(states).toEqual([JobState.PENDING, JobState.SCHEDULED, JobState.PENDING, JobState.SCHEDULED]);
  });

  it("concurrent batches that create the same new queue all succeed and the queue exists once", async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => client.enqueueBatch({ jobs: specs("raced-queue", 50) })));

    expect(answers.flatMap((answer) => answer.jobIds)).toHaveLength(400);
    const { rows } = await server.db.pool.query(`SELECT count(*)::int AS n FROM queue WHERE name = 'raced-queue'`);
    expect(rows[0].n).toBe(1);
    const jobs = await server.db.pool.query(`SELECT count(*)::int AS n FROM job WHERE queue = 'raced-queue'`);
    expect(jobs.rows[0].n).toBe(400);
  });

  it("inserts nothing, not even a new queue, when Postgres refuses one job of the batch", async () => {
    const before = await rowCounts();
    const batch = specs("refused-queue", 10_000, () => ({ phases: ["p"] }));
    batch[4_999]!.kind = refusedKind;

    const error = await withDatabaseRefusingKind(() => failureOf(client.enqueueBatch({ jobs: batch })));

    expect(error.code).toBe(Code.Internal);
    // The database's own message stays in the server log.
    expect(error.rawMessage).not.toContain("refused by test trigger");
    expect(await rowCounts()).toEqual(before);
    const queues = await server.db.pool.query(`SELECT 1 FROM queue WHERE name = 'refused-queue'`);
    expect(queues.rowCount).toBe(0);
    // The same batch without the refused job goes through, so the failure was the trigger's.
    const { jobIds } = await client.enqueueBatch({ jobs: specs("refused-queue", 3) });
    expect(jobIds).toHaveLength(3);
  });

  it("concurrent single Enqueue calls: the one Postgres refuses fails alone, the others are created", async () => {
    const before = await rowCounts();
    const specsOf = specs("refused-singles", 40);
    specsOf[17]!.kind = refusedKind;

    const outcomes = await withDatabaseRefusingKind(() =>
      Promise.allSettled(specsOf.map((job) => client.enqueue({ job }))),
    );

    const failed = outcomes.flatMap((outcome, index) => (outcome.status === "rejected" ? [index] : []));
    expect(failed).toEqual([17]);
    expect(ConnectError.from((outcomes[17] as PromiseRejectedResult).reason).code).toBe(Code.Internal);
    const after = await rowCounts();
    expect(after.job - before.job).toBe(39);
    expect(after.job_event - before.job_event).toBe(39);
    const refused = await server.db.pool.query(`SELECT 1 FROM job WHERE kind = $1`, [refusedKind]);
    expect(refused.rowCount).toBe(0);
  });
});

const refusedKind = "refused-by-database";

/**
 * Runs `work` while the test database refuses every job of kind {@link refusedKind}.
 * Nothing the validator lets through is refused by the schema as shipped (the CHECK
 * constraints mirror the validator's limits), so the database is given one more rule: an
 * event-log trigger. The event insert is the last part of the enqueue statement, after
 * the queue, job and phase inserts that a refusal must undo.
 */
async function withDatabaseRefusingKind<T>(work: () => Promise<T>): Promise<T> {
  await server.db.pool.query(`
    CREATE FUNCTION test_refuse_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.data->>'kind' = '${refusedKind}' THEN
        RAISE EXCEPTION 'refused by test trigger' USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_refuse_job_event BEFORE INSERT ON job_event FOR EACH ROW EXECUTE FUNCTION test_refuse_job_event();
  `);
  try {
    return await work();
  } finally {
    await server.db.pool.query(`DROP TRIGGER test_refuse_job_event ON job_event; DROP FUNCTION test_refuse_job_event()`);
  }
}
