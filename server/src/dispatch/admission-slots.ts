import type { AdmissibleJob } from "../store/sql/admission.js";
import type { ClaimedJob } from "../store/sql/job-claim.js";
import { queueAddress } from "./queue-address.js";
import type { WorkerStream } from "./worker-stream.js";

/** What admission slots hand their leases to: the dispatcher. */
export interface LeaseOutlet {
  /** Sends jobs just leased to `stream` to its worker. */
  deliver(stream: WorkerStream, jobs: readonly ClaimedJob[]): void;
  /** Leases jobs into the free slots of `stream`, if it has any (see `Dispatcher.fill`). */
  fill(stream: WorkerStream): void;
}

/**
 * The free slots of local worker streams, held for one admission pass from its start to
 * its commit, as a claim holds the slots it may fill: the pass leases into them (in SQL, or
 * through {@link place}), and no claim can fill them meanwhile. {@link settle} hands the
 * leased jobs to their workers and frees the rest.
 */
export class AdmissionSlots {
  /** Each stream's slots held, and its wake-up count when they were taken. */
  readonly #held = new Map<WorkerStream, { slots: number; wakeups: number }>();
  #settled = false;

  /** Holds the slots of each of `streams` that may be filled now (`WorkerStream.slotsToFill`). */
  constructor(
    streams: Iterable<WorkerStream>,
    private readonly outlet: LeaseOutlet,
  ) {
    for (const stream of streams) {
      const slots = stream.slotsToFill();
      if (slots <= 0) continue;
      stream.reserved += slots;
      this.#held.set(stream, { slots, wakeups: stream.wakeups });
    }
  }

  /** Per namespace, the slots held: the most jobs the pass may lease there. */
  budgets(): Map<string, number> {
    const budgets = new Map<string, number>();
    for (const [stream, { slots }] of this.#held) {
      const { namespace } = stream.registration;
      budgets.set(namespace, (budgets.get(namespace) ?? 0) + slots);
    }
    return budgets;
  }

  /** The streams whose slots are held, with how many, in the order they were taken. */
  held(): { stream: WorkerStream; slots: number }[] {
    return [...this.#held].map(([stream, { slots }]) => ({ stream, slots }));
  }

  /**
   * Chooses a held slot for each job (in the order given) on a stream that takes it: its
   * queue and kind, and still open. Jobs of a paused queue, and jobs no stream with a slot
   * left takes, are left out: their workers are busy, or connected elsewhere (that
   * replica's loop places them).
   */
  place<Job extends AdmissibleJob>(jobs: readonly Job[]): { job: Job; stream: WorkerStream }[] {
    const left = new Map([...this.#held].map(([stream, { slots }]) => [stream, slots]));
    const placed: { job: Job; stream: WorkerStream }[] = [];
    for (const job of jobs) {
      if (job.queuePaused) continue;
      const stream = takerWithSlotLeft(left, job);
      if (!stream) continue;
      left.set(stream, left.get(stream)! - 1);
      placed.push({ job, stream });
    }
    return placed;
  }

  /**
   * Ends the hold, after the pass committed (or failed: then with only what committed on
   * its own): gives each stream its `leased` jobs and frees every other held slot. Then
   * fills the streams that got jobs (one cancelled since it was chosen left its slot empty)
   * and those a wake-up reached while their slots were held: it found them taken, so it
   * gets them now. A stream that got nothing and heard nothing is not filled: that would wake
   * the loop again for slots it has just found nothing for. Once only.
   */
  settle(leased: ReadonlyMap<WorkerStream, readonly ClaimedJob[]>): void {
    if (this.#settled) return;
    this.#settled = true;
    for (const [stream, { slots }] of this.#held) stream.reserved -= slots;
    for (const [stream, jobs] of leased) if (jobs.length > 0) this.outlet.deliver(stream, jobs);
    for (const [stream, { wakeups }] of this.#held) {
      if ((leased.get(stream)?.length ?? 0) > 0 || stream.wakeups !== wakeups || stream.claimAgain) this.outlet.fill(stream);
    }
  }
}

/** One of the streams with slots left that takes `job` (its queue and its kind) and is still open and not draining. */
function takerWithSlotLeft(left: ReadonlyMap<WorkerStream, number>, job: AdmissibleJob): WorkerStream | undefined {
  const address = queueAddress(job.namespace, job.queue);
  for (const [stream, slots] of left) {
    if (slots > 0 && !stream.closed && !stream.draining && stream.serves(address) && stream.takesKind(job.kind)) return stream;
  }
  return undefined;
}
