import type { ServiceImpl } from "@connectrpc/connect";
import { EventService, type EventFilter } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { callerOf, scopeOf } from "../auth/caller.js";
import type { EventSignal } from "../events/event-signal.js";
import type { Database } from "../store/orm.js";
import { eventFeed } from "../events/event-feed.js";
import { eventCursorNow, eventSelectAfter, startOfLog, type EventCursor, type EventFilterRow } from "../store/sql/event-select.js";
import { invalidArgument } from "./connect-errors.js";
import { checkJobId } from "./job-id.js";
import { decodeEventCursor, encodeEventCursor, eventMessage, eventTypeName } from "./event-message.js";
import { checkName } from "./validate-job-spec.js";

/** What the EventService handlers need. */
export interface EventServiceDeps {
  db: Database;
  /** Woken when events may have committed, here or on another replica. */
  signal: EventSignal;
  /** Aborted when the server shuts down: streams end, clients resume from their cursor. */
  shutdownSignal: AbortSignal;
  /** How often an idle stream says something. */
  keepAliveMs: number;
  /** Longest time a caught-up stream waits before reading again without a wake-up. */
  recheckMs: number;
  /** Events a stream reads at a time, the most it holds for a reader that does not keep up. */
  readBatch: number;
}

const limits = { jobIds: 1000, queues: 100, batchIds: 100, pageSizeDefault: 100, pageSizeMax: 1000 };

/**
 * The EventService handlers; streams are {@link eventFeed}s. A caller sees the events of
 * its namespace only, and a producer only those of its own principal's jobs and batches.
 */
export function eventServiceImpl(deps: EventServiceDeps): ServiceImpl<typeof EventService> {
  const { db } = deps;
  return {
    async *streamEvents(request, context) {
      const filter = { ...filterFrom(request.filter), ...scopeOf(callerOf(context)) };
      let cursor: EventCursor;
      if (request.start.case === "afterCursor") cursor = decodeEventCursor(request.start.value, "after_cursor");
      else if (request.start.case === "fromOldest") cursor = startOfLog;
      else cursor = await eventCursorNow(db.pool);
      const done = AbortSignal.any([context.signal, deps.shutdownSignal]);
      const feed = eventFeed({ ...deps, pool: db.pool, filter, after: cursor, done, includeJob: request.includeJob });
      for await (const item of feed) {
        if ("event" in item) yield { message: { case: "event", value: eventMessage(item.event, item.job) } };
        else yield { message: { case: "keepAlive", value: { cursor: encodeEventCursor(item.keepAlive) } } };
      }
    },

    async listEvents(request, context) {
      const filter = { ...filterFrom(request.filter), ...scopeOf(callerOf(context)) };
      const pageSize = request.pageSize || limits.pageSizeDefault;
      if (pageSize < 1 || pageSize > limits.pageSizeMax) {
        throw invalidArgument("page_size", `must be between 0 and ${limits.pageSizeMax}`);
      }
      const after = request.pageToken ? decodeEventCursor(request.pageToken, "page_token") : startOfLog;
      // History shows every committed event at once; only streams wait for older open
      // transactions, to guarantee a resumed reader misses nothing.
      const events = await eventSelectAfter(db.pool, after, filter, pageSize, false);
      const last = events.at(-1);
      return {
        events: events.map((event) => eventMessage(event)),
        nextPageToken: events.length === pageSize && last ? encodeEventCursor(last.cursor) : "",
      };
    },
  };
}

/** Validates an event filter (from StreamEvents, ListEvents or the SSE query string). */
export function filterFrom(filter: Partial<Pick<EventFilter, "jobIds" | "queues" | "types" | "batchIds">> | undefined): Omit<EventFilterRow, "namespace" | "owner"> {
  const jobIds = filter?.jobIds ?? [];
  const queues = filter?.queues ?? [];
  const batchIds = filter?.batchIds ?? [];
  if (jobIds.length > limits.jobIds) throw invalidArgument("filter.job_ids", `must have at most ${limits.jobIds} entries`);
  if (queues.length > limits.queues) throw invalidArgument("filter.queues", `must have at most ${limits.queues} entries`);
  if (batchIds.length > limits.batchIds) throw invalidArgument("filter.batch_ids", `must have at most ${limits.batchIds} entries`);
  return {
    batchIds: batchIds.map((id, index) => checkJobId(id, `filter.batch_ids[${index}]`)),
    jobIds: jobIds.map((id, index) => checkJobId(id, `filter.job_ids[${index}]`)),
    queues: queues.map((queue, index) => checkName(queue, `filter.queues[${index}]`)),
    types: (filter?.types ?? []).map((type, index) => {
      const name = eventTypeName(type);
      if (!name) throw invalidArgument(`filter.types[${index}]`, "must be an event type other than UNSPECIFIED");
      return name;
    }),
  };
}
