import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EventSchema, EventType, type Event } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import type { EventCursor, EventRow } from "../store/sql/event-select.js";
import type { JobRow } from "../store/job-row.js";
import { invalidArgument } from "./connect-errors.js";
import { jobMessage } from "./job-message.js";

/** Stored event type names and their wire enum. */
const eventTypes: Record<string, EventType> = {
  enqueued: EventType.ENQUEUED,
  ready: EventType.READY,
  leased: EventType.LEASED,
  progress: EventType.PROGRESS,
  phase_completed: EventType.PHASE_COMPLETED,
  succeeded: EventType.SUCCEEDED,
  failed: EventType.FAILED,
  retry_scheduled: EventType.RETRY_SCHEDULED,
  cancel_requested: EventType.CANCEL_REQUESTED,
  cancelled: EventType.CANCELLED,
  lease_expired: EventType.LEASE_EXPIRED,
  timeout: EventType.TIMEOUT,
  released: EventType.RELEASED,
  retried: EventType.RETRIED,
  deleted: EventType.DELETED,
  webhook_delivered: EventType.WEBHOOK_DELIVERED,
  webhook_failed: EventType.WEBHOOK_FAILED,
  batch_finished: EventType.BATCH_FINISHED,
  unblocked: EventType.UNBLOCKED,
  paused: EventType.PAUSED,
  resumed: EventType.RESUMED,
};

/** The stored name of a wire event type; undefined for UNSPECIFIED or unknown numbers. */
export function eventTypeName(type: EventType): string | undefined {
  return Object.keys(eventTypes).find((name) => eventTypes[name] === type);
}

/** The wire form of an event, with its job's snapshot when given. */
export function eventMessage(row: EventRow, job?: JobRow): Event {
  return create(EventSchema, {
    cursor: encodeEventCursor(row.cursor),
    type: eventTypes[row.type] ?? EventType.UNSPECIFIED,
    jobId: row.jobId ?? "",
    queue: row.queue ?? "",
    batchId: row.batchId ?? "",
    attempt: row.attempt,
    at: timestampFromDate(row.at),
    data: row.data as JsonObject,
    job: job ? jobMessage(job) : undefined,
  });
}

/** An opaque cursor: base64url of "1.<tx_id>.<id>". */
export function encodeEventCursor(cursor: EventCursor): string {
  return Buffer.from(`1.${cursor.txId}.${cursor.id}`).toString("base64url");
}

/** Decodes a cursor made by {@link encodeEventCursor}; anything else is INVALID_ARGUMENT on `field`. */
export function decodeEventCursor(text: string, field: string): EventCursor {
  const match = /^1\.(\d{1,20})\.(\d{1,19})$/.exec(Buffer.from(text, "base64url").toString("utf8"));
  if (!match) throw invalidArgument(field, "is not a cursor of an event");
  return { txId: match[1]!, id: match[2]! };
}
