/**
 * Leases the bench's Jobwire worker holds ready beyond its concurrency: the README's
 * recommendation for throughput on short jobs, the counterpart of graphile-worker's local
 * queue of 500 in its configuration here.
 */
export const jobwirePrefetch = 500;
