import fc from "fast-check";
import { hostileString, hostileTimestamp } from "./values.js";

/**
 * Values for the fields of AdminService requests: principals, key ids, expiry times and
 * descriptions. No background work follows a key's creation, revocation or expiry (an
 * expired key is refused at its next use, nothing is written), so none needs a pool of its
 * own; the fuzzer's own key is simply never among the ids (see `fuzzer-key.ts`).
 */

/** Principals: the world's, fresh valid ones with every allowed mark, and just outside the rules. */
export function principalHint(known: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,24}$/) },
    {
      weight: 1,
      arbitrary: fc.constantFrom("p".repeat(128), "p".repeat(129), "-leading-mark", "@example.com", "svc example", "svc/example", "svc\u0000", "svc\n", "ünïcode", "svc' OR '1'='1", "%", "_"),
    },
  );
}

/**
 * Key ids: the world's keys (several already revoked during the run), well-formed ids of no
 * key, and near misses: upper case, 11 and 13 characters, the whole `jw_<id>_<secret>`
 * key, SQL and LIKE patterns after an id.
 */
export function apiKeyIdHint(known: readonly string[]): fc.Arbitrary<string> {
  const base = fc.constantFrom(...known);
  return fc.oneof(
    { weight: 4, arbitrary: base },
    { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9]{12}$/) },
    {
      weight: 2,
      arbitrary: base.chain((id) =>
        fc.constantFrom(
          id.toUpperCase(),
          id.slice(0, 11),
          `${id}0`,
          `jw_${id}_${"s".repeat(32)}`,
          `${id}' OR '1'='1`,
          `${id.slice(0, 11)}%`,
          `${id.slice(0, 11)}_`,
          ` ${id}`,
          `${id}\n`,
          "",
        ),
      ),
    },
  );
}

/**
 * Expiry times: ahead by an hour, a day, a year, to the end of year 9999; just now (refused:
 * the server wants at least a second ahead); in the past; and every hostile timestamp.
 */
export function expiresAtHint(now = Date.now()): fc.Arbitrary<{ seconds: bigint; nanos: number }> {
  const seconds = BigInt(Math.floor(now / 1000));
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(3_600n, 86_400n, 365n * 86_400n, 0n, 1n, -1n, -86_400n).map((ahead) => ({ seconds: seconds + ahead, nanos: 0 })) },
    { weight: 1, arbitrary: fc.constant({ seconds: 253_402_300_799n, nanos: 999_999_999 }) },
    { weight: 2, arbitrary: hostileTimestamp },
  );
}

/** Descriptions around the 256-character limit, with NUL and lone surrogates. */
export const descriptionHint = fc.oneof(
  fc.constantFrom("", "ingest service", "d".repeat(256), "d".repeat(257), "é".repeat(256), "🧨".repeat(128), "🧨".repeat(129), "a\u0000b", "\ud800"),
  hostileString,
);
