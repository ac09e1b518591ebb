import type { ServerConfig } from "@jobwire/server";

/**
 * How the server under fuzz is configured: nothing that runs on a timer may write while the
 * fuzzer compares database fingerprints, so cancel grace and the retention pass are a day
 * away (the world has no leased job and no job due soon; see `world.ts`).
 */
export const fuzzServerConfig: Partial<ServerConfig> = {
  port: 0,
  cancelGraceMs: 86_400_000,
  retentionIntervalMs: 86_400_000,
  logLevel: "silent",
};
