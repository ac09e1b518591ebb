/**
 * pg-boss's producer role process: `send` for one job per call and `insert` for batches.
 * It installs the schema and creates the queue (with `notify: true`) on connect.
 */
import { PgBoss } from "pg-boss";
import { queueName } from "../../role/payload.js";
import { runProducer } from "../../role/producer-role.js";
import { producerPoolSize } from "./settings.js";

let boss: PgBoss;

runProducer({
  async connect(endpoint) {
    if (!endpoint.databaseUrl) throw new Error("the pg-boss producer needs databaseUrl");
    boss = new PgBoss({ connectionString: endpoint.databaseUrl, max: producerPoolSize });
    boss.on("error", (error) => process.stderr.write(`[pg-boss] ${String(error)}\n`));
    await boss.start();
    await boss.createQueue(queueName, { notify: true });
  },
  enqueueOne: (payload) => boss.send(queueName, payload),
  enqueueMany: (payloads) => boss.insert(queueName, payloads.map((data) => ({ data }))),
  close: () => boss.stop({ graceful: false }),
});
