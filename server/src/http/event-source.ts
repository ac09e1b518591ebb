import type http from "node:http";
import type http2 from "node:http2";
import { once } from "node:events";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { qualifiedPrincipal, scopeOf, type Caller } from "../auth/caller.js";
import { EventSchema, EventType } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { eventFeed } from "../events/event-feed.js";
import type { EventSignal } from "../events/event-signal.js";
import type { Logger } from "../logger.js";
import { decodeEventCursor, encodeEventCursor, eventMessage } from "../rpc/event-message.js";
import { filterFrom } from "../rpc/event-service.js";
import type { Database } from "../store/orm.js";
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
  /**
   * Authenticates and authorizes a request from its `Authorization` header as
   * `EventService.StreamEvents`; throws `UNAUTHENTICATED` or `PERMISSION_DENIED`. Returns
   * the caller, and a signal that aborts if its key is revoked or expires before
   * `callEnded` aborts.
   */
  authorize(authorization: string | null, callEnded: AbortSignal): Promise<{ caller: Caller; revoked: AbortSignal }>;
  /** Open streams per principal: an SSE stream counts like an RPC stream. */
  streams: OpenStreams;
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
 * client misses nothing. Each event's `data` is the Event in proto3 JSON. It needs the same
 * API key as StreamEvents (`Authorization: Bearer …`), and a producer sees only its own
 * jobs' events; a refusal is 401 or 403 with a Connect-style JSON error.
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
  const closed = new AbortController();
  response.once("close", () => closed.abort());
  let caller: Caller;
  let revoked: AbortSignal;
  try {
    ({ caller, revoked } = await deps.authorize(request.headers.authorization ?? null, closed.signal));
  } catch (error) {
    const refusal = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal);
    const challenge = refusal.code === Code.Unauthenticated ? { "www-authenticate": "Bearer" } : {};
    response.writeHead(codeToHttpStatus(refusal.code), { "content-type": "application/json", ...challenge });
    response.end(JSON.stringify({ code: codeToString(refusal.code), message: refusal.rawMessage }));
    return;
  }
  const url = new URL(request.url ?? "/", "http://localhost");
  const headers = webHeaders(request);
  let closeStream: () => void;
  try {
    checkMetadataSize(headers, deps.maxMetadataBytes);
    closeStream = deps.streams.open(qualifiedPrincipal(caller));
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
      batchIds: url.searchParams.getAll("batch_id"),
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
  // A revoked or expired key ends the stream; the client's reconnect is then refused.
  const done = AbortSignal.any([closed.signal, deps.shutdownSignal, revoked]);
  const scoped = { ...filter, ...scopeOf(caller) };
  for await (const item of eventFeed({ ...deps, pool: deps.db.pool, filter: scoped, after, done })) {
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
