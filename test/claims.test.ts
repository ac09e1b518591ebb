import { JobState, Worker, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import pg from "pg";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

// A stream whose claim comes back short waits for a wake-up before it claims again (see
// `WorkerStream.drained`). The fallback poll is far longer than any wait here, so a job
// that only the poll would find fails the test.

let server: JobwireServer;
let client: JobwireClient;
let databaseUrl: string;
const workers: Worker[] = [];

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  server = await startTestServer({ databaseUrl, fallbackPollMs: 60_000 });
  client = createJobwireClient({ baseUrl: server.url });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.shutdown({ graceMs: 2_000, abortWaitMs: 500 })));
});

describe("claims", () => {
  it("claim again when a slot frees after a claim skipped a job another transaction held", async () => {
    const gates = new Map<string, PromiseWithResolvers<void>>();
    const gate = (id: string) => gates.get(id) ?? gates.set(id, Promise.withResolvers<void>()).get(id)!;
    const started: string[] = [];
    const first = await client.enqueue("claims-held", "k", null, { priority: 10 });
    const held = await client.enqueue("claims-held", "k", null);
    // Another transaction holds the second job's row, as the enqueue of a child holds its
    // parent: the worker's first claim skips it and comes back short.
    const holder = new pg.Client({ connectionString: databaseUrl });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT id FROM job WHERE id = $1 FOR KEY SHARE", [held.id]);
      const worker = new Worker({
        baseUrl: server.url,
        queues: ["claims-held"],
        concurrency: 2,
        prefetch: 0,
        handlers: {
          k: async (_payload, ctx) => {
            started.push(ctx.jobId);
            await gate(ctx.jobId).promise;
          },
        },
      });
      workers.push(worker);
      await worker.start();
      await waitFor("the first job to start", async () => started.includes(first.id));
      expect((await client.getJob(held.id)).state).toBe(JobState.PENDING);
      await holder.query("COMMIT");
    } finally {
      await holder.end();
    }
    // No wake-up announces the released row; the first job's end frees a slot, and the
    // stream, which saw a job still pending after its short claim, claims again then.
    gate(first.id).resolve();
    await waitFor("the held job to start once a slot frees", async () => started.includes(held.id));
    gate(held.id).resolve();
    await waitFor("both to succeed", async () => (await client.getJob(held.id)).state === JobState.SUCCEEDED);
  });
});
