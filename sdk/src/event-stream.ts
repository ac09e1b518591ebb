import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { EventService, Event, EventType } from "./gen/jobwire/v1/event_service_pb.js";

/** What {@link streamEvents} delivers and from where. */
export interface StreamEventsOptions {
  /** Only events of these jobs. */
  jobIds?: string[];
  /** Only events of jobs in these queues. */
  queues?: string[];
  /** Only events of these batches: their jobs' and their own (BATCH_FINISHED). */
  batchIds?: string[];
  /** Only events of these types. */
  types?: EventType[];
  /** Resume after this cursor (an `Event.cursor`). Default: events from now on. */
  afterCursor?: string;
  /** Start with the oldest retained event instead of now. */
  fromOldest?: boolean;
  /** Attach each event's job as it is when the event is read. */
  includeJob?: boolean;
  /** Ends the iteration. */
  signal?: AbortSignal;
  /** Reconnect backoff after the stream drops: first delay and cap. Default 100 ms, 5 s. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
}

/** Errors that reconnecting cannot fix: the request itself is refused. */
const finalCodes = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated, Code.NotFound, Code.Unimplemented]);

/**
 * Lifecycle events as an async iterator that survives dropped connections and server
 * restarts: it reconnects with jittered backoff and resumes after the last event it
 * delivered, so the consumer sees every event once, in order. Ends when `signal` aborts or
 * the consumer stops iterating; throws when the server refuses the request itself.
 */
export async function* streamEvents(client: Client<typeof EventService>, options: StreamEventsOptions = {}): AsyncGenerator<Event> {
  const filter = { jobIds: options.jobIds ?? [], queues: options.queues ?? [], batchIds: options.batchIds ?? [], types: options.types ?? [] };
  let cursor = options.afterCursor;
  const fromOldest = options.fromOldest ?? false;
  let failures = 0;
  while (!options.signal?.aborted) {
    const local = new AbortController();
    const stop = () => local.abort();
    options.signal?.addEventListener("abort", stop, { once: true });
    try {
      const start =
        cursor !== undefined ? { case: "afterCursor" as const, value: cursor }
        : fromOldest ? { case: "fromOldest" as const, value: true }
        : { case: undefined };
      const request = { filter, start, includeJob: options.includeJob ?? false };
      for await (const response of client.streamEvents(request, { signal: local.signal })) {
        failures = 0;
        if (response.message.case === "keepAlive") {
          cursor = response.message.value.cursor || cursor;
          continue;
        }
        if (response.message.case !== "event") continue;
        cursor = response.message.value.cursor;
        yield response.message.value;
      }
    } catch (error) {
      const connectError = ConnectError.from(error);
      if (options.signal?.aborted) return;
      if (finalCodes.has(connectError.code)) throw connectError;
    } finally {
      options.signal?.removeEventListener("abort", stop);
      local.abort();
    }
    // The stream ended (the server is stopping) or broke: resume where we are. The server's
    // first message pins the position, so even "from now" resumes without a gap.
    const initial = options.reconnect?.initialDelayMs ?? 100;
    const max = options.reconnect?.maxDelayMs ?? 5_000;
    const delay = Math.min(max, initial * 2 ** failures++) * (0.5 + Math.random() / 2);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delay);
      options.signal?.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}
