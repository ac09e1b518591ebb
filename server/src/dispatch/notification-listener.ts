import pg from "pg";
import type { Logger } from "../logger.js";
import type { QueueAddress } from "./queue-address.js";

/** The NOTIFY channels Jobwire uses, and what their payloads mean. */
export const channels = {
  /** Payload: the {@link QueueAddress} (`namespace/queue`) of a queue that has pending jobs now. */
  ready: "jobwire_ready",
  /** Payload: epoch milliseconds of the earliest run_at among jobs just scheduled. */
  scheduled: "jobwire_scheduled",
  /** Payload: JSON {@link WorkerNotice} for the replica holding a worker's stream. */
  worker: "jobwire_worker",
  /** Payload: none. Events may have committed: event streams read again. */
  events: "jobwire_events",
  /** Payload: epoch milliseconds of the next tick of a cron schedule just created or resumed. */
  schedules: "jobwire_schedules",
  /** Payload: the id of an API key just revoked: streams opened with it end. */
  apiKeyRevoked: "jobwire_api_key_revoked",
} as const;

/** A message for the worker stream named by `worker`, on whichever replica holds it. */
export type WorkerNotice =
  | { type: "cancel"; worker: string; job: string; lease_token: string; reason: string }
  | { type: "lease_ended"; worker: string; job: string; lease_token?: string; cause?: string }
  | { type: "drain"; worker: string };

/** What the listener calls. */
export interface NotificationHandlers {
  onReady(address: QueueAddress): void;
  onScheduled(runAtEpochMs: number): void;
  onWorkerNotice(notice: WorkerNotice): void;
  onEvents(): void;
  onScheduleDue(nextRunAtEpochMs: number): void;
  onApiKeyRevoked(keyId: string): void;
  /** After (re)connecting: notifications may have been missed, so look at the rows again. */
  onResync(): void;
}

/** The channels on which {@link Wakeups} tells the other replicas what this one woke itself for. */
const wakeupChannels: ReadonlySet<string> = new Set([channels.ready, channels.scheduled, channels.worker, channels.events, channels.schedules]);

/**
 * Holds one dedicated connection (outside the pool) that LISTENs on Jobwire's channels,
 * so every replica hears about changes committed by any other. Wake-ups this replica sent
 * itself (from a backend in `ownBackendPids`) are dropped: it acted on them before sending
 * them, and acting twice costs a claim and a pass of each loop per commit. Reconnects with capped
 * exponential backoff when the connection drops, and asks for a resync each time.
 */
export class NotificationListener {
  #client: pg.Client | undefined;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(
    private readonly url: string,
    private readonly handlers: NotificationHandlers,
    private readonly log: Logger,
    private readonly ownBackendPids: ReadonlySet<number> = new Set(),
  ) {}

  /** Connects and listens; resolves once listening. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: "jobwire-listener" });
    client.on("notification", (message) => {
      if (wakeupChannels.has(message.channel) && this.ownBackendPids.has(message.processId)) return;
      this.#dispatch(message.channel, message.payload ?? "");
    });
    client.on("error", (error) => {
      this.log.warn({ err: error }, "notification connection failed; reconnecting");
      this.#reconnectLater(client);
    });
    client.on("end", () => this.#reconnectLater(client));
    await client.connect();
    await client.query(`LISTEN ${channels.ready}; LISTEN ${channels.scheduled}; LISTEN ${channels.worker}; LISTEN ${channels.events}; LISTEN ${channels.schedules}; LISTEN ${channels.apiKeyRevoked};`);
    this.#client = client;
    this.#failures = 0;
    this.handlers.onResync();
  }

  #reconnectLater(client: pg.Client): void {
    if (this.#stopped || this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => undefined);
    const delay = Math.min(30_000, 100 * 2 ** this.#failures++) * (0.5 + Math.random() / 2);
    this.#retryTimer = setTimeout(() => {
      this.#connect().catch((error: unknown) => {
        this.log.warn({ err: error }, "notification connection failed; retrying");
        this.#client = client; // let #reconnectLater schedule the next try
        this.#reconnectLater(client);
      });
    }, delay);
  }

  #dispatch(channel: string, payload: string): void {
    try {
      if (channel === channels.ready) this.handlers.onReady(payload as QueueAddress);
      else if (channel === channels.scheduled) this.handlers.onScheduled(Number(payload));
      else if (channel === channels.worker) this.handlers.onWorkerNotice(JSON.parse(payload) as WorkerNotice);
      else if (channel === channels.events) this.handlers.onEvents();
      else if (channel === channels.schedules) this.handlers.onScheduleDue(Number(payload));
      else if (channel === channels.apiKeyRevoked) this.handlers.onApiKeyRevoked(payload);
    } catch (error) {
      this.log.error({ err: error, channel }, "handling a notification failed");
    }
  }

  /** Stops listening and closes the connection. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }
}
