/**
 * An example worker: sends "welcome emails" (it only pretends) in two checkpointed steps.
 * Run it with `npm run example:worker` while `npm start` serves, with an API key in
 * JOBWIRE_API_KEY (a worker key for `emails`, or the admin key in `server/.jobwire/admin-key`).
 */
import { NonRetryableError, Worker } from "@jobwire/sdk";

interface WelcomePayload {
  to: string;
  name?: string;
}

const worker = new Worker({
  baseUrl: process.env.JOBWIRE_URL ?? "http://127.0.0.1:7233",
  apiKey: process.env.JOBWIRE_API_KEY,
  queues: ["emails"],
  concurrency: 8,
  logger: console,
  handlers: {
    "send-welcome": async (payload: WelcomePayload, ctx) => {
      if (!payload.to?.includes("@")) throw new NonRetryableError(`not an email address: ${payload.to}`);
      // Runs once per job: a retry after a crash reuses the stored result.
      const body = await ctx.step("render", async () => `Hello ${payload.name ?? "there"}, welcome aboard!`);
      await ctx.progress({ rendered: true });
      await ctx.step("send", async () => {
        ctx.signal.throwIfAborted();
        console.log(`[worker] would send to ${payload.to}: ${body}`);
        return { sentAt: new Date().toISOString() };
      });
      return { delivered: true };
    },
  },
});

await worker.start();
console.log(`[worker] registered as ${worker.workerId}; Ctrl-C to stop`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, async () => {
    const report = await worker.shutdown({ graceMs: 10_000 });
    console.log("[worker] stopped", report);
    process.exit(0);
  });
}
