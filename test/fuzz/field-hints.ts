import fc from "fast-check";
import type { FuzzWorld } from "./world.js";
import { apiKeyIdHint, descriptionHint, expiresAtHint, principalHint } from "./api-key-hints.js";
import { cronHint, scheduleNameHint, timeZoneHint } from "./schedule-hints.js";
import { hostileDuration, hostileString, hostileTimestamp, sqlLooking } from "./values.js";

/**
 * Valid-looking values, chosen by field name (the proto name, snake_case), so that a good
 * share of generated requests gets past validation and into the database. A field named
 * here gets these values most of the time and hostile ones of its type otherwise; a new RPC
 * whose fields reuse these names (`queue`, `id`, `page_token`, …) is covered without edits.
 */
export type FieldHints = Record<string, FieldHint>;

/**
 * Values for one field: an arbitrary mixed with hostile values of the field's type, or
 * `{ only }`, the one source of the field's values (for fields whose valid values must stay
 * in a pool; the arbitrary then brings its own invalid values).
 */
export type FieldHint = fc.Arbitrary<unknown> | { only: fc.Arbitrary<unknown> };

/** Queue, kind and phase names: `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`. */
const nameLike = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}$/).filter((name) => !/^(idle|hook|conf)-/.test(name));

/** Strings that no name check accepts, for fields whose valid values must stay in one pool. */
export const invalidName: fc.Arbitrary<string> = hostileString.filter((text) => !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(text));

/** UUIDs valid and nearly valid, upper case, braced, truncated, with SQL after them. */
function uuidLike(known: readonly string[]): fc.Arbitrary<string> {
  const base = known.length > 0 ? fc.constantFrom(...known) : fc.uuid();
  return fc.oneof(
    { weight: 4, arbitrary: base },
    { weight: 2, arbitrary: fc.uuid({ version: [4, 7] }) },
    {
      weight: 2,
      arbitrary: fc.tuple(base, fc.nat(36)).chain(([id, cut]) =>
        fc.constantFrom(
          id.toUpperCase(),
          `{${id}}`,
          id.replaceAll("-", ""),
          id.slice(0, cut),
          `${id}' OR '1'='1`,
          `${id}\n`,
          ` ${id}`,
          id.replace(/[0-9a-f]/, "g"),
          `${id},${id}`,
          "00000000-0000-0000-0000-000000000000",
          "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ),
      ),
    },
  );
}

/** Event cursors: real ones, and base64url of everything around the `1.<tx>.<id>` format. */
function cursorLike(known: readonly string[]): fc.Arbitrary<string> {
  const b64 = (text: string) => Buffer.from(text).toString("base64url");
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known.filter(Boolean), "") },
    {
      weight: 3,
      arbitrary: fc
        .constantFrom(
          "1.0.0",
          "1.1.1",
          "0.1.1",
          "2.1.1",
          "1.-1.5",
          "1.18446744073709551615.9223372036854775807",
          "1.99999999999999999999.9999999999999999999",
          "1.1.9223372036854775808",
          "1.00000000000000000001.1",
          "1.1",
          "1..1",
          "1.1.1.1",
          "1.1.1\n",
          "1.1.1' OR '1'='1",
          '{"v":1,"after":"x","f":"y"}',
          '{"v":1,"after":"00000000-0000-0000-0000-000000000000","f":"AAAAAAAAAAAAAAAA"}',
          '{"v":1,"after":null}',
          '{"v":1,"after":"\' OR 1=1 --","f":""}',
          "null",
          "[]",
          "{}",
          '"str"',
          "1e999",
        )
        .chain((text) => fc.constantFrom(b64(text), Buffer.from(text).toString("base64"), text)),
    },
    { weight: 1, arbitrary: fc.base64String({ maxLength: 64 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((bytes) => Buffer.from(bytes).toString("base64url")) },
    { weight: 1, arbitrary: fc.constantFrom(...known.filter(Boolean), "x").map((token) => token.slice(0, -2) + "A" + token.slice(-1)) },
  );
}

/** Webhook targets: public, private, loopback, metadata, other schemes, credentials, junk. */
const urlLike = fc.constantFrom(
  "https://hooks.example.com/jobwire",
  "http://hooks.example.com:8080/x?y=z#frag",
  "http://127.0.0.1/hook",
  "http://[::1]/hook",
  "http://169.254.169.254/latest/meta-data/",
  "http://10.0.0.1/",
  "http://0x7f000001/",
  "http://2130706433/",
  "http://[::ffff:127.0.0.1]/",
  "https://user:pass@hooks.example.com/",
  "ftp://hooks.example.com/",
  "file:///etc/passwd",
  "javascript:alert(1)",
  "gopher://127.0.0.1:6379/_PING",
  "https://",
  "http:// spaces .com/",
  "https://hooks.example.com/" + "a".repeat(2100),
  "https://xn--nxasmq6b.example/",
  "https://hooks.example.com/\u0000",
);

/** Secrets around the 16..512 character bounds. */
const secretLike = fc.oneof(
  fc.constantFrom("whsec_c2VjcmV0LW9mLWF0LWxlYXN0LTE2LWJ5dGVz", "s".repeat(15), "s".repeat(16), "s".repeat(512), "s".repeat(513), "whsec_!!!not-base64!!!", ""),
  fc.string({ minLength: 16, maxLength: 40 }),
);

/** Short free text, as reasons and messages are. */
const textLike = fc.oneof(fc.constantFrom("because", "r".repeat(1024), "r".repeat(1025), ...sqlLooking), fc.string({ maxLength: 30 }));

/** Event type names as webhook subscriptions spell them. */
const eventTypeNames = fc.constantFrom("succeeded", "failed", "cancelled", "enqueued", "webhook_delivered", "webhook_failed", "SUCCEEDED", "EVENT_TYPE_SUCCEEDED", "unknown", "");

/** Small maps of metadata or labels, and maps past the 64-entry, 128/1024-character limits. */
const metadataLike = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(fc.constantFrom("tenant", "region", "trace"), fc.constantFrom("acme", "eu", "x'y", ""), { maxKeys: 3 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])),
      { ["k".repeat(129)]: "v" },
      { note: "n".repeat(1025) },
      { "": "v" },
      { "k\u0000": "v" },
      { k: "v\u0000" },
      { "%": "_", "' OR 1=1 --": "x" },
    ),
  },
);

/** Hints shared by every RPC, keyed by field name. */
export function fieldHints(world: FuzzWorld): FieldHints {
  const names = (pool: readonly string[]) => fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: nameLike });
  const queueNames = names(world.queues);
  const jobIds = uuidLike(world.jobIds);
  return {
    queue: queueNames,
    queues: queueNames,
    name: queueNames,
    kind: names(world.kinds),
    kinds: names(world.kinds),
    phase: names(world.phases),
    phases: names(world.phases),
    id: fc.oneof(jobIds, uuidLike(world.subscriptionIds)),
    job_id: jobIds,
    job_ids: jobIds,
    worker_id: uuidLike(world.workerIds),
    lease_token: fc.oneof(fc.constantFrom(...world.leaseTokens), fc.constantFrom(1n, 0n, -1n, 2n ** 63n - 1n)),
    page_token: cursorLike([...world.pageTokens, ...world.eventCursors]),
    after_cursor: cursorLike(world.eventCursors),
    page_size: fc.constantFrom(0, 1, 2, 50, 1000, 1001, -1, 2 ** 31 - 1),
    capacity: fc.constantFrom(1, 2, 10, 10_000, 10_001, 0, -1),
    priority: fc.integer({ min: -1001, max: 1001 }),
    max_attempts: fc.constantFrom(0, 1, 5, 1000, 1001, -1),
    backoff_multiplier: fc.constantFrom(0, 1, 2, 10, 10.5, 0.5, NaN, Infinity),
    jitter: fc.constantFrom(0, 0.2, 1, 1.01, -0.1, NaN),
    url: urlLike,
    secret: secretLike,
    event_types: eventTypeNames,
    reason: textLike,
    message: textLike,
    worker_name: textLike,
    sdk_version: fc.constantFrom("0.1.0", "", "v".repeat(257)),
    metadata: metadataLike,
    labels: metadataLike,
    run_at: runAtHint,
    delay: delayHint,
    service: fc.constantFrom(
      "",
      "jobwire.v1.QueueService",
      "jobwire.v1.WorkerService",
      "jobwire.v1.ScheduleService",
      "jobwire.v1.AdminService",
      "grpc.health.v1.Health",
      "no.such.Service",
      "jobwire.v1.QueueService\u0000",
    ),
    // `only`: a valid expression that ticks soon must never be sent (see schedule-hints.ts).
    cron: { only: cronHint() },
    time_zone: timeZoneHint,
    principal: principalHint(world.principals),
    description: descriptionHint,
    expires_at: expiresAtHint(),
  };
}

/**
 * Per-RPC hints that override the shared ones, keyed by `Service/Method` and then by the
 * field's path in the request (`job.queue`). They keep valid requests of some RPCs inside
 * the pools {@link FuzzWorld} reserves for them, so that no valid request starts work that
 * would write to the database later on its own; invalid values still come through.
 */
export function rpcHints(world: FuzzWorld): Record<string, FieldHints> {
  const onlyFrom = (pool: readonly string[]) => ({ only: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: invalidName }) });
  const scheduleNames = scheduleNameHint(world.scheduleNames);
  const scheduleIds = uuidLike(world.scheduleIds);
  return {
    // Workers listen only where no job is ever enqueued, so a stream never leases a job.
    "jobwire.v1.WorkerService/LeaseJobs": { queues: onlyFrom(world.idleQueues) },
    // Subscriptions only for queues without jobs: no delivery, no request to the network.
    "jobwire.v1.QueueService/CreateWebhookSubscription": { queue: onlyFrom(world.hookQueues) },
    // Retention and retry settings only change queues that hold no jobs.
    "jobwire.v1.QueueService/UpdateQueue": { name: onlyFrom(world.configQueues) },
    // Schedules by the names and ids of the world's (and fresh names). Any schedule may be
    // created, resumed or deleted: no expression the fuzzer sends ticks during the run.
    "jobwire.v1.ScheduleService/CreateSchedule": { "schedule.name": scheduleNames },
    ...Object.fromEntries(
      ["GetSchedule", "DeleteSchedule", "PauseSchedule", "ResumeSchedule"].map((method) => [`jobwire.v1.ScheduleService/${method}`, { id: scheduleIds, name: scheduleNames }]),
    ),
    // The world's keys and ids of none; never the fuzzer's own key (see fuzzer-key.ts).
    "jobwire.v1.AdminService/RevokeApiKey": { id: apiKeyIdHint(world.apiKeyIds) },
  };
}

const twoDays = 2n * 86_400n;

/**
 * Timestamps for `run_at` that are invalid, in the past, or more than two days ahead: a job
 * due while the fuzzer runs would change the database on its own when it becomes ready.
 */
export const runAtHint = {
  only: hostileTimestamp.filter(({ seconds, nanos }) => {
    const now = BigInt(Math.floor(Date.now() / 1000));
    return !(nanos >= 0 && nanos < 1e9 && seconds >= now - 1n && seconds <= now + twoDays);
  }),
};

/** Delays that are invalid, zero, or more than two days, for the same reason as {@link runAtHint}. */
export const delayHint = {
  only: hostileDuration.filter(({ seconds, nanos }) => !(seconds >= 0n && seconds <= twoDays && !(seconds === 0n && nanos < 1_000_000))),
};
