import type { BenchSystem } from "../systems/bench-system.js";
import { cutShortNote, measureDrain, serverWarningsNote, type DrainPlan } from "./drain.js";
import type { Workload } from "./workload.js";

/**
 * Workload 2 (and the memory of workload 5): pre-enqueued jobs drained by one worker
 * process at the run's concurrency; records jobs per second and the peak RSS of the server
 * (Jobwire's; Redis for BullMQ) and worker processes.
 */
export const processing: Workload<BenchSystem> = {
  id: "processing",
  skipped: () => undefined,
  systems: (available) => available,
  async runOnce(context, system) {
    const { sizes } = context.options;
    const plan: DrainPlan = {
      workload: "processing",
      enqueued: sizes.processing,
      measured: sizes.processing,
      loadBatch: sizes.batchSize,
      loadInFlight: 1,
      concurrencyPerWorker: sizes.concurrency,
      boundMs: sizes.drainBoundMs,
    };
    const result = await measureDrain(context, system, plan);
    if (result.cutShort) context.results.annotate("processing", system.id, cutShortNote(result, plan));
    const warnings = serverWarningsNote(result);
    if (warnings) context.results.annotate("processing", system.id, warnings);
    context.results.record("processing", system.id, result.jobsPerSecond);
    if (result.serverPeakRss !== undefined) context.results.record("rss.server.processing", system.id, result.serverPeakRss / 1e6);
    if (result.workerPeakRss !== undefined) context.results.record("rss.worker.processing", system.id, result.workerPeakRss / 1e6);
  },
};
