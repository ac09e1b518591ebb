import net from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@jobwire/sdk/gen/grpc/health/v1/health_pb";
import { QueueService } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { createLogger, defaultServerConfig, startJobwire, type JobwireServer } from "@jobwire/server";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { withTimeout } from "./support/with-timeout.js";
import { waitUntilBlockedBy } from "./support/row-locks.js";

const servers = new Set<JobwireServer>();
const pgClients = new Set<pg.Client>();

afterAll(async () => {
  await Promise.all([...pgClients].map((client) => client.end().catch(() => undefined)));
  await Promise.all([...servers].map((server) => withTimeout(server.close(), 30_000, `server ${server.url} to close`)));
});

/** An in-process server on a database of its own; closed after the file's tests. */
async function startServer() {
  const databaseUrl = await createTestDatabase();
  const server = await startJobwire(
    { ...defaultServerConfig, port: 0, dbPoolSize: 4, logLevel: "silent", shutdownGraceMs: 10_000, databaseUrl, auth: { ...defaultServerConfig.auth, enabled: false } },
    createLogger(process.env.JOBWIRE_TEST_LOG_LEVEL ?? "silent"),
  );
  servers.add(server);
  return { server, databaseUrl, health: createClient(Health, createGrpcTransport({ baseUrl: server.url })) };
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  pgClients.add(client);
  return client;
}

describe("grpc.health.v1.Health over gRPC", () => {
  let health: Awaited<ReturnType<typeof startServer>>["health"];
  beforeAll(async () => {
    ({ health } = await startServer());
  });

  it("Check answers SERVING for the whole server and for jobwire.v1.QueueService", async () => {
    expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
    expect((await health.check({ service: QueueService.typeName })).status).toBe(Status.SERVING);
    expect(QueueService.typeName).toBe("jobwire.v1.QueueService");
  });

  it("Check answers NOT_FOUND for a service the server does not serve", async () => {
    const error = await health.check({ service: "no.such.Service" }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.NotFound);
  });

  it("Check of a 70,000-character service name answers NOT_FOUND with a message that fits in a trailer", async () => {
    // The name is not echoed whole: a grpc-message that large breaks the HTTP/2 trailers.
    const error = await health.check({ service: "\u0000".repeat(70_000) }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );

    expect(error?.code).toBe(Code.NotFound);
    expect(error!.rawMessage.length).toBeLessThan(1024);
  });

  it("Watch of an unknown service streams SERVICE_UNKNOWN", async () => {
    const abort = new AbortController();
    const stream = health.watch({ service: "no.such.Service" }, { signal: abort.signal })[Symbol.asyncIterator]();
    try {
      const first = await withTimeout(stream.next(), 10_000, "the first Watch message");
      expect(first.value?.status).toBe(Status.SERVICE_UNKNOWN);
    } finally {
      abort.abort();
    }
  });
});

describe("Watch across a shutdown", () => {
  it("streams SERVING first, then NOT_SERVING when the server shuts down, then ends", async () => {
    const { server, health } = await startServer();
    const stream = health.watch({ service: QueueService.typeName })[Symbol.asyncIterator]();
    const first = await withTimeout(stream.next(), 10_000, "the first Watch message");
    expect(first.value?.status).toBe(Status.SERVING);

    const closing = server.close();
    const second = await withTimeout(stream.next(), 10_000, "a Watch message after close() started");
    expect(second.value?.status).toBe(Status.NOT_SERVING);
    const end = await withTimeout(stream.next(), 10_000, "the Watch stream to end");
    expect(end.done).toBe(true);
    // The stream ended on its own, so close() did not have to wait out the grace time.
    await withTimeout(closing, 5_000, "close() once the Watch stream ended");
  });
});

describe("HTTP probes", () => {
  let url: string;
  beforeAll(async () => {
    ({ server: { url } } = await startServer());
  });

  it("GET /healthz answers 200 with the Node version", async () => {
    const response = await fetch(`${url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok", node: process.version });
  });

  it("GET /readyz answers 200 when the database is migrated and the server not shutting down", async () => {
    const response = await fetch(`${url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ready" });
  });

  it("GET /readyz answers 503 once shutdown has started", async () => {
    const { server, databaseUrl } = await startServer();
    const { job } = await grpcQueueClient(server.url).enqueue({ job: { queue: "probes", kind: "hold-open" } });
    const holder = await connect(databaseUrl);
    const observer = await connect(databaseUrl);
    await holder.query("BEGIN");
    await holder.query("SELECT id FROM job WHERE id = $1 FOR UPDATE", [job!.id]);

    // One HTTP/1.1 connection: a CancelJob that blocks on the locked row keeps it open
    // (an active connection is neither idle nor refused) while shutdown starts.
    const socket = net.connect(server.port, "127.0.0.1");
    let received = "";
    socket.setEncoding("utf8").on("data", (chunk: string) => (received += chunk));
    const socketClosed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => undefined);
    await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), 10_000, "the probe connection");
    const body = JSON.stringify({ id: job!.id, reason: "probe" });
    socket.write(
      `POST /jobwire.v1.QueueService/CancelJob HTTP/1.1\r\nHost: jobwire\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await waitUntilBlockedBy(observer, holder);

    const closing = server.close();
    // Pipelined behind the blocked request, sent after shutdown started. The server reads
    // it long before the CancelJob can finish: that needs the lock released below and
    // three more round trips to Postgres.
    socket.write("GET /readyz HTTP/1.1\r\nHost: jobwire\r\n\r\n");
    await holder.query("COMMIT");
    await withTimeout(socketClosed, 15_000, () => `the server to answer both requests and close; received:\n${received}`);
    await withTimeout(closing, 15_000, "close()");

    const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
    expect(statuses, received).toEqual([200, 503]);
    expect(received).toContain('"status":"not ready"');
  });
});

