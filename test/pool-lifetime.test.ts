import { on } from "node:events";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "./support/server.js";

let server: JobwireServer;

beforeAll(async () => {
  server = await startTestServer({ dbConnectionLifetimeS: 1 });
});

afterAll(async () => {
  await server.close();
});

describe("the server's Postgres pool", () => {
  it("replaces a connection once it has lived its lifetime, so that its cached plans follow the statistics", async () => {
    const pool = server.db.pool;
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const first = rows[0]!.pid;
    const removals = on(pool, "remove", { signal: AbortSignal.timeout(5_000) });
    client.release();
    // Idle in the pool when its lifetime ends: the pool closes it (other connections of
    // this server are replaced too, each on its own timer).
    for await (const [removed] of removals as AsyncIterable<[{ processID?: number }]>) {
      if (removed.processID === first) break;
    }
    const { rows: after } = await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    expect(after[0]!.pid).not.toBe(first);
  });
});
