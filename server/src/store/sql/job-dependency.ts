import type { DependencyRow } from "../job-row.js";
import type { Queryable } from "../transaction.js";

/** The parents of each of `jobIds` (their dependency edges), by job id; jobs without any are left out. */
export async function jobDependencySelect(db: Queryable, jobIds: readonly string[]): Promise<Map<string, DependencyRow[]>> {
  const { rows } = await db.query<{ childId: string; jobId: string; requiresSuccess: boolean }>(
    `SELECT child_id AS "childId", parent_id AS "jobId", requires_success AS "requiresSuccess"
     FROM job_dependency WHERE child_id = ANY($1::uuid[]) ORDER BY child_id, parent_id`,
    [jobIds],
  );
  const byChild = new Map<string, DependencyRow[]>();
  for (const { childId, jobId, requiresSuccess } of rows) {
    const parents = byChild.get(childId) ?? [];
    parents.push({ jobId, requiresSuccess });
    byChild.set(childId, parents);
  }
  return byChild;
}
