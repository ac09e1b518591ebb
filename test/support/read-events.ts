import { EventType, type Event } from "@jobwire/sdk";
import { withTimeout } from "./with-timeout.js";

/** Reads the next `count` events from an SDK event iterator, failing loudly after `timeoutMs`. */
export async function readEvents(events: AsyncGenerator<Event>, count: number, timeoutMs = 15_000): Promise<Event[]> {
  const read: Event[] = [];
  const reading = (async () => {
    while (read.length < count) {
      const { value, done } = await events.next();
      if (done) throw new Error("the event stream ended");
      read.push(value);
    }
    return read;
  })();
  return withTimeout(reading, timeoutMs, () => `${count} events (got ${read.length}: ${read.map((e) => EventType[e.type]).join(", ")})`);
}
