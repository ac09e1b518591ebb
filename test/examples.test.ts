import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { IllegalStateError, Worker } from "@jobwire/sdk";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "./support/server.js";
import { withTimeout } from "./support/with-timeout.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const children = new Set<ReturnType<typeof spawn>>();
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
});

let server: JobwireServer;
beforeAll(async () => {
  server = await startTestServer();
});

/** Runs an example as the README does (`npm run example:…` is this command), against the test server. */
function runExample(file: string) {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", join(repo, "examples", file)], {
    cwd: repo,
    env: { ...process.env, JOBWIRE_URL: server.url },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  const waiters: { pattern: RegExp; resolve(match: RegExpMatchArray): void }[] = [];
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const waiter of [...waiters]) {
      const match = output.match(waiter.pattern);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    exited,
    /** Resolves when the output matches `pattern`; fails with the output after `timeoutMs`. */
    async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
      const existing = output.match(pattern);
      if (existing) return existing;
      const printed = new Promise<RegExpMatchArray>((resolve) => waiters.push({ pattern, resolve }));
      return withTimeout(printed, timeoutMs, () => `${file} to print ${pattern}; it printed:\n${output}`);
    },
    stop: () => child.kill("SIGTERM"),
  };
}

describe("the README's examples", () => {
  it("the example producer's job is run by the example worker and succeeds", async () => {
    const worker = runExample("worker.ts");
    await worker.waitFor(/registered as /);
    const producer = runExample("producer.ts");
    await producer.waitFor(/is SUCCEEDED after 1 attempt/);
    expect(await producer.exited).toBe(0);
    await worker.waitFor(/would send to ada@example\.com/);
    worker.stop();
    expect(await worker.exited).toBe(0);
  });
});

describe("the Worker state machine", () => {
  it("refuses a second start() with IllegalStateError, and shutdown() of a worker never started just stops it", async () => {
    const worker = new Worker({ baseUrl: server.url, queues: ["states"], handlers: { noop: async () => {} } });
    await worker.start();
    expect(worker.state).toBe("running");
    await expect(worker.start()).rejects.toBeInstanceOf(IllegalStateError);
    await worker.shutdown({ graceMs: 100 });
    expect(worker.state).toBe("stopped");
    const idle = new Worker({ baseUrl: server.url, queues: ["states"], handlers: { noop: async () => {} } });
    expect(await idle.shutdown()).toEqual({ timedOut: false, aborted: 0, abandoned: 0 });
    expect(idle.state).toBe("stopped");
    await expect(idle.start()).rejects.toBeInstanceOf(IllegalStateError);
  });
});
