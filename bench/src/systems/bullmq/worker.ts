/** BullMQ's worker role process: a `Worker` with a no-op processor and its default options. */
import { Worker } from "bullmq";
import { queueName, type JobPayload } from "../../role/payload.js";
import { runWorker } from "../../role/worker-role.js";
import { connectionFor } from "./settings.js";

let worker: Worker | undefined;

runWorker({
  async start(endpoint, concurrency, handler) {
    if (!endpoint.redisUrl) throw new Error("the BullMQ worker needs redisUrl");
    worker = new Worker<JobPayload>(queueName, async (job) => handler(job.data), { connection: connectionFor(endpoint.redisUrl), concurrency });
    worker.on("error", (error) => process.stderr.write(`[bullmq] ${String(error)}\n`));
    await worker.waitUntilReady();
  },
  async stop() {
    await worker?.close();
  },
});
