import type http from "node:http";
import type http2 from "node:http2";
import { once } from "node:events";
import { toJson } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { EventSchema, EventType } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { eventFeed } from "../events/event-feed.js";
import type { EventSignal } from "../events/event-signal.js";
import type { Logger } from "../logger.js";
import { decodeEventCursor, encodeEventCursor, eventMessage } from "../rpc/event-message.js";
import { filterFrom } from "../rpc/event-service.js";
import type { Database } from "../store/orm.js";
import type { Principal } from "../jobs/principal.js";
import { checkMetadataSize } from "../rpc/metadata-size.js";
import type { OpenStreams } from "../rpc/open-streams.js";
import { eventCursorNow, startOfLog, type EventCursor } from "../store/sql/event-select.js";

/** What the SSE endpoint needs. */
export interface EventSourceDeps {
  db: Database;
  signal: EventSignal;
  shutdownSignal: AbortSignal;
  keepAliveMs: number;
  recheckMs: number;
  /** Events a stream reads at a time. */
  readBatch: number;
  log: Logger;
  /** Open streams per principal: an SSE stream counts like an RPC stream. */
  streams: OpenStreams;
  /** The principal a request acts as. */
  principalOf(headers: Headers): Principal;
  /** Largest request metadata, in bytes. */
  maxMetadataBytes: number;
}

type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * `GET /v1/events`: the event stream as Server-Sent Events, for `curl` and `EventSource`.
 * Query: `queue`, `job_id`, `type` (EventType names such as `SUCCEEDED`, repeatable), and
 * `from=oldest` (default: now). A `Last-Event-ID` header (or `after=<cursor>`) resumes after
 * that event; keep-alives carry the current position as their `id`, so a reconnecting
 * client misses nothing. Each event's `data` is the Event in proto3 JSON.
 */
export function eventSourceHandler(deps: EventSourceDeps) {
  return (request: AnyRequest, response: AnyResponse): void => {
    serve(deps, request, response as http.ServerResponse).catch((error: unknown) => {
      deps.log.error({ err: error }, "event stream over SSE failed");
      (response as http.ServerResponse).destroy();
    });
  };
}

async function serve(deps: EventSourceDeps, request: AnyRequest, response: http.ServerResponse): Promise<void> {
  const url = new URL(request.url ?? "/", "http://localhost");
  const headers = webHeaders(request);
  let closeStream: () => void;
  try {
    checkMetadataSize(headers, deps.maxMetadataBytes);
    closeStream = deps.streams.open(deps.principalOf(headers).id);
  } catch (error) {
    const message = error instanceof ConnectError ? error.rawMessage : "too many requests";
    response.writeHead(429, { "content-type": "application/json" });
    response.end(JSON.stringify({ code: "resource_exhausted", message }));
    return;
  }
  response.once("close", closeStream);
  let after: EventCursor;
  let filter;
  try {
    filter = filterFrom({
      queues: url.searchParams.getAll("queue"),
      jobIds: url.searchParams.getAll("job_id"),
      types: url.searchParams.getAll("type").map((name, index) => {
        const type = EventType[name.toUpperCase() as keyof typeof EventType];
        if (typeof type !== "number" || type === EventType.UNSPECIFIED) {
          throw new ConnectError(`type[${index}] must be an event type such as SUCCEEDED`, 3);
        }
        return type;
      }),
    });
    const lastEventId = request.headers["last-event-id"];
    const resumeFrom = (Array.isArray(lastEventId) ? lastEventId[0] : lastEventId) || url.searchParams.get("after");
    if (resumeFrom) after = decodeEventCursor(resumeFrom, "Last-Event-ID");
    else if (url.searchParams.get("from") === "oldest") after = startOfLog;
    else after = await eventCursorNow(deps.db.pool);
  } catch (error) {
    const message = error instanceof ConnectError ? error.rawMessage : "bad request";
    response.writeHead(400, { "content-type": "application/json" });
    response.end(JSON.stringify({ code: "invalid_argument", message }));
    return;
  }
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const closed = new AbortController();
  response.once("close", () => closed.abort());
  const done = AbortSignal.any([closed.signal, deps.shutdownSignal]);
  for await (const item of eventFeed({ ...deps, pool: deps.db.pool, filter, after, done })) {
    const frame =
      "event" in item
        ? `id: ${encodeEventCursor(item.event.cursor)}\nevent: ${EventType[eventMessage(item.event).type]?.toLowerCase()}\ndata: ${JSON.stringify(toJson(EventSchema, eventMessage(item.event)))}\n\n`
        : `id: ${encodeEventCursor(item.keepAlive)}\n\n`;
    // Backpressure: a slow reader holds the feed, not server memory.
    if (!response.write(frame)) await once(response, "drain", { signal: done }).catch(() => undefined);
  }
  response.end();
}

/** A Node request's headers as a fetch `Headers` (pseudo-headers left out), as the RPC handlers see them. */
function webHeaders(request: AnyRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return headers;
}
