import type pg from "pg";
import type { AdmissionSlots } from "../dispatch/admission-slots.js";
import type { WorkerStream } from "../dispatch/worker-stream.js";
import type { Logger } from "../logger.js";
import { PacedPasses } from "../loops/paced-passes.js";
import { admissibleJobs, lockWaitingUnits, nextAdmissionAt, singleKey, type AdmissibleJob, type AdmissionChoice, type AdmissionUnit, type LockedUnit } from "../store/sql/admission.js";
import { jobLeaseAdmissible, type KeyBound } from "../store/sql/admission-lease.js";
import { concurrencyLimitsExist } from "../store/sql/concurrency.js";
import { jobLeaseOnAdmission, type ClaimedJob } from "../store/sql/job-claim.js";
import { withTransaction } from "../store/transaction.js";

/** Shortest time between two passes. */
const minPassIntervalMs = 10;

/** Fewest jobs worth a lease statement of their own on a second connection (see `AdmissionLoop.#sideBySide`). */
const leaseShareMin = 64;

/** The smallest pool a pass takes a second connection from. */
const helperPoolMin = 6;

/** The most jobs a pass admits for one limit. */
const admissionsPerUnitMax = 1000;

/** Puts jobs being admitted on local workers: the dispatcher. */
export interface AdmissionPlacer {
  /** See `Dispatcher.holdAdmissionSlots`. */
  holdAdmissionSlots(): AdmissionSlots;
}

/** A job chosen for admission, with the choice of its limit. */
type ChosenJob = AdmissibleJob & { choice: AdmissionChoice };

/** Jobs leased by a pass, by the stream they went to. */
type LeasesByStream = Map<WorkerStream, ClaimedJob[]>;

/** What a pass's transaction did: whether any limit had waiting jobs, what it leased, and when a held limit may admit again. */
interface PassOutcome {
  found: boolean;
  leased: LeasesByStream;
  nextAt: number;
}

/**
 * Admits jobs waiting for their concurrency limit (see migration 0012 and
 * `admissibleJobs`) by leasing them to local workers, in one transaction a pass: the
 * limits that have waiting jobs are locked and counted in (namespace, key) order, so
 * replicas passing side by side never admit past a bound and cannot deadlock, and each job
 * a limit may admit and a local worker has a free slot for is admitted and leased to that
 * worker in one write. The others keep waiting: for a slot of their limit, for a worker
 * slot here, or for the loop of the replica their workers are connected to. Woken whenever
 * events are committed on any replica (a job that finishes frees a slot of its limit),
 * when a claim leaves worker slots empty, when a limit changes, at the end of a pause or
 * rate window, and by the fallback poll.
 */
export class AdmissionLoop {
  readonly #passes: PacedPasses;
  /** Whether the last pass found any limit: without one, events are ignored. */
  #active = true;
  /** Counts limit changes made here, so that a pass does not idle the loop over a new one. */
  #changes = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly placer: AdmissionPlacer,
    fallbackPollMs: number,
    log: Logger,
  ) {
    this.#passes = new PacedPasses(() => this.#pass(), { minIntervalMs: minPassIntervalMs, fallbackMs: fallbackPollMs }, (error) =>
      log.error({ err: error }, "admitting jobs failed"),
    );
  }

  /** Runs a first pass now. */
  start(): void {
    this.#passes.wake();
  }

  /** Events were committed (a job may have freed a slot): look again, if any limit exists. */
  eventsCommitted(): void {
    if (this.#active) this.#passes.wake();
  }

  /** A claim left slots of a local worker empty: jobs held back for it may fill them. */
  slotsLeftEmpty(): void {
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

  /**
   * Runs `lease` (on the pass's transaction) and, when given, `helperLease` (on the helper
   * connection) side by side, so that the leasing (most of a pass's work) is not held to one
   * core. That keeps every
   * bound: the helper's statement commits on its own, before `tx` commits and releases the
   * locks, so the next pass on any replica, which counts after taking them, sees both. The
   * helper's jobs go to `committedApart` once committed.
   */
  async #sideBySide<T>(lease: () => Promise<T[]>, helperLease: (() => Promise<T[]>) | undefined, committedApart: (jobs: T[]) => void): Promise<T[]> {
    if (!helperLease) return lease();
    const [first, second] = await Promise.allSettled([
      lease(),
      helperLease().then((jobs) => {
        committedApart(jobs);
        return jobs;
      }),
    ]);
    if (first.status === "rejected") throw first.reason;
    if (second.status === "rejected") throw second.reason;
    return [...first.value, ...second.value];
  }

  /**
   * A second connection for a pass that may lease at least two shares (see {@link #sideBySide}),
   * taken before the pass locks anything: waiting for a free connection while holding the
   * locks could wait on transactions that wait for those very locks. None on a small pool.
   */
  async #helperFor(budgets: Map<string, number>): Promise<pg.PoolClient | undefined> {
    const most = Math.max(...budgets.values());
    if (most < 2 * leaseShareMin || this.pool.options.max < helperPoolMin) return undefined;
    return this.pool.connect();
  }

  async #pass(): Promise<number> {
    const changesBefore = this.#changes;
    // Namespaces without a worker slot here to lease into have nothing this replica could
    // place. With none at all, the pass looks at nothing: a slot that frees brings it back.
    const slots = this.placer.holdAdmissionSlots();
    const budgets = slots.budgets();
    if (budgets.size === 0 || this.#passes.stopped) {
      slots.settle(new Map());
      return Number.POSITIVE_INFINITY;
    }
    // Leases committed on their own (see #sideBySide): delivered even if the pass then fails.
    const committedApart: LeasesByStream = new Map();
    let helper: pg.PoolClient | undefined;
    let outcome: PassOutcome;
    try {
      helper = await this.#helperFor(budgets);
      // One transaction for the whole pass: one commit (one WAL flush) rather than one per
      // limit. With one-key limits: the lock, then a lease statement per local worker.
      outcome = await withTransaction(this.pool, async (tx) => {
        const units = await lockWaitingUnits(tx, [...budgets.keys()]);
        return units.every(leasableBySql) ?
            this.#leaseByKey(tx, helper, units, slots, committedApart)
          : this.#admitAndPlace(tx, helper, units, slots, budgets, committedApart);
      });
    } catch (error) {
      slots.settle(committedApart);
      // The helper may have failed with its connection: do not hand that back to the pool.
      helper?.release(true);
      throw error;
    }
    slots.settle(outcome.leased);
    helper?.release();
    // Jobs waited for a limit: limits exist, no need to ask.
    const active = outcome.found || (await concurrencyLimitsExist(this.pool));
    if (this.#changes === changesBefore) this.#active = active;
    return outcome.nextAt - Date.now();
  }

  /**
   * The common pass: every limit with waiting jobs bounds one key, without a rate. For each
   * held stream, one statement counts the keys of its namespace, chooses their jobs it takes
   * and leases them (`jobLeaseAdmissible`): no job row comes back but the leased ones. Each
   * key gets an even share of the stream's slots; if some took less, a second statement
   * shares what they left among the keys that still wait. Streams take turns, each statement
   * counting what the ones before leased (same transaction). A lone stream with many slots
   * leases half of the keys on the helper, side by side (the keys are disjoint, so are their
   * counts).
   */
  async #leaseByKey(tx: pg.PoolClient, helper: pg.PoolClient | undefined, units: LockedUnit[], slots: AdmissionSlots, committedApart: LeasesByStream): Promise<PassOutcome> {
    const leased: LeasesByStream = new Map();
    let nextAt = Number.POSITIVE_INFINITY;
    for (const { limit } of units) if (limit.paused && limit.pausedUntil) nextAt = Math.min(nextAt, limit.pausedUntil.getTime());
    const held = slots.held();
    for (const { stream, slots: free } of held) {
      if (stream.closed || stream.draining) continue;
      const { namespace, queues, kinds } = stream.registration;
      const bounds: KeyBound[] = units
        .filter((unit) => unit.namespace === namespace && !unit.limit.paused)
        .map((unit) => ({ key: singleKey(unit)!, maxRunning: unit.limit.maxRunning, maxWeight: unit.limit.maxWeight }));
      if (bounds.length === 0) continue;
      const budget = Math.min(free, admissionsPerUnitMax);
      const request = { namespace, workerId: stream.id, queues, kinds };
      // Each statement gives each of its keys an even share of its budget: a key that took
      // all of it may have more waiting (see the second round below).
      const fullShares = new Set<string>();
      const round = async (db: pg.PoolClient, keys: KeyBound[], slots: number) => {
        const jobs = await jobLeaseAdmissible(db, { ...request, budget: slots, bounds: keys });
        const share = Math.ceil(slots / keys.length);
        const perKey = new Map<string, number>();
        for (const job of jobs) if (job.concurrencyKey !== null) perKey.set(job.concurrencyKey, (perKey.get(job.concurrencyKey) ?? 0) + 1);
        for (const [key, count] of perKey) if (count >= share) fullShares.add(key);
        return jobs;
      };
      const split = helper && held.length === 1 && budget >= 2 * leaseShareMin && bounds.length > 1;
      const jobs = await this.#sideBySide(
        () => round(tx, split ? bounds.filter((_, i) => i % 2 === 0) : bounds, split ? Math.ceil(budget / 2) : budget),
        split ? () => round(helper!, bounds.filter((_, i) => i % 2 === 1), Math.floor(budget / 2)) : undefined,
        (jobs) => committedApart.set(stream, jobs),
      );
      // Keys that had less than their share waiting left the rest of it: the keys that took
      // all of theirs share it, in a second statement that counts the first's leases.
      const hot = bounds.filter((bound) => fullShares.has(bound.key));
      if (jobs.length < budget && hot.length > 0) jobs.push(...(await round(tx, hot, budget - jobs.length)));
      leased.set(stream, jobs);
    }
    return { found: units.length > 0, leased, nextAt };
  }

  /**
   * The general pass, for limits that bound a prefix's keys together or have a rate: reads
   * what each limit may admit (`admissibleJobs`), places those jobs in held slots in the
   * order a claim would lease them, and leases them (in two halves side by side when there
   * are many).
   */
  async #admitAndPlace(
    tx: pg.PoolClient,
    helper: pg.PoolClient | undefined,
    units: LockedUnit[],
    slots: AdmissionSlots,
    budgets: Map<string, number>,
    committedApart: LeasesByStream,
  ): Promise<PassOutcome> {
    const budget = (unit: AdmissionUnit) => Math.min(budgets.get(unit.namespace) ?? 0, admissionsPerUnitMax);
    const choices = await admissibleJobs(tx, units, budget);
    // Across limits, in the order a claim would lease them.
    const chosen: ChosenJob[] = choices.flatMap((choice) => choice.jobs.map((job) => ({ ...job, choice }))).sort(leaseOrder);
    const placed = slots.place(chosen);
    const streamOf = new Map(placed.map(({ job, stream }) => [job.id, stream]));
    const byStream = (jobs: ClaimedJob[]) => {
      const grouped: LeasesByStream = new Map();
      for (const job of jobs) {
        const stream = streamOf.get(job.id)!;
        const group = grouped.get(stream);
        if (group) group.push(job);
        else grouped.set(stream, [job]);
      }
      return grouped;
    };
    const leases = placed.map(({ job, stream }) => ({ jobId: job.id, workerId: stream.id, underRate: job.choice.underRate }));
    // Contiguous halves, so that the jobs come back in lease order.
    const split = helper && leases.length >= 2 * leaseShareMin;
    const half = Math.ceil(leases.length / 2);
    const jobs = await this.#sideBySide(
      () => jobLeaseOnAdmission(tx, split ? leases.slice(0, half) : leases),
      split ? () => jobLeaseOnAdmission(helper!, leases.slice(half)) : undefined,
      (jobs) => {
        for (const [stream, group] of byStream(jobs)) committedApart.set(stream, group);
      },
    );
    const admitted = new Map<AdmissionChoice, number>();
    for (const { job } of placed) admitted.set(job.choice, (admitted.get(job.choice) ?? 0) + 1);
    let nextAt = Number.POSITIVE_INFINITY;
    for (const choice of choices) {
      const at = nextAdmissionAt(choice, admitted.get(choice) ?? 0);
      if (at) nextAt = Math.min(nextAt, at.getTime());
    }
    return { found: units.length > 0, leased: byStream(jobs), nextAt };
  }
}

/**
 * Whether the pass may admit for `unit` in SQL alone (`jobLeaseAdmissible`): a limit on one
 * key (an exact key, or one key of a per-key prefix limit) without a rate.
 */
function leasableBySql(unit: LockedUnit): boolean {
  return unit.limit.rateCount === null && singleKey(unit) !== null;
}

/** Queue priority, then job priority (higher first), then run_at, then id. */
function leaseOrder(a: AdmissibleJob, b: AdmissibleJob): number {
  return (
    b.queuePriority - a.queuePriority ||
    b.priority - a.priority ||
    a.runAt.getTime() - b.runAt.getTime() ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}
