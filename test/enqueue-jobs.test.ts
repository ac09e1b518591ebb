import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { createJobwireClient, JobState, type JobwireClient } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";

let server: JobwireServer;
let raw: ReturnType<typeof grpcQueueClient>;
let client: JobwireClient;

beforeAll(async () => {
  server = await startTestServer({ maxBatchSize: 50 });
  raw = grpcQueueClient(server.url);
  client = createJobwireClient({ baseUrl: server.url });
});

/** Each job's event types, in order. */
async function eventTypes(ids: readonly string[]): Promise<Map<string, string[]>> {
  const { rows } = await server.db.pool.query<{ job_id: string; type: string }>("SELECT job_id, type FROM job_event WHERE job_id = ANY($1) ORDER BY id", [ids]);
  const types = new Map<string, string[]>();
  for (const row of rows) types.set(row.job_id, [...(types.get(row.job_id) ?? []), row.type]);
  return types;
}

describe("EnqueueJobs", () => {
  it("answers each job on its own and in order: a refused job leaves the others created", async () => {
    const { results } = await raw.enqueueJobs({
      jobs: [
        { queue: "ej-mixed", kind: "k", metadata: { n: "0" } },
        { queue: "", kind: "k" },
        { queue: "ej-mixed", kind: "k", dependsOn: [{ parent: { case: "jobId", value: "0190a0b0-0000-7000-8000-000000000000" } }] },
        { queue: "ej-mixed", kind: "k", idempotencyKey: "once" },
        { queue: "ej-mixed", kind: "k", idempotencyKey: "once" },
      ],
    });
    expect(results.map((r) => r.result.case)).toEqual(["enqueued", "refused", "refused", "enqueued", "enqueued"]);
    const [first, noQueue, withParent, keyed, again] = results.map((r) => r.result.value!);
    expect(noQueue).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^job\.queue /) });
    expect(withParent).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^job\.depends_on /) });
    // The two with one idempotency key: exactly one job, the other answered as deduplicated.
    const keyedJobs = [keyed, again].map((value) => value as { job: { id: string }; deduplicated: boolean });
    expect(keyedJobs[0]!.job.id).toBe(keyedJobs[1]!.job.id);
    expect(keyedJobs.map((value) => value.deduplicated).sort()).toEqual([false, true]);
    const created = [(first as { job: { id: string; state: JobState } }).job, keyedJobs[0]!.job];
    expect((first as { job: { state: JobState } }).job.state).toBe(JobState.PENDING);
    const events = await eventTypes(created.map((job) => job.id));
    for (const job of created) expect(events.get(job.id)).toEqual(["enqueued"]);
    const { rows } = await server.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job WHERE queue = 'ej-mixed'");
    expect(rows[0]!.n).toBe(2);
  });

  it("refuses an empty call, and more jobs than the batch limit, naming the field", async () => {
    const empty = await failureOf(raw.enqueueJobs({ jobs: [] }));
    expect(empty.code).toBe(Code.InvalidArgument);
    expect(empty.rawMessage).toMatch(/^jobs /);
    const tooMany = await failureOf(raw.enqueueJobs({ jobs: Array.from({ length: 51 }, () => ({ queue: "ej-limit", kind: "k" })) }));
    expect(tooMany.code).toBe(Code.ResourceExhausted);
    expect(tooMany.rawMessage).toMatch(/^jobs has 51 entries/);
    const { rows } = await server.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job WHERE queue = 'ej-limit'");
    expect(rows[0]!.n).toBe(0);
  });

  it("is served as JSON over plain HTTP too", async () => {
    const answer = await postJson(server.url, "jobwire.v1.QueueService/EnqueueJobs", { jobs: [{ queue: "ej-json", kind: "k" }, { queue: "ej-json" }] });
    expect(answer.status).toBe(200);
    expect(answer.body.results[0].enqueued.job.queue).toBe("ej-json");
    expect(answer.body.results[1].refused).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^job\.kind /) });
  });
});

describe("the SDK's enqueue", () => {
  it("shares calls among concurrent enqueues, each resolving or failing on its own as Enqueue would", async () => {
    const calls = Array.from({ length: 60 }, (_, n) => client.enqueue(n === 30 ? "" : "ej-sdk", "k", { n }));
    const outcomes = await Promise.allSettled(calls);
    const refused = outcomes[30]!;
    expect(refused.status).toBe("rejected");
    const error = (refused as PromiseRejectedResult).reason as { code: Code; rawMessage: string };
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/^job\.queue /);
    const jobs = outcomes.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value] : []));
    expect(jobs).toHaveLength(59);
    expect(new Set(jobs.map((job) => job.id)).size).toBe(59);
    // Each promise got its own job: payloads line up with the calls.
    outcomes.forEach((outcome, n) => {
      if (outcome.status === "fulfilled") expect(toJson(ValueSchema, outcome.value.payload!)).toEqual({ n });
    });
    const { rows } = await server.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job WHERE queue = 'ej-sdk'");
    expect(rows[0]!.n).toBe(59);
  });
});
