import type pg from "pg";
import { eventSelectAfter, type EventCursor, type EventFilterRow, type EventRow } from "../store/sql/event-select.js";
import type { JobRow } from "../store/job-row.js";
import { jobSelectByIds } from "../store/sql/job-select.js";
import type { EventSignal } from "./event-signal.js";

/**
 * What {@link eventFeed} yields: the next event (with its job's current snapshot when asked
 * for and the job still exists), or a keep-alive with the current position.
 */
export type FeedItem = { event: EventRow; job?: JobRow } | { keepAlive: EventCursor };

/** Options of {@link eventFeed}. */
export interface EventFeedOptions {
  pool: pg.Pool;
  signal: EventSignal;
  filter: EventFilterRow;
  /** Where to start (exclusive). */
  after: EventCursor;
  /** Ends the feed. */
  done: AbortSignal;
  /** How often an idle feed yields a keep-alive. */
  keepAliveMs: number;
  /** Longest wait before reading again without a wake-up. */
  recheckMs: number;
  /** Attach each event's job as it is now. */
  includeJob?: boolean;
  /** Events read from the database at a time: the most the feed holds for a slow reader. Default 500. */
  readBatch?: number;
}

const defaultReadBatch = 500;

/**
 * The live event log as an async iterator, shared by StreamEvents and the SSE endpoint:
 * first a keep-alive carrying the starting position, then every matching event in commit
 * order, read from the database in batches (memory stays one batch however far behind the
 * reader is), waiting for a wake-up when caught up.
 */
export async function* eventFeed(options: EventFeedOptions): AsyncGenerator<FeedItem> {
  const readBatch = options.readBatch ?? defaultReadBatch;
  let cursor = options.after;
  yield { keepAlive: cursor };
  let lastSent = Date.now();
  while (!options.done.aborted) {
    const seen = options.signal.generation;
    const events = await eventSelectAfter(options.pool, cursor, options.filter, readBatch);
    const jobs = options.includeJob
      ? new Map((await jobSelectByIds(options.pool, [...new Set(events.flatMap((e) => (e.jobId === null ? [] : [e.jobId])))])).map((job) => [job.id, job]))
      : undefined;
    for (const event of events) {
      yield { event, job: event.jobId === null ? undefined : jobs?.get(event.jobId) };
      cursor = event.cursor;
    }
    if (events.length > 0) lastSent = Date.now();
    if (events.length === readBatch) continue;
    const waitMs = Math.max(0, Math.min(options.recheckMs, lastSent + options.keepAliveMs - Date.now()));
    const woken = await options.signal.waitAfter(seen, waitMs, options.done);
    if (!woken && !options.done.aborted && Date.now() - lastSent >= options.keepAliveMs) {
      yield { keepAlive: cursor };
      lastSent = Date.now();
    }
  }
}
