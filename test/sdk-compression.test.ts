import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createJobwireClient } from "@jobwire/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * A stand-in gRPC server on a real socket that records each request's
 * `grpc-accept-encoding` header and refuses the call (UNAVAILABLE), so that the test sees
 * what the SDK asks for without a Jobwire server choosing how to answer.
 */
let server: http2.Http2Server;
let baseUrl: string;
const acceptEncodings: (string | undefined)[] = [];

beforeAll(async () => {
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    acceptEncodings.push(headers["grpc-accept-encoding"] as string | undefined);
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "14", "grpc-message": "stand-in" }, { endStream: true });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("the SDK's response compression", () => {
  it("is not asked for by default, as with gRPC's own clients, and is gzip when asked for", async () => {
    await expect(createJobwireClient({ baseUrl }).getJob("0190a0b0-0000-7000-8000-000000000000")).rejects.toThrow(/stand-in/);
    await expect(createJobwireClient({ baseUrl, compression: true }).getJob("0190a0b0-0000-7000-8000-000000000000")).rejects.toThrow(/stand-in/);
    expect(acceptEncodings).toEqual([undefined, "gzip"]);
  });
});
