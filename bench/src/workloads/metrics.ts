/** Whether a larger or a smaller value of a metric is better. */
export type Better = "higher" | "lower";

/** One row of the results table. */
export interface MetricSpec {
  /** Row label, led by the workload number; the sizes of the run are printed above the table. */
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  /** The workload (its id) that records it, to mark failed cells. */
  readonly workload: string;
}

/** Every metric the bench records, in the order of the table. */
export const metrics = {
  "enqueue.each": { label: "1 enqueue, 1 call/job, 32 in flight", unit: "jobs/s", better: "higher", workload: "enqueue-each" },
  "enqueue.batches": { label: "1 enqueue, batches of 1,000", unit: "jobs/s", better: "higher", workload: "enqueue-batches" },
  "processing": { label: "2 processing, 1 worker x 32", unit: "jobs/s", better: "higher", workload: "processing" },
  // Workload 6a sits under workload 2, whose drain it repeats with keys; its ratio is to a plain drain of its own.
  "concurrency-key.processing": { label: "6a processing, limited key/job", unit: "jobs/s", better: "higher", workload: "concurrency-key" },
  "concurrency-key.plain": { label: "6a same drain without keys", unit: "jobs/s", better: "higher", workload: "concurrency-key" },
  "concurrency-key.vs-plain": { label: "6a keyed / plain, paired", unit: "ratio", better: "higher", workload: "concurrency-key" },
  // The machine's CPU per job: both drains keep its cores busy, so their rates follow it.
  "concurrency-key.cpu": { label: "6a CPU per keyed job (machine)", unit: "µs", better: "lower", workload: "concurrency-key" },
  "concurrency-key.cpu-plain": { label: "6a CPU per job without keys", unit: "µs", better: "lower", workload: "concurrency-key" },
  "latency.p50": { label: "3 latency @200/s, p50", unit: "ms", better: "lower", workload: "latency" },
  "latency.p95": { label: "3 latency @200/s, p95", unit: "ms", better: "lower", workload: "latency" },
  "latency.p99": { label: "3 latency @200/s, p99", unit: "ms", better: "lower", workload: "latency" },
  "latency.max": { label: "3 latency @200/s, max", unit: "ms", better: "lower", workload: "latency" },
  "backlog.load": { label: "4 backlog bulk load (batch API)", unit: "jobs/s", better: "higher", workload: "backlog" },
  "backlog.processing": { label: "4 backlog processing, first 20k", unit: "jobs/s", better: "higher", workload: "backlog" },
  "backlog.vs-processing": { label: "4 backlog rate / rate of 2", unit: "ratio", better: "higher", workload: "backlog" },
  "rss.server.processing": { label: "5 server peak RSS during 2", unit: "MB", better: "lower", workload: "processing" },
  "rss.worker.processing": { label: "5 worker peak RSS during 2", unit: "MB", better: "lower", workload: "processing" },
  "rss.server.backlog": { label: "5 server peak RSS during 4", unit: "MB", better: "lower", workload: "backlog" },
  "rss.worker.backlog": { label: "5 worker peak RSS during 4", unit: "MB", better: "lower", workload: "backlog" },
  "replicas.processing": { label: "6b processing, 2 replicas, 2x16", unit: "jobs/s", better: "higher", workload: "replicas" },
  // Printed under the table as the bound, not as a row: Postgres alone, no queue.
  "ceiling": { label: "7 raw ceiling: Postgres job lifecycles (INSERT txn + UPDATE txn per job, 32 connections)", unit: "jobs/s", better: "higher", workload: "ceiling" },
} as const satisfies Record<string, MetricSpec>;

/** The id of a metric. */
export type MetricId = keyof typeof metrics;
