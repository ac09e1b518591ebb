/**
 * `npm run fuzz`: starts an embedded Postgres in a temporary folder and a Jobwire server on
 * it, builds the fuzz world, runs the property-based fuzzer and prints the report. Exits 1
 * when any case failed.
 *
 * Environment: `FUZZ_RUNS` (cases, default 10,000), `FUZZ_SEED` (repeat a run),
 * `FUZZ_LOG_LEVEL` (the server's log level, default `silent`; `error` shows the causes of
 * `internal` answers), `FUZZ_CHANNELS` and `FUZZ_RPCS` (comma-separated: only these
 * channels, only RPCs whose name contains one of these), `FUZZ_TRACE=1` (a line per case).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, defaultServerConfig, startEmbeddedPostgres, startJobwire } from "@jobwire/server";
import { freePort } from "../support/free-port.js";
import { formatReport, runFuzz } from "./fuzz-run.js";
import { createFuzzerKey } from "./fuzzer-key.js";
import type { Channel } from "./senders.js";
import { fuzzServerConfig } from "./server-config.js";
import { buildNeighbour, withNeighbourIds } from "./neighbour.js";
import { buildWorld } from "./world.js";

const numRuns = Number(process.env.FUZZ_RUNS ?? 10_000);
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const logLevel = process.env.FUZZ_LOG_LEVEL ?? "silent";
const list = (text: string | undefined) => (text ? text.split(",").map((part) => part.trim()).filter(Boolean) : undefined);
const onlyChannels = list(process.env.FUZZ_CHANNELS) as Channel[] | undefined;
const rpcFilter = list(process.env.FUZZ_RPCS);

// A crash inside the server would end this process too: say so, with what was running.
const crashes: unknown[] = [];
const crashed = (error: unknown) => {
  crashes.push(error);
  console.log(`UNCAUGHT: ${String((error as Error)?.stack ?? error)}`);
};
process.on("uncaughtException", crashed);
process.on("unhandledRejection", crashed);

const dataDir = await mkdtemp(join(tmpdir(), "jobwire-fuzz-pg-"));
// As root, Postgres runs as the `postgres` user and must reach its data folder.
await chmod(dataDir, 0o755);
const postgres = await startEmbeddedPostgres({
  dataDir: join(dataDir, "data"),
  port: await freePort(),
  postgresFlags: ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
  logger: createLogger("warn"),
});
let exitCode = 1;
// Ctrl-C or a kill: stop the server and Postgres before leaving, not orphan them.
const interrupted = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => interrupted.abort());
try {
  const server = await startJobwire({ ...defaultServerConfig, ...fuzzServerConfig, databaseUrl: postgres.url }, createLogger(logLevel));
  try {
    const apiKey = await createFuzzerKey(server);
    const neighbour = await buildNeighbour(server);
    const world = withNeighbourIds(await buildWorld(server.url, apiKey), neighbour);
    console.log(`fuzzing ${server.url} with ${numRuns} cases${seed === undefined ? "" : ` (seed ${seed})`}`);
    const report = await runFuzz({
      baseUrl: server.url,
      pool: server.db.pool,
      apiKey,
      world,
      numRuns,
      seed,
      channels: onlyChannels,
      rpcFilter,
      signal: interrupted.signal,
      trace: process.env.FUZZ_TRACE ? (line) => console.log(line) : undefined,
      onProgress: (done, so) => console.log(`  ${done} cases, ${so.failures.length} kinds of failure so far, ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB resident`),
    });
    console.log(formatReport(report));
    for (const crash of crashes) console.log(`\nUNCAUGHT in the process: ${String((crash as Error)?.stack ?? crash)}`);
    console.log(`\n${report.cases} cases run, ${report.failures.reduce((n, f) => n + f.count, 0) + crashes.length} failed`);
    exitCode = report.failures.length === 0 && crashes.length === 0 && report.cases >= numRuns ? 0 : 1;
  } finally {
    await server.close();
  }
} finally {
  await postgres.stop();
  await rm(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);
