import { createJobwireClient, EventType, type Event } from "@jobwire/sdk";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { startServerProcess } from "./support/server-process.js";

/** Reads events until `done(events)` holds, failing loudly after `timeoutMs`. */
async function readUntil(events: AsyncGenerator<Event>, done: (seen: Event[]) => boolean, timeoutMs = 30_000): Promise<Event[]> {
  const seen: Event[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      (async () => {
        while (!done(seen)) {
          const { value, done: ended } = await events.next();
          if (ended) throw new Error("the event stream ended");
          seen.push(value);
        }
        return seen;
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`stopped after ${seen.length} events in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("an SDK event stream across a server restart", () => {
  it("resumes by itself after the server restarts and misses or repeats no event", async () => {
    const databaseUrl = await createTestDatabase();
    const first = await startServerProcess({ database: { databaseUrl } });
    const client = createJobwireClient({ baseUrl: first.url });
    const abort = new AbortController();
    const stream = client.streamEvents({ queues: ["restart"], fromOldest: true, signal: abort.signal, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    try {
      const before = await client.enqueueBatch(Array.from({ length: 10 }, () => ({ queue: "restart", kind: "k", delayMs: 3_600_000 })));
      const early = await readUntil(stream, (seen) => seen.length === 10);
      expect(await first.stop("SIGTERM")).toBe(0);

      // Same port, same database: the SDK's reconnects reach the new process.
      const second = await startServerProcess({ database: { databaseUrl }, env: { JOBWIRE_PORT: String(new URL(first.url).port) } });
      const secondClient = createJobwireClient({ baseUrl: second.url });
      const after = await secondClient.enqueueBatch(Array.from({ length: 10 }, () => ({ queue: "restart", kind: "k", delayMs: 3_600_000 })));
      const late = await readUntil(stream, (seen) => seen.length === 10);
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
