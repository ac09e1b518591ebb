/**
 * graphile-worker's producer role process: WorkerUtils, `addJob` for one job per call and
 * `addJobs` (the `add_jobs` SQL function) for batches. It installs the schema on connect.
 */
import { makeWorkerUtils, type WorkerUtils } from "graphile-worker";
import { jobKind } from "../../role/payload.js";
import { runProducer } from "../../role/producer-role.js";
import { quietLogger } from "./quiet-logger.js";
import { producerPoolSize } from "./settings.js";

let utils: WorkerUtils;

runProducer({
  async connect(endpoint) {
    if (!endpoint.databaseUrl) throw new Error("the graphile-worker producer needs databaseUrl");
    utils = await makeWorkerUtils({ connectionString: endpoint.databaseUrl, maxPoolSize: producerPoolSize, logger: quietLogger });
    await utils.migrate();
  },
  enqueueOne: (payload) => utils.addJob(jobKind, payload),
  enqueueMany: (payloads) => utils.addJobs(payloads.map((payload) => ({ identifier: jobKind, payload }))),
  close: async () => void (await utils.release()),
});
