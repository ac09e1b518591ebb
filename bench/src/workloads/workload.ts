import type { BenchOptions } from "../harness/options.js";
import type { Results } from "../harness/results.js";
import type { BenchEnvironment, BenchSystem } from "../systems/bench-system.js";

/** What a workload run gets from the harness. */
export interface WorkloadContext {
  readonly environment: BenchEnvironment;
  readonly options: BenchOptions;
  readonly results: Results;
  /** A progress line on stderr (the table goes to stdout). */
  log(message: string): void;
}

/** What a workload runs on: a system under test, or Postgres alone for the raw ceiling. */
export interface Subject {
  readonly id: string;
  readonly label: string;
}

/** One of the workloads, run on each subject it applies to, repetition by repetition. */
export interface Workload<S extends Subject = Subject> {
  /** Short id, for `--workloads` and the JSON. */
  readonly id: string;
  /** Whether it runs in this run at all (the backlog is skipped in quick mode), and why not. */
  skipped(options: BenchOptions): string | undefined;
  /** Repetitions of this workload. Default: the run's. */
  repetitions?(options: BenchOptions): number;
  /** What it runs on, out of the systems that run. */
  systems(available: readonly BenchSystem[]): readonly S[];
  /** One run on one subject; records its measurements in `context.results`. */
  runOnce(context: WorkloadContext, subject: S): Promise<void>;
}
