/**
 * Jobwire's worker role process: the SDK's `Worker` on the bench queue, with a no-op
 * handler, connected to one server over gRPC. See `role/worker-role.ts` for the protocol.
 */
import { Worker } from "@jobwire/sdk";
import { jobKind, queueName, type JobPayload } from "../../role/payload.js";
import { runWorker } from "../../role/worker-role.js";
import { jobwirePrefetch } from "./settings.js";

let worker: Worker | undefined;

runWorker({
  async start(endpoint, concurrency, handler) {
    if (!endpoint.jobwireUrl) throw new Error("the Jobwire worker needs jobwireUrl");
    worker = new Worker({
      baseUrl: endpoint.jobwireUrl,
      apiKey: endpoint.jobwireApiKey,
      queues: [queueName],
      concurrency,
      prefetch: jobwirePrefetch,
      handlers: { [jobKind]: async (payload) => void handler(payload as unknown as JobPayload) },
    });
    await worker.start();
  },
  async stop() {
    await worker?.shutdown({ graceMs: 2_000, abortWaitMs: 500 });
  },
});
