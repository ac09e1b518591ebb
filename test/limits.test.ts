import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EventService } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { WorkerService } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import type { JobwireServer } from "@jobwire/server";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventFeed } from "../server/src/events/event-feed.js";
import { EventSignal } from "../server/src/events/event-signal.js";
import { startOfLog } from "../server/src/store/sql/event-select.js";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { grpcFrame, rawHttp2Request } from "./support/raw-http2.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { withTimeout } from "./support/with-timeout.js";

/** Row counts of the tables a request could write to. */
async function rowCounts(server: JobwireServer): Promise<string> {
  const { rows } = await server.db.pool.query<{ counts: string }>(
    "SELECT (SELECT count(*) FROM job) || '/' || (SELECT count(*) FROM job_event) || '/' || (SELECT count(*) FROM queue) AS counts",
  );
  return rows[0]!.counts;
}

/** Streams opened by a test, cancelled after it. */
const opened = new Set<AbortController>();
afterEach(() => {
  for (const controller of opened) controller.abort();
  opened.clear();
});

/** Opens a server stream with `open` and resolves once its first message arrived; `close` cancels it. */
async function openStream<T>(open: (signal: AbortSignal) => AsyncIterable<T>): Promise<{ first: T; close: () => void }> {
  const controller = new AbortController();
  opened.add(controller);
  const iterator = open(controller.signal)[Symbol.asyncIterator]();
  const { value } = await withTimeout(iterator.next(), 10_000, "the stream's first message");
  return { first: value as T, close: () => controller.abort() };
}

describe("metadata size: JOBWIRE_MAX_METADATA_BYTES", () => {
  let server: JobwireServer;
  beforeAll(async () => {
    server = await startTestServer({ maxMetadataBytes: 4096 });
  });

  const bigHeader = { "x-padding": "p".repeat(5_000) };

  it("a unary call with metadata over the limit is RESOURCE_EXHAUSTED naming the limit, and writes nothing", async () => {
    const before = await rowCounts(server);

    const error = await failureOf(grpcQueueClient(server.url).enqueue({ job: { queue: "meta", kind: "k" } }, { headers: bigHeader }));

    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain("JOBWIRE_MAX_METADATA_BYTES");
    expect(error.rawMessage).toContain("4096");
    expect(await rowCounts(server)).toBe(before);
  });

  it("metadata just under the limit is accepted", async () => {
    const { job } = await grpcQueueClient(server.url).enqueue({ job: { queue: "meta", kind: "k" } }, { headers: { "x-padding": "p".repeat(3_500) } });

    expect(job?.id).toBeTruthy();
  });

  it("Connect JSON answers HTTP 429 resource_exhausted", async () => {
    const answer = await fetch(`${server.url}/jobwire.v1.QueueService/Enqueue`, {
      method: "POST",
      headers: { "content-type": "application/json", ...bigHeader },
      body: JSON.stringify({ job: { queue: "meta", kind: "k" } }),
    });

    expect(answer.status).toBe(429);
    expect(((await answer.json()) as { code: string; message: string }).message).toContain("JOBWIRE_MAX_METADATA_BYTES");
  });

  it("a stream with metadata over the limit is refused before it starts", async () => {
    const events = createClient(EventService, createGrpcTransport({ baseUrl: server.url }));

    const error = await failureOf(openStream((signal) => events.streamEvents({}, { signal, headers: bigHeader })));

    expect(error.code).toBe(Code.ResourceExhausted);
  });

  it("the SSE endpoint answers 429 for metadata over the limit", async () => {
    const answer = await fetch(`${server.url}/v1/events`, { headers: bigHeader });

    expect(answer.status).toBe(429);
    expect(await answer.text()).toContain("JOBWIRE_MAX_METADATA_BYTES");
  });

  it("far over the limit, HTTP/1.1 answers 431 before reading the request, and the server serves on", async () => {
    // Twice the limit and 8 KiB more is where the HTTP layer stops reading headers.
    const huge = { "x-padding": "p".repeat(20_000) };
    const h1Status = await new Promise<number>((resolve, reject) => {
      const request = http.request(`${server.url}/jobwire.v1.QueueService/GetJob`, { method: "POST", headers: { "content-type": "application/json", ...huge } });
      request.on("response", (response) => resolve(response.statusCode ?? 0));
      request.on("error", reject);
      request.end("{}");
    });

    expect(h1Status).toBe(431);
    const answer = await postJson(server.url, "jobwire.v1.QueueService/GetJob", { id: "01930000-0000-7000-8000-000000000000" });
    expect(answer.body.code).toBe("not_found");
  });

  it("over HTTP/2, metadata between the limit and the HTTP layer's bound is RESOURCE_EXHAUSTED too", async () => {
    const answer = await rawHttp2Request(
      server.url,
      "/jobwire.v1.QueueService/GetJob",
      { "content-type": "application/grpc", te: "trailers", "x-padding": "p".repeat(20_000) },
      grpcFrame(Buffer.alloc(0)),
    );

    expect(answer.grpcStatus).toBe(8);
    expect(answer.grpcMessage).toContain("JOBWIRE_MAX_METADATA_BYTES");
  });
});

describe("open streams per principal: JOBWIRE_MAX_STREAMS_PER_PRINCIPAL", () => {
  let server: JobwireServer;
  let transport: ReturnType<typeof createGrpcTransport>;
  beforeAll(async () => {
    server = await startTestServer({ maxStreamsPerPrincipal: 3 });
    transport = createGrpcTransport({ baseUrl: server.url });
  });

  const events = () => createClient(EventService, transport);
  const workers = () => createClient(WorkerService, transport);
  /**
   * Opens two StreamEvents and a LeaseJobs stream: the limit of 3. (Health.Watch streams
   * have no principal: probes count together, apart from every caller.)
   */
  const openThree = async () => {
    const streams = [];
    try {
      streams.push(await openStream((signal) => events().streamEvents({}, { signal })));
      streams.push(await openStream((signal) => workers().leaseJobs({ queues: ["limits"], capacity: 1 }, { signal })));
      streams.push(await openStream((signal) => events().streamEvents({}, { signal })));
      return streams;
    } catch (error) {
      for (const stream of streams) stream.close();
      throw error;
    }
  };
  // The streams of the test before are cancelled after it, and the server notices that on
  // its own time: retry until all three places are free again.
  const openThreeOnceFree = () => waitFor("three stream places to be free", () => openThree().catch(() => undefined));

  it("a stream past the limit is RESOURCE_EXHAUSTED naming the limit, whichever RPC it is", async () => {
    await openThreeOnceFree();

    const streamError = await failureOf(openStream((signal) => events().streamEvents({}, { signal })));
    const leaseError = await failureOf(openStream((signal) => workers().leaseJobs({ queues: ["limits"], capacity: 1 }, { signal })));

    for (const error of [streamError, leaseError]) {
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.rawMessage).toContain("JOBWIRE_MAX_STREAMS_PER_PRINCIPAL");
    }
  });

  it("unary calls still work while the principal is at its stream limit", async () => {
    await openThreeOnceFree();

    const { job } = await grpcQueueClient(server.url).enqueue({ job: { queue: "limits", kind: "unary" } });

    expect(job?.id).toBeTruthy();
  });

  it("the SSE endpoint counts too: past the limit it answers 429", async () => {
    await openThreeOnceFree();

    const answer = await fetch(`${server.url}/v1/events`);

    expect(answer.status).toBe(429);
    expect(await answer.text()).toContain("JOBWIRE_MAX_STREAMS_PER_PRINCIPAL");
  });

  it("a stream that ends gives its place back", async () => {
    const [first] = await openThreeOnceFree();

    first!.close();

    // The server notices the cancel on its own time: retry until the place is free.
    const reopened = await waitFor("a stream to open again", () =>
      openStream((signal) => events().streamEvents({}, { signal })).then(
        (stream) => stream,
        () => undefined,
      ),
    );
    expect(reopened.first).toBeTruthy();
  });
});

describe("connections: JOBWIRE_MAX_STREAMS_PER_CONNECTION and JOBWIRE_HANDSHAKE_TIMEOUT_MS", () => {
  let server: JobwireServer;
  beforeAll(async () => {
    server = await startTestServer({ maxStreamsPerConnection: 7, handshakeTimeoutMs: 300 });
  });

  /** Resolves when the server closes `socket`, failing loudly if it stays open. */
  async function closedByServer(socket: net.Socket): Promise<void> {
    // Read what the server says (a 408, say): a paused socket never sees the end.
    socket.resume();
    await withTimeout(once(socket, "close"), 10_000, "the server to close the connection");
  }

  it("announces the concurrent stream limit to HTTP/2 clients", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    await withTimeout(once(session, "remoteSettings"), 10_000, "the server's SETTINGS");

    expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
    session.close();
  });

  it("closes a connection that sends nothing", async () => {
    const socket = net.connect(server.port, "127.0.0.1");
    socket.on("error", () => undefined);

    await closedByServer(socket);
  });

  it("closes a connection that stops in the middle of the HTTP/2 preface", async () => {
    const socket = net.connect(server.port, "127.0.0.1", () => socket.write("PRI * HTTP/2.0\r\n"));
    socket.on("error", () => undefined);

    await closedByServer(socket);
  });

  it("closes an HTTP/1.1 connection that never finishes its headers", async () => {
    const socket = net.connect(server.port, "127.0.0.1", () => socket.write("POST /jobwire.v1.QueueService/GetJob HTTP/1.1\r\nHost: x\r\n"));
    socket.on("error", () => undefined);

    await closedByServer(socket);
  });

  it("keeps an idle HTTP/2 connection that completed its handshake", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    let sessionClosed = false;
    session.once("close", () => (sessionClosed = true));
    const request = () => rawHttp2Request(server.url, "/grpc.health.v1.Health/Check", { "content-type": "application/grpc", te: "trailers" }, grpcFrame(Buffer.alloc(0)), { session });
    expect((await request()).grpcStatus).toBe(0);

    // A connection opened after it and left silent is closed: the timeout has passed for both.
    const silent = net.connect(server.port, "127.0.0.1");
    silent.on("error", () => undefined);
    await closedByServer(silent);

    expect(sessionClosed).toBe(false);
    expect((await request()).grpcStatus).toBe(0);
    session.close();
  });
});

describe("events buffered per stream: JOBWIRE_EVENT_READ_BATCH", () => {
  let server: JobwireServer;
  beforeAll(async () => {
    server = await startTestServer({ eventReadBatch: 10 });
  });

  it("an event feed that is not read holds at most one batch of events", async () => {
    await grpcQueueClient(server.url).enqueueBatch({ jobs: Array.from({ length: 100 }, () => ({ queue: "batch", kind: "k" })) });
    let rowsRead = 0;
    const countingPool = {
      query: async (...args: unknown[]) => {
        const result = await (server.db.pool.query as (...a: unknown[]) => Promise<{ rows: unknown[] }>)(...args);
        rowsRead += result.rows.length;
        return result;
      },
    };
    const done = new AbortController();
    // Streams read events only once every older transaction on the cluster has ended, and
    // other test files' servers share the cluster: re-read often rather than wait for a
    // wake-up this unwired signal never sends.
    const feed = eventFeed({ pool: countingPool as never, signal: new EventSignal(), filter: { jobIds: [], queues: [], types: [], batchIds: [], namespace: "default" }, after: startOfLog, done: done.signal, keepAliveMs: 60_000, recheckMs: 20, readBatch: 10 });

    await feed.next(); // the keep-alive with the starting position
    const afterFirst = (await feed.next(), rowsRead);
    for (let i = 0; i < 24; i++) await feed.next();
    const afterTwentyFive = rowsRead;
    done.abort();
    await feed.return(undefined);

    expect(afterFirst).toBe(10);
    expect(afterTwentyFive).toBe(30);
  });

  it("a StreamEvents reader still gets every event in order with a small batch", async () => {
    const events = createClient(EventService, createGrpcTransport({ baseUrl: server.url }));
    const controller = new AbortController();
    opened.add(controller);
    const seen: string[] = [];
    for await (const message of events.streamEvents({ start: { case: "fromOldest", value: true }, filter: { queues: ["batch"] } }, { signal: controller.signal })) {
      if (message.message.case === "event") seen.push(message.message.value.jobId);
      if (seen.length === 100) break;
    }

    expect(new Set(seen).size).toBe(100);
  });
});
