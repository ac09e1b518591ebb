import { fileURLToPath } from "node:url";
import type { BenchSystem, Deployment } from "../bench-system.js";
import { packageVersion } from "../package-version.js";
import { pgBossConfiguration } from "./settings.js";

/** pg-boss on a fresh database of the run's Postgres; it has no server process. */
export const pgBoss: BenchSystem = {
  id: "pg-boss",
  label: "pg-boss",
  version: `pg-boss@${packageVersion("pg-boss")}`,
  configuration: pgBossConfiguration,
  producerScript: fileURLToPath(new URL("./producer.ts", import.meta.url)),
  workerScript: fileURLToPath(new URL("./worker.ts", import.meta.url)),
  unavailable: () => undefined,
  async deploy(environment, { workload }): Promise<Deployment> {
    const database = await environment.postgres.createDatabase(`pgboss_${workload}`);
    return {
      producerEndpoint: () => ({ databaseUrl: database.url }),
      workerEndpoints: () => [{ databaseUrl: database.url }],
      async completedCount() {
        const [row] = await database.query<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE state = 'completed'");
        return row!.n;
      },
      freshServers: async () => undefined,
      serverPeakRss: () => undefined,
      close: () => database.drop(),
    };
  },
};
