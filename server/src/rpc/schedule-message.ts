import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { JobSpecSchema } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { MissedTickPolicy, ScheduleSchema, type Schedule } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import type { MissedTickPolicyName } from "../schedules/missed-ticks.js";
import type { ScheduleRow } from "../store/sql/schedule.js";
import { timestampFromNullableDate } from "./proto-time.js";

const policies: Record<MissedTickPolicyName, MissedTickPolicy> = {
  latest: MissedTickPolicy.LATEST,
  skip: MissedTickPolicy.SKIP,
  all: MissedTickPolicy.ALL,
};

/** The wire form of a stored schedule. */
export function scheduleMessage(row: ScheduleRow): Schedule {
  return create(ScheduleSchema, {
    id: row.id,
    name: row.name,
    cron: row.cron,
    timeZone: row.timeZone,
    template: fromJson(JobSpecSchema, row.template as JsonValue),
    missedTickPolicy: policies[row.missedTickPolicy],
    paused: row.paused,
    nextRunAt: timestampFromNullableDate(row.nextRunAt),
    lastTickAt: timestampFromNullableDate(row.lastTickAt),
    lastJobId: row.lastJobId ?? "",
    owner: row.owner,
    createdAt: timestampFromNullableDate(row.createdAt),
    updatedAt: timestampFromNullableDate(row.updatedAt),
  });
}
