import { toJson } from "@bufbuild/protobuf";
import { JobSpecSchema } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { MissedTickPolicy, type ScheduleSpec } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import { v7 as uuidv7 } from "uuid";
import { canonicalTimeZone, CronSchedule, CronSyntaxError } from "../schedules/cron-schedule.js";
import type { MissedTickPolicyName } from "../schedules/missed-ticks.js";
import { invalidArgument } from "./connect-errors.js";
import { checkName, newJobFromSpec } from "./validate-job-spec.js";
import type { WebhookUrlRefusal } from "./validate-webhook-target.js";
import type { StoredWebhookTarget } from "../store/entities/job.js";

/** A validated ScheduleSpec, with its id, ready to store once its first tick is known. */
export interface ValidSchedule {
  id: string;
  name: string;
  cron: CronSchedule;
  /** The template as proto3 JSON, which is how it is stored and read back. */
  template: Record<string, unknown>;
  /** The template's webhook targets as checked, for the caller to check their secrets. */
  templateWebhooks: StoredWebhookTarget[] | null;
  missedTickPolicy: MissedTickPolicyName;
  paused: boolean;
}

const policies: Record<MissedTickPolicy, MissedTickPolicyName> = {
  [MissedTickPolicy.UNSPECIFIED]: "latest",
  [MissedTickPolicy.LATEST]: "latest",
  [MissedTickPolicy.SKIP]: "skip",
  [MissedTickPolicy.ALL]: "all",
};

/**
 * Validates a ScheduleSpec at the edge: name, cron expression, time zone (default UTC),
 * the job template (as Enqueue validates a JobSpec, and without run_at, which means nothing
 * for a job that recurs) and the missed-tick policy. Throws `INVALID_ARGUMENT` naming the
 * first bad field under `field` (e.g. `schedule.cron`); nothing is written.
 */
export function validScheduleFrom(spec: ScheduleSpec | undefined, field: string, webhookUrlRefusal: WebhookUrlRefusal): ValidSchedule {
  if (!spec) throw invalidArgument(field, "is required");
  const id = uuidv7();
  const name = checkName(spec.name, `${field}.name`);
  let timeZone: string;
  try {
    timeZone = canonicalTimeZone(spec.timeZone || "UTC");
  } catch (error) {
    throw invalidArgument(`${field}.time_zone`, (error as Error).message);
  }
  let cron: CronSchedule;
  try {
    cron = CronSchedule.parse(spec.cron, timeZone, id);
  } catch (error) {
    if (!(error instanceof CronSyntaxError)) throw error;
    throw invalidArgument(`${field}.cron`, error.message);
  }
  if (spec.template?.schedule.case === "runAt") {
    throw invalidArgument(`${field}.template.run_at`, "must be unset in a schedule template (a delay is allowed)");
  }
  const template = newJobFromSpec(spec.template, `${field}.template`, webhookUrlRefusal);
  // Each tick is a job on its own: no batch to name refs in, and a fixed parent would be
  // finished after the first tick.
  if (template.ref !== null) throw invalidArgument(`${field}.template.ref`, "must be unset in a schedule template");
  if (template.dependsOn.length > 0) throw invalidArgument(`${field}.template.depends_on`, "must be empty in a schedule template");
  // Ticks are deduplicated by schedule and tick time already; one key shared by every tick
  // would either be ignored or hold back every tick after the first, and neither is what
  // the field promises.
  if (template.idempotencyKey !== null) {
    throw invalidArgument(`${field}.template.idempotency_key`, "must be unset in a schedule template (each tick is enqueued once by itself)");
  }
  const missedTickPolicy = policies[spec.missedTickPolicy];
  if (missedTickPolicy === undefined) throw invalidArgument(`${field}.missed_tick_policy`, "must be LATEST or SKIP or ALL");
  return {
    id,
    name,
    cron,
    template: toJson(JobSpecSchema, spec.template!) as Record<string, unknown>,
    templateWebhooks: template.webhooks,
    missedTickPolicy,
    paused: spec.paused,
  };
}
