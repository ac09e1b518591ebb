import type pg from "pg";
import { queueAddressesOf } from "../dispatch/queue-address.js";
import type { Wakeups } from "../dispatch/wakeups.js";
import type { Logger } from "../logger.js";
import { DuePasses } from "../loops/due-passes.js";
import { jobEndAttempts, mayHaveMore, type AttemptFailure, type AttemptSelector } from "../store/sql/job-end-attempt.js";
import { jobNextWakeupMs, jobPromoteDue } from "../store/sql/job-schedule.js";
import { batchDeleteExpired, eventDeleteExpired, jobDeleteExpired, webhookDeliveryDeleteExpired } from "../store/sql/retention.js";

/** Options of {@link MaintenanceLoop}. */
export interface MaintenanceOptions {
  /** How long a worker has to stop after a cancel request before its lease is revoked. */
  cancelGraceMs: number;
  /** Longest sleep between passes when nothing is due: the slow fallback poll. */
  fallbackPollMs: number;
  /** Finished jobs older than this (unless their queue says otherwise) are deleted. */
  retentionMs: number;
  /** Events older than this are deleted. */
  eventRetentionMs: number;
  /** Retention runs at most this often. */
  retentionIntervalMs: number;
}

const promoteBatchSize = 1000;
const retentionBatchSize = 1000;

/**
 * Acts on time: makes due scheduled jobs pending; ends running attempts whose lease
 * expired, whose execution deadline passed, or whose cancel grace period ran out; and,
 * every `retentionIntervalMs`, deletes finished jobs and events past their retention. It sleeps
 * until the next such moment (asked of the database, whose clock all times use), is woken
 * earlier when a job is scheduled sooner, and polls slowly as a fallback. Every replica runs
 * one; their statements skip each other's locked rows, so each job is handled once.
 */
export class MaintenanceLoop {
  readonly #passes: DuePasses;
  #retentionDueAt = 0;

  #wakeups: Wakeups | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: MaintenanceOptions,
    private readonly log: Logger,
  ) {
    this.#passes = new DuePasses(() => this.#runOnce(), options.fallbackPollMs, (error) =>
      log.error({ err: error }, "maintenance pass failed; retrying at the next poll"),
    );
  }

  /** Where promoted jobs and ended attempts are announced; set before {@link start}. */
  announceThrough(wakeups: Wakeups): void {
    this.#wakeups = wakeups;
  }

  /** Runs a first pass now; later passes follow by themselves until {@link stop}. */
  start(): void {
    this.runSoon();
  }

  /** Something is due at `epochMs` (a job was scheduled): make sure a pass runs by then. */
  dueAt(epochMs: number): void {
    this.#passes.dueAt(epochMs);
  }

  /** Runs a pass as soon as possible. */
  runSoon(): void {
    this.#passes.runSoon();
  }

  /** One pass; returns milliseconds until the next thing is due (capped by the poll). */
  async #runOnce(): Promise<number> {
    for (;;) {
      const promoted = await jobPromoteDue(this.pool, promoteBatchSize);
      if (promoted.length > 0) this.#wakeups?.jobsReady(queueAddressesOf(promoted));
      if (promoted.length < promoteBatchSize || this.#passes.stopped) break;
    }
    await this.#endAll({ by: "cancel_grace", graceMs: this.options.cancelGraceMs }, {
      cause: "cancel_revoked", message: "cancel requested and the worker did not stop within the grace period", retryable: false,
    });
    await this.#endAll({ by: "deadline" }, {
      cause: "timeout", message: "execution timeout", retryable: true,
    });
    await this.#endAll({ by: "expired" }, {
      cause: "lease_expired", message: "lease expired: no heartbeat within the lease timeout", retryable: true,
    });
    await this.#retention();
    const next = await jobNextWakeupMs(this.pool, this.options.cancelGraceMs);
    const untilRetention = Math.max(0, this.#retentionDueAt - Date.now());
    const candidates = [next.scheduled, next.running, this.options.fallbackPollMs, untilRetention].filter((ms): ms is number => ms !== null);
    // A few milliseconds late rather than early: a timer that fires before the row is due
    // would just run an empty pass and re-arm.
    return Math.max(0, Math.min(...candidates) + 2);
  }

  /**
   * Deletes finished jobs past their retention (each with a DELETED event) and events past
   * theirs, in bounded batches, at most every `retentionIntervalMs`.
   */
  async #retention(): Promise<void> {
    if (Date.now() < this.#retentionDueAt) return;
    this.#retentionDueAt = Date.now() + this.options.retentionIntervalMs;
    let deleted = 0;
    for (;;) {
      const batch = await jobDeleteExpired(this.pool, this.options.retentionMs, retentionBatchSize);
      deleted += batch;
      if (batch < retentionBatchSize || this.#passes.stopped) break;
    }
    if (deleted > 0) {
      this.log.info({ jobs: deleted }, "deleted finished jobs past their retention");
      this.#wakeups?.eventsCommitted();
    }
    const { eventRetentionMs } = this.options;
    const whileFull = async (prune: (limit: number) => Promise<number>, limit: number) => {
      while ((await prune(limit)) === limit && !this.#passes.stopped);
    };
    await whileFull((limit) => eventDeleteExpired(this.pool, eventRetentionMs, limit), retentionBatchSize * 5);
    // Delivery records and batches go with the event log's retention.
    await whileFull((limit) => webhookDeliveryDeleteExpired(this.pool, eventRetentionMs, limit), retentionBatchSize);
    await whileFull((limit) => batchDeleteExpired(this.pool, eventRetentionMs, limit), retentionBatchSize);
  }

  async #endAll(selector: AttemptSelector, failure: AttemptFailure): Promise<void> {
    while (!this.#passes.stopped) {
      const ended = await jobEndAttempts(this.pool, selector, failure);
      if (ended.length > 0) {
        this.log.info({ cause: failure.cause, jobs: ended.map((e) => e.id) }, "ended attempts");
        this.#wakeups?.attemptsEnded(ended, failure.cause);
      }
      if (!mayHaveMore(ended)) return;
    }
  }

  /**
   * Stops the loop. A pass in progress is not awaited: its statements end with the pool,
   * which the server closes next (terminating them if they hang).
   */
  stop(): void {
    this.#passes.stop();
  }
}
