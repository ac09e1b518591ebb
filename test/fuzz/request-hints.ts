import fc from "fast-check";
import { Role } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { JobSpecSchema } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { MissedTickPolicy } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import { descriptionHint, expiresAtHint, principalHint } from "./api-key-hints.js";
import type { FieldHints } from "./field-hints.js";
import { messageArbitrary } from "./message-arbitrary.js";
import { cronHint, farCronHint, scheduleNameHint, timeZoneHint } from "./schedule-hints.js";
import type { FuzzWorld } from "./world.js";

/**
 * Whole requests, for RPCs whose fields must agree with each other before a request gets
 * past validation: a schedule needs a name, an expression, a zone and a job template at
 * once; a worker key needs queues and no other key may have any; a listing's page token
 * must belong to its filter. Field by field (the generator of `message-arbitrary.ts`), such
 * a request is almost never valid as a whole. The catalog mixes these with the generated
 * requests; each field still comes from its hint, so these are valid-looking, not always
 * valid.
 */
export function requestHints(world: FuzzWorld, shared: FieldHints): Record<string, fc.Arbitrary<Record<string, unknown>>> {
  const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);
  const queues = pick(world.queues);
  const kinds = pick(world.kinds);
  const scheduleNames = scheduleNameHint(world.scheduleNames);
  const principals = principalHint(world.principals);
  const pageTokens = fc.oneof({ weight: 3, arbitrary: fc.constant("") }, { weight: 1, arbitrary: pick(world.pageTokens.filter(Boolean)) });

  // A job template: a plain one (queue, kind, a delay now and then), or one generated from
  // the descriptor with the shared hints, which exercises Enqueue's validation inside it.
  const plainTemplate = fc.record(
    {
      queue: queues,
      kind: kinds,
      priority: fc.integer({ min: -10, max: 10 }),
      schedule: fc.constantFrom({ case: "delay", value: { seconds: 60n, nanos: 0 } }, { case: undefined }),
      metadata: fc.dictionary(fc.constantFrom("tenant", "region"), fc.constantFrom("acme", "eu"), { maxKeys: 2 }),
    },
    { requiredKeys: ["queue", "kind"] },
  );
  const template = fc.oneof({ weight: 3, arbitrary: plainTemplate }, { weight: 1, arbitrary: messageArbitrary(JobSpecSchema, { shared, rpc: {} }, "schedule.template", 1) });
  const schedule = fc.record({
    name: scheduleNames,
    cron: fc.oneof({ weight: 2, arbitrary: farCronHint() }, { weight: 1, arbitrary: cronHint() }),
    timeZone: timeZoneHint,
    template,
    missedTickPolicy: fc.constantFrom(MissedTickPolicy.UNSPECIFIED, MissedTickPolicy.LATEST, MissedTickPolicy.SKIP, MissedTickPolicy.ALL),
    paused: fc.boolean(),
  });

  // A schedule by the name or id of one of the world's (perhaps deleted, perhaps made again).
  const scheduleKey = fc.record({
    key: fc.oneof(scheduleNames.map((value) => ({ case: "name", value })), pick(world.scheduleIds).map((value) => ({ case: "id", value }))),
  });

  const keyRole = fc.constantFrom(Role.ADMIN, Role.PRODUCER, Role.WORKER, Role.READER);
  const key = fc.record({ principal: principals, role: keyRole, queues: fc.array(queues, { minLength: 1, maxLength: 3 }), description: descriptionHint, expiresAt: fc.option(expiresAtHint(), { nil: undefined }) });
  // Queues for a worker key and none for the others, and one time in ten the reverse.
  const apiKey = fc.tuple(key, fc.nat(9)).map(([spec, dice]) => ({ ...spec, queues: (spec.role === Role.WORKER) === (dice > 0) ? spec.queues : [] }));

  return {
    "jobwire.v1.ScheduleService/CreateSchedule": fc.record({ schedule }),
    ...Object.fromEntries(["GetSchedule", "DeleteSchedule", "PauseSchedule", "ResumeSchedule"].map((method) => [`jobwire.v1.ScheduleService/${method}`, scheduleKey])),
    "jobwire.v1.ScheduleService/ListSchedules": fc.record({ pageSize: fc.constantFrom(0, 1, 2, 1000), pageToken: pageTokens }),
    "jobwire.v1.AdminService/CreateApiKey": apiKey,
    "jobwire.v1.AdminService/ListApiKeys": fc.record({
      principal: fc.oneof(fc.constant(""), principals),
      includeRevoked: fc.boolean(),
      pageSize: fc.constantFrom(0, 1, 2, 1000),
      pageToken: pageTokens,
    }),
  };
}
