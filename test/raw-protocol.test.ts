import http from "node:http";
import { gzipSync } from "node:zlib";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { create, toBinary, type DescService } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { EventService, StreamEventsRequestSchema } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { EnqueueRequestSchema, GetJobRequestSchema, QueueService } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { LeaseJobsRequestSchema } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { failureOf } from "./support/failure-of.js";
import { grpcFrame, rawHttp2Request } from "./support/raw-http2.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { withTimeout } from "./support/with-timeout.js";
import { nestedList } from "./fuzz/values.js";

let server: JobwireServer;

beforeAll(async () => {
  server = await startTestServer();
});

const getJob = "/jobwire.v1.QueueService/GetJob";
const enqueue = "/jobwire.v1.QueueService/Enqueue";
const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };

/** Row counts of the tables a request could write to. */
async function rowCounts(): Promise<string> {
  const { rows } = await server.db.pool.query<{ counts: string }>(
    "SELECT (SELECT count(*) FROM job) || '/' || (SELECT count(*) FROM job_event) || '/' || (SELECT count(*) FROM queue) AS counts",
  );
  return rows[0]!.counts;
}

/** GetJobRequest bytes (field 1, `id`, a string) that protobuf cannot decode, and why. */
const undecodableMessages: { name: string; path: string; bytes: Buffer }[] = [
  { name: "a string field cut short", path: getJob, bytes: Buffer.from([0x0a, 0x0a, 0x61, 0x62, 0x63]) },
  { name: "invalid UTF-8 in a string field", path: getJob, bytes: Buffer.from([0x0a, 0x02, 0xc3, 0x28]) },
  { name: "an illegal wire type", path: getJob, bytes: Buffer.from([0x0f, 0x00]) },
  { name: "a field number 0", path: getJob, bytes: Buffer.from([0x00, 0x00]) },
  { name: "an end-group tag without a start", path: getJob, bytes: Buffer.from([0x0c]) },
  {
    name: "a payload nested past the decoder's recursion limit",
    path: enqueue,
    bytes: Buffer.from(toBinary(EnqueueRequestSchema, create(EnqueueRequestSchema, { job: { queue: "q", kind: "k", payload: nestedList(400) as never } }))),
  },
];

describe("request bytes that do not decode are the client's fault", () => {
  it.each(undecodableMessages)("gRPC: $name is INVALID_ARGUMENT, not INTERNAL, and writes nothing", async ({ path, bytes }) => {
    const before = await rowCounts();

    const answer = await rawHttp2Request(server.url, path, grpcHeaders, grpcFrame(bytes));

    expect(answer.status).toBe(200);
    expect(answer.grpcStatus).toBe(3);
    expect(answer.grpcMessage).toMatch(/^parse binary/);
    expect(await rowCounts()).toBe(before);
  });

  it.each(undecodableMessages)("Connect binary: $name is HTTP 400 invalid_argument", async ({ path, bytes }) => {
    const answer = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/proto" }, body: bytes });

    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("gRPC-Web: undecodable bytes end with grpc-status 3 in the trailer frame", async () => {
    const answer = await fetch(`${server.url}${getJob}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: grpcFrame(undecodableMessages[1]!.bytes),
    });

    expect(answer.status).toBe(200);
    expect(Buffer.from(await answer.arrayBuffer()).toString("latin1")).toMatch(/grpc-status: ?3\r\n/);
  });

  it("gRPC: a message flagged as compressed on a request that named no compression is INVALID_ARGUMENT", async () => {
    const answer = await rawHttp2Request(server.url, getJob, grpcHeaders, grpcFrame(Buffer.from([0x0a, 0x01, 0x61]), { flags: 1 }));

    expect(answer.grpcStatus).toBe(3);
    expect(answer.grpcMessage).toContain("compressed");
  });

  it("gRPC: a gzip message that does not inflate is INVALID_ARGUMENT, not INTERNAL", async () => {
    const truncated = gzipSync(Buffer.from([0x0a, 0x01, 0x61])).subarray(0, 12);

    const answer = await rawHttp2Request(server.url, getJob, { ...grpcHeaders, "grpc-encoding": "gzip" }, grpcFrame(truncated, { flags: 1 }));

    expect(answer.grpcStatus).toBe(3);
    expect(answer.grpcMessage).toContain("decompression");
  });

  it("the server still answers a well-formed request afterwards", async () => {
    const { job } = await grpcQueueClient(server.url).enqueue({ job: { queue: "raw", kind: "after" } });

    expect(job?.id).toBeTruthy();
  });
});

describe("gRPC frames that lie", () => {
  const validGetJob = Buffer.from(toBinary(GetJobRequestSchema, create(GetJobRequestSchema, { id: "01930000-0000-7000-8000-000000000000" })));

  it("a frame whose length prefix promises more than the body holds is INVALID_ARGUMENT", async () => {
    const answer = await rawHttp2Request(server.url, getJob, grpcHeaders, grpcFrame(validGetJob, { length: validGetJob.length + 100 }));

    expect(answer.status).toBe(200);
    expect(answer.grpcStatus).toBe(3);
    expect(answer.grpcMessage).toContain("envelope");
  });

  it("a body that ends inside the 5-byte prefix is INVALID_ARGUMENT", async () => {
    const answer = await rawHttp2Request(server.url, getJob, grpcHeaders, grpcFrame(validGetJob).subarray(0, 3));

    expect(answer.grpcStatus).toBe(3);
  });

  it("a prefix over the read limit is RESOURCE_EXHAUSTED at once, before the body is sent", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    const stream = session.request({ ":method": "POST", ":path": getJob, ...grpcHeaders });
    stream.on("error", () => undefined);
    // 33 MiB promised, against the default limit of 32 MiB; the stream stays open.
    stream.write(grpcFrame(Buffer.alloc(1024), { length: 33 * 1024 * 1024 }));
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
      stream.on("response", (headers) => headers["grpc-status"] !== undefined && resolve(headers));
      stream.on("trailers", resolve);
    });

    const status = (await withTimeout(trailers, 10_000, "an answer before the body ends"))["grpc-status"];

    expect(status).toBe("8");
    session.destroy();
  });

  it("a unary call with no message or two messages is refused with UNIMPLEMENTED, as connect-es words it", async () => {
    const none = await rawHttp2Request(server.url, getJob, grpcHeaders, Buffer.alloc(0));
    const two = await rawHttp2Request(server.url, getJob, grpcHeaders, Buffer.concat([grpcFrame(validGetJob), grpcFrame(validGetJob)]));

    expect(none.grpcStatus).toBe(12);
    expect(two.grpcStatus).toBe(12);
  });

  it("an unknown grpc-encoding is UNIMPLEMENTED, naming the encodings served", async () => {
    const answer = await rawHttp2Request(server.url, getJob, { ...grpcHeaders, "grpc-encoding": "snappy" }, grpcFrame(validGetJob, { flags: 1 }));

    expect(answer.grpcStatus).toBe(12);
  });

  it.each(["99999999H", "9999999S"])(
    "a grpc-timeout of %s, longer than a timer can wait, is INVALID_ARGUMENT instead of expiring at once",
    async (timeout) => {
      const request = Buffer.from(toBinary(StreamEventsRequestSchema, create(StreamEventsRequestSchema, {})));

      const answer = await rawHttp2Request(server.url, "/jobwire.v1.EventService/StreamEvents", { ...grpcHeaders, "grpc-timeout": timeout }, grpcFrame(request));

      expect(answer.grpcStatus).toBe(3);
      expect(answer.grpcMessage).toContain("timeout");
    },
  );

  it("Connect: a connect-timeout-ms past what a timer can wait is invalid_argument", async () => {
    const answer = await fetch(`${server.url}${getJob}`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "9999999999" },
      body: JSON.stringify({ id: "01930000-0000-7000-8000-000000000000" }),
    });

    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { message: string }).message).toContain("timeout");
  });

  it("a grpc-timeout that is not a timeout is INVALID_ARGUMENT", async () => {
    const answer = await rawHttp2Request(server.url, getJob, { ...grpcHeaders, "grpc-timeout": "soon" }, grpcFrame(validGetJob));

    expect(answer.grpcStatus).toBe(3);
  });
});

describe("content types, methods and paths", () => {
  it.each(["text/plain", "application/xml", "multipart/form-data", "application/grpc+xml", ""])(
    "HTTP/2 POST with content-type %j is HTTP 415",
    async (contentType) => {
      const headers = contentType ? { "content-type": contentType } : {};

      const answer = await rawHttp2Request(server.url, getJob, headers, Buffer.from("{}"));

      expect(answer.status).toBe(415);
    },
  );

  it("HTTP/1.1 POST with content-type text/plain is HTTP 415", async () => {
    const answer = await fetch(`${server.url}${getJob}`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });

    expect(answer.status).toBe(415);
  });

  it("gRPC over HTTP/1.1 is answered, with grpc-status in the trailers", async () => {
    const answer = await h1Request("POST", getJob, { "content-type": "application/grpc" }, grpcFrame(Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63])));

    expect(answer.status).toBe(200);
    expect(answer.trailers["grpc-status"]).toBe("3");
  });

  it("GET of a procedure with side effects is HTTP 405", async () => {
    const answer = await fetch(`${server.url}${enqueue}?encoding=json&message=%7B%7D&connect=v1`);

    expect(answer.status).toBe(405);
  });

  it("Connect GET of GetJob (no side effects) with a bad message is invalid_argument", async () => {
    const answer = await fetch(`${server.url}${getJob}?encoding=json&message=${encodeURIComponent('{"id":1}')}&connect=v1`);

    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("gRPC: a procedure the server does not have is UNIMPLEMENTED, not an HTTP error", async () => {
    const answer = await rawHttp2Request(server.url, "/jobwire.v1.QueueService/NoSuchMethod", grpcHeaders, grpcFrame(Buffer.alloc(0)));

    expect(answer.status).toBe(200);
    expect(answer.grpcStatus).toBe(12);
    expect(answer.grpcMessage).toContain("NoSuchMethod");
  });

  it("gRPC-Web and gRPC over HTTP/1.1: an unknown procedure is grpc-status 12 too", async () => {
    const web = await h1Request("POST", "/no.such.Service/Call", { "content-type": "application/grpc-web+proto" }, grpcFrame(Buffer.alloc(0)));
    const grpc = await h1Request("POST", "/no.such.Service/Call", { "content-type": "application/grpc" }, grpcFrame(Buffer.alloc(0)));

    expect([web.status, web.headers["grpc-status"]]).toEqual([200, "12"]);
    expect([grpc.status, grpc.headers["grpc-status"]]).toEqual([200, "12"]);
  });

  it("Connect: an unknown procedure is HTTP 404 unimplemented", async () => {
    const answer = await postJson(server.url, "jobwire.v1.QueueService/NoSuchMethod", {});

    expect(answer.status).toBe(404);
    expect(answer.body.code).toBe("unimplemented");
  });

  it("a typed client calling an unknown procedure gets UNIMPLEMENTED over gRPC and Connect", async () => {
    for (const transport of [createGrpcTransport({ baseUrl: server.url }), createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })]) {
      const client = createClient(unknownService, transport);

      const error = await failureOf(client.noSuchMethod({}));

      expect(error.code).toBe(Code.Unimplemented);
    }
  });
});

describe("bytes that are not HTTP/2 or HTTP/1.1", () => {
  /** Writes `bytes` on a fresh connection, reads until the server closes it, and returns what it said. */
  async function exchange(bytes: Buffer): Promise<Buffer> {
    const socket = net.connect(server.port, "127.0.0.1", () => socket.write(bytes));
    socket.on("error", () => undefined);
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    await withTimeout(once(socket, "close"), 10_000, "the server to close the connection");
    return Buffer.concat(chunks);
  }

  it.each([
    ["a TLS ClientHello", Buffer.from("16030100a5010000a10303", "hex")],
    ["text", Buffer.from("hello there\r\n\r\n")],
    ["a preface with its last line wrong", Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")],
    ["random bytes", Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 256))],
  ])("%s gets an HTTP/1.1 400 and the connection closed", async (_name, bytes) => {
    const said = await exchange(bytes);

    expect(said.toString("latin1")).toMatch(/^HTTP\/1\.1 400 /);
  });

  it("the HTTP/2 preface followed by garbage gets a GOAWAY and the connection closed", async () => {
    const said = await exchange(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from("garbage that is not a frame at all")]));

    // Frame type 7 (GOAWAY) among what the server sent.
    expect(frameTypes(said)).toContain(7);
  });

  it("a HEADERS frame whose header block does not decode gets a GOAWAY", async () => {
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    // HEADERS on stream 1 with END_HEADERS, holding an HPACK index that does not exist.
    const headers = Buffer.from([0, 0, 1, 1, 4, 0, 0, 0, 1, 0xff]);
    const said = await exchange(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), settings, headers]));

    expect(frameTypes(said)).toContain(7);
  });

  it("the server still answers others", async () => {
    const { job } = await grpcQueueClient(server.url).enqueue({ job: { queue: "raw", kind: "after-garbage" } });

    expect(job?.id).toBeTruthy();
  });
});

describe("clients that open streams and never read", () => {
  it("forty unread LeaseJobs and StreamEvents streams on one connection hold up no one else, and give their leases back when they go", async () => {
    const consoleErrors = vi.spyOn(console, "error");
    const queue = grpcQueueClient(server.url);
    await queue.enqueueBatch({ jobs: Array.from({ length: 300 }, (_, i) => ({ queue: "hog", kind: "k", payload: { kind: { case: "stringValue", value: `job ${i} ${"x".repeat(500)}` } } })) });
    // A tiny window: the server can send each stream a few hundred bytes, then must wait.
    const hog = http2.connect(server.url, { settings: { initialWindowSize: 256 } });
    hog.on("error", () => undefined);
    const lease = Buffer.from(toBinary(LeaseJobsRequestSchema, create(LeaseJobsRequestSchema, { workerName: "hog", queues: ["hog"], capacity: 50 })));
    const events = Buffer.from(toBinary(StreamEventsRequestSchema, create(StreamEventsRequestSchema, { start: { case: "fromOldest", value: true } })));
    const streams = [];
    for (let i = 0; i < 20; i++) {
      for (const [path, body] of [["/jobwire.v1.WorkerService/LeaseJobs", lease], ["/jobwire.v1.EventService/StreamEvents", events]] as const) {
        const stream = hog.request({ ":method": "POST", ":path": path, ...grpcHeaders });
        stream.on("error", () => undefined);
        stream.pause();
        stream.end(grpcFrame(body));
        streams.push(stream);
      }
    }
    // The hog's workers lease jobs they will never see: all 300 end up leased to them.
    await waitFor("the hog's streams to lease every job", async () => (await runningIn("hog")) === 300);

    // Meanwhile everyone else is served.
    const { job } = await queue.enqueue({ job: { queue: "others", kind: "k" } });
    const fetched = await queue.getJob({ id: job!.id });
    const reader = createClient(EventService, createGrpcTransport({ baseUrl: server.url }));
    const listed = await reader.listEvents({ filter: { queues: ["others"] } });
    expect(fetched.job?.id).toBe(job!.id);
    expect(listed.events.map((event) => event.jobId)).toContain(job!.id);

    hog.destroy();
    await waitFor("the hog's leases to be given back", async () => (await runningIn("hog")) === 0);
    // Streams cut off while they waited to write are the client's doing: no stack traces on
    // stderr (the server's own log has them at debug level).
    expect(consoleErrors).not.toHaveBeenCalled();
    consoleErrors.mockRestore();
  });
});

/** How many jobs of `queue` are running. */
async function runningIn(queue: string): Promise<number> {
  const { rows } = await server.db.pool.query<{ n: string }>("SELECT count(*) AS n FROM job WHERE queue = $1 AND state = 'running'", [queue]);
  return Number(rows[0]!.n);
}

/** The types of the HTTP/2 frames in `bytes` (the server's side of a connection). */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  let at = 0;
  while (at + 9 <= bytes.length) {
    const length = bytes.readUIntBE(at, 3);
    types.push(bytes[at + 3]!);
    at += 9 + length;
  }
  return types;
}

/** An HTTP/1.1 request with `node:http`, answered with status, headers, trailers and body. */
async function h1Request(method: string, path: string, headers: Record<string, string>, body: Buffer) {
  const answer = new Promise<{ status: number; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string>; body: Buffer }>((resolve, reject) => {
    const request = http.request(`${server.url}${path}`, { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, trailers: response.trailers, body: Buffer.concat(chunks) }));
    });
    request.on("error", reject);
    request.end(body);
  });
  return withTimeout(answer, 10_000, `an answer to ${method} ${path}`);
}

/**
 * A service the server does not have, for a typed client: QueueService's GetJob under
 * another service and method name (the client builds the URL from these two names).
 */
const unknownService = (() => {
  const method = { ...QueueService.method.getJob, name: "NoSuchMethod", localName: "noSuchMethod" };
  const service = { ...QueueService, typeName: "jobwire.v1.NoSuchService", methods: [method], method: { noSuchMethod: method } };
  method.parent = service as never;
  return service as unknown as DescService & { method: { noSuchMethod: typeof method }; methods: [typeof method] };
})();
