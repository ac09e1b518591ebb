/**
 * graphile-worker's configuration, tuned as its documentation recommends for throughput
 * (the "Performance" page, and the `localQueue` / `completeJobBatchDelay` option docs):
 * a local queue that locks and pulls jobs in batches, and batched completions and failures.
 */
export function graphileWorkerPreset(connectionString: string, concurrency: number) {
  return {
    connectionString,
    concurrentJobs: concurrency,
    // "we recommend setting it to 10 or concurrentJobs + 2, whichever is larger"
    maxPoolSize: Math.max(10, concurrency + 2),
    // The performance page's configuration uses 500 for fast, high-throughput tasks.
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  };
}

/** The producer's pool: one connection per call in flight (32), instead of pg's default 10. */
export const producerPoolSize = 32;

/** The configuration as printed with the results. */
export const graphileWorkerConfiguration = [
  `worker: run() in its own process, preset.worker = ${describePreset(32)} (the Performance page's batching setup), LISTEN/NOTIFY wake-ups (built in), prepared statements (default)`,
  `producer: makeWorkerUtils({ maxPoolSize: ${producerPoolSize} }) in its own process: addJob() per job, addJobs() (add_jobs) for batches`,
  "jobs: no queue_name (jobs run in parallel), task identifier 'noop'",
];

/** The preset as printed: what the worker is given, less the connection string. */
function describePreset(concurrency: number): string {
  const { connectionString: _, ...preset } = graphileWorkerPreset("", concurrency);
  return JSON.stringify(preset).replaceAll(",", ", ").replaceAll(":", ": ");
}
