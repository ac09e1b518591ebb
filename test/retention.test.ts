import { createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

let server: JobwireServer;
let client: JobwireClient;

beforeAll(async () => {
  server = await startTestServer({ retentionMs: 86_400_000, eventRetentionMs: 7 * 86_400_000, retentionIntervalMs: 50, fallbackPollMs: 100 });
  client = createJobwireClient({ baseUrl: server.url });
});

/** Moves a job into a finished state as if it had finished `daysAgo` days ago. */
async function finishedDaysAgo(jobId: string, state: "succeeded" | "failed" | "cancelled", daysAgo: number): Promise<void> {
  await server.db.pool.query(
    `UPDATE job SET state = $2::job_state,
                    created_at = clock_timestamp() - ($3::int + 1) * interval '1 day',
                    started_at = clock_timestamp() - ($3::int + 1) * interval '1 day',
                    finished_at = clock_timestamp() - $3::int * interval '1 day'
     WHERE id = $1`,
    [jobId, state, daysAgo],
  );
}

const exists = async (jobId: string) => (await server.db.pool.query("SELECT 1 FROM job WHERE id = $1", [jobId])).rowCount === 1;

describe("retention", () => {
  it("deletes finished jobs past their retention with one DELETED event each, honours the queue's override, and never touches unfinished jobs", async () => {
    await grpcQueueClient(server.url).updateQueue({ name: "keep-long", defaults: { retention: { seconds: BigInt(30 * 86_400), nanos: 0 } } });
    const old = await client.enqueue("short", "k", null, { phases: ["a"] });
    const oldFailed = await client.enqueue("short", "k");
    const keptByQueue = await client.enqueue("keep-long", "k");
    const recent = await client.enqueue("short", "k");
    const scheduled = await client.enqueue("short", "k", null, { delayMs: 3_600_000 });
    await finishedDaysAgo(old.id, "succeeded", 2);
    await finishedDaysAgo(oldFailed.id, "failed", 3);
    await finishedDaysAgo(keptByQueue.id, "cancelled", 2);
    await client.cancelJob(recent.id);
    await server.db.pool.query("UPDATE job SET created_at = clock_timestamp() - interval '5 days' WHERE id = $1", [scheduled.id]);

    await waitFor("old finished jobs to be deleted", async () => !(await exists(old.id)) && !(await exists(oldFailed.id)));
    expect(await exists(keptByQueue.id)).toBe(true);
    expect(await exists(recent.id)).toBe(true);
    expect(await exists(scheduled.id)).toBe(true);
    const phases = await server.db.pool.query("SELECT count(*)::int AS n FROM job_phase WHERE job_id = $1", [old.id]);
    expect(phases.rows[0].n).toBe(0);
    const deleted = await server.db.pool.query<{ job_id: string; data: object }>(
      "SELECT job_id, data FROM job_event WHERE type = 'deleted' ORDER BY job_id",
    );
    expect(deleted.rows.map((row) => row.job_id).sort()).toEqual([old.id, oldFailed.id].sort());
    expect(deleted.rows.every((row) => Object.keys(row.data).length === 0)).toBe(true);
  });

  it("prunes events past the event retention", async () => {
    const job = await client.enqueue("events", "k", null, { delayMs: 3_600_000 });
    await server.db.pool.query("UPDATE job_event SET at = clock_timestamp() - interval '8 days' WHERE job_id = $1", [job.id]);
    await waitFor("the old event to be pruned", async () => {
      const { rowCount } = await server.db.pool.query("SELECT 1 FROM job_event WHERE job_id = $1", [job.id]);
      return rowCount === 0;
    });
    expect(await exists(job.id)).toBe(true);
  });

  it("prunes finished webhook deliveries and finished, emptied batches with the event log, never pending deliveries or live batches", async () => {
    const { batchId, jobIds } = await client.createBatch([{ queue: "pruned", kind: "k", delayMs: 3_600_000 }]);
    const live = await client.createBatch([{ queue: "pruned", kind: "k", delayMs: 3_600_000 }]);
    const job = jobIds[0]!;
    // Two delivery records of the job: one finished 8 days ago, one still pending.
    await server.db.pool.query(
      `INSERT INTO webhook_delivery (event_id, job_id, queue, event_type, url, secret, body, state, finished_at)
       VALUES (1, $1, 'pruned', 'enqueued', 'http://example.invalid/', 's', '{}', 'delivered', clock_timestamp() - interval '8 days'),
              (2, $1, 'pruned', 'enqueued', 'http://example.invalid/', 's', '{}', 'pending', NULL)`,
      [job],
    );
    // The first batch finished 8 days ago and retention deleted its job.
    await client.cancelBatch(batchId);
    await waitFor("the batch to finish", async () => (await client.getBatch(batchId)).finishedAt !== undefined);
    await server.db.pool.query("DELETE FROM job WHERE id = $1", [job]);
    await server.db.pool.query("UPDATE batch SET created_at = created_at - interval '9 days', finished_at = clock_timestamp() - interval '8 days' WHERE id = $1", [batchId]);
    await waitFor("the old delivery and the emptied batch to be pruned", async () => {
      const { rows } = await server.db.pool.query<{ deliveries: string[]; batches: number }>(
        `SELECT array(SELECT state FROM webhook_delivery WHERE job_id = $1 ORDER BY id) AS deliveries,
                (SELECT count(*)::int FROM batch WHERE id = $2) AS batches`,
        [job, batchId],
      );
      return rows[0]!.batches === 0 && rows[0]!.deliveries.length === 1 && rows[0]!.deliveries;
    });
    const { rows } = await server.db.pool.query("SELECT state FROM webhook_delivery WHERE job_id = $1", [job]);
    expect(rows).toEqual([{ state: "pending" }]);
    expect((await client.getBatch(live.batchId)).total).toBe(1);
  });
});
