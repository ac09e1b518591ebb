/**
 * pg-boss's worker role process: `work()` with batch fetches and LISTEN/NOTIFY wake-ups (see
 * `settings.ts`); the handler runs the no-op for each job of the batch, which pg-boss then
 * completes in one statement.
 */
import { PgBoss } from "pg-boss";
import { queueName, type JobPayload } from "../../role/payload.js";
import { runWorker } from "../../role/worker-role.js";
import { pgBossBatchSize, pgBossWork } from "./settings.js";

let boss: PgBoss | undefined;

runWorker({
  async start(endpoint, concurrency, handler) {
    if (!endpoint.databaseUrl) throw new Error("the pg-boss worker needs databaseUrl");
    boss = new PgBoss({ connectionString: endpoint.databaseUrl, useListenNotify: true });
    boss.on("error", (error) => process.stderr.write(`[pg-boss] ${String(error)}\n`));
    await boss.start();
    await boss.work<JobPayload>(queueName, { ...pgBossWork, batchSize: pgBossBatchSize(concurrency) }, async (jobs) => {
      for (const job of jobs) handler(job.data);
    });
  },
  async stop() {
    await boss?.stop({ graceful: true, timeout: 2_000 });
  },
});
