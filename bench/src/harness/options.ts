import type { SystemId } from "../systems/bench-system.js";

/** How much work each workload does; quick mode shrinks it. */
export interface BenchSizes {
  /** Workload 1, one call per job: jobs enqueued. */
  enqueueEach: number;
  /** Workload 1, batches: jobs enqueued, in batches of {@link batchSize}. */
  enqueueBatches: number;
  batchSize: number;
  /** Calls in flight for one-call-per-job enqueues. */
  inFlight: number;
  /** Workloads 2 and 6: pre-enqueued jobs drained. */
  processing: number;
  /**
   * Longest a drain (workloads 2, 4, 6) may take; past it, it is cut short and timed over the
   * jobs completed by then, flagged in the table.
   */
  drainBoundMs: number;
  /** Workers' concurrency (split between the workers with two replicas). */
  concurrency: number;
  /** Workload 3: jobs enqueued at {@link latencyPerSecond}. */
  latency: number;
  latencyPerSecond: number;
  /**
   * Workload 3: jobs enqueued at the same rate just before the measured ones, whose
   * latency is not recorded: every system is measured warm, as a running service is, not
   * on its first requests after start-up (JIT, plan caches, connections).
   */
  latencyWarmUp: number;
  /** Workload 4: the backlog and the jobs measured out of it; `undefined` skips it. */
  backlog: { total: number; measured: number; loadBatch: number; loadInFlight: number; repetitions: number } | undefined;
  /** Workload 7: job lifecycles committed. */
  ceiling: number;
}

/** What `npm run bench` was asked to do. */
export interface BenchOptions {
  quick: boolean;
  /** Repetitions of each workload (A B A B … per repetition); the medians are reported. */
  repetitions: number;
  sizes: BenchSizes;
  /** Only these systems (`--systems=jobwire,bullmq`); default all. */
  systems: SystemId[] | undefined;
  /** Only these workloads (`--workloads=processing,latency`); default all. */
  workloads: string[] | undefined;
  /** The whole run is stopped, loudly, past this. */
  deadlineMs: number;
  /**
   * `--profile`: every Node process writes a CPU profile, and Postgres counts each database's
   * statements (`pg_stat_statements`); both are summarised in the report (numbers then not comparable).
   */
  profile: boolean;
}

const full: BenchSizes = {
  enqueueEach: 20_000,
  enqueueBatches: 20_000,
  batchSize: 1_000,
  inFlight: 32,
  processing: 20_000,
  drainBoundMs: 120_000,
  concurrency: 32,
  latency: 1_000,
  latencyPerSecond: 200,
  latencyWarmUp: 500,
  backlog: { total: 1_000_000, measured: 20_000, loadBatch: 5_000, loadInFlight: 2, repetitions: 1 },
  ceiling: 20_000,
};

const quick: BenchSizes = {
  ...full,
  enqueueEach: 5_000,
  enqueueBatches: 20_000,
  processing: 10_000,
  drainBoundMs: 60_000,
  latency: 500,
  latencyWarmUp: 250,
  backlog: undefined,
  ceiling: 5_000,
};

/** Thrown for `--help`: the caller prints {@link usage} and exits 0. */
export class HelpRequested extends Error {}

/** The usage line printed for `--help` and for a flag it does not know. */
export const usage = `usage: npm run bench [-- --quick] [--repetitions=N] [--systems=jobwire,graphile-worker,pg-boss,bullmq,bullmq-aof] [--workloads=enqueue-each,enqueue-batches,processing,latency,backlog,replicas,concurrency-key,ceiling] [--profile]
  --quick (or BENCH_QUICK=1): smaller sizes, 1 repetition, no 1,000,000-job backlog; about 2 minutes.
  --profile: every Node process the harness starts writes a CPU profile (bench/results/<timestamp>-profiles/), and
    Postgres counts each database's statements; the report ends with both summaries. Profiling slows everything,
    so use it to see where time goes, not for ratios.`;

/** Reads the options from the command line and the environment; throws with {@link usage} on a bad flag. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  let isQuick = env.BENCH_QUICK === "1" || env.BENCH_QUICK === "true";
  let repetitions: number | undefined;
  let systems: SystemId[] | undefined;
  let workloads: string[] | undefined;
  let profile = false;
  for (const arg of argv) {
    const [flag, value] = arg.split("=", 2) as [string, string | undefined];
    switch (flag) {
      case "--help":
        throw new HelpRequested(usage);
      case "--quick":
        isQuick = true;
        break;
      case "--repetitions":
        repetitions = Number(value);
        if (!Number.isInteger(repetitions) || repetitions < 1) throw new Error(`--repetitions must be a positive integer\n${usage}`);
        break;
      case "--systems":
        systems = (value ?? "").split(",").filter(Boolean) as SystemId[];
        break;
      case "--workloads":
        workloads = (value ?? "").split(",").filter(Boolean);
        break;
      case "--profile":
        profile = true;
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(arg)}\n${usage}`);
    }
  }
  return {
    quick: isQuick,
    repetitions: repetitions ?? (isQuick ? 1 : 3),
    sizes: isQuick ? quick : full,
    systems,
    workloads,
    deadlineMs: isQuick ? 6 * 60_000 : 25 * 60_000,
    profile,
  };
}
