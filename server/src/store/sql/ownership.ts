import type { Scope } from "../../auth/caller.js";
import type { Queryable } from "../transaction.js";

/**
 * The first of `ids` that is not a job in `scope` (of another namespace, of another owner
 * when the scope names one, or no job at all), or undefined when all are. One query for
 * every case, so that neither the answer nor its timing tells a job that exists elsewhere
 * from one that does not.
 */
export async function jobFirstOutsideScope(db: Queryable, ids: readonly string[], scope: Scope): Promise<string | undefined> {
  const result = await db.query<{ id: string }>({
    name: "jobwire_job_first_outside_scope",
    text: `SELECT id::text FROM unnest($1::uuid[]) WITH ORDINALITY AS asked(id, n)
           WHERE NOT EXISTS (SELECT 1 FROM job WHERE job.id = asked.id AND job.namespace = $2 AND ($3::text IS NULL OR job.owner = $3))
           ORDER BY n LIMIT 1`,
    values: [ids, scope.namespace, scope.owner ?? null],
  });
  return result.rows[0]?.id;
}

/** As {@link jobFirstOutsideScope}, for batches. */
export async function batchFirstOutsideScope(db: Queryable, ids: readonly string[], scope: Scope): Promise<string | undefined> {
  const result = await db.query<{ id: string }>({
    name: "jobwire_batch_first_outside_scope",
    text: `SELECT id::text FROM unnest($1::uuid[]) WITH ORDINALITY AS asked(id, n)
           WHERE NOT EXISTS (SELECT 1 FROM batch WHERE batch.id = asked.id AND batch.namespace = $2 AND ($3::text IS NULL OR batch.owner = $3))
           ORDER BY n LIMIT 1`,
    values: [ids, scope.namespace, scope.owner ?? null],
  });
  return result.rows[0]?.id;
}

/**
 * The first of `ids` that is a job of another namespace than `namespace` or, when
 * `queues` is given, of a queue not in `queues`; undefined if none is. Ids with no job
 * pass: the worker calls answer those with NOT_FOUND themselves, as their protocol says,
 * and a worker learns nothing from it that its lease did not tell it.
 */
export async function jobFirstOutsideQueues(
  db: Queryable,
  ids: readonly string[],
  namespace: string,
  queues: readonly string[] | null,
): Promise<string | undefined> {
  const result = await db.query<{ id: string }>({
    name: "jobwire_job_first_outside_queues",
    text: `SELECT id::text FROM job WHERE id = ANY($1::uuid[])
             AND (namespace <> $2 OR ($3::text[] IS NOT NULL AND NOT (queue = ANY($3::text[]))))
           LIMIT 1`,
    values: [ids, namespace, queues],
  });
  return result.rows[0]?.id;
}
