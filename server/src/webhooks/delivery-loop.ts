import type pg from "pg";
import type { Logger } from "../logger.js";
import { PacedPasses } from "../loops/paced-passes.js";
import {
  webhookDeliveryClaimDue,
  webhookDeliveryFailed,
  webhookOutboxState,
  webhookDeliverySucceeded,
  type DueDelivery,
} from "../store/sql/webhook-delivery.js";
import type { SendOutcome, WebhookSender } from "./webhook-sender.js";

/** Shortest time between two passes over the outbox. */
const minPassIntervalMs = 20;

/** Options of {@link DeliveryLoop}. */
export interface DeliveryLoopOptions {
  /** Deliveries in flight at once. */
  concurrency: number;
  /** Attempts before a delivery is given up (with a `webhook_failed` event). */
  maxAttempts: number;
  /** Delay before the first retry; it doubles each attempt, with jitter, up to 1 h. */
  backoffMs: number;
  /** Longest wait between passes without a wake-up. */
  fallbackPollMs: number;
  /** How long a claimed attempt may take before another replica may retry it. */
  attemptLeaseMs: number;
}

/**
 * Delivers the webhook outbox: claims due deliveries (`SKIP LOCKED`, so replicas share the
 * work), sends them with bounded concurrency, and records each attempt, retrying with
 * exponential backoff and jitter. Woken when events commit here, at the next due time, and
 * by a slow poll. `stop` waits for attempts in flight up to a bound; one cut off is
 * attempted again after its lease, by whichever replica runs then.
 */
export class DeliveryLoop {
  readonly #passes: PacedPasses;
  /**
   * Whether subscriptions or jobs with webhook targets existed at the last pass: without
   * any, events bring no deliveries.
   */
  #targets = false;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly sender: WebhookSender,
    private readonly options: DeliveryLoopOptions,
    private readonly log: Logger,
  ) {
    this.#passes = new PacedPasses(() => this.#pass(), { minIntervalMs: minPassIntervalMs, fallbackMs: options.fallbackPollMs }, (error) =>
      log.error({ err: error }, "webhook delivery pass failed"),
    );
  }

  /** Starts delivering. */
  start(): void {
    this.wake();
  }

  /**
   * Events were committed: they may have filled the outbox, if any webhook target exists.
   * Without one, the slow poll still looks after deliveries left from deleted targets, and a
   * target made on another replica is noticed there.
   */
  eventsCommitted(): void {
    if (this.#targets) this.wake();
  }

  /** A subscription or a job with webhook targets was created here: events bring deliveries. */
  targetsCreated(): void {
    this.#targets = true;
  }

  /** Deliveries may be due now; passes are spaced at least {@link minPassIntervalMs} apart. */
  wake(): void {
    this.#passes.wake();
  }

  /** Claims and sends what is due; returns milliseconds until the next delivery is due. */
  async #pass(): Promise<number> {
    for (;;) {
      const free = this.options.concurrency - this.#inFlight.size;
      if (free <= 0) {
        await Promise.race(this.#inFlight);
        continue;
      }
      const due = await webhookDeliveryClaimDue(this.pool, free, this.options.attemptLeaseMs);
      for (const delivery of due) {
        const attempt = this.#attempt(delivery).finally(() => this.#inFlight.delete(attempt));
        this.#inFlight.add(attempt);
      }
      if (due.length < free || this.#passes.stopped) break;
    }
    const state = await webhookOutboxState(this.pool);
    this.#targets = state.targets;
    return Math.min(this.options.fallbackPollMs, state.nextDueMs ?? Number.POSITIVE_INFINITY);
  }

  async #attempt(delivery: DueDelivery): Promise<void> {
    // A job's target whose secret was deleted can never be signed: no point retrying it.
    const outcome: SendOutcome = delivery.secret === null
      ? { ok: false, error: `webhook secret ${delivery.secretName ?? ""} does not exist` }
      : await this.sender.send(delivery.url, delivery.secret, delivery.eventId, JSON.stringify(delivery.body));
    const lastAttempt = delivery.secret === null || delivery.attempts >= this.options.maxAttempts;
    try {
      if (outcome.ok) {
        await webhookDeliverySucceeded(this.pool, delivery.id, outcome.status);
      } else {
        const retryInMs = lastAttempt
          ? null
          : Math.min(3_600_000, this.options.backoffMs * 2 ** (delivery.attempts - 1)) * (0.75 + Math.random() / 4);
        await webhookDeliveryFailed(this.pool, delivery.id, outcome.error, retryInMs);
        this.log.warn({ delivery: delivery.id, url: delivery.url, error: outcome.error, retryInMs }, "webhook delivery failed");
      }
    } catch (error) {
      // The attempt's lease runs out and the delivery is attempted again.
      this.log.error({ err: error, delivery: delivery.id }, "recording a webhook attempt failed");
    }
    // The outcome is recorded: a retry may be due sooner than the armed timer.
    this.wake();
  }

  /**
   * Stops claiming and waits for attempts in flight, at most `graceMs`; then aborts what is
   * still in flight and waits for those attempts to be recorded as failed, so they are
   * retried with backoff. Should recording fail too, the attempt's claim lapses and it is
   * retried then, by whichever replica runs: a delivery is never lost.
   */
  async stop(graceMs: number): Promise<void> {
    // A pass may be waiting for a free slot: it ends once the attempts in flight do.
    const passEnded = this.#passes.stop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([passEnded, ...this.#inFlight]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    await this.sender.close().catch(() => undefined);
    await Promise.allSettled([passEnded, ...this.#inFlight]);
  }
}
