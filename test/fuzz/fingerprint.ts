import type pg from "pg";

/** Tables no request writes to: the migration log. */
const notRequestData = new Set(["jobwire_migrations"]);

/** The tables of each database's schema, read once: migrations do not run during a fuzz run. */
const tablesOf = new WeakMap<pg.Pool, Promise<string[]>>();

/**
 * Every table a request could write to: all tables of the server's schema but the
 * migration log, read from the catalog so that a table a migration adds is covered
 * without an edit here (a list kept by hand had missed `schedule`, `api_key` and five more).
 */
function requestTables(pool: pg.Pool): Promise<string[]> {
  let tables = tablesOf.get(pool);
  if (!tables) {
    tables = pool
      .query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
      .then(({ rows }) => rows.map((row) => row.name).filter((name) => !notRequestData.has(name)));
    tablesOf.set(pool, tables);
  }
  return tables;
}

/**
 * A cheap fingerprint of everything a request could change: per table, the row count and
 * the sum of the rows' `xmin` (the id of the transaction that wrote each row version), so
 * an insert, a delete and an update of any row all change it.
 */
export async function databaseFingerprint(pool: pg.Pool): Promise<string> {
  const tables = await requestTables(pool);
  const columns = tables.map((table) => `(SELECT count(*) || '/' || coalesce(sum(xmin::text::bigint), 0) FROM "${table}") AS "${table}"`);
  const { rows } = await pool.query<Record<string, string>>(`SELECT ${columns.join(", ")}`);
  return tables.map((table) => `${table}=${rows[0]![table]}`).join(" ");
}
