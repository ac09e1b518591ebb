import type { Queryable } from "../transaction.js";

/**
 * The first of `ids` that is not a job of `owner` (another principal's, or no job at
 * all), or undefined when `owner` owns them all. One query for both cases, so that
 * neither the answer nor its timing tells a job that exists from one that does not.
 */
export async function jobFirstNotOwned(db: Queryable, ids: readonly string[], owner: string): Promise<string | undefined> {
  const result = await db.query<{ id: string }>(
    `SELECT id::text FROM unnest($1::uuid[]) WITH ORDINALITY AS asked(id, n)
     WHERE NOT EXISTS (SELECT 1 FROM job WHERE job.id = asked.id AND job.owner = $2)
     ORDER BY n LIMIT 1`,
    [ids, owner],
  );
  return result.rows[0]?.id;
}

/** As {@link jobFirstNotOwned}, for batches. */
export async function batchFirstNotOwned(db: Queryable, ids: readonly string[], owner: string): Promise<string | undefined> {
  const result = await db.query<{ id: string }>(
    `SELECT id::text FROM unnest($1::uuid[]) WITH ORDINALITY AS asked(id, n)
     WHERE NOT EXISTS (SELECT 1 FROM batch WHERE batch.id = asked.id AND batch.owner = $2)
     ORDER BY n LIMIT 1`,
    [ids, owner],
  );
  return result.rows[0]?.id;
}

/**
 * The first of `ids` that is a job of a queue not in `queues`, or undefined. Ids with no
 * job pass: the worker calls answer those with NOT_FOUND themselves, as their protocol
 * says, and a worker learns nothing from it that its lease did not tell it.
 */
export async function jobFirstOutsideQueues(db: Queryable, ids: readonly string[], queues: readonly string[]): Promise<string | undefined> {
  const result = await db.query<{ id: string }>({
    name: "jobwire_job_first_outside_queues",
    text: "SELECT id::text FROM job WHERE id = ANY($1::uuid[]) AND NOT (queue = ANY($2::text[])) LIMIT 1",
    values: [ids, queues],
  });
  return result.rows[0]?.id;
}
