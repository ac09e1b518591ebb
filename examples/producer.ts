/**
 * An example producer: enqueues a welcome email and follows it until it finishes.
 * Run it with `npm run example:producer` while the server and the example worker run.
 */
import { createJobwireClient, JobState } from "@jobwire/sdk";

const client = createJobwireClient({ baseUrl: process.env.JOBWIRE_URL ?? "http://127.0.0.1:7233" });
const job = await client.enqueue("emails", "send-welcome", { to: "ada@example.com", name: "Ada" }, {
  phases: ["render", "send"],
  metadata: { tenant: "acme" },
});
console.log(`[producer] enqueued ${job.id} (${JobState[job.state]})`);

const deadline = Date.now() + 30_000;
for (;;) {
  const current = await client.getJob(job.id);
  if ([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED].includes(current.state)) {
    console.log(`[producer] ${job.id} is ${JobState[current.state]} after ${current.attempt} attempt(s)`);
    break;
  }
  if (Date.now() > deadline) throw new Error(`job ${job.id} did not finish within 30 s: is the example worker running?`);
  // A real consumer would watch the event stream; a poll keeps this example short.
  await new Promise((resolve) => setTimeout(resolve, 200));
}
