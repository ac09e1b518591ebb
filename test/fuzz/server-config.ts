import type { ServerConfig } from "@jobwire/server";

/**
 * How the server under fuzz is configured: nothing that runs on a timer may write while the
 * fuzzer compares database fingerprints, so cancel grace and the retention pass are a day
 * away (the world has no leased job, no job due soon and no schedule that ticks soon; see
 * `world.ts`).
 *
 * Authentication is on, as a deployed server's is: every case goes through the API-key
 * lookup and the authorization table with the fuzzer's own admin key (`fuzzer-key.ts`), and
 * the AdminService cases create, list and revoke keys next to the one the fuzzer uses.
 */
export const fuzzServerConfig: Partial<ServerConfig> = {
  port: 0,
  cancelGraceMs: 86_400_000,
  retentionIntervalMs: 86_400_000,
  logLevel: "silent",
  auth: { enabled: true, bootstrapKeyFile: undefined },
};
