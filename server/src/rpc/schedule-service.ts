import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { ScheduleService } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import { jobLimits, namePattern } from "../jobs/defaults.js";
import type { Principal } from "../jobs/principal.js";
import { CronSchedule } from "../schedules/cron-schedule.js";
import type { Database } from "../store/orm.js";
import {
  databaseNow,
  scheduleDelete,
  scheduleInsert,
  scheduleList,
  schedulePause,
  scheduleResume,
  scheduleSelect,
  type ScheduleKey,
  type ScheduleRow,
} from "../store/sql/schedule.js";
import { withTransaction } from "../store/transaction.js";
import { invalidArgument } from "./connect-errors.js";
import { jobIdPattern } from "./job-id.js";
import { decodePageToken, encodePageToken, filterFingerprint } from "./page-token.js";
import { scheduleMessage } from "./schedule-message.js";
import { checkName } from "./validate-job-spec.js";
import { validScheduleFrom } from "./validate-schedule-spec.js";
import type { WebhookUrlRefusal } from "./validate-webhook-target.js";
import { checkWebhookSecretsExist } from "./webhook-secrets.js";

/** What the ScheduleService handlers need. */
export interface ScheduleServiceDeps {
  db: Database;
  /** Why a webhook URL may never be delivered to (the SSRF guard), for template targets. */
  webhookUrlRefusal: WebhookUrlRefusal;
  /** The principal a request acts as; it owns the jobs its schedules enqueue. */
  principalOf(context: Pick<HandlerContext, "values">): Principal;
  /**
   * Called after a commit that gave a schedule its next tick (created or resumed), so that
   * the schedule loops of this replica and of the others arm their timers for it.
   */
  scheduleDue(nextRunAt: Date): void;
}

/** ListSchedules has no filter: every token is bound to the same (empty) one. */
const listFingerprint = filterFingerprint({ schedules: "all" });

/**
 * The ScheduleService handlers: validate at the edge, read and write the `schedule` table.
 * The ticks themselves are enqueued by the schedule loop (`schedules/schedule-loop.ts`).
 */
export function scheduleServiceImpl(deps: ScheduleServiceDeps): ServiceImpl<typeof ScheduleService> {
  const { db } = deps;
  // Schedules are named, found and listed within the caller's namespace only.
  const namespaceOf = (context: Pick<HandlerContext, "values">) => deps.principalOf(context).namespace;
  return {
    async createSchedule(request, context) {
      const valid = validScheduleFrom(request.schedule, "schedule", deps.webhookUrlRefusal);
      const principal = deps.principalOf(context);
      await checkWebhookSecretsExist(db, principal.namespace, [{ webhooks: valid.templateWebhooks, field: "schedule.template.webhooks" }]);
      // The first tick is the first after the database's now, like every other time.
      const nextRunAt = valid.paused ? null : valid.cron.nextAfter(await databaseNow(db.pool));
      let row: ScheduleRow;
      try {
        row = await scheduleInsert(db.pool, {
          id: valid.id,
          name: valid.name,
          cron: valid.cron.expression,
          timeZone: valid.cron.timeZone,
          template: valid.template,
          missedTickPolicy: valid.missedTickPolicy,
          namespace: principal.namespace,
          owner: principal.id,
          nextRunAt,
        });
      } catch (error) {
        const pgError = error as { code?: string; constraint?: string };
        if (pgError.code === "23505" && pgError.constraint === "schedule_name_unique") {
          throw new ConnectError(`schedule.name ${valid.name} is taken by another schedule`, Code.AlreadyExists);
        }
        throw error;
      }
      if (row.nextRunAt) deps.scheduleDue(row.nextRunAt);
      return { schedule: scheduleMessage(row) };
    },

    async getSchedule(request, context) {
      const key = scheduleKeyFrom(request.key);
      return { schedule: scheduleMessage(found(await scheduleSelect(db.pool, namespaceOf(context), key), key)) };
    },

    async listSchedules(request, context) {
      const pageSize = request.pageSize || jobLimits.pageSizeDefault;
      if (pageSize < 1 || pageSize > jobLimits.pageSizeMax) {
        throw invalidArgument("page_size", `must be between 0 and ${jobLimits.pageSizeMax}`);
      }
      const after = request.pageToken ? decodePageToken(request.pageToken, listFingerprint, namePattern, "ListSchedules") : undefined;
      // One more than a page tells whether another page follows without a count query.
      const rows = await scheduleList(db.pool, namespaceOf(context), pageSize + 1, after);
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        schedules: page.map(scheduleMessage),
        nextPageToken: rows.length > pageSize && last ? encodePageToken(last.name, listFingerprint) : "",
      };
    },

    async deleteSchedule(request, context) {
      const key = scheduleKeyFrom(request.key);
      if (!(await scheduleDelete(db.pool, namespaceOf(context), key))) throw notFound(key);
      return {};
    },

    async pauseSchedule(request, context) {
      const key = scheduleKeyFrom(request.key);
      const namespace = namespaceOf(context);
      // Already paused (or gone): read it back to tell the two apart.
      const row = (await schedulePause(db.pool, namespace, key)) ?? found(await scheduleSelect(db.pool, namespace, key), key);
      return { schedule: scheduleMessage(row) };
    },

    async resumeSchedule(request, context) {
      const key = scheduleKeyFrom(request.key);
      const namespace = namespaceOf(context);
      const row = await withTransaction(db.pool, async (tx) => {
        const current = found(await scheduleSelect(tx, namespace, key, true), key);
        if (!current.paused) return current;
        // Ticks that fell while paused are not enqueued: the schedule goes on from now.
        const cron = CronSchedule.parse(current.cron, current.timeZone, current.id);
        return scheduleResume(tx, current.id, cron.nextAfter(await databaseNow(tx)));
      });
      if (row.nextRunAt) deps.scheduleDue(row.nextRunAt);
      return { schedule: scheduleMessage(row) };
    },
  };
}

/** The schedule a request's `key` oneof names, checked. */
function scheduleKeyFrom(key: { case: "id" | "name"; value: string } | { case: undefined; value?: undefined }): ScheduleKey {
  if (key.case === "id") {
    const id = key.value.toLowerCase();
    if (!jobIdPattern.test(id)) throw invalidArgument("id", "must be a schedule id (a UUID)");
    return { id };
  }
  if (key.case === "name") return { name: checkName(key.value, "name") };
  throw invalidArgument("id", "or name is required");
}

function found(row: ScheduleRow | undefined, key: ScheduleKey): ScheduleRow {
  if (!row) throw notFound(key);
  return row;
}

function notFound(key: ScheduleKey): ConnectError {
  return new ConnectError("id" in key ? `schedule ${key.id} not found` : `schedule named ${key.name} not found`, Code.NotFound);
}
