import { setTimeout as delay } from "node:timers/promises";
import { announce, epochNow, serveRole } from "./channel.js";
import type { JobPayload } from "./payload.js";
import type { EnqueueMode, Endpoint } from "./protocol.js";

/** What a system's producer does; the loops, pacing and timing are {@link runProducer}'s. */
export interface ProducerAdapter {
  /** Connects to `endpoint`, installing the system's schema and queue where it has them. */
  connect(endpoint: Endpoint): Promise<void>;
  /** Enqueues one job with one call (one RPC, one statement, one command). */
  enqueueOne(payload: JobPayload): Promise<unknown>;
  /** Enqueues jobs with the system's batch API, in one call. */
  enqueueMany(payloads: JobPayload[]): Promise<unknown>;
  /** Closes connections. */
  close(): Promise<void>;
  /** Concurrency keys and limits, for a system that has them (Jobwire); others leave it out. */
  readonly concurrencyKeys?: ConcurrencyKeyAdapter;
}

/** What a system with concurrency keys does for workload 6a. */
export interface ConcurrencyKeyAdapter {
  /** Creates or replaces the limit of one key: at most `maxRunning` of its jobs admitted or running. */
  setLimit(key: string, maxRunning: number): Promise<void>;
  /** Enqueues jobs with the system's batch API, in one call, each with its concurrency key. */
  enqueueMany(jobs: KeyedJob[]): Promise<unknown>;
}

/** A job's payload and the concurrency key it carries. */
export interface KeyedJob {
  payload: JobPayload;
  concurrencyKey: string;
}

/**
 * Runs a producer role process around `adapter`: it answers `connect` and `enqueue`
 * commands (see the protocol) and times each enqueue run on its own clock, from the first
 * call's start to the last call's answer.
 */
export function runProducer(adapter: ProducerAdapter): void {
  let connected = false;
  serveRole({
    async onCommand(command) {
      switch (command.cmd) {
        case "connect":
          await adapter.connect(command.endpoint);
          connected = true;
          announce({ event: "connected" });
          return;
        case "set-limits": {
          const keyed = keyedAdapter(adapter);
          if (!connected) throw new Error("set-limits before connect");
          for (const key of command.keys) await keyed.setLimit(key, command.maxRunning);
          announce({ event: "limits-set" });
          return;
        }
        case "enqueue": {
          if (!connected) throw new Error("enqueue before connect");
          const started = performance.now();
          await enqueue(adapter, command.count, command);
          announce({ event: "enqueued", count: command.count, ms: performance.now() - started });
          return;
        }
        default:
          throw new Error(`a producer does not understand ${JSON.stringify(command)}`);
      }
    },
    stop: () => (connected ? adapter.close() : Promise.resolve()),
  });
}

async function enqueue(adapter: ProducerAdapter, count: number, how: EnqueueMode): Promise<void> {
  let next = 0;
  switch (how.mode) {
    case "each": {
      const loop = async () => {
        while (next < count) await adapter.enqueueOne({ n: next++, t: epochNow() });
      };
      await Promise.all(Array.from({ length: Math.min(how.inFlight, count) }, loop));
      return;
    }
    case "batches": {
      const keys = how.concurrencyKeys;
      const keyed = keys ? keyedAdapter(adapter) : undefined;
      const loop = async () => {
        while (next < count) {
          const size = Math.min(how.batchSize, count - next);
          const t = epochNow();
          const payloads = Array.from({ length: size }, () => ({ n: next++, t }));
          if (keyed && keys) await keyed.enqueueMany(payloads.map((payload) => ({ payload, concurrencyKey: keys[payload.n % keys.length]! })));
          else await adapter.enqueueMany(payloads);
        }
      };
      await Promise.all(Array.from({ length: how.inFlight }, loop));
      return;
    }
    case "paced": {
      // Open loop: each call starts on schedule whether or not earlier ones answered, so a
      // slow answer shows up as latency instead of lowering the rate.
      const intervalMs = 1000 / how.perSecond;
      const start = performance.now();
      const calls: Promise<unknown>[] = [];
      for (let n = 0; n < count; n++) {
        const wait = start + n * intervalMs - performance.now();
        if (wait > 0) await delay(wait);
        calls.push(adapter.enqueueOne({ n, t: epochNow() }));
      }
      await Promise.all(calls);
      return;
    }
  }
}

/** The adapter's concurrency keys, or a loud error for a system without them. */
function keyedAdapter(adapter: ProducerAdapter): ConcurrencyKeyAdapter {
  if (!adapter.concurrencyKeys) throw new Error("this system has no concurrency keys (workload 6a is Jobwire's)");
  return adapter.concurrencyKeys;
}
