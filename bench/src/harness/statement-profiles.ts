import type pg from "pg";

/** The `postgres` flags that load `pg_stat_statements`, for a profiled run. */
export const statementStatsFlags = ["-c", "shared_preload_libraries=pg_stat_statements"];

/** One statement's share of a database's time in Postgres. */
export interface StatementStat {
  query: string;
  calls: number;
  totalMs: number;
  rows: number;
}

/** Where one database (one system's workload run) spent its time in Postgres. */
export interface StatementProfile {
  database: string;
  totalMs: number;
  calls: number;
  /** The statements that took the most time, most first. */
  top: StatementStat[];
}

/** How many statements each profile lists. */
const topCount = 6;

/**
 * Reads what `pg_stat_statements` counted for `database` (over `admin`, a connection to a
 * database where the extension is created), before it is dropped: its total statement time
 * and calls, and its costliest statements.
 */
export async function readStatementProfile(admin: pg.Client, database: string): Promise<StatementProfile> {
  const { rows } = await admin.query<{ query: string; calls: string; totalMs: number; rows: string }>(
    `SELECT s.query, s.calls::text, s.total_exec_time AS "totalMs", s.rows::text
     FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
     WHERE d.datname = $1 ORDER BY s.total_exec_time DESC`,
    [database],
  );
  const stats = rows.map((row) => ({ query: row.query, calls: Number(row.calls), totalMs: row.totalMs, rows: Number(row.rows) }));
  return {
    database,
    totalMs: stats.reduce((sum, stat) => sum + stat.totalMs, 0),
    calls: stats.reduce((sum, stat) => sum + stat.calls, 0),
    top: stats.slice(0, topCount),
  };
}

/** The profiles as report lines: per database, its statement time and its costliest statements, one line each. */
export function renderStatementProfiles(profiles: readonly StatementProfile[]): string {
  if (profiles.length === 0) return "";
  const lines = ["Postgres statement time (--profile, pg_stat_statements; execution only, not parse, commit or waiting for the client):"];
  for (const profile of profiles) {
    lines.push(`- ${profile.database}: ${(profile.totalMs / 1000).toFixed(2)} s in ${profile.calls.toLocaleString("en-US")} statements`);
    for (const stat of profile.top) {
      const text = stat.query.replace(/\s+/g, " ").trim();
      lines.push(
        `    ${((stat.totalMs / profile.totalMs) * 100).toFixed(0).padStart(3)}% ${stat.calls.toLocaleString("en-US").padStart(7)} calls ` +
          `${(stat.totalMs / stat.calls).toFixed(2).padStart(7)} ms each, ${stat.rows.toLocaleString("en-US")} rows: ${text.length > 90 ? `${text.slice(0, 90)}…` : text}`,
      );
    }
  }
  return lines.join("\n");
}
