import { createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "./support/server.js";

let server: JobwireServer;
let client: JobwireClient;

beforeAll(async () => {
  server = await startTestServer();
  client = createJobwireClient({ baseUrl: server.url });
});

interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
}

/** Opens `/v1/events` and reads frames until `count` events (frames with data) arrived. */
async function readEvents(query: string, count: number, headers: Record<string, string> = {}): Promise<SseFrame[]> {
  const abort = new AbortController();
  // Bounded: a missing event fails the test with a TimeoutError after 15 s.
  const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(15_000)]);
  try {
    const response = await fetch(`${server.url}/v1/events?${query}`, { headers, signal });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const events: SseFrame[] = [];
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const chunk of response.body!) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame: SseFrame = {};
        for (const line of buffer.slice(0, end).split("\n")) {
          const [field, ...rest] = line.split(": ");
          if (field === "id" || field === "event" || field === "data") frame[field] = rest.join(": ");
        }
        buffer = buffer.slice(end + 2);
        if (frame.data !== undefined) events.push(frame);
        if (events.length === count) return events;
      }
    }
    throw new Error("the SSE stream ended");
  } finally {
    abort.abort();
  }
}

describe("GET /v1/events (Server-Sent Events)", () => {
  it("streams a queue's events and resumes after Last-Event-ID without repeating one", async () => {
    const job = await client.enqueue("sse", "k", null, { delayMs: 60_000 });
    await client.cancelJob(job.id, "stop");
    const both = await readEvents("queue=sse&from=oldest", 2);
    expect(both.map((frame) => frame.event)).toEqual(["enqueued", "cancelled"]);
    expect(JSON.parse(both[1]!.data!)).toMatchObject({ type: "EVENT_TYPE_CANCELLED", jobId: job.id, data: { reason: "stop" } });
    await client.retryJob(job.id);
    const afterFirst = await readEvents("queue=sse", 2, { "last-event-id": both[0]!.id! });
    expect(afterFirst.map((frame) => frame.event)).toEqual(["cancelled", "retried"]);
  });

  it("answers a bad filter with 400 and a message naming it", async () => {
    const response = await fetch(`${server.url}/v1/events?type=NOPE`);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^type\[0\] /) });
    const badCursor = await fetch(`${server.url}/v1/events`, { headers: { "last-event-id": "garbage" } });
    expect(badCursor.status).toBe(400);
  });
});
