import type { Queryable } from "../transaction.js";

/**
 * A position in the event log. Events are read in (tx_id, id) order: by the transaction that
 * wrote them, then by id within it. Together with the barrier below this gives every reader
 * every event exactly once, although transactions commit out of id order.
 */
export interface EventCursor {
  /** `job_event.tx_id` (xid8) as decimal text. */
  txId: string;
  /** `job_event.id` as decimal text. */
  id: string;
}

/** The cursor before every event. */
export const startOfLog: EventCursor = { txId: "0", id: "0" };

/** What an event query may filter on; empty arrays match everything. */
export interface EventFilterRow {
  jobIds: string[];
  queues: string[];
  types: string[];
  batchIds: string[];
  /** Only events of this namespace's jobs and batches. */
  namespace: string;
  /** Only events of this owner's jobs and batches (a producer sees its own); unset: all. */
  owner?: string;
}

/** An event row, with its cursor. */
export interface EventRow {
  cursor: EventCursor;
  type: string;
  /** Null for an event of a whole batch. */
  jobId: string | null;
  /** Null for an event of a whole batch. */
  queue: string | null;
  /** Set for an event of a whole batch only. */
  batchId: string | null;
  attempt: number;
  at: Date;
  data: Record<string, unknown>;
}

/**
 * Events after `after`, oldest first, at most `limit`, from transactions that have all
 * ended: `tx_id < pg_snapshot_xmin(...)`. Every transaction with an id below the snapshot's
 * xmin has committed or aborted, so no event can later appear before the last one returned
 * (any still running transaction has an id at or above xmin, hence above every tx_id
 * returned). The price: an open transaction anywhere on the cluster delays the events of
 * later ones until it ends. With `settledOnly: false` (history listings) every committed
 * event is returned at once, in the same order, without that guarantee.
 */
export async function eventSelectAfter(
  db: Queryable,
  after: EventCursor,
  filter: EventFilterRow,
  limit: number,
  settledOnly = true,
): Promise<EventRow[]> {
  const result = await db.query<{ tx_text: string; id_text: string; type: string; job_id: string | null; queue: string | null; batch_id: string | null; attempt: number; at: Date | string; data: Record<string, unknown> }>({
    name: settledOnly ? "jobwire_event_select_settled_after" : "jobwire_event_select_after",
    // The text forms get their own names: ORDER BY would otherwise sort by them, as text.
    text: `SELECT tx_id::text AS tx_text, id::text AS id_text, type, job_id, queue, batch_id, attempt, at, data
           FROM job_event
           WHERE (tx_id, id) > ($1::xid8, $2::bigint)
             ${settledOnly ? "AND tx_id < pg_snapshot_xmin(pg_current_snapshot())" : ""}
             AND (cardinality($3::uuid[]) = 0 OR job_id = ANY($3::uuid[]))
             AND (cardinality($4::text[]) = 0 OR queue = ANY($4::text[]))
             AND (cardinality($5::text[]) = 0 OR type = ANY($5::text[]))
             AND (cardinality($7::uuid[]) = 0 OR batch_id = ANY($7::uuid[])
                  OR job_id IN (SELECT id FROM job WHERE batch_id = ANY($7::uuid[])))
             AND namespace = $9
             AND ($8::text IS NULL OR owner = $8::text)
           ORDER BY tx_id, id
           LIMIT $6`,
    values: [after.txId, after.id, filter.jobIds, filter.queues, filter.types, limit, filter.batchIds, filter.owner ?? null, filter.namespace],
  });
  return result.rows.map((row) => ({
    cursor: { txId: row.tx_text, id: row.id_text },
    type: row.type,
    jobId: row.job_id,
    queue: row.queue,
    batchId: row.batch_id,
    attempt: row.attempt,
    at: new Date(row.at),
    data: row.data,
  }));
}

/**
 * The cursor of "now": just before the oldest transaction still running, so that a stream
 * started here gets every event committed from now on (and possibly a few committed just
 * before, by transactions that began after that oldest one).
 */
export async function eventCursorNow(db: Queryable): Promise<EventCursor> {
  const result = await db.query<{ tx_id: string }>(
    "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::numeric - 1)::text AS tx_id",
  );
  return { txId: result.rows[0]!.tx_id, id: "9223372036854775807" };
}
