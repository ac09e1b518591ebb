/**
 * `npm run bench`: every workload of issue 4 on Jobwire, graphile-worker, pg-boss and BullMQ
 * (without persistence and with `appendfsync always`), interleaved, in one run on one
 * machine; prints the table, the raw ceiling, the targets and each system's configuration,
 * and writes the JSON to `bench/results/<timestamp>.json`. See `bench/README.md`.
 */
import { join } from "node:path";
import { boundRun, cleanUpAndExit, cleanUpPostgres, installCleanupHooks, runStopping } from "./harness/cleanup.js";
import { enableCpuProfiles, renderCpuProfiles, summarizeCpuProfiles } from "./harness/cpu-profiles.js";
import { describeMachine } from "./harness/machine.js";
import { HelpRequested, parseOptions, type BenchOptions } from "./harness/options.js";
import { resultsDir } from "./harness/paths.js";
import { PostgresCluster } from "./harness/postgres-cluster.js";
import { renderStatementProfiles } from "./harness/statement-profiles.js";
import { findRedisServer, installRedisServer, redisInstallCommand, redisVersion } from "./harness/redis-server.js";
import { renderReport } from "./harness/report.js";
import { Results } from "./harness/results.js";
import { resultsFileStem, writeResultsFile } from "./harness/results-file.js";
import { runPlan } from "./harness/run-plan.js";
import { checkTargets } from "./harness/targets.js";
import type { BenchSystem } from "./systems/bench-system.js";
import { bullmqOn } from "./systems/bullmq/system.js";
import { graphileWorker } from "./systems/graphile-worker/system.js";
import { jobwire } from "./systems/jobwire/system.js";
import { pgBoss } from "./systems/pg-boss/system.js";
import { backlog } from "./workloads/backlog.js";
import { ceiling } from "./workloads/ceiling.js";
import { concurrencyKey } from "./workloads/concurrency-key.js";
import { enqueueBatches, enqueueEach } from "./workloads/enqueue.js";
import { latency } from "./workloads/latency.js";
import { processing } from "./workloads/processing.js";
import { replicas } from "./workloads/replicas.js";
import type { Workload } from "./workloads/workload.js";

/** Jobwire first: every ratio is Jobwire's median over the peer's. */
const allSystems: readonly BenchSystem[] = [jobwire, graphileWorker, pgBoss, bullmqOn("none"), bullmqOn("aof-always")];

/**
 * In the issue's order, except the raw ceiling first, on a Postgres nothing else has touched
 * yet, and workload 6a right after workload 2, so that their ratio compares runs minutes
 * apart on a drifting machine rather than runs on either side of the backlog.
 */
const allWorkloads: readonly Workload[] = [ceiling, enqueueEach, enqueueBatches, processing, concurrencyKey, latency, backlog, replicas];

const runStarted = performance.now();
function log(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - runStarted) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(error.message);
      return;
    }
    throw error;
  }
  installCleanupHooks(log);
  const cancelBound = boundRun(options.deadlineMs, log);
  const startedAt = new Date();
  const results = new Results();

  const systems = allSystems.filter((system) => !options.systems || options.systems.includes(system.id));
  const workloads = allWorkloads.filter((workload) => !options.workloads || options.workloads.includes(workload.id));
  if (options.quick) log("QUICK mode: smaller sizes, 1 repetition, and no 1,000,000-job backlog (run without --quick for it)");
  if (options.profile) {
    const dir = join(resultsDir, `${resultsFileStem(startedAt)}-profiles`);
    enableCpuProfiles(dir);
    log(`PROFILING: every Node process writes a CPU profile into ${dir}; the numbers of this run are not comparable with others`);
  }

  let redisBinary = findRedisServer();
  if (!redisBinary) {
    log("redis-server is not installed: installing Debian's package for BullMQ");
    const failure = installRedisServer();
    redisBinary = findRedisServer();
    if (!redisBinary) log(`could not install redis-server (${failure}): BullMQ will not run. Install it with:\n    ${redisInstallCommand}`);
  }
  log("starting the embedded Postgres (default settings: fsync and synchronous_commit on)");
  const postgres = await PostgresCluster.start({ statementStats: options.profile });
  cleanUpPostgres(postgres);
  const environment = { postgres, redisBinary };

  for (const system of systems) {
    const reason = system.unavailable(environment);
    if (reason) {
      results.markNotRun(system.id, reason);
      log(`${system.label}: not run: ${reason}`);
    }
  }
  const runnable = systems.filter((system) => !results.notRunReason(system.id));
  await runPlan({ environment, options, results, log }, workloads, runnable);
  if (runStopping.aborted) {
    // A signal or the time bound is stopping the run; the cleanup under way exits.
    log("the run was stopped before its end: no report");
    return;
  }

  for (const system of runnable) {
    const processingRate = results.median("processing", system.id);
    if (processingRate === undefined) continue;
    const backlogRate = results.median("backlog.processing", system.id);
    if (backlogRate !== undefined) results.record("backlog.vs-processing", system.id, backlogRate / processingRate);
  }
  const skipped = new Map<string, string>();
  for (const workload of workloads) {
    const reason = workload.skipped(options);
    if (reason) skipped.set(workload.id, reason);
  }
  const targets = checkTargets(results);
  const machine = describeMachine();
  const redis = redisBinary ? redisVersion(redisBinary) : undefined;
  const cpuProfiles = summarizeCpuProfiles();
  const durationMs = performance.now() - runStarted;
  const report = renderReport({ options, machine, postgres, redisVersion: redis, systems, results, targets, skipped, durationMs });
  const path = await writeResultsFile(startedAt, {
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round(durationMs / 1000),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    options,
    machine,
    postgres: { version: postgres.version, settings: postgres.settings },
    redis: redis ?? null,
    systems: systems.map((system) => ({
      id: system.id,
      label: system.label,
      version: system.version,
      configuration: system.configuration,
      notRun: results.notRunReason(system.id) ?? null,
    })),
    skipped: Object.fromEntries(skipped),
    results: results.toJSON(),
    targets,
    cpuProfiles,
    statementProfiles: postgres.statementProfiles,
  });
  const profiles = [renderCpuProfiles(cpuProfiles), renderStatementProfiles(postgres.statementProfiles)].filter(Boolean);
  console.log(`\n${[report, ...profiles].join("\n\n")}\n\nJSON: ${path}`);
  cancelBound();
  await cleanUpAndExit(results.failures.length > 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  log(`the bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void cleanUpAndExit(1);
});
