import type { MetricId } from "../workloads/metrics.js";
import type { Results } from "./results.js";

/** One of the targets, as measured in this run. */
export interface TargetCheck {
  /** The target, as the issue states it. */
  target: string;
  /** What was measured, e.g. `1.62x (4,100 vs 2,530 jobs/s)`. */
  measured: string;
  /** Met, missed, or not measured in this run. */
  met: boolean | undefined;
}

const jw = "jobwire";

/**
 * Checks the targets against the medians of this run. They are reported, never
 * asserted: the run succeeds whatever they say.
 */
export function checkTargets(results: Results): TargetCheck[] {
  const ratio = (metric: MetricId, peer: string, atLeast: number, target: string): TargetCheck => {
    const ours = results.median(metric, jw);
    const theirs = results.median(metric, peer);
    if (ours === undefined || theirs === undefined) return { target, measured: "not measured in this run", met: undefined };
    const r = ours / theirs;
    return { target, measured: `${r.toFixed(2)}x (${whole(ours)} vs ${whole(theirs)} jobs/s)`, met: r >= atLeast };
  };
  const atMost = (metric: MetricId, limit: number, unit: string, target: string, values = results.values(metric, jw)): TargetCheck => {
    if (values.length === 0) return { target, measured: "not measured in this run", met: undefined };
    // Memory: the largest value seen (it is a peak); latency: the median of the repetitions.
    const value = unit === "MB" ? Math.max(...values) : results.median(metric, jw)!;
    return { target, measured: `${unit === "MB" ? whole(value) : value.toFixed(2)} ${unit}`, met: value <= limit };
  };
  const backlog = results.median("backlog.vs-processing", jw);
  const keyed = results.median("concurrency-key.vs-plain", jw);
  const keyedTarget = "processing with a limited concurrency key on every job >= 0.8x plain processing (issue 6)";
  return [
    ratio("processing", "graphile-worker", 1.5, "processing >= 1.5x graphile-worker (tuned)"),
    ratio("processing", "bullmq-aof", 1.2, "processing >= 1.2x BullMQ (appendfsync always)"),
    atMost("latency.p50", 2, "ms", "latency at 200/s: p50 <= 2 ms"),
    atMost("latency.p99", 10, "ms", "latency at 200/s: p99 <= 10 ms"),
    ratio("enqueue.each", "bullmq-aof", 1.0, "one-call-per-job enqueue >= 1.0x BullMQ (appendfsync always)"),
    ratio("enqueue.batches", "graphile-worker", 1.5, "batch enqueue >= 1.5x graphile-worker add_jobs"),
    backlog === undefined
      ? { target: "backlog: 1,000,000-job rate within 20% of the 20,000-job rate", measured: "not measured in this run", met: undefined }
      : { target: "backlog: 1,000,000-job rate within 20% of the 20,000-job rate", measured: `${backlog.toFixed(2)} of the 20,000-job rate`, met: backlog >= 0.8 },
    keyed === undefined
      ? { target: keyedTarget, measured: "not measured in this run", met: undefined }
      : {
          target: keyedTarget,
          measured: `${keyed.toFixed(2)}x (median of the pairs' keyed / plain ratios; medians ${whole(results.median("concurrency-key.processing", jw)!)} vs ${whole(results.median("concurrency-key.plain", jw)!)} jobs/s${cpuNote(results)})`,
          met: keyed >= 0.8,
        },
    atMost("rss.server.processing", 250, "MB", "server RSS <= 250 MB at peak", [
      ...results.values("rss.server.processing", jw),
      ...results.values("rss.server.backlog", jw),
    ]),
    atMost("rss.worker.processing", 150, "MB", "worker RSS <= 150 MB at peak", [
      ...results.values("rss.worker.processing", jw),
      ...results.values("rss.worker.backlog", jw),
    ]),
  ];
}

/** 6a's CPU per job, keyed and plain, for its target line; empty where it was not measured. */
function cpuNote(results: Results): string {
  const keyed = results.median("concurrency-key.cpu", jw);
  const plain = results.median("concurrency-key.cpu-plain", jw);
  return keyed === undefined || plain === undefined ? "" : `, ${whole(keyed)} vs ${whole(plain)} µs of CPU a job`;
}

/** The targets as printed: a mark, the target, what was measured. */
export function renderTargets(checks: readonly TargetCheck[]): string {
  const width = Math.max(...checks.map((check) => check.target.length));
  return checks
    .map((check) => `${check.met === undefined ? "-" : check.met ? "✓" : "✗"} ${check.target.padEnd(width)}  ${check.measured}`)
    .join("\n");
}

function whole(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}
