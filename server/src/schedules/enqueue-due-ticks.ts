import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { queueAddress, type QueueAddress } from "../dispatch/queue-address.js";
import { JobSpecSchema } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type pg from "pg";
import type { Logger } from "../logger.js";
import { newJobFromSpec } from "../rpc/validate-job-spec.js";
import { jobInsertMany, type NewJob } from "../store/sql/job-insert-many.js";
import { jobLinkScheduleTicks, jobScheduleTicksExisting, scheduleAdvance, scheduleClaimDue, type DueSchedule } from "../store/sql/schedule-tick.js";
import { withTransaction } from "../store/transaction.js";
import { CronSchedule } from "./cron-schedule.js";
import { planTicks } from "./missed-ticks.js";

/** What one transaction of {@link enqueueDueTicks} did. */
export interface TicksEnqueued {
  scheduleId: string;
  /** The template's queue. */
  queue: QueueAddress;
  /** Jobs enqueued, one per tick; may be empty (ticks skipped as missed, or all enqueued before). */
  jobIds: string[];
  /** Delay of the template's jobs, if they start SCHEDULED rather than PENDING. */
  delayMs: number | null;
}

/** Enqueueing the ticks of schedule `scheduleId` failed; nothing of the transaction was written. */
export class ScheduleTicksFailedError extends Error {
  constructor(readonly scheduleId: string, options: { cause: unknown }) {
    super(`enqueueing the ticks of schedule ${scheduleId} failed`, options);
  }
}

/**
 * Claims the earliest due schedule (skipping `excludedIds` and schedules other replicas hold)
 * and, in one transaction, enqueues the jobs for its due ticks through the same insert as
 * Enqueue (phases, ENQUEUED events, webhooks), records the tick on each job, and advances
 * the schedule's next tick. Returns undefined when no schedule is due. A failure rolls all of
 * it back and leaves the schedule due: once a schedule was claimed, the error is a
 * {@link ScheduleTicksFailedError} naming it.
 */
export async function enqueueDueTicks(pool: pg.Pool, excludedIds: readonly string[], log: Logger): Promise<TicksEnqueued | undefined> {
  let claimedId: string | undefined;
  try {
    return await withTransaction(pool, async (tx) => {
      const due = await scheduleClaimDue(tx, excludedIds);
      if (!due) return undefined;
      claimedId = due.id;
      const cron = CronSchedule.parse(due.cron, due.timeZone, due.id);
      const plan = planTicks(cron, due.nextRunAt, due.now, due.missedTickPolicy);
      if (plan.missed) {
        log.warn({ schedule: due.name, policy: due.missedTickPolicy, missedFrom: plan.missed.from, missedBefore: plan.missed.before },
          "schedule ticks were missed (more than a minute late); the missed-tick policy applies");
      }
      // Only a manual change of next_run_at could make a planned tick one that already has a
      // job; such ticks are left out rather than failing the transaction on the unique index.
      const existing = await jobScheduleTicksExisting(tx, due.id, plan.ticks);
      const ticks = plan.ticks.filter((tick) => !existing.has(tick.getTime()));
      const jobs = jobsForTicks(due, ticks.length, log);
      if (jobs.length > 0) {
        await jobInsertMany(tx, jobs, jobs.map(() => ({ namespace: due.namespace, id: due.owner })), false);
        await jobLinkScheduleTicks(tx, due.id, jobs.map((job) => job.id), ticks);
      }
      const last = jobs.length > 0 ? { tick: ticks.at(-1)!, jobId: jobs.at(-1)!.id } : undefined;
      await scheduleAdvance(tx, due.id, plan.nextRunAt, last);
      return { scheduleId: due.id, queue: queueAddress(due.namespace, jobs[0]?.queue ?? ""), jobIds: jobs.map((job) => job.id), delayMs: jobs[0]?.delayMs ?? null };
    });
  } catch (error) {
    throw claimedId === undefined ? error : new ScheduleTicksFailedError(claimedId, { cause: error });
  }
}

/**
 * `count` jobs from the schedule's template. The template was validated when the schedule
 * was created; should it no longer pass (limits tightened by an upgrade), the ticks are
 * skipped with an error in the log rather than blocking the schedule forever.
 */
function jobsForTicks(due: DueSchedule, count: number, log: Logger): NewJob[] {
  if (count === 0) return [];
  try {
    const spec = fromJson(JobSpecSchema, due.template as JsonValue);
    // Targets were checked when the schedule was made; each delivery checks its address again.
    return Array.from({ length: count }, () => newJobFromSpec(spec, "template", () => undefined));
  } catch (error) {
    log.error({ err: error, schedule: due.name, ticks: count }, "schedule template is no longer valid; its ticks are skipped");
    return [];
  }
}
