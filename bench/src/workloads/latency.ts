import type { BenchSystem } from "../systems/bench-system.js";
import { percentile } from "../harness/stats.js";
import { boundFor, connectProducer, spawnProducer, spawnWorker, withDeployment } from "./roles.js";
import type { Workload } from "./workload.js";

/**
 * Workload 3: jobs enqueued one call each at a steady rate (open loop) to an idle worker
 * process, after `latencyWarmUp` jobs at the same rate that are not measured; each
 * measured job's latency is its handler's start minus its enqueue call's start, both
 * read from this machine's epoch clock (`performance.timeOrigin + performance.now()`) in the
 * producer and worker processes. Records p50, p95, p99 and max.
 */
export const latency: Workload<BenchSystem> = {
  id: "latency",
  skipped: () => undefined,
  systems: (available) => available,
  async runOnce(context, system) {
    const { latency: count, latencyPerSecond: perSecond, latencyWarmUp: warmUp, concurrency } = context.options.sizes;
    await withDeployment(context, system, { workload: "latency" }, async (deployment, track) => {
      const producer = track(spawnProducer(system));
      const worker = track(spawnWorker(system));
      await connectProducer(producer, deployment);
      await worker.loaded();
      const [endpoint] = deployment.workerEndpoints();
      const total = warmUp + count;
      await worker.request({ cmd: "start", endpoint: endpoint!, concurrency, expect: total, recordLatency: true, latencyFrom: warmUp }, "started", 60_000);
      await producer.request({ cmd: "enqueue", mode: "paced", count: total, perSecond }, "enqueued", boundFor(total) + (total / perSecond) * 1000);
      const { latenciesMs } = await worker.next("handled", 30_000);
      if (!latenciesMs || latenciesMs.length !== count) throw new Error(`expected ${count} latencies, got ${latenciesMs?.length}`);
      for (const [metric, p] of [["latency.p50", 50], ["latency.p95", 95], ["latency.p99", 99], ["latency.max", 100]] as const) {
        context.results.record(metric, system.id, percentile(latenciesMs, p));
      }
    });
  },
};
