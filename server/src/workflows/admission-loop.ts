import type pg from "pg";
import type { AdmissionPlacement } from "../dispatch/dispatcher.js";
import type { Logger } from "../logger.js";
import { PacedPasses } from "../loops/paced-passes.js";
import { admissibleJobs, lockWaitingUnits, nextAdmissionAt, type AdmissibleJob, type AdmissionChoice, type AdmissionUnit } from "../store/sql/admission.js";
import { concurrencyLimitsExist } from "../store/sql/concurrency.js";
import { jobLeaseOnAdmission, type AdmissionLease, type ClaimedJob } from "../store/sql/job-claim.js";
import { withTransaction } from "../store/transaction.js";

/** Shortest time between two passes. */
const minPassIntervalMs = 10;

/** Fewest jobs worth a lease statement of their own on a second connection (see `AdmissionLoop.#lease`). */
const leaseShareMin = 64;

/** The smallest pool a pass takes a second connection from. */
const helperPoolMin = 6;

/** The most jobs a pass admits for one limit. */
const admissionsPerUnitMax = 1000;

/** Puts jobs being admitted on local workers: the dispatcher. */
export interface AdmissionPlacer {
  /** See `Dispatcher.admissionBudgets`. */
  admissionBudgets(): Map<string, number>;
  /** See `Dispatcher.placeAdmitted`. */
  placeAdmitted<Job extends AdmissibleJob>(jobs: readonly Job[]): AdmissionPlacement<Job>;
}

/** A job chosen for admission, with the choice of its limit. */
type ChosenJob = AdmissibleJob & { choice: AdmissionChoice };

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
   * Leases the jobs a pass chose, while its transaction `tx` holds their limits' locks. With
   * a `helper` connection, a large pass leases half of them there, side by side with the
   * other half in `tx`, so that the leasing (most of a pass's work) is not held to one
   * core. That keeps every bound: the helper's statement commits on its own, before `tx`
   * commits and releases the locks, so the next pass on any replica, which counts after
   * taking them, sees both halves. The helper's jobs go to `committedApart` once committed.
   */
  async #lease(tx: pg.PoolClient, helper: pg.PoolClient | undefined, leases: AdmissionLease[], committedApart: (jobs: ClaimedJob[]) => void): Promise<ClaimedJob[]> {
    if (!helper || leases.length < 2 * leaseShareMin) return jobLeaseOnAdmission(tx, leases);
    // Contiguous halves, so that the jobs come back in lease order.
    const half = Math.ceil(leases.length / 2);
    const [first, second] = await Promise.allSettled([
      jobLeaseOnAdmission(tx, leases.slice(0, half)),
      jobLeaseOnAdmission(helper, leases.slice(half)).then((jobs) => {
        committedApart(jobs);
        return jobs;
      }),
    ]);
    if (first.status === "rejected") throw first.reason;
    if (second.status === "rejected") throw second.reason;
    return [...first.value, ...second.value];
  }

  /**
   * A second connection for a pass that may lease at least two shares (see {@link #lease}),
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
    let nextAt = Number.POSITIVE_INFINITY;
    // Namespaces without a worker slot here to lease into have nothing this replica could
    // place. With none at all, the pass looks at nothing: a slot that frees brings it back.
    const budgets = this.placer.admissionBudgets();
    if (budgets.size === 0 || this.#passes.stopped) return nextAt;
    const budget = (unit: AdmissionUnit) => Math.min(budgets.get(unit.namespace) ?? 0, admissionsPerUnitMax);
    let found = false;
    let placement: AdmissionPlacement<ChosenJob> | undefined;
    // Leases committed on their own (see #lease): delivered even if the pass then fails.
    const committed: ClaimedJob[] = [];
    const helper = await this.#helperFor(budgets);
    try {
      // One transaction for the whole pass: one commit (one WAL flush) rather than one per
      // limit, and three statements whatever the number of limits with one key each.
      const { choices, leased } = await withTransaction(this.pool, async (tx) => {
        const units = await lockWaitingUnits(tx, [...budgets.keys()]);
        found = units.length > 0;
        const choices = await admissibleJobs(tx, units, budget);
        // Across limits, in the order a claim would lease them.
        const chosen = choices.flatMap((choice) => choice.jobs.map((job) => ({ ...job, choice }))).sort(leaseOrder);
        placement = this.placer.placeAdmitted(chosen);
        const leases = placement.leases.map(({ job, workerId }) => ({ jobId: job.id, workerId, underRate: job.choice.underRate }));
        return { choices, leased: await this.#lease(tx, helper, leases, (jobs) => committed.push(...jobs)) };
      });
      placement!.deliver(leased);
      const admitted = new Map<AdmissionChoice, number>();
      for (const { job } of placement!.leases) admitted.set(job.choice, (admitted.get(job.choice) ?? 0) + 1);
      for (const choice of choices) {
        const at = nextAdmissionAt(choice, admitted.get(choice) ?? 0);
        if (at) nextAt = Math.min(nextAt, at.getTime());
      }
    } catch (error) {
      if (committed.length > 0) placement?.deliver(committed);
      else placement?.abandon();
      // The helper may have failed with its connection: do not hand that back to the pool.
      helper?.release(true);
      throw error;
    }
    helper?.release();
    // Jobs waited for a limit: limits exist, no need to ask.
    const active = found || (await concurrencyLimitsExist(this.pool));
    if (this.#changes === changesBefore) this.#active = active;
    return nextAt - Date.now();
  }
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
