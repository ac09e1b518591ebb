import { createApiKey, type JobwireServer } from "@jobwire/server";
import type pg from "pg";
import { buildWorld, type FuzzWorld } from "./world.js";

/**
 * A second namespace on the fuzzed server, with a world of its own under the same names
 * (queues, schedules, secrets, principals). The fuzzer calls as an admin of `default` and
 * draws ids of both worlds: whatever it sends, and whatever the server answers, nothing of
 * the neighbour may change (`neighbourFingerprint`). Nothing in the neighbour's world
 * changes on its own during a run, for the reasons the world's own does not.
 */
export const neighbourNamespace = "fz-neighbour";

/** Builds the neighbour's world through the public API, as an admin of its namespace. */
export async function buildNeighbour(server: JobwireServer): Promise<FuzzWorld> {
  const created = await createApiKey(server.db.pool, { namespace: neighbourNamespace, principal: "fuzzer", role: "admin", description: "the neighbour's key" });
  if (!created) throw new Error("the neighbour's API key was not created");
  return buildWorld(server.url, created.key);
}

/**
 * The fuzzed world with the neighbour's ids mixed into its pools, so that fuzzed requests
 * name the neighbour's jobs, batches, schedules, subscriptions and keys as often as their own.
 */
export function withNeighbourIds(world: FuzzWorld, neighbour: FuzzWorld): FuzzWorld {
  return {
    ...world,
    jobIds: [...world.jobIds, ...neighbour.jobIds],
    subscriptionIds: [...world.subscriptionIds, ...neighbour.subscriptionIds],
    scheduleIds: [...world.scheduleIds, ...neighbour.scheduleIds],
    apiKeyIds: [...world.apiKeyIds, ...neighbour.apiKeyIds],
  };
}

/** The tables with a `namespace` column, read once from the catalog. */
const namespacedTablesOf = new WeakMap<pg.Pool, Promise<string[]>>();

/**
 * A fingerprint of the neighbour's rows: per table with a `namespace` column, the count and
 * the sum of `xmin` of its rows in {@link neighbourNamespace}; any insert, update or delete
 * of them changes it.
 */
export async function neighbourFingerprint(pool: pg.Pool): Promise<string> {
  let tables = namespacedTablesOf.get(pool);
  if (!tables) {
    tables = pool
      .query<{ name: string }>(
        "SELECT table_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'namespace' ORDER BY table_name",
      )
      .then(({ rows }) => rows.map((row) => row.name));
    namespacedTablesOf.set(pool, tables);
  }
  const names = await tables;
  const columns = names.map(
    (table) => `(SELECT count(*) || '/' || coalesce(sum(xmin::text::bigint), 0) FROM "${table}" WHERE namespace = $1) AS "${table}"`,
  );
  const { rows } = await pool.query<Record<string, string>>(`SELECT ${columns.join(", ")}`, [neighbourNamespace]);
  return names.map((table) => `${table}=${rows[0]![table]}`).join(" ");
}
