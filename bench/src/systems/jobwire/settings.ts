/**
 * Leases the bench's Jobwire worker holds ready beyond its concurrency: the README's
 * recommendation for throughput on short jobs, the counterpart of graphile-worker's local
 * queue of 500 in its configuration here.
 */
export const jobwirePrefetch = 500;

/**
 * Workload 6a: the concurrency keys the jobs carry (job `n` gets key `n % 8`), each with
 * its own limit.
 */
export const benchConcurrencyKeys: readonly string[] = Array.from({ length: 8 }, (_, i) => `bench-${i}`);

/**
 * Workload 6a: each key's `maxRunning`. A leased job counts as running until its completion
 * commits, and the bench's worker holds up to its concurrency plus {@link jobwirePrefetch}
 * leases (532) and frees a slot when it reports a job, before the report commits: the
 * database saw up to ~1,000 keyed jobs leased at once, 170–256 of one key (a claim right
 * after one key's admission takes many of its jobs). With 128 every run reached a limit;
 * 8 × 256 = 2,048 keeps the limits out of the bound, so 6a measures what admission costs,
 * not a limit doing its job (the run flags a key whose leases reached 256 anyway).
 */
export const benchConcurrencyLimit = 256;
