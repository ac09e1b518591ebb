import { Code, ConnectError } from "@connectrpc/connect";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient } from "./support/clients.js";
import { startTestServer } from "./support/server.js";

let server: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;

beforeAll(async () => {
  server = await startTestServer();
  client = grpcQueueClient(server.url);
});

const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });

describe("queue defaults", () => {
  it("fill what a job leaves unset, while a job's own settings win", async () => {
    const { queue } = await client.updateQueue({
      name: "reports",
      defaults: { retryPolicy: { maxAttempts: 3, initialBackoff: seconds(5) }, leaseTimeout: seconds(5), executionTimeout: seconds(60) },
    });
    expect(queue?.defaults?.retryPolicy?.maxAttempts).toBe(3);
    const { job: inherited } = await client.enqueue({ job: { queue: "reports", kind: "build" } });
    expect(inherited?.retryPolicy?.maxAttempts).toBe(3);
    expect(inherited?.retryPolicy?.initialBackoff?.seconds).toBe(5n);
    expect(inherited?.retryPolicy?.maxBackoff?.seconds).toBe(3600n);
    expect(inherited?.leaseTimeout?.seconds).toBe(5n);
    expect(inherited?.executionTimeout?.seconds).toBe(60n);
    const { job: own } = await client.enqueue({
      job: { queue: "reports", kind: "build", retryPolicy: { maxAttempts: 7 }, leaseTimeout: seconds(9) },
    });
    expect(own?.retryPolicy?.maxAttempts).toBe(7);
    expect(own?.leaseTimeout?.seconds).toBe(9n);
    const { job: elsewhere } = await client.enqueue({ job: { queue: "other", kind: "build" } });
    expect(elsewhere?.retryPolicy?.maxAttempts).toBe(25);
    expect(elsewhere?.leaseTimeout?.seconds).toBe(30n);
    expect(elsewhere?.executionTimeout).toBeUndefined();
  });

  it("are replaced as a whole by UpdateQueue and apply only to jobs enqueued afterwards", async () => {
    await client.updateQueue({ name: "replace", defaults: { retryPolicy: { maxAttempts: 2 } } });
    const { job: before } = await client.enqueue({ job: { queue: "replace", kind: "k" } });
    await client.updateQueue({ name: "replace", defaults: { leaseTimeout: seconds(3) } });
    const { job: after } = await client.enqueue({ job: { queue: "replace", kind: "k" } });
    expect(before?.retryPolicy?.maxAttempts).toBe(2);
    expect(after?.retryPolicy?.maxAttempts).toBe(25);
    expect(after?.leaseTimeout?.seconds).toBe(3n);
    const { queue } = await client.getQueue({ name: "replace" });
    expect(queue?.defaults?.retryPolicy?.maxAttempts).toBe(0);
    expect(queue?.defaults?.leaseTimeout?.seconds).toBe(3n);
  });

  it("answers GetQueue of an unknown queue with NOT_FOUND and refuses bad defaults naming the field", async () => {
    const missing = ConnectError.from(await client.getQueue({ name: "never-used" }).catch((e: unknown) => e));
    expect(missing.code).toBe(Code.NotFound);
    const bad = ConnectError.from(
      await client.updateQueue({ name: "q", defaults: { retryPolicy: { maxAttempts: 5000 } } }).catch((e: unknown) => e),
    );
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toMatch(/^defaults\.retry_policy\.max_attempts /);
    const badName = ConnectError.from(await client.updateQueue({ name: "no spaces" }).catch((e: unknown) => e));
    expect(badName.rawMessage).toMatch(/^name /);
    const unchanged = await server.db.pool.query("SELECT count(*)::int AS n FROM queue WHERE name IN ('q', 'no spaces')");
    expect(unchanged.rows[0].n).toBe(0);
  });
});
