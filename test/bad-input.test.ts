import { create, toJson, type MessageInitShape } from "@bufbuild/protobuf";
import type { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@jobwire/sdk/gen/google/rpc/error_details_pb";
import { JobState, type JobSpecSchema } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { EnqueueRequestSchema } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { startTestServer } from "./support/server.js";
import { failureOf } from "./support/failure-of.js";

let server: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;
/** A second server, on its own database, that reads at most 64 KiB a request. */
let smallServer: JobwireServer;

beforeAll(async () => {
  [server, smallServer] = await Promise.all([startTestServer(), startTestServer({ maxRequestBytes: 64 * 1024 })]);
  client = grpcQueueClient(server.url);
});

type SpecInit = Omit<MessageInitShape<typeof JobSpecSchema>, "$typeName">;
type ValueInit = MessageInitShape<typeof ValueSchema>;

const queueService = "jobwire.v1.QueueService";
const validId = "01930000-0000-7000-8000-000000000000";

/** Row counts of every table a request could write to. */
async function rowCounts(target: JobwireServer = server): Promise<{ job: number; job_phase: number; job_event: number; queue: number }> {
  const { rows } = await target.db.pool.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM job) AS job, (SELECT count(*) FROM job_phase) AS job_phase,
            (SELECT count(*) FROM job_event) AS job_event, (SELECT count(*) FROM queue) AS queue`,
  );
  const counts = rows[0]!;
  return { job: Number(counts.job), job_phase: Number(counts.job_phase), job_event: Number(counts.job_event), queue: Number(counts.queue) };
}

/** Runs `call` and checks that no row of any table was added by it. */
async function expectNothingWritten<T>(call: () => Promise<T>, target: JobwireServer = server): Promise<T> {
  const before = await rowCounts(target);
  const result = await call();
  expect(await rowCounts(target)).toEqual(before);
  return result;
}

/**
 * Messages name the whole field path first, then say what is wrong:
 * `job.retry_policy.jitter must be …` (a separating colon is allowed too).
 */
function namesField(field: string): RegExp {
  return new RegExp(`^${field.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:? \\S`);
}

function valid(extra: SpecInit = {}): SpecInit {
  return { queue: "bad-input", kind: "probe", ...extra };
}

function seconds(s: number | bigint, nanos = 0) {
  return { seconds: BigInt(s), nanos };
}

function numberValue(value: number): ValueInit {
  return { kind: { case: "numberValue", value } };
}

function textValue(value: string): ValueInit {
  return { kind: { case: "stringValue", value } };
}

/** A list nested `depth` levels deep around a null. */
function nested(depth: number): ValueInit {
  let value: ValueInit = { kind: { case: "nullValue", value: 0 } };
  for (let level = 0; level < depth; level++) value = { kind: { case: "listValue", value: { values: [value] } } };
  return value;
}

const day = 86_400;

/**
 * Invalid JobSpecs and the field the error must name. Each is sent over gRPC (binary) and,
 * unless it cannot be written in proto3 JSON (NaN in a Value, out-of-range well-known types),
 * over Connect JSON.
 */
const badSpecs: { name: string; spec: SpecInit; field: string; grpcOnly?: true }[] = [
  { name: "empty queue", spec: valid({ queue: "" }), field: "job.queue" },
  { name: "queue with a space", spec: valid({ queue: "my queue" }), field: "job.queue" },
  { name: "queue starting with a dash", spec: valid({ queue: "-queue" }), field: "job.queue" },
  { name: "queue with a slash", spec: valid({ queue: "a/b" }), field: "job.queue" },
  { name: "queue with a non-ASCII letter", spec: valid({ queue: "café" }), field: "job.queue" },
  { name: "queue with a trailing newline", spec: valid({ queue: "queue\n" }), field: "job.queue" },
  { name: "queue of 129 characters", spec: valid({ queue: "q".repeat(129) }), field: "job.queue" },
  { name: "empty kind", spec: valid({ kind: "" }), field: "job.kind" },
  { name: "kind with a NUL", spec: valid({ kind: "kind\u0000" }), field: "job.kind" },
  { name: "kind with a comma", spec: valid({ kind: "a,b" }), field: "job.kind" },
  { name: "kind of 129 characters", spec: valid({ kind: "k".repeat(129) }), field: "job.kind" },
  { name: "priority 1001", spec: valid({ priority: 1001 }), field: "job.priority" },
  { name: "priority -1001", spec: valid({ priority: -1001 }), field: "job.priority" },
  { name: "negative delay", spec: valid({ schedule: { case: "delay", value: seconds(-1) } }), field: "job.delay" },
  { name: "negative sub-second delay", spec: valid({ schedule: { case: "delay", value: seconds(0, -1) } }), field: "job.delay" },
  { name: "delay over 365 days", spec: valid({ schedule: { case: "delay", value: seconds(365 * day + 1) } }), field: "job.delay" },
  { name: "delay of 365 days and a nanosecond", spec: valid({ schedule: { case: "delay", value: seconds(365 * day, 1_000_000) } }), field: "job.delay" },
  { name: "delay of 10^15 seconds", spec: valid({ schedule: { case: "delay", value: seconds(10n ** 15n) } }), field: "job.delay", grpcOnly: true },
  { name: "delay with nanos out of range", spec: valid({ schedule: { case: "delay", value: seconds(1, 1_000_000_000) } }), field: "job.delay", grpcOnly: true },
  { name: "delay with mixed signs", spec: valid({ schedule: { case: "delay", value: seconds(1, -5) } }), field: "job.delay", grpcOnly: true },
  { name: "lease_timeout of 0", spec: valid({ leaseTimeout: seconds(0) }), field: "job.lease_timeout" },
  { name: "lease_timeout of half a second", spec: valid({ leaseTimeout: seconds(0, 500_000_000) }), field: "job.lease_timeout" },
  { name: "negative lease_timeout", spec: valid({ leaseTimeout: seconds(-30) }), field: "job.lease_timeout" },
  { name: "lease_timeout over an hour", spec: valid({ leaseTimeout: seconds(3_601) }), field: "job.lease_timeout" },
  { name: "huge lease_timeout", spec: valid({ leaseTimeout: seconds(2n ** 62n) }), field: "job.lease_timeout", grpcOnly: true },
  { name: "negative execution_timeout", spec: valid({ executionTimeout: seconds(-1) }), field: "job.execution_timeout" },
  { name: "execution_timeout of 0", spec: valid({ executionTimeout: seconds(0) }), field: "job.execution_timeout" },
  { name: "execution_timeout over 7 days", spec: valid({ executionTimeout: seconds(7 * day + 1) }), field: "job.execution_timeout" },
  { name: "negative initial_backoff", spec: valid({ retryPolicy: { initialBackoff: seconds(-1) } }), field: "job.retry_policy.initial_backoff" },
  { name: "initial_backoff over a day", spec: valid({ retryPolicy: { initialBackoff: seconds(day + 1) } }), field: "job.retry_policy.initial_backoff" },
  { name: "negative max_backoff", spec: valid({ retryPolicy: { maxBackoff: seconds(-1) } }), field: "job.retry_policy.max_backoff" },
  { name: "max_backoff over 7 days", spec: valid({ retryPolicy: { maxBackoff: seconds(7 * day + 1) } }), field: "job.retry_policy.max_backoff" },
  {
    name: "max_backoff below initial_backoff",
    spec: valid({ retryPolicy: { initialBackoff: seconds(10), maxBackoff: seconds(5) } }),
    field: "job.retry_policy.max_backoff",
  },
  { name: "max_attempts -1", spec: valid({ retryPolicy: { maxAttempts: -1 } }), field: "job.retry_policy.max_attempts" },
  { name: "max_attempts 1001", spec: valid({ retryPolicy: { maxAttempts: 1001 } }), field: "job.retry_policy.max_attempts" },
  { name: "backoff_multiplier NaN", spec: valid({ retryPolicy: { backoffMultiplier: NaN } }), field: "job.retry_policy.backoff_multiplier" },
  { name: "backoff_multiplier 0.5", spec: valid({ retryPolicy: { backoffMultiplier: 0.5 } }), field: "job.retry_policy.backoff_multiplier" },
  { name: "backoff_multiplier 11", spec: valid({ retryPolicy: { backoffMultiplier: 11 } }), field: "job.retry_policy.backoff_multiplier" },
  { name: "backoff_multiplier -2", spec: valid({ retryPolicy: { backoffMultiplier: -2 } }), field: "job.retry_policy.backoff_multiplier" },
  { name: "backoff_multiplier Infinity", spec: valid({ retryPolicy: { backoffMultiplier: Infinity } }), field: "job.retry_policy.backoff_multiplier" },
  { name: "jitter 1.5", spec: valid({ retryPolicy: { jitter: 1.5 } }), field: "job.retry_policy.jitter" },
  { name: "jitter -0.1", spec: valid({ retryPolicy: { jitter: -0.1 } }), field: "job.retry_policy.jitter" },
  { name: "jitter NaN", spec: valid({ retryPolicy: { jitter: NaN } }), field: "job.retry_policy.jitter" },
  { name: "NaN payload", spec: valid({ payload: numberValue(NaN) }), field: "job.payload", grpcOnly: true },
  { name: "Infinity payload", spec: valid({ payload: numberValue(Infinity) }), field: "job.payload", grpcOnly: true },
  {
    name: "NaN deep in a payload object",
    spec: valid({ payload: { kind: { case: "structValue", value: { fields: { a: { kind: { case: "listValue", value: { values: [numberValue(1), numberValue(NaN)] } } } } } } } }),
    field: "job.payload",
    grpcOnly: true,
  },
  { name: "payload string with a NUL", spec: valid({ payload: textValue("before\u0000after") }), field: "job.payload" },
  {
    name: "payload key with a NUL",
    spec: valid({ payload: { kind: { case: "structValue", value: { fields: { "k\u0000": numberValue(1) } } } } }),
    field: "job.payload",
  },
  { name: "payload nested 100 deep", spec: valid({ payload: nested(100) }), field: "job.payload" },
  { name: "payload of 1 MiB + 1 byte", spec: valid({ payload: textValue("x".repeat(1024 * 1024 - 1)) }), field: "job.payload" },
  { name: "payload of 600,000 two-byte characters", spec: valid({ payload: textValue("é".repeat(600_000)) }), field: "job.payload" },
  {
    name: "metadata with 65 entries",
    spec: valid({ metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`key${i}`, "v"])) }),
    field: "job.metadata",
  },
  { name: "metadata value of 1025 characters", spec: valid({ metadata: { note: "n".repeat(1025) } }), field: 'job.metadata["note"]' },
  { name: "metadata key of 129 characters", spec: valid({ metadata: { ["k".repeat(129)]: "v" } }), field: "job.metadata" },
  { name: "metadata with an empty key", spec: valid({ metadata: { "": "v" } }), field: "job.metadata" },
  { name: "metadata value with a NUL", spec: valid({ metadata: { note: "a\u0000" } }), field: 'job.metadata["note"]' },
  { name: "duplicate phase names", spec: valid({ phases: ["fetch", "parse", "fetch"] }), field: "job.phases[2]" },
  { name: "101 phases", spec: valid({ phases: Array.from({ length: 101 }, (_, i) => `p${i}`) }), field: "job.phases" },
  { name: "empty phase name", spec: valid({ phases: ["ok", ""] }), field: "job.phases[1]" },
  { name: "phase name with a space", spec: valid({ phases: ["two words"] }), field: "job.phases[0]" },
  {
    name: "run_at after 9999-12-31",
    spec: valid({ schedule: { case: "runAt", value: seconds(253_402_300_800) } }),
    field: "job.run_at",
    grpcOnly: true,
  },
  {
    name: "run_at before 0001-01-01",
    spec: valid({ schedule: { case: "runAt", value: seconds(-62_135_596_801) } }),
    field: "job.run_at",
    grpcOnly: true,
  },
  { name: "run_at with negative nanos", spec: valid({ schedule: { case: "runAt", value: seconds(1_700_000_000, -1) } }), field: "job.run_at", grpcOnly: true },
  {
    name: "run_at with nanos of a second or more",
    spec: valid({ schedule: { case: "runAt", value: seconds(1_700_000_000, 1_000_000_000) } }),
    field: "job.run_at",
    grpcOnly: true,
  },
];

/**
 * Requests that proto3 JSON itself refuses, before any handler runs. The message names the
 * field, except for Timestamp and Duration values: protobuf-es names only the type there
 * ("cannot decode message google.protobuf.Timestamp from JSON: …"), a known limitation
 * that the README states.
 */
const badJsonBodies: { name: string; body: unknown; mentions: string }[] = [
  { name: "run_at in year 10000", body: { job: { queue: "q", kind: "k", runAt: "10000-01-01T00:00:00Z" } }, mentions: "google.protobuf.Timestamp" },
  { name: "run_at that is not a time", body: { job: { queue: "q", kind: "k", runAt: "tomorrow" } }, mentions: "google.protobuf.Timestamp" },
  { name: "delay that is not a duration", body: { job: { queue: "q", kind: "k", delay: "5 minutes" } }, mentions: "google.protobuf.Duration" },
  { name: "fractional priority", body: { job: { queue: "q", kind: "k", priority: 1.5 } }, mentions: "priority" },
  { name: "priority beyond int32", body: { job: { queue: "q", kind: "k", priority: 2 ** 31 } }, mentions: "priority" },
  { name: "max_attempts that is a word", body: { job: { queue: "q", kind: "k", retryPolicy: { maxAttempts: "many" } } }, mentions: "max_attempts" },
  { name: "queue that is a number", body: { job: { queue: 7, kind: "k" } }, mentions: "queue" },
  { name: "phases that is a string", body: { job: { queue: "q", kind: "k", phases: "one" } }, mentions: "phases" },
];

const malformedIds = [
  "",
  "not-a-uuid",
  "12345",
  "01930000-0000-7000-8000-00000000000",
  "01930000-0000-7000-8000-0000000000000",
  "019300000000700080000000000000000",
  "{01930000-0000-7000-8000-000000000000}",
  "0193000g-0000-7000-8000-000000000000",
  " 01930000-0000-7000-8000-000000000000",
  "01930000-0000-7000-8000-000000000000\n",
  "01930000-0000-7000-8000-000000000000' OR '1'='1",
];

describe("Enqueue refuses invalid job specs, naming the field and writing nothing", () => {
  it.each(badSpecs)("gRPC: $name is INVALID_ARGUMENT naming $field", async ({ spec, field }) => {
    const error = await expectNothingWritten(() => failureOf(client.enqueue({ job: spec })));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(namesField(field));
    const violations = error.findDetails(BadRequestSchema).flatMap((details) => details.fieldViolations);
    expect(violations.map((violation) => violation.field)).toEqual([field]);
  });

  it.each(badSpecs.filter((c) => !c.grpcOnly))("Connect JSON: $name is invalid_argument naming $field", async ({ spec, field }) => {
    const body = toJson(EnqueueRequestSchema, create(EnqueueRequestSchema, { job: spec }));

    const answer = await expectNothingWritten(() => postJson(server.url, `${queueService}/Enqueue`, body));

    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("invalid_argument");
    expect(answer.body.message).toMatch(namesField(field));
  });

  it("Connect JSON: a payload string with a lone surrogate is invalid_argument naming job.payload", async () => {
    // gRPC's UTF-8 cannot carry a lone surrogate; JSON's \ud800 escape can.
    const body = `{"job":{"queue":"q","kind":"k","payload":{"text":"\\ud800"}}}`;

    const answer = await expectNothingWritten(() => postJson(server.url, `${queueService}/Enqueue`, body));

    expect(answer.body.code).toBe("invalid_argument");
    expect(answer.body.message).toMatch(namesField("job.payload"));
  });

  it.each(badJsonBodies)("Connect JSON: $name is invalid_argument mentioning $mentions", async ({ body, mentions }) => {
    const answer = await expectNothingWritten(() => postJson(server.url, `${queueService}/Enqueue`, body));

    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("invalid_argument");
    expect(answer.body.message).toContain(mentions);
  });

  it("gRPC: an Enqueue without a job is INVALID_ARGUMENT naming job", async () => {
    const error = await expectNothingWritten(() => failureOf(client.enqueue({})));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(namesField("job"));
  });

  it("accepts the limits themselves: 128-character names, priority ±1000, 64 metadata entries, 100 phases, a 1 MiB payload", async () => {
    const { job } = await client.enqueue({
      job: {
        queue: "Q".repeat(128),
        kind: "0".repeat(128),
        priority: -1000,
        metadata: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "v".repeat(1024)])),
        phases: Array.from({ length: 100 }, (_, i) => `phase.${i}:x-y_z`),
        retryPolicy: { maxAttempts: 1000, backoffMultiplier: 10, jitter: 1, initialBackoff: seconds(day), maxBackoff: seconds(7 * day) },
        leaseTimeout: seconds(3_600),
        executionTimeout: seconds(7 * day),
        schedule: { case: "delay", value: seconds(365 * day) },
      },
    });
    // Exactly 1 MiB once encoded as JSON: the string and its two quotes.
    const { job: high } = await client.enqueue({ job: valid({ priority: 1000, payload: textValue("x".repeat(1024 * 1024 - 2)) }) });

    expect(job?.phases).toHaveLength(100);
    expect(job?.retryPolicy?.jitter).toBe(1);
    expect(high?.priority).toBe(1000);
  });

  it("accepts a payload nested 64 levels deep, the server's JSON depth limit, over gRPC and Connect JSON", async () => {
    let json: unknown = null;
    for (let level = 0; level < 64; level++) json = [json];

    const answer = await postJson(server.url, `${queueService}/Enqueue`, { job: { queue: "deep", kind: "k", payload: json } });
    const viaGrpc = await client.enqueue({ job: valid({ payload: nested(64) }) }).then(
      (response) => response.job?.state,
      (error: unknown) => ConnectError.from(error).message,
    );

    expect(answer.status).toBe(200);
    expect(answer.body.job.payload).toEqual(json);
    expect(viaGrpc).toBe(JobState.PENDING);
  });
});

describe("job ids and cancel reasons", () => {
  it.each(malformedIds)("GetJob, CancelJob and RetryJob refuse the id %j with INVALID_ARGUMENT naming id", async (id) => {
    for (const call of [() => client.getJob({ id }), () => client.cancelJob({ id }), () => client.retryJob({ id })]) {
      const error = await failureOf(call());
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(namesField("id"));
    }
  });

  it("Connect JSON: a malformed id is invalid_argument naming id", async () => {
    for (const method of ["GetJob", "CancelJob", "RetryJob"]) {
      const answer = await postJson(server.url, `${queueService}/${method}`, { id: "nope" });
      expect(answer.status).toBe(400);
      expect(answer.body.code).toBe("invalid_argument");
      expect(answer.body.message).toMatch(namesField("id"));
    }
  });

  it("GetJob, CancelJob and RetryJob answer NOT_FOUND for a well-formed id that names no job", async () => {
    for (const call of [() => client.getJob({ id: validId }), () => client.cancelJob({ id: validId }), () => client.retryJob({ id: validId })]) {
      const error = await expectNothingWritten(() => failureOf(call()));
      expect(error.code).toBe(Code.NotFound);
      expect(error.rawMessage).toContain(validId);
    }
    const answer = await postJson(server.url, `${queueService}/GetJob`, { id: validId });
    expect(answer.status).toBe(404);
    expect(answer.body.code).toBe("not_found");
  });

  it("an id in upper case names the same job", async () => {
    const { job } = await client.enqueue({ job: valid() });

    const { job: got } = await client.getJob({ id: job!.id.toUpperCase() });

    expect(got?.id).toBe(job!.id);
  });

  it("a cancel reason over 1024 characters is INVALID_ARGUMENT naming reason and leaves the job pending", async () => {
    const { job } = await client.enqueue({ job: valid() });

    const error = await expectNothingWritten(() => failureOf(client.cancelJob({ id: job!.id, reason: "r".repeat(1025) })));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(namesField("reason"));
    const { rows } = await server.db.pool.query(`SELECT state FROM job WHERE id = $1`, [job!.id]);
    expect(rows[0].state).toBe("pending");
    const { job: cancelled } = await client.cancelJob({ id: job!.id, reason: "r".repeat(1024) });
    expect(cancelled?.cancelReason).toHaveLength(1024);
  });

  it("a cancel reason with a NUL is INVALID_ARGUMENT naming reason", async () => {
    const { job } = await client.enqueue({ job: valid() });

    const error = await expectNothingWritten(() => failureOf(client.cancelJob({ id: job!.id, reason: "why\u0000" })));

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(namesField("reason"));
  });
});

describe("malformed and oversized requests", () => {
  it.each([
    ["not JSON at all", "this is not json"],
    ["truncated JSON", '{"job": {"queue": "q", "kind": '],
    ["a JSON array", "[1, 2, 3]"],
    ["a JSON string", '"job"'],
  ])("Connect JSON: a body that is %s is HTTP 400 invalid_argument", async (_name, body) => {
    const answer = await expectNothingWritten(() => postJson(server.url, `${queueService}/Enqueue`, body));

    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("invalid_argument");
  });

  it("gRPC: a request over the server's read limit is RESOURCE_EXHAUSTED and writes nothing", async () => {
    const small = grpcQueueClient(smallServer.url);

    const error = await expectNothingWritten(
      () => failureOf(small.enqueue({ job: valid({ payload: textValue("x".repeat(100 * 1024)) }) })),
      smallServer,
    );

    expect(error.code).toBe(Code.ResourceExhausted);
    const { job } = await small.enqueue({ job: valid({ payload: textValue("x".repeat(1024)) }) });
    expect(job?.id).toBeTruthy();
  });

  it("Connect JSON: a request over the server's read limit is resource_exhausted and writes nothing", async () => {
    const answer = await expectNothingWritten(
      () => postJson(smallServer.url, `${queueService}/Enqueue`, { job: { queue: "q", kind: "k", payload: "x".repeat(100 * 1024) } }),
      smallServer,
    );

    expect(answer.body.code).toBe("resource_exhausted");
  });
});

describe("after all of the above", () => {
  it("the server still answers: a job can be enqueued, fetched and cancelled", async () => {
    const { job } = await client.enqueue({ job: valid({ payload: textValue("still alive") }) });

    const { job: got } = await client.getJob({ id: job!.id });
    const answer = await postJson(server.url, `${queueService}/GetJob`, { id: job!.id });

    expect(got?.payload?.kind).toEqual({ case: "stringValue", value: "still alive" });
    expect(answer.status).toBe(200);
    expect(answer.body.job.payload).toBe("still alive");
  });
});

describe("Connect JSON refuses what it does not know instead of dropping it", () => {
  it("a misspelt state in a ListJobs filter is invalid_argument, not a listing of every state", async () => {
    const answer = await postJson(server.url, `${queueService}/ListJobs`, { states: ["JOB_STATE_RUNING"] });

    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("invalid_argument");
    expect(answer.body.message).toContain("JOB_STATE_RUNING");
  });

  it("a misspelt field of a job is invalid_argument naming it, and nothing is enqueued", async () => {
    const answer = await expectNothingWritten(() =>
      postJson(server.url, `${queueService}/Enqueue`, { job: { queue: "q", kind: "k", retryPolicy: { maxAtempts: 3 } } }),
    );

    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("invalid_argument");
    expect(answer.body.message).toContain("maxAtempts");
  });

  it("an unknown event type name in an event filter is invalid_argument", async () => {
    const answer = await postJson(server.url, "jobwire.v1.EventService/ListEvents", { filter: { types: ["EVENT_TYPE_SUCEEDED"] } });

    expect(answer.body.code).toBe("invalid_argument");
  });
});
