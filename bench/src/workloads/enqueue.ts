import type { MetricId } from "./metrics.js";
import { boundFor, connectProducer, spawnProducer, withDeployment } from "./roles.js";
import type { Workload, WorkloadContext } from "./workload.js";
import type { BenchSystem } from "../systems/bench-system.js";

/** Workload 1a: one enqueue call per job, with `inFlight` calls outstanding. */
export const enqueueEach: Workload<BenchSystem> = {
  id: "enqueue-each",
  skipped: () => undefined,
  systems: (available) => available,
  runOnce: (context, system) =>
    runEnqueue(context, system, "enqueue-each", "enqueue.each", context.options.sizes.enqueueEach, {
      mode: "each",
      inFlight: context.options.sizes.inFlight,
    }),
};

/** Workload 1b: batches of `batchSize` through the system's batch API, one call at a time. */
export const enqueueBatches: Workload<BenchSystem> = {
  id: "enqueue-batches",
  skipped: () => undefined,
  systems: (available) => available,
  runOnce: (context, system) =>
    runEnqueue(context, system, "enqueue-batches", "enqueue.batches", context.options.sizes.enqueueBatches, {
      mode: "batches",
      batchSize: context.options.sizes.batchSize,
      inFlight: 1,
    }),
};

/**
 * Enqueues `count` jobs from the system's producer process into a fresh deployment with no
 * worker, and records jobs per second as the producer timed it (first call to last answer).
 */
async function runEnqueue(
  context: WorkloadContext,
  system: BenchSystem,
  workload: string,
  metric: MetricId,
  count: number,
  how: { mode: "each"; inFlight: number } | { mode: "batches"; batchSize: number; inFlight: number },
): Promise<void> {
  await withDeployment(context, system, { workload }, async (deployment, track) => {
    const producer = track(spawnProducer(system));
    await connectProducer(producer, deployment);
    const { ms } = await producer.request({ cmd: "enqueue", count, ...how }, "enqueued", boundFor(count));
    const completed = await deployment.completedCount(count);
    if (completed !== 0) throw new Error(`${completed} jobs completed with no worker running`);
    context.results.record(metric, system.id, (count / ms) * 1000);
  });
}
