import type { BenchSystem } from "../systems/bench-system.js";
import { cutShortNote, measureDrain, serverWarningsNote, type DrainPlan } from "./drain.js";
import type { Workload } from "./workload.js";

/**
 * Workload 6b: the processing run of workload 2 on two Jobwire server replicas sharing one
 * database, with one worker process connected to each at half the concurrency. Jobwire only.
 */
export const replicas: Workload<BenchSystem> = {
  id: "replicas",
  skipped: () => undefined,
  systems: (available) => available.filter((system) => system.id === "jobwire"),
  async runOnce(context, system) {
    const { sizes } = context.options;
    const plan: DrainPlan = {
      workload: "replicas",
      enqueued: sizes.processing,
      measured: sizes.processing,
      loadBatch: sizes.batchSize,
      loadInFlight: 1,
      replicas: 2,
      concurrencyPerWorker: sizes.concurrency / 2,
      boundMs: sizes.drainBoundMs,
    };
    const result = await measureDrain(context, system, plan);
    if (result.cutShort) context.results.annotate("replicas.processing", system.id, cutShortNote(result, plan));
    const warnings = serverWarningsNote(result);
    if (warnings) context.results.annotate("replicas.processing", system.id, warnings);
    context.results.record("replicas.processing", system.id, result.jobsPerSecond);
  },
};
