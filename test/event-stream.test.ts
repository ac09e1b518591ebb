import { Code, ConnectError } from "@connectrpc/connect";
import { createJobwireClient, EventType, type Event, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { readEvents } from "./support/read-events.js";
import { startTestServer } from "./support/server.js";

let databaseUrl: string;
let server: JobwireServer;
let replica: JobwireServer;
let client: JobwireClient;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  server = await startTestServer({ databaseUrl });
  // The replica's own re-reads are a minute apart: what reaches its streams sooner came
  // through LISTEN/NOTIFY.
  replica = await startTestServer({ databaseUrl, eventRecheckMs: 60_000, fallbackPollMs: 60_000 });
  client = createJobwireClient({ baseUrl: server.url });
});

describe("StreamEvents", () => {
  it("delivers every event exactly once to a reader that resumes from its cursor, although transactions commit out of id order", async () => {
    const writers = 20;
    const abort = new AbortController();
    // The queue is this test's own, so "from the oldest event" is every event it writes.
    const stream = client.streamEvents({ queues: ["gapless"], fromOldest: true, signal: abort.signal });
    const first = stream.next();
    const clients = await Promise.all(Array.from({ length: writers }, async () => {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      return c;
    }));
    try {
      // Transaction ids are taken in writer order, event ids in the reverse order…
      for (const c of clients) {
        await c.query("BEGIN");
        await c.query("SELECT pg_current_xact_id()");
      }
      for (let i = writers - 1; i >= 0; i--) {
        await clients[i]!.query(
          "INSERT INTO job_event (job_id, queue, type, attempt, data, namespace) VALUES (gen_random_uuid(), 'gapless', 'progress', 0, jsonb_build_object('writer', $1::int), 'default')",
          [i],
        );
      }
      // …and commits happen in a third, shuffled order.
      const order = [7, 0, 19, 3, 12, 5, 18, 1, 9, 14, 2, 16, 4, 11, 6, 17, 8, 13, 10, 15];
      for (const i of order.slice(0, 10)) await clients[i]!.query("COMMIT");
      const firstBatch = [await first.then((r) => r.value as Event), ...(await readEvents(stream, 0))];
      expect(firstBatch).toHaveLength(1);
      // Drop the stream after a few events and resume from the last cursor.
      const early = [...firstBatch, ...(await readEvents(stream, 1))];
      abort.abort();
      const resumed = client.streamEvents({ queues: ["gapless"], afterCursor: early.at(-1)!.cursor });
      for (const i of order.slice(10)) await clients[i]!.query("COMMIT");
      const rest = await readEvents(resumed, writers - early.length);
      const writersSeen = [...early, ...rest].map((event) => (event.data as { writer: number }).writer);
      expect([...writersSeen].sort((a, b) => a - b)).toEqual(Array.from({ length: writers }, (_, i) => i));
      // Delivered in transaction order: the order the writers took their transaction ids.
      expect(writersSeen).toEqual(Array.from({ length: writers }, (_, i) => i));
      await resumed.return(undefined);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it("streams a job's lifecycle live, and a stream on another replica is woken by NOTIFY for events written through the first", async () => {
    const onReplica = createJobwireClient({ baseUrl: replica.url });
    const abort = new AbortController();
    const stream = onReplica.streamEvents({ queues: ["live"], fromOldest: true, signal: abort.signal });
    const pinned = stream.next();
    const job = await client.enqueue("live", "k", { n: 1 }, { delayMs: 60_000 });
    const enqueued = (await pinned).value as Event;
    // The stream is live and caught up: the cancel below reaches it only through a wake-up,
    // well within the read timeout and long before the replica's minute-long re-read.
    await client.cancelJob(job.id, "not needed");
    const events = [enqueued, ...(await readEvents(stream, 1, 5_000))];
    abort.abort();
    expect(events.map((e) => [EventType[e.type], e.jobId])).toEqual([["ENQUEUED", job.id], ["CANCELLED", job.id]]);
    expect(events[1]!.data).toMatchObject({ reason: "not needed", by: "local" });
  });

  it("refuses a malformed cursor or filter with INVALID_ARGUMENT naming the field", async () => {
    const badCursor = client.streamEvents({ afterCursor: "not-a-cursor" });
    const error = ConnectError.from(await badCursor.next().catch((e: unknown) => e));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^after_cursor /);
    const badJob = ConnectError.from(await client.events.listEvents({ filter: { jobIds: ["nope"] } }).catch((e: unknown) => e));
    expect(badJob.rawMessage).toMatch(/^filter\.job_ids\[0\] /);
  });
});

describe("job snapshots", () => {
  it("attach the job as it is now to each event when asked", async () => {
    const job = await client.enqueue("snapshots", "k", { v: 1 }, { delayMs: 60_000 });
    await client.cancelJob(job.id, "done with it");
    const abort = new AbortController();
    const stream = client.streamEvents({ jobIds: [job.id], fromOldest: true, includeJob: true, signal: abort.signal });
    const [enqueued, cancelled] = await readEvents(stream, 2);
    abort.abort();
    // Both carry the job as it is when read: already cancelled.
    expect(enqueued!.job?.id).toBe(job.id);
    expect(enqueued!.job?.cancelReason).toBe("done with it");
    expect(cancelled!.job?.cancelReason).toBe("done with it");
    const plain = client.streamEvents({ jobIds: [job.id], fromOldest: true });
    const [withoutJob] = await readEvents(plain, 1);
    await plain.return(undefined);
    expect(withoutJob!.job).toBeUndefined();
  });
});

describe("ListEvents", () => {
  it("pages through a job's history oldest first, each event once", async () => {
    const job = await client.enqueue("history", "k", null, { delayMs: 60_000 });
    await client.cancelJob(job.id);
    await client.retryJob(job.id);
    await client.cancelJob(job.id);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client.events.listEvents({ filter: { jobIds: [job.id] }, pageSize: 2, pageToken });
      seen.push(...page.events.map((e) => EventType[e.type]));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(["ENQUEUED", "CANCELLED", "RETRIED", "CANCELLED"]);
  });
});
