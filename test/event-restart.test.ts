import { createJobwireClient, EventType } from "@jobwire/sdk";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { readEvents } from "./support/read-events.js";
import { startServerProcess } from "./support/server-process.js";

describe("an SDK event stream across a server restart", () => {
  it("resumes by itself after the server restarts and misses or repeats no event", async () => {
    const databaseUrl = await createTestDatabase();
    const first = await startServerProcess({ database: { databaseUrl } });
    const client = createJobwireClient({ baseUrl: first.url });
    const abort = new AbortController();
    const stream = client.streamEvents({ queues: ["restart"], fromOldest: true, signal: abort.signal, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    try {
      const before = await client.enqueueBatch(Array.from({ length: 10 }, () => ({ queue: "restart", kind: "k", delayMs: 3_600_000 })));
      const early = await readEvents(stream, 10, 30_000);
      expect(await first.stop("SIGTERM")).toBe(0);

      // Same port, same database: the SDK's reconnects reach the new process.
      const second = await startServerProcess({ database: { databaseUrl }, env: { JOBWIRE_PORT: String(new URL(first.url).port) } });
      const secondClient = createJobwireClient({ baseUrl: second.url });
      const after = await secondClient.enqueueBatch(Array.from({ length: 10 }, () => ({ queue: "restart", kind: "k", delayMs: 3_600_000 })));
      const late = await readEvents(stream, 10, 30_000);
      // Each batch is one transaction: its events come together, in the statement's order.
      expect(early.map((event) => event.jobId).sort()).toEqual([...before].sort());
      expect(late.map((event) => event.jobId).sort()).toEqual([...after].sort());
      expect([...early, ...late].every((event) => event.type === EventType.ENQUEUED)).toBe(true);
      await second.stop("SIGTERM");
    } finally {
      abort.abort();
    }
  });
});
