import { announce, epochNow, serveRole } from "./channel.js";
import type { JobPayload } from "./payload.js";
import type { Endpoint } from "./protocol.js";

/** Called by a system's worker at the start of each job's handler; it does nothing else. */
export type NoopHandler = (payload: JobPayload) => void;

/** What a system's worker does; counting and reporting are {@link runWorker}'s. */
export interface WorkerAdapter {
  /**
   * Connects to `endpoint` and starts taking jobs, running at most `concurrency` at once and
   * calling `handler` at the start of each; resolves once the worker takes jobs.
   */
  start(endpoint: Endpoint, concurrency: number, handler: NoopHandler): Promise<void>;
  /** Stops taking jobs and closes connections. */
  stop(): Promise<void>;
}

/**
 * Runs a worker role process around `adapter`: on `start` it starts the worker, answers
 * `started`, then `first-job` when the first handler starts and `handled` once the expected
 * number of handlers ran, with each job's latency when asked to record them (from job
 * number `latencyFrom` on).
 */
export function runWorker(adapter: WorkerAdapter): void {
  let started = false;
  serveRole({
    async onCommand(command) {
      if (command.cmd !== "start") throw new Error(`a worker does not understand ${JSON.stringify(command)}`);
      const { expect, recordLatency, latencyFrom = 0 } = command;
      const latencies: number[] = [];
      let handled = 0;
      const handler: NoopHandler = (payload) => {
        const now = epochNow();
        if (handled === 0) announce({ event: "first-job", at: now });
        if (recordLatency && payload.n >= latencyFrom) latencies.push(now - payload.t);
        if (++handled === expect) {
          announce({ event: "handled", count: handled, ...(recordLatency ? { latenciesMs: latencies } : {}) });
        }
      };
      await adapter.start(command.endpoint, command.concurrency, handler);
      started = true;
      announce({ event: "started" });
    },
    stop: () => (started ? adapter.stop() : Promise.resolve()),
  });
}
