import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../logger.js";
import type pg from "pg";
import { apiKeyAnyExists } from "../store/sql/api-key.js";
import { withTransaction } from "../store/transaction.js";
import { createFirstApiKey } from "./create-api-key.js";
import { defaultNamespace } from "./namespace.js";

/** The principal of the bootstrap key. */
export const bootstrapPrincipal = "admin";

/**
 * Secure by default, for a server on its embedded Postgres: when no API key exists at
 * all, creates an admin key, writes it to `file` (mode 0600, replacing what was there)
 * and prints it once in the log. The file is written before the key commits, so a key
 * that works is always in the file; a later start finds the key and does nothing.
 * Returns the key when it made one.
 */
export async function ensureBootstrapKey(pool: pg.Pool, file: string, log: Logger): Promise<string | undefined> {
  const created = await withTransaction(pool, async (tx) => {
    const first = await createFirstApiKey(tx, { namespace: defaultNamespace, principal: bootstrapPrincipal, role: "admin", description: "bootstrap admin key" });
    if (first) await writePrivateFile(file, `${first.key}\n`);
    return first;
  });
  if (!created) {
    if (!existsSync(file)) log.info({ file }, "API keys exist; to make another admin key, run npm run create-api-key -- --role admin --principal <name>");
    return undefined;
  }
  // The one place a key is ever logged: the operator needs to see it once.
  log.warn(
    { keyId: created.row.id, principal: bootstrapPrincipal, file, apiKey: created.key },
    "created the bootstrap admin API key: it is printed only this once and kept in the file, readable by its owner only",
  );
  return created.key;
}

/**
 * Without an embedded Postgres no key is made: an operator creates the first one with
 * `npm run create-api-key`. Says so when the database has none.
 */
export async function warnIfNoApiKey(pool: pg.Pool, log: Logger): Promise<void> {
  if (await apiKeyAnyExists(pool)) return;
  log.warn("no API key exists, so every call but health checks is refused; create one with npm run create-api-key -- --role admin --principal <name>");
}

/** Writes `text` to a new file only its owner can read, never through a planted symlink. */
async function writePrivateFile(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await rm(file, { force: true });
  await writeFile(file, text, { mode: 0o600, flag: "wx" });
}
