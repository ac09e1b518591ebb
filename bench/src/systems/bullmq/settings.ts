/** The configuration as printed with the results: BullMQ with its defaults. */
export function bullmqConfiguration(persistence: "none" | "aof-always"): string[] {
  return [
    persistence === "none"
      ? "redis-server (Debian), started by the harness on a free loopback port: --save '' --appendonly no (no persistence: a crash loses acknowledged jobs)"
      : "redis-server (Debian), started by the harness on a free loopback port: --save '' --appendonly yes --appendfsync always (every write fsynced before the reply)",
    "worker: new Worker(queue, processor, { concurrency: 32 }) in its own process, every other option at its default",
    "producer: new Queue(queue) in its own process: add() per job, addBulk() for batches; job options at their defaults (completed jobs kept)",
  ];
}

/** ioredis connection options from a `redis://host:port` URL. */
export function connectionFor(redisUrl: string): { host: string; port: number; maxRetriesPerRequest: null } {
  const url = new URL(redisUrl);
  // maxRetriesPerRequest: null is what BullMQ requires of a Worker's connection.
  return { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
}
