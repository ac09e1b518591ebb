import type { CronSchedule } from "./cron-schedule.js";

/** What happens to ticks missed while no server ran (the proto's MissedTickPolicy). */
export type MissedTickPolicyName = "latest" | "skip" | "all";

/**
 * A tick at most this late is on time: a busy or briefly stalled server enqueues every such
 * tick. Later ticks count as missed (every server was down) and follow the policy.
 */
export const missedTickGraceMs = 60_000;

/** Most ticks of one schedule enqueued in one transaction; a longer catch-up takes several. */
export const maxTicksPerTransaction = 100;

/** Which ticks of a due schedule to enqueue now, and where the schedule goes on from. */
export interface TickPlan {
  /** Ticks to enqueue a job for, oldest first. */
  ticks: Date[];
  /** The schedule's next tick once these are enqueued; in the past while a catch-up goes on. */
  nextRunAt: Date;
  /** Due ticks the policy leaves without a job: from the first one up to (not including) `before`. */
  missed: { from: Date; before: Date } | undefined;
}

/**
 * Plans the ticks of a schedule whose next tick, `nextRunAt`, is at or before `now` (the
 * database's clock). If that tick is on time (see {@link missedTickGraceMs}), or the policy
 * is `all`, every due tick from it on is enqueued, at most {@link maxTicksPerTransaction}.
 * Otherwise ticks were missed: `latest` enqueues only the latest due tick, `skip` only the
 * due ticks that are still on time (often none). Either way the schedule then goes on from
 * the first tick after now.
 */
export function planTicks(cron: CronSchedule, nextRunAt: Date, now: Date, policy: MissedTickPolicyName): TickPlan {
  const late = now.getTime() - nextRunAt.getTime() > missedTickGraceMs;
  if (!late || policy === "all") return { ...consecutiveTicks(cron, nextRunAt, now), missed: undefined };
  if (policy === "latest") {
    const latest = cron.latestAtOrBefore(now);
    return { ticks: [latest], nextRunAt: cron.nextAfter(latest), missed: { from: nextRunAt, before: latest } };
  }
  // skip: the first tick no more than the grace before now (one millisecond earlier, since
  // nextAfter is strictly after).
  const firstOnTime = cron.nextAfter(new Date(now.getTime() - missedTickGraceMs - 1));
  return { ...consecutiveTicks(cron, firstOnTime, now), missed: { from: nextRunAt, before: firstOnTime } };
}

function consecutiveTicks(cron: CronSchedule, from: Date, now: Date): { ticks: Date[]; nextRunAt: Date } {
  const ticks: Date[] = [];
  let tick = from;
  while (tick.getTime() <= now.getTime() && ticks.length < maxTicksPerTransaction) {
    ticks.push(tick);
    tick = cron.nextAfter(tick);
  }
  return { ticks, nextRunAt: tick };
}
