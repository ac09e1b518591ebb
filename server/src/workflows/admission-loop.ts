import type pg from "pg";
import type { Wakeups } from "../dispatch/wakeups.js";
import type { Logger } from "../logger.js";
import { PacedPasses } from "../loops/paced-passes.js";
import { admissionUnitsWaiting, admitForLimit, concurrencyLimitsExist, type AdmissionOutcome } from "../store/sql/concurrency.js";
import { withTransaction } from "../store/transaction.js";

/** Shortest time between two passes. */
const minPassIntervalMs = 10;

/**
 * Admits jobs waiting for their concurrency limit (see migration 0012 and
 * `admitForLimit`): one transaction a pass, each limit that has waiting jobs admitted
 * under that limit's row lock, so replicas running side by side never admit past a bound. Woken
 * whenever events are committed on any replica (a job that finishes frees a slot), when a
 * limit changes, at the end of a pause or rate window, and by the fallback poll.
 */
export class AdmissionLoop {
  readonly #passes: PacedPasses;
  #wakeups: Wakeups | undefined;
  /** Whether the last pass found any limit: without one, events are ignored. */
  #active = true;
  /** Counts limit changes made here, so that a pass does not idle the loop over a new one. */
  #changes = 0;

  constructor(
    private readonly pool: pg.Pool,
    fallbackPollMs: number,
    log: Logger,
  ) {
    this.#passes = new PacedPasses(() => this.#pass(), { minIntervalMs: minPassIntervalMs, fallbackMs: fallbackPollMs }, (error) =>
      log.error({ err: error }, "admitting jobs failed"),
    );
  }

  /** Where unblocked or admitted jobs and written events are announced; set before {@link start}. */
  announceThrough(wakeups: Wakeups): void {
    this.#wakeups = wakeups;
  }

  /** Runs a first pass now. */
  start(): void {
    this.#passes.wake();
  }

  /** Events were committed (a job may have freed a slot): look again, if any limit exists. */
  eventsCommitted(): void {
    if (this.#active) this.#passes.wake();
  }

  /**
   * A limit changed, or a job waiting for one was enqueued, here: look again now. A limit
   * made on another replica is noticed there, and here by the fallback poll.
   */
  limitsChanged(): void {
    this.#changes++;
    this.#active = true;
    this.#passes.wake();
  }

  /** Stops; resolves once a pass in progress has ended. */
  stop(): Promise<void> {
    return this.#passes.stop();
  }

  async #pass(): Promise<number> {
    const changesBefore = this.#changes;
    let nextAt = Number.POSITIVE_INFINITY;
    const units = await admissionUnitsWaiting(this.pool);
    if (units.length > 0 && !this.#passes.stopped) {
      // One transaction for the whole pass: one commit (one WAL flush) rather than one per
      // limit, which under load cost more than the admissions themselves. Limit rows are
      // locked in (namespace, key) order, so replicas passing side by side cannot deadlock.
      const outcomes = await withTransaction(this.pool, async (tx) => {
        const done: AdmissionOutcome[] = [];
        for (const unit of units) done.push(await admitForLimit(tx, unit));
        return done;
      });
      const ready = outcomes.flatMap((outcome) => outcome.queues);
      if (ready.length > 0) this.#wakeups?.jobsReady([...new Set(ready)]);
      for (const outcome of outcomes) if (outcome.nextAt) nextAt = Math.min(nextAt, outcome.nextAt.getTime());
    }
    const active = await concurrencyLimitsExist(this.pool);
    if (this.#changes === changesBefore) this.#active = active;
    return nextAt - Date.now();
  }
}
