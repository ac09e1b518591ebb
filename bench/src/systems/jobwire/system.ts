import { fileURLToPath } from "node:url";
import type { BenchSystem, Deployment } from "../bench-system.js";
import { packageVersion } from "../package-version.js";
import { startJobwireServer, type JobwireServerProcess } from "./server-process.js";
import { jobwirePrefetch } from "./settings.js";

/**
 * Jobwire as users run it: the server (`server/src/main.ts`) as its own process on a fresh
 * database, every setting at its default; the SDK's Worker in a second process and the SDK
 * client in a third, both speaking gRPC to it over loopback.
 */
export const jobwire: BenchSystem = {
  id: "jobwire",
  label: "Jobwire",
  version: `@jobwire/server@${packageVersion("@jobwire/server")} (working tree)`,
  configuration: [
    "server: its own process (node --conditions=source --import tsx server/src/main.ts), DATABASE_URL, JOBWIRE_LOG_LEVEL=warn, every other setting at its default (pool 20)",
    `worker: @jobwire/sdk Worker in its own process, concurrency 32 (16 per worker with two replicas), prefetch ${jobwirePrefetch} (the README's setting for throughput on short jobs, like graphile-worker's local queue of 500), gRPC over loopback`,
    "producer: @jobwire/sdk createJobwireClient (gRPC): enqueue() per job, enqueueBatch() for batches",
  ],
  producerScript: fileURLToPath(new URL("./producer.ts", import.meta.url)),
  workerScript: fileURLToPath(new URL("./worker.ts", import.meta.url)),
  unavailable: () => undefined,
  async deploy(environment, { workload, replicas = 1 }): Promise<Deployment> {
    const database = await environment.postgres.createDatabase(`jobwire_${workload}`);
    let servers: JobwireServerProcess[] = [];
    // One after the other: the first applies the migrations, the next find them applied.
    const startServers = async () => {
      for (let i = 0; i < replicas; i++) servers.push(await startJobwireServer(database.url));
    };
    const stopServers = async () => {
      await Promise.all(servers.map((server) => server.stop()));
      servers = [];
    };
    try {
      await startServers();
    } catch (error) {
      await stopServers();
      await database.drop();
      throw error;
    }
    return {
      producerEndpoint: () => ({ jobwireUrl: servers[0]!.url }),
      workerEndpoints: () => servers.map((server) => ({ jobwireUrl: server.url })),
      async completedCount() {
        const [row] = await database.query<{ n: number }>("SELECT count(*)::int AS n FROM job WHERE state = 'succeeded'");
        return row!.n;
      },
      async freshServers() {
        await stopServers();
        await startServers();
      },
      serverPeakRss() {
        const peaks = servers.map((server) => server.process.peakRssBytes() ?? 0);
        return peaks.length > 0 ? Math.max(...peaks) : undefined;
      },
      async close() {
        try {
          await stopServers();
        } finally {
          await database.drop();
        }
      },
    };
  },
};
