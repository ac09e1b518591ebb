/**
 * The protocol between the harness and its role processes (producers, workers, the raw
 * ceiling script): commands are JSON lines on the role's stdin, events are JSON lines on its
 * stdout. Anything else a role (or a library inside it) prints is kept for failure messages
 * and otherwise ignored.
 */

/**
 * Where a role connects, as the system's deployment describes it: a Jobwire server URL, a
 * Postgres connection string or a Redis URL.
 */
export interface Endpoint {
  /** `http://127.0.0.1:port` of a Jobwire server. */
  jobwireUrl?: string;
  /** The Jobwire API key of the role (a producer key, or a worker key for the bench queue). */
  jobwireApiKey?: string;
  /**
   * An admin key, for the producer's operator tasks only (concurrency limits, which only
   * admins may set); the jobs themselves are enqueued with the producer key.
   */
  jobwireAdminKey?: string;
  /** A Postgres connection string (graphile-worker, pg-boss, the raw ceiling). */
  databaseUrl?: string;
  /** `redis://127.0.0.1:port` (BullMQ). */
  redisUrl?: string;
}

/** How a producer enqueues: one call per job, batches, or one call per job at a fixed rate. */
export type EnqueueMode =
  /** One call per job with `inFlight` calls outstanding at any time. */
  | { mode: "each"; inFlight: number }
  /**
   * `batchSize` jobs per call (the system's batch API), `inFlight` calls outstanding. With
   * `concurrencyKeys` (Jobwire), job `n` carries the key `concurrencyKeys[n % length]`.
   */
  | { mode: "batches"; batchSize: number; inFlight: number; concurrencyKeys?: string[] }
  /** One call per job, started every `1000 / perSecond` ms whether or not earlier ones answered. */
  | { mode: "paced"; perSecond: number };

/** What the harness tells a role. */
export type RoleCommand =
  /** Producer: connect (and install the system's schema where it has one), then answer `connected`. */
  | { cmd: "connect"; endpoint: Endpoint }
  /**
   * Producer: create or replace a concurrency limit of `maxRunning` on each of `keys` (a
   * system with concurrency keys only: Jobwire), then answer `limits-set`.
   */
  | { cmd: "set-limits"; keys: string[]; maxRunning: number }
  /** Producer: enqueue `count` no-op jobs, then answer `enqueued`. */
  | ({ cmd: "enqueue"; count: number } & EnqueueMode)
  /**
   * Worker: connect and start taking jobs at `concurrency`; answer `started` once the worker
   * takes jobs, `first-job` when the first handler starts, and `handled` once `expect` handlers
   * ran (never, when `expect` is 0). With `recordLatency`, `handled` carries the latency of
   * each job numbered `latencyFrom` or more (the jobs before it warm the system up).
   */
  | { cmd: "start"; endpoint: Endpoint; concurrency: number; expect: number; recordLatency: boolean; latencyFrom?: number }
  /** Raw ceiling: run `count` job lifecycles over `connections` connections, then answer `ceiling`. */
  | { cmd: "ceiling"; endpoint: Endpoint; count: number; connections: number };

/** What a role tells the harness. */
export type RoleEvent =
  /** The process has loaded its code and reads commands. */
  | { event: "loaded" }
  | { event: "connected" }
  | { event: "limits-set" }
  /** `ms`: from the first call's start to the last call's answer, on the producer's clock. */
  | { event: "enqueued"; count: number; ms: number }
  | { event: "started" }
  /** `at`: epoch milliseconds (fractional) when the first handler started. */
  | { event: "first-job"; at: number }
  /**
   * `latenciesMs`: per job, handler start minus the start of its enqueue call, both read as
   * `performance.timeOrigin + performance.now()` on this machine.
   */
  | { event: "handled"; count: number; latenciesMs?: number[] }
  | { event: "ceiling"; count: number; ms: number }
  /** The role failed; it exits right after. */
  | { event: "error"; message: string };

/** The names of {@link RoleEvent}s. */
export type RoleEventName = RoleEvent["event"];

/** Recognises an event line; anything else is not part of the protocol. */
export function parseRoleEvent(line: string): RoleEvent | undefined {
  if (!line.startsWith("{\"event\":")) return undefined;
  try {
    return JSON.parse(line) as RoleEvent;
  } catch {
    return undefined;
  }
}
