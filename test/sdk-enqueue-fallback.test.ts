import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createJobwireClient } from "@jobwire/sdk";
import { JobSchema } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { EnqueueRequestSchema, EnqueueResponseSchema } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * A stand-in for a server from before EnqueueJobs, on a real socket: it answers
 * EnqueueJobs with UNIMPLEMENTED and each Enqueue with a job of the requested queue, and
 * counts the calls of each.
 */
let server: http2.Http2Server;
let baseUrl: string;
const calls = { Enqueue: 0, EnqueueJobs: 0 };

function grpcFrame(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

beforeAll(async () => {
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const method = String(headers[":path"]).split("/").pop() as keyof typeof calls;
    calls[method] = (calls[method] ?? 0) + 1;
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      if (method !== "Enqueue") {
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12", "grpc-message": "unknown method" }, { endStream: true });
        return;
      }
      const request = fromBinary(EnqueueRequestSchema, Buffer.concat(chunks).subarray(5));
      const answer = create(EnqueueResponseSchema, { job: create(JobSchema, { id: `job-of-${request.job?.queue}`, queue: request.job?.queue }) });
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(grpcFrame(toBinary(EnqueueResponseSchema, answer)));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("the SDK's enqueue against a server without EnqueueJobs", () => {
  it("falls back to one Enqueue per job after the first UNIMPLEMENTED, and every call gets its own job", async () => {
    const client = createJobwireClient({ baseUrl });
    const jobs = await Promise.all(Array.from({ length: 10 }, (_, n) => client.enqueue(`q${n}`, "k")));
    expect(jobs.map((job) => job.queue)).toEqual(Array.from({ length: 10 }, (_, n) => `q${n}`));
    expect(jobs.map((job) => job.id)).toEqual(Array.from({ length: 10 }, (_, n) => `job-of-q${n}`));
    expect(calls).toEqual({ Enqueue: 10, EnqueueJobs: 1 });
    // Later calls do not try EnqueueJobs again.
    await Promise.all(Array.from({ length: 5 }, (_, n) => client.enqueue(`later${n}`, "k")));
    expect(calls).toEqual({ Enqueue: 15, EnqueueJobs: 1 });
  });
});
