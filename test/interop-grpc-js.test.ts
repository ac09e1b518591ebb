import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { startByteCountingRelay } from "./support/byte-counting-relay.js";
import { startTestServer } from "./support/server.js";

/** The contract's source folder, read as-is at run time: nothing generated is used here. */
const protoRoot = fileURLToPath(new URL("../proto", import.meta.url));
/** Deadline of every call, so a server that never answers fails the test instead of hanging it. */
const callTimeoutMs = 10_000;

/**
 * `google.protobuf.Value` as @grpc/proto-loader hands it over: one member of the `kind`
 * oneof set, with `kind` naming it (the `oneofs` option).
 */
interface ValueObject {
  kind?: "nullValue" | "numberValue" | "stringValue" | "boolValue" | "structValue" | "listValue";
  nullValue?: "NULL_VALUE";
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: { fields: Record<string, ValueObject> };
  listValue?: { values: ValueObject[] };
}

/** JSON as a `google.protobuf.Value`; proto-loader does not map Value to JSON itself. */
function toValue(json: unknown): ValueObject {
  if (json === null) return { nullValue: "NULL_VALUE" };
  if (typeof json === "number") return { numberValue: json };
  if (typeof json === "string") return { stringValue: json };
  if (typeof json === "boolean") return { boolValue: json };
  if (Array.isArray(json)) return { listValue: { values: json.map(toValue) } };
  if (typeof json === "object") {
    return { structValue: { fields: Object.fromEntries(Object.entries(json).map(([key, item]) => [key, toValue(item)])) } };
  }
  throw new TypeError(`not JSON: ${String(json)}`);
}

/** A `google.protobuf.Value` from proto-loader back to JSON. */
function fromValue(value: ValueObject | null | undefined): unknown {
  if (!value?.kind) return undefined;
  switch (value.kind) {
    case "nullValue":
      return null;
    case "listValue":
      return (value.listValue?.values ?? []).map(fromValue);
    case "structValue":
      return Object.fromEntries(Object.entries(value.structValue?.fields ?? {}).map(([key, item]) => [key, fromValue(item)]));
    default:
      return value[value.kind];
  }
}

type UnaryMethod = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: any) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method of a client made from a proto-loader definition. */
function call(client: grpc.Client, method: string, request: object, metadata = new grpc.Metadata()): Promise<any> {
  const unary = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
  if (!unary) throw new Error(`the client has no method ${method}`);
  return new Promise((resolve, reject) => {
    unary.call(client, request, metadata, { deadline: Date.now() + callTimeoutMs }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** Makes a call that must fail and returns its error; a success fails the test. */
async function failure(client: grpc.Client, method: string, request: object): Promise<grpc.ServiceError> {
  const outcome = await call(client, method, request).then(
    (response: unknown) => ({ response }),
    (error: grpc.ServiceError) => ({ error }),
  );
  if ("response" in outcome) throw new Error(`${method} was expected to fail but answered ${JSON.stringify(outcome.response)}`);
  return outcome.error;
}

let server: JobwireServer;
let QueueService: grpc.ServiceClientConstructor;
let Health: grpc.ServiceClientConstructor;
let queue: grpc.Client;

/** A client of `Service` on `target`; the caller closes it. */
function newClient(Service: grpc.ServiceClientConstructor, target: string, options: grpc.ChannelOptions = {}): grpc.Client {
  // grpc-js would honour http_proxy; the server is on loopback.
  return new Service(target, grpc.credentials.createInsecure(), { "grpc.enable_http_proxy": 0, ...options });
}

beforeAll(async () => {
  server = await startTestServer();
  // google/protobuf/{struct,timestamp,duration}.proto need no include folder: protobufjs
  // (under proto-loader) carries the well-known types built in and resolves them by name.
  const definition = await protoLoader.load(["jobwire/v1/queue_service.proto", "grpc/health/v1/health.proto"], {
    includeDirs: [protoRoot],
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as any;
  QueueService = loaded.jobwire.v1.QueueService;
  Health = loaded.grpc.health.v1.Health;
  queue = newClient(QueueService, `127.0.0.1:${server.port}`);
  afterAll(() => queue.close());
});

describe("a grpc-js client built from the .proto files at run time", () => {
  it("enqueues a job with a JSON payload, metadata and phases, then gets, lists and cancels it", async () => {
    const run = crypto.randomUUID();
    const payload = { to: "ada@example.com", tries: [1, 2.5], vip: true, note: null, nested: { ok: "é✓" } };
    const { job: enqueued } = await call(queue, "Enqueue", {
      job: { queue: "emails", kind: "send-welcome", payload: toValue(payload), priority: 5, metadata: { tenant: "acme", run }, phases: ["render", "send"] },
    });
    expect(enqueued.state).toBe("JOB_STATE_PENDING");

    const { job: got } = await call(queue, "GetJob", { id: enqueued.id });
    expect(got.id).toBe(enqueued.id);
    expect(fromValue(got.payload)).toEqual(payload);
    expect(got.metadata).toEqual({ tenant: "acme", run });
    expect(got.priority).toBe(5);
    expect(got.owner).toBe("local");
    expect(got.retryPolicy.maxAttempts).toBe(25);
    expect(got.leaseTimeout).toEqual({ seconds: "30", nanos: 0 });
    expect(got.phases.map((phase: { name: string; state: string }) => [phase.name, phase.state])).toEqual([
      ["render", "PHASE_STATE_PENDING"],
      ["send", "PHASE_STATE_PENDING"],
    ]);

    const listed = await call(queue, "ListJobs", { queues: ["emails"], metadata: { run } });
    expect(listed.jobs.map((job: { id: string }) => job.id)).toEqual([enqueued.id]);
    expect(listed.nextPageToken).toBe("");

    const { job: cancelled } = await call(queue, "CancelJob", { id: enqueued.id, reason: "not needed" });
    expect(cancelled.state).toBe("JOB_STATE_CANCELLED");
    expect(cancelled.cancelReason).toBe("not needed");
    expect(cancelled.phases.map((phase: { state: string }) => phase.state)).toEqual(["PHASE_STATE_CANCELLED", "PHASE_STATE_CANCELLED"]);

    const { job: afterCancel } = await call(queue, "GetJob", { id: enqueued.id });
    expect(afterCancel.state).toBe("JOB_STATE_CANCELLED");
  });

  it("gets INVALID_ARGUMENT (3) with a message naming the offending field", async () => {
    const emptyQueue = await failure(queue, "Enqueue", { job: { queue: "", kind: "send" } });
    expect(emptyQueue.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(emptyQueue.code).toBe(3);
    expect(emptyQueue.details).toContain("job.queue");

    const tooManyAttempts = await failure(queue, "Enqueue", { job: { queue: "emails", kind: "send", retryPolicy: { maxAttempts: 5000 } } });
    expect(tooManyAttempts.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(tooManyAttempts.details).toContain("job.retry_policy.max_attempts");

    const badId = await failure(queue, "CancelJob", { id: "not-a-uuid" });
    expect(badId.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(badId.details).toMatch(/^id\b/);
  });

  it("reads an INVALID_ARGUMENT message as the server wrote it, with no percent-escapes left", async () => {
    // The server writes `job.queue is required`; the message travels percent-encoded in the
    // grpc-message trailer and a client must decode every escape (Python's grpcio does).
    const emptyQueue = await failure(queue, "Enqueue", { job: { queue: "", kind: "send" } });
    expect(emptyQueue.details).toBe("job.queue is required");
    const badId = await failure(queue, "GetJob", { id: "not-a-uuid" });
    expect(badId.details).toBe("id must be a job id (a UUID)");
  });

  it("gets NOT_FOUND (5) for an unknown job id", async () => {
    const unknownId = "01930000-0000-7000-8000-000000000000";
    const got = await failure(queue, "GetJob", { id: unknownId });
    expect(got.code).toBe(grpc.status.NOT_FOUND);
    expect(got.code).toBe(5);
    const cancelled = await failure(queue, "CancelJob", { id: unknownId });
    expect(cancelled.code).toBe(grpc.status.NOT_FOUND);
  });

  it("gets SERVING from grpc.health.v1.Health/Check for the server and for QueueService", async () => {
    const health = newClient(Health, `127.0.0.1:${server.port}`);
    onTestFinished(() => health.close());
    expect(await call(health, "Check", { service: "" })).toEqual({ status: "SERVING" });
    expect(await call(health, "Check", { service: "jobwire.v1.QueueService" })).toEqual({ status: "SERVING" });
    const unknown = await failure(health, "Check", { service: "no.such.Service" });
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
  });

  it("with gzip as the channel's default compression, sends and receives large messages gzip-compressed", async () => {
    const relay = await startByteCountingRelay("127.0.0.1", server.port);
    onTestFinished(() => relay.close());
    const gzipQueue = newClient(QueueService, relay.target, { "grpc.default_compression_algorithm": grpc.compressionAlgorithms.gzip });
    onTestFinished(() => gzipQueue.close());
    expect(grpc.compressionAlgorithms.gzip).toBe(2);
    // Compressible and large: gzip makes it about 1 KiB on the wire.
    const payload = { text: "jobwire ".repeat(32_768) };
    const metadata = new grpc.Metadata();
    metadata.set("x-request-id", crypto.randomUUID());

    const { job: enqueued } = await call(gzipQueue, "Enqueue", { job: { queue: "bulk", kind: "import", payload: toValue(payload) } }, metadata);
    const { job: got } = await call(gzipQueue, "GetJob", { id: enqueued.id }, metadata);

    expect(fromValue(got.payload)).toEqual(payload);
    // The payload crossed the relay once each way (Enqueue up, GetJob down); uncompressed it
    // alone is over 256 KiB.
    expect(JSON.stringify(payload).length).toBeGreaterThan(256 * 1024);
    expect(relay.bytesToServer()).toBeLessThan(32 * 1024);
    expect(relay.bytesToClient()).toBeLessThan(32 * 1024);
  });
});
