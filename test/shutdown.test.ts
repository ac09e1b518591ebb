import net from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { JobState } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { createLogger, defaultServerConfig, startJobwire, type JobwireServer } from "@jobwire/server";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { embeddedDataDir, startServerProcess, type ServerProcess } from "./support/server-process.js";
import { withTimeout } from "./support/with-timeout.js";
import { waitUntilBlockedBy } from "./support/row-locks.js";

const servers = new Set<JobwireServer>();
const clients = new Set<pg.Client>();

afterAll(async () => {
  // Release every row lock first, so that no server is left waiting on one.
  await Promise.all([...clients].map((client) => client.end().catch(() => undefined)));
  await Promise.all([...servers].map((server) => withTimeout(server.close(), 30_000, `server ${server.url} to close`)));
});

/** A pg client of the test's own, outside the server's pool; ended after the file's tests. */
async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  // A client whose backend is terminated (a Postgres shutdown) must not crash the worker.
  client.on("error", () => undefined);
  await client.connect();
  clients.add(client);
  return client;
}

/**
 * An in-process server on a database of its own with the given grace time, a gRPC
 * client, a `holder` connection for taking row locks and an `observer` connection for
 * watching them.
 */
async function setup(shutdownGraceMs: number) {
  const databaseUrl = await createTestDatabase();
  const server = await startJobwire(
    { ...defaultServerConfig, port: 0, dbPoolSize: 4, logLevel: "silent", shutdownGraceMs, databaseUrl, auth: { ...defaultServerConfig.auth, enabled: false } },
    createLogger(process.env.JOBWIRE_TEST_LOG_LEVEL ?? "silent"),
  );
  servers.add(server);
  return { server, client: grpcQueueClient(server.url), holder: await connect(databaseUrl), observer: await connect(databaseUrl) };
}

/** Opens a transaction on `holder` that holds the job row's lock until it ends. */
async function lockJobRow(holder: pg.Client, id: string): Promise<void> {
  await holder.query("BEGIN");
  const locked = await holder.query("SELECT id FROM job WHERE id = $1 FOR UPDATE", [id]);
  expect(locked.rowCount).toBe(1);
}

/** Opens a TCP connection and closes it again; rejects with the socket error (e.g. ECONNREFUSED). */
function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve();
    });
    socket.once("error", reject);
  });
}

/** Tells whether `promise` has settled, without waiting for it. */
function settledFlag(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

describe("graceful shutdown of an in-process server", () => {
  it("lets a request in flight when close() starts complete, refusing new connections meanwhile", async () => {
    const { server, client, holder, observer } = await setup(30_000);
    const { job } = await client.enqueue({ job: { queue: "shutdown", kind: "drain" } });
    await lockJobRow(holder, job!.id);
    const cancelling = client.cancelJob({ id: job!.id, reason: "shutting down" });
    await waitUntilBlockedBy(observer, holder);

    const closing = server.close();
    const closed = settledFlag(closing);
    await expect(connectOnce(server.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    // The request is still blocked on the row, and close() waits for it.
    expect(closed()).toBe(false);

    await holder.query("COMMIT");
    const answer = await withTimeout(cancelling, 15_000, "the in-flight CancelJob to complete after the lock was released");
    expect(answer.job?.state).toBe(JobState.CANCELLED);
    expect(answer.job?.cancelReason).toBe("shutting down");
    await withTimeout(closing, 15_000, "close() to resolve once the request in flight completed");
    const { rows } = await observer.query("SELECT state FROM job WHERE id = $1", [job!.id]);
    expect(rows[0].state).toBe("cancelled");
  });

  it("cuts off a request still in flight past the grace time, and close() still resolves with the pool closed", async () => {
    const { server, client, holder, observer } = await setup(300);
    const { job } = await client.enqueue({ job: { queue: "shutdown", kind: "stuck" } });
    await lockJobRow(holder, job!.id);
    const cancelling = client.cancelJob({ id: job!.id, reason: "too late" }).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    await waitUntilBlockedBy(observer, holder);

    try {
      // The row stays locked for as long as close() takes: the request cannot finish.
      const closing = server.close();
      const error = await withTimeout(cancelling, 15_000, "the CancelJob still blocked past the 300 ms grace time to be cut off");
      expect(error).toBeInstanceOf(ConnectError);
      // The server destroys the HTTP/2 session: the stream is reset with CANCEL.
      expect([Code.Canceled, Code.Unavailable]).toContain(error!.code);
      const pool = server.db.pool;
      await withTimeout(
        closing,
        10_000,
        () => `close() to resolve while a request is still blocked past the grace time (pool ending: ${pool.ending}, connections checked out: ${pool.totalCount - pool.idleCount})`,
      );
      // The cleanup in `finally` ran although draining timed out: the pool is closed.
      await expect(server.db.pool.query("SELECT 1")).rejects.toThrow(/end on the pool/);
    } finally {
      await holder.query("ROLLBACK");
    }
  });

  it("refuses new connections and new RPCs after close()", async () => {
    const { server, client } = await setup(5_000);
    await client.enqueue({ job: { queue: "shutdown", kind: "before" } });
    await withTimeout(server.close(), 15_000, "close() of an idle server");

    await expect(connectOnce(server.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    // A new client: reusing the first one right after the server's GOAWAY trips a bug of
    // @connectrpc/connect-node 2.2.0 (connect-es#1768, an uncaught "received GOAWAY
    // without any open streams"), which is the client's, not the server's.
    const error = await grpcQueueClient(server.url).enqueue({ job: { queue: "shutdown", kind: "after" } }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.Unavailable);
  });
});

describe("SIGTERM of a server process", () => {
  /**
   * Starts a server process, blocks a CancelJob on a row lock, sends SIGTERM, waits for
   * the server to log that it is shutting down, then releases the lock. Returns what
   * happened to the lock, the request and the process.
   */
  async function cancelInFlightAcrossSigterm(server: ServerProcess, databaseUrl: string) {
    const enqueued = await postJson(server.url, "jobwire.v1.QueueService/Enqueue", { job: { queue: "shutdown", kind: "sigterm" } });
    expect(enqueued.status).toBe(200);
    const id = enqueued.body.job.id as string;
    const holder = await connect(databaseUrl);
    const observer = await connect(databaseUrl);
    await lockJobRow(holder, id);
    const cancelling = postJson(server.url, "jobwire.v1.QueueService/CancelJob", { id, reason: "sigterm" }).catch((error: Error) => ({
      status: 0,
      body: { transportError: `${error.message}: ${String(error.cause)}` } as Record<string, any>,
    }));
    await waitUntilBlockedBy(observer, holder);

    const stopping = server.stop("SIGTERM");
    await server.waitForLog("shutting down");
    const lock = await holder.query("COMMIT").then(
      () => "released by COMMIT",
      (error: Error) => `lost: ${error.message}`,
    );
    const answer = await withTimeout(cancelling, 15_000, "the in-flight CancelJob to complete after SIGTERM");
    const exitCode = await stopping;
    return {
      outcome: { lock, status: answer.status, state: answer.body.job?.state, exitCode },
      details: `${JSON.stringify(answer.body)}\n${server.output()}`,
    };
  }

  const expectedOutcome = { lock: "released by COMMIT", status: 200, state: "JOB_STATE_CANCELLED", exitCode: 0 };

  it("exits with code 0 after logging that it stopped, on DATABASE_URL", async () => {
    const server = await startServerProcess({ database: { databaseUrl: await createTestDatabase() } });
    const exitCode = await server.stop("SIGTERM");
    expect({ exitCode, stopped: server.logs.some((line) => line.msg === "jobwire stopped") }, server.output()).toEqual({
      exitCode: 0,
      stopped: true,
    });
  });

  it("lets a request in flight finish, then exits with code 0, on DATABASE_URL", async () => {
    const databaseUrl = await createTestDatabase();
    const server = await startServerProcess({ database: { databaseUrl }, env: { JOBWIRE_SHUTDOWN_GRACE_MS: "30000" } });
    const { outcome, details } = await cancelInFlightAcrossSigterm(server, databaseUrl);
    expect(outcome, details).toEqual(expectedOutcome);
  });

  it("lets a request in flight finish before its embedded Postgres stops, then exits with code 0", async () => {
    const data = await embeddedDataDir();
    const server = await startServerProcess({ database: data.database, env: { JOBWIRE_SHUTDOWN_GRACE_MS: "30000" } });
    const { outcome, details } = await cancelInFlightAcrossSigterm(server, data.urlFor("postgres"));
    expect(outcome, details).toEqual(expectedOutcome);
  });
});
