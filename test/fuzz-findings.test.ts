import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { postJson } from "./support/clients.js";
import { startTestServer } from "./support/server.js";

/**
 * Requests the fuzzer (`npm run fuzz`) found mishandled, each pinned by a focused test over
 * Connect JSON, as `curl` sends them.
 */

let server: JobwireServer;

beforeAll(async () => {
  server = await startTestServer();
});

/** The last nanosecond a `google.protobuf.Timestamp` can carry. */
const lastTimestamp = "9999-12-31T23:59:59.999999999Z";

describe("a timestamp at the last nanosecond of year 9999", () => {
  it("is a valid expiry for an API key: the key is created, listed and revoked, and expires in year 9999", async () => {
    const created = await postJson(server.url, "jobwire.v1.AdminService/CreateApiKey", { principal: "far-future", role: "ROLE_READER", expiresAt: lastTimestamp });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    // Cut to the millisecond, not rounded into year 10000, which no Timestamp can carry.
    expect(created.body.apiKey.expiresAt).toBe("9999-12-31T23:59:59.999Z");
    const id = created.body.apiKey.id as string;

    const listed = await postJson(server.url, "jobwire.v1.AdminService/ListApiKeys", { principal: "far-future" });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    expect(listed.body.apiKeys.map((key: { id: string }) => key.id)).toEqual([id]);

    const revoked = await postJson(server.url, "jobwire.v1.AdminService/RevokeApiKey", { id });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const { rows } = await server.db.pool.query<{ year: number }>("SELECT extract(year FROM expires_at AT TIME ZONE 'UTC')::int AS year FROM api_key WHERE id = $1", [id]);
    expect(rows).toEqual([{ year: 9999 }]);
  });

  it("is a valid run_at for a job: it is enqueued, read and listed, scheduled in year 9999", async () => {
    const enqueued = await postJson(server.url, "jobwire.v1.QueueService/Enqueue", { job: { queue: "far-future", kind: "k", runAt: lastTimestamp } });
    expect(enqueued.status, JSON.stringify(enqueued.body)).toBe(200);
    expect(enqueued.body.job.runAt).toBe("9999-12-31T23:59:59.999Z");

    const read = await postJson(server.url, "jobwire.v1.QueueService/GetJob", { id: enqueued.body.job.id });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    const listed = await postJson(server.url, "jobwire.v1.QueueService/ListJobs", { queues: ["far-future"] });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    expect(listed.body.jobs.map((job: { id: string }) => job.id)).toEqual([enqueued.body.job.id]);
  });
});

describe("ListApiKeys", () => {
  it("refuses a page token that is not one of its own, naming page_token and ListApiKeys", async () => {
    for (let i = 0; i < 2; i++) await postJson(server.url, "jobwire.v1.QueueService/Enqueue", { job: { queue: "tokens", kind: "k" } });
    const jobs = await postJson(server.url, "jobwire.v1.QueueService/ListJobs", { queues: ["tokens"], pageSize: 1 });
    expect(jobs.body.nextPageToken).toBeTruthy();
    for (const pageToken of ["not-a-token", jobs.body.nextPageToken]) {
      const refused = await postJson(server.url, "jobwire.v1.AdminService/ListApiKeys", { pageToken });
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ code: "invalid_argument", message: "page_token is not a token returned by ListApiKeys" });
    }
  });
});
