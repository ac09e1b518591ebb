import type { JobRow } from "../job-row.js";
import type { Queryable } from "../transaction.js";
import { jobColumns, jobDependenciesColumn, jobPhasesColumn, jobRowFromSql } from "./job-columns.js";

/**
 * Reads one job with its phases and dependencies, locking the job row until the transaction ends when
 * `forUpdate` is set: the way a transition decides on the current state without racing
 * another one.
 */
export async function jobSelectById(db: Queryable, id: string, forUpdate: boolean): Promise<JobRow | undefined> {
  const result = await db.query<JobRow>(
    `SELECT ${jobColumns}, ${jobPhasesColumn}, ${jobDependenciesColumn} FROM job j WHERE j.id = $1 ${forUpdate ? "FOR UPDATE OF j" : ""}`,
    [id],
  );
  const row = result.rows[0];
  return row && jobRowFromSql(row);
}

/** Reads jobs with their phases and dependencies, by id; ids with no job are left out. */
export async function jobSelectByIds(db: Queryable, ids: readonly string[]): Promise<JobRow[]> {
  if (ids.length === 0) return [];
  const result = await db.query<JobRow>(
    `SELECT ${jobColumns}, ${jobPhasesColumn}, ${jobDependenciesColumn} FROM job j WHERE j.id = ANY($1::uuid[])`,
    [ids],
  );
  return result.rows.map(jobRowFromSql);
}
