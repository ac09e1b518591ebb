import { createHash, randomBytes, randomInt } from "node:crypto";

/**
 * API keys look like `jw_<id>_<secret>`:
 * - `jw_` makes them recognisable (secret scanners, log reviews);
 * - `<id>`: 12 characters of `a-z0-9`, public, names the key in listings, logs and
 *   RevokeApiKey, and is what the server looks the key up by;
 * - `<secret>`: 32 random bytes in base64url (43 characters), never stored.
 *
 * Only SHA-256 of the secret is stored. A fast hash is enough here, unlike for passwords:
 * the secret has 256 bits of entropy from the OS's CSPRNG, so no dictionary or brute-force
 * search of a leaked hash can succeed, and a slow hash (bcrypt, scrypt, Argon2) would only
 * add tens of milliseconds to every request.
 */
const keyPattern = /^jw_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A new key: its public id, the full key to hand out once, and the hash to store. */
export interface NewApiKey {
  id: string;
  key: string;
  secretHash: Buffer;
}

/** Makes a new random key. */
export function newApiKey(): NewApiKey {
  const id = Array.from({ length: 12 }, () => idAlphabet[randomInt(idAlphabet.length)]).join("");
  const secret = randomBytes(32).toString("base64url");
  return { id, key: `jw_${id}_${secret}`, secretHash: hashSecret(secret) };
}

/** Splits a presented key into id and secret; undefined if it is not shaped like a key. */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const match = keyPattern.exec(key);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

/** SHA-256 of a key's secret part, as stored. */
export function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}
