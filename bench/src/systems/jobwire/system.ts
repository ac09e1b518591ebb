import { fileURLToPath } from "node:url";
import { createApiKey, type ApiKeySpec } from "@jobwire/server";
import pg from "pg";
import { jobwireServerArgs } from "../../harness/paths.js";
import { queueName } from "../../role/payload.js";
import type { AdmissionCounts, BenchSystem, Deployment } from "../bench-system.js";
import { packageVersion } from "../package-version.js";
import { startJobwireServer, type JobwireServerProcess } from "./server-process.js";
import { benchConcurrencyKeys, benchConcurrencyLimit, jobwirePrefetch } from "./settings.js";

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
    `server: its own process (node ${jobwireServerArgs().slice(0, -1).join(" ")} server/src/main.ts, as npm start runs it), DATABASE_URL, JOBWIRE_LOG_LEVEL=warn, every other setting at its default (pool 20, API keys required)`,
    "API keys: the producer sends a producer key, the worker a worker key for the bench queue, each looked up in Postgres on every call (BENCH_JOBWIRE_AUTH=off runs without)",
    `worker: @jobwire/sdk Worker in its own process, concurrency 32 (16 per worker with two replicas), prefetch ${jobwirePrefetch} (the README's setting for throughput on short jobs, like graphile-worker's local queue of 500), gRPC over loopback`,
    "producer: @jobwire/sdk createJobwireClient (gRPC): enqueue() per job (the SDK sends calls made while two are in flight together, in one EnqueueJobs call, each job answered on its own), enqueueBatch() for batches",
    `6a concurrency keys: job n carries key bench-(n mod ${benchConcurrencyKeys.length}) (${benchConcurrencyKeys[0]} … ${benchConcurrencyKeys.at(-1)}), ` +
      `each key its own limit set with setConcurrencyLimit before the enqueue, maxRunning ${benchConcurrencyLimit}: ` +
      `${benchConcurrencyKeys.length} x ${benchConcurrencyLimit} = ${(benchConcurrencyKeys.length * benchConcurrencyLimit).toLocaleString("en-US")} admitted-or-leased jobs at most, ` +
      `about twice what the worker's 32 running + ${jobwirePrefetch} prefetched leases (and reported jobs whose completion is not committed yet) hold, ` +
      "so the limits do not bound the drain (a key whose leases reach its limit anyway is flagged); every job waits for the admission loop",
  ],
  producerScript: fileURLToPath(new URL("./producer.ts", import.meta.url)),
  workerScript: fileURLToPath(new URL("./worker.ts", import.meta.url)),
  unavailable: () => undefined,
  async deploy(environment, { workload, replicas = 1 }): Promise<Deployment> {
    const database = await environment.postgres.createDatabase(`jobwire_${workload}`);
    let servers: JobwireServerProcess[] = [];
    // Every server process of this deployment, replaced ones too, for their logs.
    const started: JobwireServerProcess[] = [];
    // One after the other: the first applies the migrations, the next find them applied.
    const startServers = async () => {
      for (let i = 0; i < replicas; i++) {
        const server = await startJobwireServer(database.url);
        servers.push(server);
        started.push(server);
      }
    };
    const stopServers = async () => {
      await Promise.all(servers.map((server) => server.stop()));
      servers = [];
    };
    let keys: { producer: string; worker: string; admin: string };
    try {
      await startServers();
      keys = {
        producer: await createKey(database.url, { principal: "bench-producer", role: "producer" }),
        worker: await createKey(database.url, { principal: "bench-worker", role: "worker", queues: [queueName] }),
        admin: await createKey(database.url, { principal: "bench-operator", role: "admin" }),
      };
    } catch (error) {
      await stopServers();
      await database.drop();
      throw error;
    }
    return {
      producerEndpoint: () => ({ jobwireUrl: servers[0]!.url, jobwireApiKey: keys.producer, jobwireAdminKey: keys.admin }),
      workerEndpoints: () => servers.map((server) => ({ jobwireUrl: server.url, jobwireApiKey: keys.worker })),
      async completedCount() {
        const [row] = await database.query<{ n: number }>("SELECT count(*)::int AS n FROM job WHERE state = 'succeeded'");
        return row!.n;
      },
      async freshServers() {
        await stopServers();
        await startServers();
      },
      async admissionCounts(): Promise<AdmissionCounts> {
        // Jobs of a key over time: +1 at admission (or lease), -1 at the end (an end before a
        // start at the same instant), summed in time order per key; a job still unfinished
        // counts to the end. Each job has one attempt here (no-op handlers never fail).
        const [row] = await database.query<AdmissionCounts>(
          `WITH keyed AS (SELECT * FROM job WHERE concurrency_key IS NOT NULL),
           edges AS (
             SELECT concurrency_key AS k, admitted_at AS at, 1 AS d, 'in_use' AS what FROM keyed WHERE admitted_at IS NOT NULL
             UNION ALL
             SELECT concurrency_key, finished_at, -1, 'in_use' FROM keyed WHERE admitted_at IS NOT NULL AND finished_at IS NOT NULL
             UNION ALL
             SELECT concurrency_key, started_at, 1, 'running' FROM keyed WHERE started_at IS NOT NULL
             UNION ALL
             SELECT concurrency_key, finished_at, -1, 'running' FROM keyed WHERE started_at IS NOT NULL AND finished_at IS NOT NULL
             UNION ALL
             SELECT '', started_at, 1, 'running_total' FROM keyed WHERE started_at IS NOT NULL
             UNION ALL
             SELECT '', finished_at, -1, 'running_total' FROM keyed WHERE started_at IS NOT NULL AND finished_at IS NOT NULL
           ),
           totals AS (SELECT what, sum(d) OVER (PARTITION BY what, k ORDER BY at, d ROWS UNBOUNDED PRECEDING) AS n FROM edges)
           SELECT count(*)::int AS keyed, count(*) FILTER (WHERE admitted_at IS NOT NULL)::int AS admitted,
                  count(*) FILTER (WHERE state = 'pending' AND NOT admitted)::int AS waiting,
                  (SELECT coalesce(max(n), 0)::int FROM totals WHERE what = 'in_use') AS "peakInUse",
                  (SELECT coalesce(max(n), 0)::int FROM totals WHERE what = 'running') AS "peakRunning",
                  (SELECT coalesce(max(n), 0)::int FROM totals WHERE what = 'running_total') AS "peakRunningTotal"
           FROM keyed`,
        );
        return row!;
      },
      serverWarnings: () => started.flatMap((server) => warningsIn(server.process.output())),
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

/**
 * The lines of a server's output that matter at `JOBWIRE_LOG_LEVEL=warn`: its JSON log
 * records (all warn or above), shortened to level, component, message and error; and any
 * other line (a Node warning, a stack trace on stderr) as it is.
 */
function warningsIn(output: string): string[] {
  return output
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      try {
        const record = JSON.parse(line) as { level?: number; component?: string; msg?: string; err?: { message?: string } };
        const level = record.level === undefined ? "?" : record.level >= 50 ? "error" : "warn";
        return `${level}${record.component ? ` ${record.component}` : ""}: ${record.msg ?? ""}${record.err?.message ? `: ${record.err.message}` : ""}`;
      } catch {
        return line;
      }
    })
    // Expected here: the harness creates its keys once the fresh server has migrated.
    .filter((line) => !line.includes("no API key exists"));
}

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
