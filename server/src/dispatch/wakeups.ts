import type pg from "pg";
import type { Logger } from "../logger.js";
import type { AttemptEndCause, EndedAttempt } from "../store/sql/job-end-attempt.js";
import { channels, type WorkerNotice } from "./notification-listener.js";
import { queueAddress, type QueueAddress } from "./queue-address.js";

/** Longest delay before other replicas hear that events were committed here. */
const eventsNotifyIntervalMs = 5;

/** What to wake on this replica, without a round trip through Postgres. */
export interface LocalWakeTargets {
  /** Jobs of the queue at `address` became pending. */
  jobsReady(address: QueueAddress): void;
  /** Something timed is due at `epochMs` (a run_at, a lease expiry, a deadline, a grace end). */
  dueAt(epochMs: number): void;
  /** A notice for a worker stream; returns false when the stream is not on this replica. */
  workerNotice(notice: WorkerNotice): boolean;
  /** Events committed: wake this replica's event streams. */
  eventsCommitted(): void;
  /** A cron schedule's next tick is at `epochMs`. */
  scheduleDueAt(epochMs: number): void;
}

/**
 * Tells dispatchers, on this replica and on every other, that committed rows changed:
 * jobs became ready or were scheduled, or a worker stream has news (cancel, lease ended).
 * Called after the commit, never inside the transaction: a transaction that NOTIFYs holds a
 * global lock through its commit and serialises every commit behind it (see
 * docs/decisions/0001-notify-after-commit.md). This replica is woken directly; the others by
 * NOTIFY, coalesced so that at most one such statement is in flight. Nothing here is needed
 * for correctness: a lost wake-up is made up by the fallback poll, a lost cancel by the
 * worker's next heartbeat.
 */
export class Wakeups {
  #readyQueues = new Set<QueueAddress>();
  #earliestScheduled = Number.POSITIVE_INFINITY;
  #earliestScheduleTick = Number.POSITIVE_INFINITY;
  #notices: WorkerNotice[] = [];
  #events = false;
  #eventsTimer: NodeJS.Timeout | undefined;
  #sending = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly local: LocalWakeTargets,
    private readonly log: Logger,
  ) {}

  /**
   * A commit wrote events (every change of a job does): event streams here and on the
   * other replicas read again. The other methods call it too, for the changes they announce.
   */
  eventsCommitted(): void {
    this.local.eventsCommitted();
    if (this.#events || this.#eventsTimer) return;
    // Under load every statement writes events: tell the other replicas at most every
    // few milliseconds rather than once per statement. Streams here were woken just above.
    this.#eventsTimer = setTimeout(() => {
      this.#eventsTimer = undefined;
      this.#events = true;
      this.#flush();
    }, eventsNotifyIntervalMs);
  }

  /** Stops the pending events NOTIFY timer (shutdown). */
  stop(): void {
    clearTimeout(this.#eventsTimer);
    this.#eventsTimer = undefined;
  }

  /** Jobs of the queues at these addresses became pending. */
  jobsReady(queues: Iterable<QueueAddress>): void {
    for (const queue of queues) {
      this.local.jobsReady(queue);
      this.#readyQueues.add(queue);
    }
    this.eventsCommitted();
  }

  /** A job was scheduled to run at `runAt`. */
  jobScheduled(runAt: Date): void {
    const epochMs = runAt.getTime();
    this.local.dueAt(epochMs);
    this.#earliestScheduled = Math.min(this.#earliestScheduled, epochMs);
    this.eventsCommitted();
  }

  /**
   * A cron schedule was created or resumed with its next tick at `nextRunAt`: the schedule
   * loops here and on the other replicas arm their timers for it.
   */
  scheduleDue(nextRunAt: Date): void {
    const epochMs = nextRunAt.getTime();
    this.local.scheduleDueAt(epochMs);
    this.#earliestScheduleTick = Math.min(this.#earliestScheduleTick, epochMs);
    this.#flush();
  }

  /**
   * Something this replica just committed falls due at `at` (a lease expiry, an execution
   * deadline, the end of a cancel grace period): its maintenance loop is armed for it. The
   * other replicas need not hear of it; should this one die, their fallback poll finds it.
   */
  dueAt(at: Date): void {
    this.local.dueAt(at.getTime());
  }

  /** Delivers a notice to its worker stream, here or on another replica. */
  workerNotice(notice: WorkerNotice): void {
    if (notice.type !== "drain") this.eventsCommitted();
    if (this.local.workerNotice(notice)) return;
    this.#notices.push(notice);
    this.#flush();
  }

  /**
   * Announces attempts that ended without success: their workers hear that the lease ended
   * (and stop, if it ended under them), and jobs due again wake the dispatchers.
   */
  attemptsEnded(ended: readonly EndedAttempt[], cause: AttemptEndCause): void {
    const ready = new Set<QueueAddress>();
    for (const attempt of ended) {
      // A released lease's stream is gone already: nobody to tell.
      if (cause !== "released") {
        this.workerNotice({ type: "lease_ended", worker: attempt.workerId, job: attempt.id, lease_token: attempt.leaseToken, cause });
      }
      if (attempt.state === "pending") ready.add(queueAddress(attempt.namespace, attempt.queue));
      if (attempt.state === "scheduled") this.jobScheduled(attempt.runAt);
    }
    if (ready.size > 0) this.jobsReady(ready);
  }

  #flush(): void {
    if (this.#sending) return;
    const queues = [...this.#readyQueues];
    const scheduled = this.#earliestScheduled;
    const notices = this.#notices;
    const events = this.#events;
    const scheduleTick = this.#earliestScheduleTick;
    if (queues.length === 0 && scheduled === Number.POSITIVE_INFINITY && notices.length === 0 && !events && scheduleTick === Number.POSITIVE_INFINITY) return;
    this.#readyQueues = new Set();
    this.#earliestScheduled = Number.POSITIVE_INFINITY;
    this.#notices = [];
    this.#events = false;
    this.#earliestScheduleTick = Number.POSITIVE_INFINITY;
    this.#sending = true;
    const payloads: [string, string][] = [
      ...queues.map((queue): [string, string] => [channels.ready, queue]),
      ...(scheduled === Number.POSITIVE_INFINITY ? [] : [[channels.scheduled, String(scheduled)] as [string, string]]),
      ...notices.map((notice): [string, string] => [channels.worker, JSON.stringify(notice)]),
      ...(events ? [[channels.events, ""] as [string, string]] : []),
      ...(scheduleTick === Number.POSITIVE_INFINITY ? [] : [[channels.schedules, String(scheduleTick)] as [string, string]]),
    ];
    this.pool
      .query({
        name: "jobwire_notify_wakeups",
        text: "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)",
        values: [payloads.map((p) => p[0]), payloads.map((p) => p[1])],
      })
      .catch((error: unknown) => this.log.warn({ err: error }, "sending wake-ups failed; the fallback poll covers them"))
      .finally(() => {
        this.#sending = false;
        this.#flush();
      });
  }
}
