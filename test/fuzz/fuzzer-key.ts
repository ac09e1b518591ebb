import { createApiKey, type JobwireServer } from "@jobwire/server";

/** The principal the fuzzer acts as: the owner of every job and schedule it makes. */
export const fuzzerPrincipal = "fuzzer";

/**
 * Creates the fuzzer's own admin key straight in the server's database (as
 * `npm run create-api-key` does) and returns the key, `jw_<id>_<secret>`.
 *
 * The fuzzer sends it with every request, so that every case passes the real
 * authentication and authorization an API-key server does (the default). Its id is in no
 * pool of `field-hints.ts`: a fuzzed RevokeApiKey only ever names the world's keys, ids that
 * do not exist, or malformed ones (a random 12-character id matches it with odds of 36^-12),
 * so a fuzzed request cannot lock the fuzzer out. Should one ever do so, every later case
 * would answer UNAUTHENTICATED, which `fuzz-run.ts` reports as a failure of its own.
 */
export async function createFuzzerKey(server: JobwireServer): Promise<string> {
  const created = await createApiKey(server.db.pool, { principal: fuzzerPrincipal, role: "admin", description: "the fuzzer's own key" });
  if (!created) throw new Error("the fuzzer's API key was not created");
  return created.key;
}
