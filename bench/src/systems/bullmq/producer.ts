/** BullMQ's producer role process: a `Queue`, `add` for one job per call and `addBulk` for batches. */
import { Queue } from "bullmq";
import { jobKind, queueName } from "../../role/payload.js";
import { runProducer } from "../../role/producer-role.js";
import { connectionFor } from "./settings.js";

let queue: Queue;

runProducer({
  async connect(endpoint) {
    if (!endpoint.redisUrl) throw new Error("the BullMQ producer needs redisUrl");
    queue = new Queue(queueName, { connection: connectionFor(endpoint.redisUrl) });
    await queue.waitUntilReady();
  },
  enqueueOne: (payload) => queue.add(jobKind, payload),
  enqueueMany: (payloads) => queue.addBulk(payloads.map((data) => ({ name: jobKind, data }))),
  close: () => queue.close(),
});
