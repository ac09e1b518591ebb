import type pg from "pg";
import type { Wakeups } from "../dispatch/wakeups.js";
import type { Logger } from "../logger.js";
import { PacedPasses } from "../loops/paced-passes.js";
import { batchFinishDone, graphsActive, jobGraphSettleStep, type BatchWitnesses } from "../store/sql/job-graph.js";
import { withTransaction } from "../store/transaction.js";

/** Finished jobs settled per transaction. */
const settleStepSize = 200;
/** Shortest time between two passes. */
const minPassIntervalMs = 10;

/**
 * Moves job graphs and batches on from committed rows: settles finished jobs that have
 * dependants or parents (children unblocked or cancelled, dead ends walked; see
 * `jobGraphSettleStep`), one transaction per step, and finishes batches whose jobs have
 * all finished. Woken whenever events are committed, on any replica (a finished job always
 * writes one); the fallback poll covers a lost wake-up. Every step is guarded in the
 * database, so replicas running it side by side change each row once.
 */
export class GraphResolver {
  readonly #passes: PacedPasses;
  #wakeups: Wakeups | undefined;
  /** Whether the last pass found graphs or open batches: without any, events are ignored. */
  #active = true;
  /** Counts graphs created here, so that a pass does not idle the resolver over a new one. */
  #created = 0;
  readonly #batchWitnesses: BatchWitnesses = new Map();

  constructor(
    private readonly pool: pg.Pool,
    private readonly cancelGraceMs: number,
    fallbackPollMs: number,
    log: Logger,
  ) {
    this.#passes = new PacedPasses(() => this.#pass(), { minIntervalMs: minPassIntervalMs, fallbackMs: fallbackPollMs }, (error) =>
      log.error({ err: error }, "settling job graphs failed"),
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

  /**
   * Events were committed: some job may have finished. Ignored while no graph or open
   * batch exists; one made on another replica is noticed by the fallback poll, and its
   * jobs' events wake the resolver of the replica that made it.
   */
  eventsCommitted(): void {
    if (this.#active) this.#passes.wake();
  }

  /** A batch or a job with dependencies was created here: watch the events from now on. */
  graphsCreated(): void {
    this.#created++;
    this.#active = true;
    this.#passes.wake();
  }

  /** Stops; resolves once a pass in progress has ended. */
  stop(): Promise<void> {
    return this.#passes.stop();
  }

  async #pass(): Promise<number> {
    const createdBefore = this.#created;
    let wroteEvents = false;
    for (;;) {
      const outcome = await withTransaction(this.pool, (tx) => jobGraphSettleStep(tx, settleStepSize));
      if (outcome.settled === 0) break;
      wroteEvents = true;
      if (outcome.readyQueues.length > 0) this.#wakeups?.jobsReady(outcome.readyQueues);
      if (outcome.scheduledAt) this.#wakeups?.jobScheduled(outcome.scheduledAt);
      for (const request of outcome.cancelRequests) {
        this.#wakeups?.workerNotice({ type: "cancel", worker: request.workerId, job: request.jobId, lease_token: request.leaseToken, reason: request.reason });
      }
      if (outcome.cancelRequests.length > 0) this.#wakeups?.dueAt(new Date(Date.now() + this.cancelGraceMs));
      if (outcome.settled < settleStepSize || this.#passes.stopped) break;
    }
    if ((await batchFinishDone(this.pool, this.#batchWitnesses)) > 0) wroteEvents = true;
    // Streams read the new events; other replicas' resolvers look for the next step.
    if (wroteEvents) this.#wakeups?.eventsCommitted();
    const active = await graphsActive(this.pool);
    if (this.#created === createdBefore) this.#active = active;
    return Number.POSITIVE_INFINITY;
  }
}
