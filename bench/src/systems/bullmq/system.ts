import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { redisInstallCommand, startRedis, type RedisPersistence } from "../../harness/redis-server.js";
import { queueName } from "../../role/payload.js";
import type { BenchSystem, Deployment } from "../bench-system.js";
import { packageVersion } from "../package-version.js";
import { bullmqConfiguration, connectionFor } from "./settings.js";

/**
 * BullMQ on Debian's `redis-server`, a fresh one started for each workload run with the
 * given persistence: `none`, or `aof-always` (the durability comparable to Postgres).
 */
export function bullmqOn(persistence: RedisPersistence): BenchSystem {
  return {
    id: persistence === "none" ? "bullmq" : "bullmq-aof",
    label: persistence === "none" ? "BullMQ" : "BullMQ (AOF always)",
    version: `bullmq@${packageVersion("bullmq")}`,
    configuration: bullmqConfiguration(persistence),
    producerScript: fileURLToPath(new URL("./producer.ts", import.meta.url)),
    workerScript: fileURLToPath(new URL("./worker.ts", import.meta.url)),
    unavailable: (environment) =>
      environment.redisBinary ? undefined : `redis-server is not installed; install it with: ${redisInstallCommand}`,
    async deploy(environment): Promise<Deployment> {
      const redis = await startRedis(environment.redisBinary!, persistence);
      const queue = new Queue(queueName, { connection: connectionFor(redis.url) });
      try {
        await queue.waitUntilReady();
      } catch (error) {
        await redis.stop();
        throw error;
      }
      return {
        producerEndpoint: () => ({ redisUrl: redis.url }),
        workerEndpoints: () => [{ redisUrl: redis.url }],
        completedCount: () => queue.getCompletedCount(),
        freshServers: async () => undefined,
        serverPeakRss: () => redis.process.peakRssBytes(),
        async close() {
          try {
            await queue.close();
          } finally {
            await redis.stop();
          }
        },
      };
    },
  };
}
