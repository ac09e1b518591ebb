import { create, toBinary } from "@bufbuild/protobuf";
import { EnqueueRequestSchema } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { grpcFrame, rawHttp2Request } from "./support/raw-http2.js";
import { startTestServer } from "./support/server.js";
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

  it("the server still answers a well-formed request afterwards", async () => {
    const { job } = await grpcQueueClient(server.url).enqueue({ job: { queue: "raw", kind: "after" } });

    expect(job?.id).toBeTruthy();
  });
});
