/**
 * An example producer: enqueues a welcome email and follows its lifecycle events until it
 * finishes. Run it with `npm run example:producer` while the server and the example worker run,
 * with an API key in JOBWIRE_API_KEY (the server's admin key: `server/.jobwire/admin-key`).
 */
import { createJobwireClient, EventType } from "@jobwire/sdk";

const client = createJobwireClient({ baseUrl: process.env.JOBWIRE_URL ?? "http://127.0.0.1:7233", apiKey: process.env.JOBWIRE_API_KEY });
const job = await client.enqueue("emails", "send-welcome", { to: "ada@example.com", name: "Ada" }, {
  phases: ["render", "send"],
  metadata: { tenant: "acme" },
});
console.log(`[producer] enqueued ${job.id}`);

const finished = new Map([
  [EventType.SUCCEEDED, "SUCCEEDED"],
  [EventType.FAILED, "FAILED"],
  [EventType.CANCELLED, "CANCELLED"],
]);
const signal = AbortSignal.timeout(30_000);
try {
  // From the oldest event of this job: nothing is missed, however fast the worker is.
  for await (const event of client.streamEvents({ jobIds: [job.id], fromOldest: true, signal })) {
    console.log(`[producer] ${EventType[event.type]} (attempt ${event.attempt})`);
    const state = finished.get(event.type);
    if (state) {
      console.log(`[producer] ${job.id} is ${state} after ${event.attempt} attempt(s)`);
      break;
    }
  }
} finally {
  if (signal.aborted) {
    console.error(`[producer] ${job.id} did not finish within 30 s: is the example worker running?`);
    process.exitCode = 1;
  }
}
