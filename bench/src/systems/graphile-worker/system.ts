import { fileURLToPath } from "node:url";
import type { BenchSystem, Deployment } from "../bench-system.js";
import { packageVersion } from "../package-version.js";
import { graphileWorkerConfiguration } from "./settings.js";

/** graphile-worker on a fresh database of the run's Postgres; it has no server process. */
export const graphileWorker: BenchSystem = {
  id: "graphile-worker",
  label: "graphile-worker",
  version: `graphile-worker@${packageVersion("graphile-worker")}`,
  configuration: graphileWorkerConfiguration,
  producerScript: fileURLToPath(new URL("./producer.ts", import.meta.url)),
  workerScript: fileURLToPath(new URL("./worker.ts", import.meta.url)),
  unavailable: () => undefined,
  async deploy(environment, { workload }): Promise<Deployment> {
    const database = await environment.postgres.createDatabase(`graphile_${workload}`);
    return {
      producerEndpoint: () => ({ databaseUrl: database.url }),
      workerEndpoints: () => [{ databaseUrl: database.url }],
      async completedCount(enqueued) {
        // Completed jobs are deleted; failed ones stay (with their error) until retried.
        const [row] = await database.query<{ n: number }>("SELECT count(*)::int AS n FROM graphile_worker._private_jobs");
        return enqueued - row!.n;
      },
      freshServers: async () => undefined,
      serverPeakRss: () => undefined,
      close: () => database.drop(),
    };
  },
};
