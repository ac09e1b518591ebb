import type { MetricId } from "../workloads/metrics.js";
import { median } from "./stats.js";

/** A column of the results: a system under test, or `postgres` for the raw ceiling (see `workloads/ceiling.ts`). */
export type ColumnId = string;

/** A run of a workload on a system that failed, kept for the report and the JSON. */
export interface Failure {
  workload: string;
  system: ColumnId;
  repetition: number;
  message: string;
}

/**
 * Every value the run measured, per metric and system, one per repetition, in the order
 * they were taken; plus the failures and the cells that were not run, with why.
 */
export class Results {
  readonly #values = new Map<string, number[]>();
  readonly #notRun = new Map<ColumnId, string>();
  readonly failures: Failure[] = [];
  /** Caveats on measurements (e.g. a drain cut short by its bound), shown as `*` in the table. */
  readonly notes: { metric: MetricId; system: ColumnId; note: string }[] = [];

  /** Adds one measurement. */
  record(metric: MetricId, system: ColumnId, value: number): void {
    const key = `${metric}\u0000${system}`;
    const list = this.#values.get(key) ?? [];
    list.push(value);
    this.#values.set(key, list);
  }

  /** Every measurement of `metric` on `system`, in the order taken. */
  values(metric: MetricId, system: ColumnId): number[] {
    return this.#values.get(`${metric}\u0000${system}`) ?? [];
  }

  /** The median of {@link values}; `undefined` when nothing was measured. */
  median(metric: MetricId, system: ColumnId): number | undefined {
    return median(this.values(metric, system));
  }

  /** Attaches a caveat to the measurements of `metric` on `system`. */
  annotate(metric: MetricId, system: ColumnId, note: string): void {
    this.notes.push({ metric, system, note });
  }

  /** Whether {@link annotate} was called for `metric` on `system`. */
  annotated(metric: MetricId, system: ColumnId): boolean {
    return this.notes.some((entry) => entry.metric === metric && entry.system === system);
  }

  /** Marks a system as not run at all, with why (e.g. redis-server is missing). */
  markNotRun(system: ColumnId, reason: string): void {
    this.#notRun.set(system, reason);
  }

  /** Why `system` was not run, if it was not. */
  notRunReason(system: ColumnId): string | undefined {
    return this.#notRun.get(system);
  }

  /** Whether a run of `metric`'s workload failed on `system`. */
  failed(workload: string, system: ColumnId): boolean {
    return this.failures.some((failure) => failure.workload === workload && failure.system === system);
  }

  /** Everything, as plain data for the JSON file. */
  toJSON(): object {
    const measurements: Record<string, Record<string, { values: number[]; median: number | undefined }>> = {};
    for (const [key, values] of this.#values) {
      const [metric, system] = key.split("\u0000") as [string, string];
      (measurements[metric] ??= {})[system] = { values, median: median(values) };
    }
    return {
      measurements,
      notRun: Object.fromEntries(this.#notRun),
      notes: this.notes,
      failures: this.failures,
    };
  }
}
