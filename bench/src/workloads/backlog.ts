import type { BenchSystem } from "../systems/bench-system.js";
import { cutShortNote, measureDrain, serverWarningsNote, type DrainPlan } from "./drain.js";
import type { Workload } from "./workload.js";

/**
 * Workload 4 (and the memory of workload 5): a large backlog bulk-loaded with each system's
 * batch API (Jobwire EnqueueBatch, graphile-worker add_jobs, pg-boss insert, BullMQ
 * addBulk), then the processing rate over its first jobs, compared in the report with the
 * rate of workload 2. Full mode only.
 */
export const backlog: Workload<BenchSystem> = {
  id: "backlog",
  skipped: (options) => (options.sizes.backlog ? undefined : "the 1,000,000-job backlog runs in full mode only"),
  repetitions: (options) => options.sizes.backlog?.repetitions ?? 0,
  systems: (available) => available,
  async runOnce(context, system) {
    const { sizes } = context.options;
    const backlogSize = sizes.backlog!;
    const plan: DrainPlan = {
      workload: "backlog",
      enqueued: backlogSize.total,
      measured: backlogSize.measured,
      loadBatch: backlogSize.loadBatch,
      loadInFlight: backlogSize.loadInFlight,
      concurrencyPerWorker: sizes.concurrency,
      boundMs: sizes.drainBoundMs,
    };
    const result = await measureDrain(context, system, plan);
    if (result.cutShort) context.results.annotate("backlog.processing", system.id, cutShortNote(result, plan));
    const warnings = serverWarningsNote(result);
    if (warnings) context.results.annotate("backlog.processing", system.id, warnings);
    context.results.record("backlog.processing", system.id, result.jobsPerSecond);
    context.results.record("backlog.load", system.id, result.loadJobsPerSecond);
    if (result.serverPeakRss !== undefined) context.results.record("rss.server.backlog", system.id, result.serverPeakRss / 1e6);
    if (result.workerPeakRss !== undefined) context.results.record("rss.worker.backlog", system.id, result.workerPeakRss / 1e6);
  },
};
