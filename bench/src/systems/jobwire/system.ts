import { fileURLToPath } from "node:url";
import { createApiKey, type ApiKeySpec } from "@jobwire/server";
import pg from "pg";
import { queueName } from "../../role/payload.js";
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
    "server: its own process (node --conditions=source --import tsx server/src/main.ts), DATABASE_URL, JOBWIRE_LOG_LEVEL=warn, every other setting at its default (pool 20, API keys required)",
    "API keys: the producer sends a producer key, the worker a worker key for the bench queue, each looked up in Postgres on every call (BENCH_JOBWIRE_AUTH=off runs without)",
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
    let keys: { producer: string; worker: string };
    try {
      await startServers();
      keys = {
        producer: await createKey(database.url, { principal: "bench-producer", role: "producer" }),
        worker: await createKey(database.url, { principal: "bench-worker", role: "worker", queues: [queueName] }),
      };
    } catch (error) {
      await stopServers();
      await database.drop();
      throw error;
    }
    return {
      producerEndpoint: () => ({ jobwireUrl: servers[0]!.url, jobwireApiKey: keys.producer }),
      workerEndpoints: () => servers.map((server) => ({ jobwireUrl: server.url, jobwireApiKey: keys.worker })),
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

/** Creates an API key in the deployment's database, as `npm run create-api-key` would. */
async function createKey(databaseUrl: string, spec: ApiKeySpec): Promise<string> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const created = await createApiKey(pool, spec);
    if (!created) throw new Error(`could not create the ${spec.role} key`);
    return created.key;
  } finally {
    await pool.end();
  }
}
