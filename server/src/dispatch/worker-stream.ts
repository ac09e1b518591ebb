import type { MessageInitShape } from "@bufbuild/protobuf";
import type { LeaseJobsResponseSchema } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { queueAddress, type QueueAddress } from "./queue-address.js";

/** A message to send down a LeaseJobs stream. */
export type StreamMessage = MessageInitShape<typeof LeaseJobsResponseSchema>["message"];

/** What a worker registered with. */
export interface WorkerRegistration {
  workerId: string;
  workerName: string;
  /** The namespace of its queues: its caller's. */
  namespace: string;
  queues: string[];
  kinds: string[];
  capacity: number;
  /** Of the capacity, the leases it keeps ready ahead of the jobs it runs. */
  prefetch: number;
}

/**
 * One connected worker's LeaseJobs stream on this replica: its registration, the leases it
 * holds (job id → fencing token), and the outbox of messages its handler yields. The
 * dispatcher fills it up to its capacity; nothing here touches the database.
 */
export class WorkerStream {
  /** Leases held: job id → lease token. Counted against the capacity. */
  readonly outstanding = new Map<string, string>();
  /** Set by a drain heartbeat: no new leases. */
  draining = false;
  /** Claims running for this stream right now. */
  claimsInFlight = 0;
  /** Slots those claims may fill: not free for another claim meanwhile. */
  reserved = 0;
  /**
   * The last claim found fewer ready jobs than it had slots for, none was left pending
   * (held by another transaction), and no wake-up has arrived since: claiming again before
   * one does would find nothing, so freed slots wait for a wake-up (or for the admission
   * loop, which leases jobs waiting for a limit).
   */
  drained = false;
  /** Wake-ups received, so that a claim can tell whether one arrived while it ran. */
  wakeups = 0;
  /** A wake-up arrived while no further claim could start: claim again when one ends. */
  claimAgain = false;
  #closed = false;
  #outbox: StreamMessage[] = [];
  #wakeReader: (() => void) | undefined;

  readonly #addresses: ReadonlySet<QueueAddress>;

  constructor(readonly registration: WorkerRegistration) {
    this.#addresses = new Set(registration.queues.map((queue) => queueAddress(registration.namespace, queue)));
  }

  get id(): string {
    return this.registration.workerId;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Leases the dispatcher may still grant to this stream. */
  freeSlots(): number {
    if (this.#closed || this.draining) return 0;
    return this.registration.capacity - this.outstanding.size - this.reserved;
  }

  /**
   * The free slots to lease jobs into now, by a claim or by the admission loop: all of
   * them once at least half of the worker's prefetch buffer is free, none before. Until
   * then the worker has that much work ahead of any job leased now, so no job starts
   * later for the wait; and the buffer is refilled by fewer, larger claims and passes,
   * each of which has a fixed cost. A worker without prefetch is filled slot by slot.
   */
  slotsToFill(): number {
    const free = this.freeSlots();
    return free >= Math.ceil(this.registration.prefetch / 2) ? free : 0;
  }

  /** Whether this stream takes jobs from the queue at `address`. */
  serves(address: QueueAddress): boolean {
    return this.#addresses.has(address);
  }

  /** Jobs may have become ready for this stream: the next fill claims. */
  woken(): void {
    this.drained = false;
    this.wakeups++;
  }

  /** Whether this stream takes jobs of kind `kind`. */
  takesKind(kind: string): boolean {
    return this.registration.kinds.length === 0 || this.registration.kinds.includes(kind);
  }

  /** Queues a message for the stream. Ignored once closed. */
  send(message: StreamMessage): void {
    if (this.#closed) return;
    this.#outbox.push(message);
    this.#wakeReader?.();
  }

  /**
   * The next message to yield: waits up to `idleMs` for one, then returns a keep-alive;
   * returns undefined once the stream is closed or `signal` aborts.
   */
  async next(idleMs: number, signal: AbortSignal): Promise<StreamMessage | undefined> {
    if (this.#outbox.length === 0 && !this.#closed && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, idleMs);
        signal.addEventListener("abort", done, { once: true });
        this.#wakeReader = done;
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
      });
      this.#wakeReader = undefined;
    }
    if (this.#closed || signal.aborted) return undefined;
    return this.#outbox.shift() ?? { case: "keepAlive", value: {} };
  }

  /** Ends the stream: `next` returns undefined from now on. */
  close(): void {
    this.#closed = true;
    this.#wakeReader?.();
  }
}
