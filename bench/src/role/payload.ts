/**
 * The payload of every benchmark job: its number and the moment its enqueue call started
 * (epoch ms, `performance.timeOrigin + performance.now()`), from which a worker on the same
 * machine computes the job's latency.
 */
export interface JobPayload {
  n: number;
  t: number;
}

/** The job kind (task identifier, job name) every system's worker registers. */
export const jobKind = "noop";

/** The queue every workload uses. */
export const queueName = "bench";
