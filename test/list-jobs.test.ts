import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { JobState, type Job, type JobSpecSchema } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { ListJobsRequestSchema } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { startTestServer } from "./support/server.js";
import { failureOf } from "./support/failure-of.js";

let server: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;

beforeAll(async () => {
  server = await startTestServer();
  client = grpcQueueClient(server.url);
});

type SpecInit = Omit<MessageInitShape<typeof JobSpecSchema>, "$typeName">;
type ListInit = Omit<MessageInitShape<typeof ListJobsRequestSchema>, "$typeName">;

/** Enqueues one job and returns it. */
async function enqueue(spec: SpecInit): Promise<Job> {
  const { job } = await client.enqueue({ job: spec });
  return job!;
}

/** Enqueues `count` jobs into `queue` in one batch; returns their ids. */
async function enqueueMany(queue: string, count: number, extra: SpecInit = {}): Promise<string[]> {
  const { jobIds } = await client.enqueueBatch({ jobs: Array.from({ length: count }, () => ({ queue, kind: "item", ...extra })) });
  return jobIds;
}

/** Ids of one ListJobs page. */
async function listIds(request: ListInit): Promise<string[]> {
  const { jobs } = await client.listJobs(request);
  return jobs.map((job) => job.id);
}

/** Walks every page of a listing; returns the pages' ids. */
async function walkPages(request: ListInit): Promise<string[][]> {
  const pages: string[][] = [];
  let pageToken = "";
  do {
    const response = await client.listJobs({ ...request, pageToken });
    pages.push(response.jobs.map((job) => job.id));
    pageToken = response.nextPageToken;
    // Bounded: a token that never ends the listing is a failure, not a hang.
    expect(pages.length).toBeLessThan(1_000);
  } while (pageToken);
  return pages;
}

/** Ids newest first, the order ListJobs promises (UUIDv7 ids sort by creation). */
function newestFirst(ids: string[]): string[] {
  return [...ids].sort().reverse();
}

describe("ListJobs filters", () => {
  it("lists only the jobs of the queues asked for, newest first", async () => {
    const a = await enqueueMany("lf-queue-a", 3);
    const b = await enqueueMany("lf-queue-b", 2);
    await enqueueMany("lf-queue-c", 2);

    expect(await listIds({ queues: ["lf-queue-a"] })).toEqual(newestFirst(a));
    expect(await listIds({ queues: ["lf-queue-b", "lf-queue-a"] })).toEqual(newestFirst([...a, ...b]));
    expect(await listIds({ queues: ["lf-queue-none"] })).toEqual([]);
  });

  it("lists only the jobs of the kinds asked for", async () => {
    const resize = await enqueueMany("lf-kinds", 2, { kind: "resize" });
    const crop = await enqueueMany("lf-kinds", 2, { kind: "crop" });
    await enqueueMany("lf-kinds", 2, { kind: "rotate" });

    expect(await listIds({ queues: ["lf-kinds"], kinds: ["resize"] })).toEqual(newestFirst(resize));
    expect(await listIds({ queues: ["lf-kinds"], kinds: ["crop", "resize"] })).toEqual(newestFirst([...resize, ...crop]));
  });

  it("lists only the jobs in the states asked for", async () => {
    const pending = await enqueue({ queue: "lf-states", kind: "k" });
    const scheduled = await enqueue({ queue: "lf-states", kind: "k", schedule: { case: "delay", value: { seconds: 3600n } } });
    const cancelled = await enqueue({ queue: "lf-states", kind: "k" });
    await client.cancelJob({ id: cancelled.id });

    const { jobs } = await client.listJobs({ queues: ["lf-states"], states: [JobState.SCHEDULED, JobState.CANCELLED] });

    expect(jobs.map((job) => [job.id, job.state])).toEqual([
      [cancelled.id, JobState.CANCELLED],
      [scheduled.id, JobState.SCHEDULED],
    ]);
    expect(await listIds({ queues: ["lf-states"], states: [JobState.PENDING] })).toEqual([pending.id]);
    expect(await listIds({ queues: ["lf-states"], states: [JobState.PENDING, JobState.PENDING] })).toEqual([pending.id]);
  });

  it("lists jobs created in [created_after, created_before)", async () => {
    const [jan1, jan2, jan3] = await enqueueMany("lf-created", 3);
    // Creation times a day apart, set in the database so that the range is exact.
    await server.db.pool.query(
      `UPDATE job SET created_at = v.created_at, updated_at = v.created_at, run_at = v.created_at
       FROM (VALUES ($1::uuid, '2020-01-01T00:00:00Z'::timestamptz), ($2, '2020-01-02T00:00:00Z'), ($3, '2020-01-03T00:00:00Z')) AS v(id, created_at)
       WHERE job.id = v.id`,
      [jan1, jan2, jan3],
    );
    const at = (iso: string) => timestampFromDate(new Date(iso));

    expect(await listIds({ queues: ["lf-created"], createdAfter: at("2020-01-02T00:00:00Z") })).toEqual([jan3, jan2]);
    expect(await listIds({ queues: ["lf-created"], createdBefore: at("2020-01-02T00:00:00Z") })).toEqual([jan1]);
    expect(
      await listIds({ queues: ["lf-created"], createdAfter: at("2020-01-02T00:00:00Z"), createdBefore: at("2020-01-03T00:00:00Z") }),
    ).toEqual([jan2]);
    expect(await listIds({ queues: ["lf-created"], createdAfter: at("2020-01-04T00:00:00Z") })).toEqual([]);
  });

  it("includes a job whose created_at equals created_after and excludes it when it equals created_before", async () => {
    const job = await enqueue({ queue: "lf-created-bounds", kind: "k" });

    expect(await listIds({ queues: ["lf-created-bounds"], createdAfter: job.createdAt })).toEqual([job.id]);
    expect(await listIds({ queues: ["lf-created-bounds"], createdBefore: job.createdAt })).toEqual([]);
  });

  it("honours the sub-millisecond part of created_after and created_before", async () => {
    const [job] = await enqueueMany("lf-created-micros", 1);
    // Postgres keeps microseconds: this job was created 200 µs after 2021-01-01T00:00:00Z.
    await server.db.pool.query(
      `UPDATE job SET created_at = t.at, updated_at = t.at, run_at = t.at
       FROM (SELECT '2021-01-01T00:00:00.000200Z'::timestamptz AS at) t WHERE id = $1`,
      [job],
    );
    const at = (micros: number) => ({ seconds: 1_609_459_200n, nanos: micros * 1_000 });

    expect(await listIds({ queues: ["lf-created-micros"], createdAfter: at(100) })).toEqual([job]);
    expect(await listIds({ queues: ["lf-created-micros"], createdAfter: at(400) })).toEqual([]);
    expect(await listIds({ queues: ["lf-created-micros"], createdBefore: at(400) })).toEqual([job]);
    expect(await listIds({ queues: ["lf-created-micros"], createdBefore: at(100) })).toEqual([]);
  });

  it("lists only the jobs whose metadata contains every entry of the filter", async () => {
    const aProd = await enqueue({ queue: "lf-meta", kind: "k", metadata: { team: "a", env: "prod", region: "eu" } });
    const aDev = await enqueue({ queue: "lf-meta", kind: "k", metadata: { team: "a", env: "dev" } });
    const bProd = await enqueue({ queue: "lf-meta", kind: "k", metadata: { team: "b", env: "prod" } });
    await enqueue({ queue: "lf-meta", kind: "k" });

    expect(await listIds({ queues: ["lf-meta"], metadata: { team: "a" } })).toEqual([aDev.id, aProd.id]);
    expect(await listIds({ queues: ["lf-meta"], metadata: { env: "prod", team: "a" } })).toEqual([aProd.id]);
    expect(await listIds({ queues: ["lf-meta"], metadata: { env: "prod" } })).toEqual([bProd.id, aProd.id]);
    expect(await listIds({ queues: ["lf-meta"], metadata: { team: "c" } })).toEqual([]);
    // Containment, not equality: an entry's value must match whole.
    expect(await listIds({ queues: ["lf-meta"], metadata: { team: "" } })).toEqual([]);
  });

  it("combines filters with AND", async () => {
    const match = await enqueue({ queue: "lf-and", kind: "send", metadata: { tenant: "t1" } });
    await enqueue({ queue: "lf-and", kind: "send", metadata: { tenant: "t2" } });
    await enqueue({ queue: "lf-and", kind: "other", metadata: { tenant: "t1" } });
    const cancelled = await enqueue({ queue: "lf-and", kind: "send", metadata: { tenant: "t1" } });
    await client.cancelJob({ id: cancelled.id });

    expect(
      await listIds({ queues: ["lf-and"], kinds: ["send"], states: [JobState.PENDING], metadata: { tenant: "t1" } }),
    ).toEqual([match.id]);
  });

  it("filters and pages the same over Connect JSON", async () => {
    const ids = await enqueueMany("lf-json", 3, { metadata: { via: "json" } });

    const first = await postJson(server.url, "jobwire.v1.QueueService/ListJobs", {
      queues: ["lf-json"], states: ["JOB_STATE_PENDING"], metadata: { via: "json" }, pageSize: 2,
    });
    expect(first.status).toBe(200);
    expect(first.body.jobs.map((job: { id: string }) => job.id)).toEqual(newestFirst(ids).slice(0, 2));
    const second = await postJson(server.url, "jobwire.v1.QueueService/ListJobs", {
      queues: ["lf-json"], states: ["JOB_STATE_PENDING"], metadata: { via: "json" }, pageSize: 2, pageToken: first.body.nextPageToken,
    });
    expect(second.body.jobs.map((job: { id: string }) => job.id)).toEqual(newestFirst(ids).slice(2));
    expect(second.body.nextPageToken ?? "").toBe("");
  });
});

describe("ListJobs page size", () => {
  it("returns 50 jobs a page when page_size is unset or 0", async () => {
    const ids = await enqueueMany("lp-default", 60);

    const unset = await client.listJobs({ queues: ["lp-default"] });
    const zero = await client.listJobs({ queues: ["lp-default"], pageSize: 0 });

    expect(unset.jobs.map((job) => job.id)).toEqual(newestFirst(ids).slice(0, 50));
    expect(zero.jobs.map((job) => job.id)).toEqual(newestFirst(ids).slice(0, 50));
    expect(unset.nextPageToken).not.toBe("");
    const rest = await client.listJobs({ queues: ["lp-default"], pageToken: unset.nextPageToken });
    expect(rest.jobs.map((job) => job.id)).toEqual(newestFirst(ids).slice(50));
    expect(rest.nextPageToken).toBe("");
  });

  it("returns up to 1000 jobs a page at page_size 1000", async () => {
    const ids = await enqueueMany("lp-max", 1001);

    const { jobs, nextPageToken } = await client.listJobs({ queues: ["lp-max"], pageSize: 1000 });

    expect(jobs).toHaveLength(1000);
    expect(jobs.map((job) => job.id)).toEqual(newestFirst(ids).slice(0, 1000));
    expect(nextPageToken).not.toBe("");
  });

  it("gives no next page token when the last page is exactly full", async () => {
    await enqueueMany("lp-exact", 4);

    const pages = await walkPages({ queues: ["lp-exact"], pageSize: 2 });

    expect(pages.map((page) => page.length)).toEqual([2, 2]);
  });

  it.each([1001, -1, 2_147_483_647])("refuses page_size %i with INVALID_ARGUMENT naming page_size", async (pageSize) => {
    const error = await failureOf(client.listJobs({ pageSize }));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^page_size[:\s]/);
  });
});

describe("ListJobs page tokens", () => {
  it("walking every page returns every job exactly once, newest first", async () => {
    // Jobs with phases too: a page is a number of jobs, not of joined phase rows.
    const ids = [
      ...(await enqueueMany("lt-walk", 40, { phases: ["one", "two", "three"] })),
      ...(await enqueueMany("lt-walk", 37)),
    ];

    const pages = await walkPages({ queues: ["lt-walk"], pageSize: 10 });

    expect(pages.map((page) => page.length)).toEqual([10, 10, 10, 10, 10, 10, 10, 7]);
    expect(pages.flat()).toEqual(newestFirst(ids));
  });

  it("pagination neither skips nor repeats when jobs are inserted between and during page requests", async () => {
    const original = await enqueueMany("lt-concurrent", 53, { phases: ["a"] });
    const inserted: string[] = [];
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      // One insert races the page request, another lands between requests.
      const [response, racing] = await Promise.all([
        client.listJobs({ queues: ["lt-concurrent"], pageSize: 8, pageToken }),
        enqueueMany("lt-concurrent", 2, { phases: ["a"] }),
      ]);
      inserted.push(...racing, ...(await enqueueMany("lt-concurrent", 3)));
      seen.push(...response.jobs.map((job) => job.id));
      pageToken = response.nextPageToken;
      pages++;
      expect(pages).toBeLessThan(100);
    } while (pageToken);

    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(newestFirst(seen));
    // Every job that existed when the walk began is in it; later ones only if they raced page one.
    expect(seen.filter((id) => original.includes(id))).toEqual(newestFirst(original));
    expect(seen.filter((id) => !original.includes(id)).every((id) => inserted.includes(id))).toBe(true);
  });

  it("a token continues the listing when the same filter lists its values in another order", async () => {
    const ids = [...(await enqueueMany("lt-order-a", 3)), ...(await enqueueMany("lt-order-b", 3))];

    const first = await client.listJobs({ queues: ["lt-order-a", "lt-order-b"], pageSize: 4 });
    const second = await client.listJobs({ queues: ["lt-order-b", "lt-order-a"], pageSize: 4, pageToken: first.nextPageToken });

    expect([...first.jobs, ...second.jobs].map((job) => job.id)).toEqual(newestFirst(ids));
  });

  it.each<[string, ListInit]>([
    ["another queue", { queues: ["lt-other"] }],
    ["no queue filter", {}],
    ["an added kind filter", { queues: ["lt-filter"], kinds: ["item"] }],
    ["an added state filter", { queues: ["lt-filter"], states: [JobState.PENDING] }],
    ["an added metadata filter", { queues: ["lt-filter"], metadata: { a: "b" } }],
    ["an added created_after", { queues: ["lt-filter"], createdAfter: timestampFromDate(new Date("2020-01-01T00:00:00Z")) }],
  ])("a token used with a different filter (%s) is INVALID_ARGUMENT naming page_token", async (_name, otherFilter) => {
    await enqueueMany("lt-filter", 3);
    const first = await client.listJobs({ queues: ["lt-filter"], pageSize: 1 });
    expect(first.nextPageToken).not.toBe("");

    const error = await failureOf(client.listJobs({ ...otherFilter, pageSize: 1, pageToken: first.nextPageToken }));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^page_token[:\s]/);
  });

  it("garbage page tokens are INVALID_ARGUMENT naming page_token", async () => {
    const { nextPageToken } = await client.listJobs({ queues: ["lt-filter"], pageSize: 1 });
    const b64 = (text: string) => Buffer.from(text).toString("base64url");
    const garbage = [
      "garbage",
      "!!!",
      "%00",
      nextPageToken.slice(0, -6),
      b64("null"),
      b64("1"),
      b64("{}"),
      b64('{"v":2,"after":"01930000-0000-7000-8000-000000000000","f":"x"}'),
      b64('{"v":1,"after":"not-a-uuid","f":"x"}'),
      b64('{"v":1,"after":"01930000-0000-7000-8000-000000000000\' OR 1=1 --","f":"x"}'),
    ];

    for (const pageToken of garbage) {
      const error = await failureOf(client.listJobs({ queues: ["lt-filter"], pageSize: 1, pageToken }));
      expect(error.code, pageToken).toBe(Code.InvalidArgument);
      expect(error.rawMessage, pageToken).toMatch(/^page_token[:\s]/);
    }
  });

  it("refuses unknown states, UNSPECIFIED and bad queue names in the filter, naming the field", async () => {
    const cases: [ListInit, RegExp][] = [
      [{ states: [99 as JobState] }, /^states\[0\][:\s]/],
      [{ states: [JobState.PENDING, JobState.UNSPECIFIED] }, /^states\[1\][:\s]/],
      [{ queues: ["ok", "not ok"] }, /^queues\[1\][:\s]/],
      [{ kinds: [""] }, /^kinds\[0\][:\s]/],
      [{ createdAfter: { seconds: 253_402_300_800n, nanos: 0 } }, /^created_after[:\s]/],
      [{ metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }, /^metadata[:\s]/],
    ];
    for (const [request, field] of cases) {
      const error = await failureOf(client.listJobs(request));
      expect(error.code, String(field)).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(field);
    }
  });
});
