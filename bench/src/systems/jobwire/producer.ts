/**
 * Jobwire's producer role process: the SDK's client over gRPC, `enqueue` for one job per
 * call and `enqueueBatch` for batches (with a concurrency key per job for workload 6a, whose
 * limits it sets with `setConcurrencyLimit`). See `role/producer-role.ts` for the protocol.
 */
import { createJobwireClient, type JobwireClient, type JsonValue } from "@jobwire/sdk";
import { jobKind, queueName, type JobPayload } from "../../role/payload.js";
import { runProducer } from "../../role/producer-role.js";

let client: JobwireClient;
let operator: JobwireClient;
const asJson = (payload: JobPayload) => payload as unknown as JsonValue;

runProducer({
  async connect(endpoint) {
    if (!endpoint.jobwireUrl) throw new Error("the Jobwire producer needs jobwireUrl");
    client = createJobwireClient({ baseUrl: endpoint.jobwireUrl, apiKey: endpoint.jobwireApiKey });
    operator = createJobwireClient({ baseUrl: endpoint.jobwireUrl, apiKey: endpoint.jobwireAdminKey });
  },
  enqueueOne: (payload) => client.enqueue(queueName, jobKind, asJson(payload)),
  enqueueMany: (payloads) => client.enqueueBatch(payloads.map((payload) => ({ queue: queueName, kind: jobKind, payload: asJson(payload) }))),
  concurrencyKeys: {
    setLimit: (key, maxRunning) => operator.setConcurrencyLimit(key, { maxRunning }),
    enqueueMany: (jobs) =>
      client.enqueueBatch(jobs.map(({ payload, concurrencyKey }) => ({ queue: queueName, kind: jobKind, payload: asJson(payload), concurrencyKey }))),
  },
  close: async () => undefined,
});
