/**
 * graphile-worker's worker role process: `run()` with a no-op task and the documented
 * throughput settings (see `settings.ts`).
 */
import { run, type Runner } from "graphile-worker";
import { jobKind, type JobPayload } from "../../role/payload.js";
import { runWorker } from "../../role/worker-role.js";
import { quietLogger } from "./quiet-logger.js";
import { graphileWorkerPreset } from "./settings.js";

let runner: Runner | undefined;

runWorker({
  async start(endpoint, concurrency, handler) {
    if (!endpoint.databaseUrl) throw new Error("the graphile-worker worker needs databaseUrl");
    runner = await run({
      noHandleSignals: true,
      logger: quietLogger,
      taskList: { [jobKind]: async (payload) => handler(payload as JobPayload) },
      preset: { worker: graphileWorkerPreset(endpoint.databaseUrl, concurrency) },
    });
  },
  async stop() {
    await runner?.stop();
  },
});
