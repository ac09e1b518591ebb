import type pg from "pg";
import type { Wakeups } from "../dispatch/wakeups.js";
import type { Logger } from "../logger.js";
import { DuePasses } from "../loops/due-passes.js";
import { scheduleNextDueMs } from "../store/sql/schedule-tick.js";
import { enqueueDueTicks, ScheduleTicksFailedError } from "./enqueue-due-ticks.js";

/** Options of {@link ScheduleLoop}. */
export interface ScheduleLoopOptions {
  /** Longest sleep between passes: the slow fallback poll, in case a wake-up was lost. */
  fallbackPollMs: number;
}

/**
 * Enqueues the ticks of cron schedules. It sleeps until the earliest active schedule's next
 * tick (asked of the database, whose clock all times use), runs a pass that enqueues every
 * due tick, one schedule per transaction, and sleeps again. A schedule created or resumed
 * here or on another replica (NOTIFY) re-arms it earlier. Every replica runs one: claims skip
 * each other's locked schedules, so each tick is enqueued by exactly one replica. A deleted or
 * paused schedule needs no wake-up: the next pass no longer finds it due, and a timer armed
 * for it only runs an empty pass.
 */
export class ScheduleLoop {
  readonly #passes: DuePasses;
  #wakeups: Wakeups | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: ScheduleLoopOptions,
    private readonly log: Logger,
  ) {
    this.#passes = new DuePasses(() => this.#runOnce(), options.fallbackPollMs, (error) =>
      log.error({ err: error }, "schedule pass failed; retrying at the next poll"),
    );
  }

  /** Where enqueued jobs are announced (dispatchers, event streams); set before {@link start}. */
  announceThrough(wakeups: Wakeups): void {
    this.#wakeups = wakeups;
  }

  /** Runs a first pass now, which also enqueues what fell due while no server ran. */
  start(): void {
    this.runSoon();
  }

  /** A schedule's next tick is at `epochMs`: make sure a pass runs by then. */
  dueAt(epochMs: number): void {
    this.#passes.dueAt(epochMs);
  }

  /** Runs a pass as soon as possible. */
  runSoon(): void {
    this.#passes.runSoon();
  }

  /** Stops the loop; a pass in progress ends with the pool, which the server closes next. */
  stop(): void {
    this.#passes.stop();
  }

  /** One pass; returns milliseconds until the next tick is due (capped by the poll). */
  async #runOnce(): Promise<number> {
    // Schedules whose transaction failed in this pass: left for the next poll, not retried
    // in a tight loop.
    const failed: string[] = [];
    while (!this.#passes.stopped) {
      let enqueued;
      try {
        enqueued = await enqueueDueTicks(this.pool, failed, this.log);
      } catch (error) {
        if (!(error instanceof ScheduleTicksFailedError)) throw error;
        this.log.error({ err: error.cause, scheduleId: error.scheduleId }, "enqueueing a schedule's ticks failed; retrying at the next poll");
        failed.push(error.scheduleId);
        continue;
      }
      if (!enqueued) break;
      if (enqueued.jobIds.length === 0) continue;
      this.log.debug({ scheduleId: enqueued.scheduleId, jobs: enqueued.jobIds }, "enqueued schedule ticks");
      if (enqueued.delayMs === null) this.#wakeups?.jobsReady([enqueued.queue]);
      else this.#wakeups?.jobScheduled(new Date(Date.now() + enqueued.delayMs));
    }
    const untilDue = await scheduleNextDueMs(this.pool, failed);
    // A few milliseconds late rather than early: a timer that fires before the tick is due
    // in the database's clock would just run an empty pass and re-arm.
    return Math.max(0, Math.min(untilDue ?? Number.POSITIVE_INFINITY, this.options.fallbackPollMs) + 2);
  }
}
