import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import { apiKeySelectUnusable } from "../store/sql/api-key.js";
import type { Queryable } from "../store/transaction.js";

/**
 * The long-lived calls (LeaseJobs, StreamEvents, the SSE endpoint) of this replica, by the
 * API key they were authenticated with, so that revoking or the expiry of a key ends them
 * too, not only the calls that come after:
 * - a revocation on any replica NOTIFYs every replica ({@link revoked}), which ends the
 *   key's streams at once;
 * - a sweep ({@link sweep}: on a timer, and after the notification connection reconnects)
 *   asks the database which of the keys in use are revoked or expired, for expiries (which
 *   nothing announces) and for notifications lost while disconnected.
 * Unary calls need none of this: each one looks its key up.
 */
export class LiveStreams {
  readonly #byKey = new Map<string, Set<AbortController>>();
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly log: Logger,
  ) {}

  /**
   * A signal that aborts, with `UNAUTHENTICATED` as its reason, when key `keyId` is revoked
   * or expires while the call runs. The call is forgotten once `callEnded` aborts.
   */
  watch(keyId: string, callEnded: AbortSignal): AbortSignal {
    const controller = new AbortController();
    if (callEnded.aborted) return controller.signal;
    let calls = this.#byKey.get(keyId);
    if (!calls) this.#byKey.set(keyId, (calls = new Set()));
    calls.add(controller);
    callEnded.addEventListener(
      "abort",
      () => {
        calls.delete(controller);
        if (calls.size === 0 && this.#byKey.get(keyId) === calls) this.#byKey.delete(keyId);
      },
      { once: true },
    );
    return controller.signal;
  }

  /** Ends every call of `keyId` on this replica: the key was revoked (here or elsewhere). */
  revoked(keyId: string): void {
    this.#end(keyId, `API key ${keyId} is revoked`);
  }

  /** Asks the database which keys in use are revoked or expired, and ends their calls. */
  sweep(): Promise<void> {
    // One at a time; `finally` runs after the assignment, even when there is nothing to do.
    this.#sweeping ??= this.#sweepOnce().finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    const keyIds = [...this.#byKey.keys()];
    if (keyIds.length === 0) return;
    try {
      for (const key of await apiKeySelectUnusable(this.db, keyIds)) {
        this.#end(key.id, key.revoked ? `API key ${key.id} is revoked` : `API key ${key.id} has expired`);
      }
    } catch (error) {
      this.log.warn({ err: error }, "checking the API keys of open streams failed");
    }
  }

  /** Sweeps every `intervalMs` until {@link stop}. */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.sweep(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #end(keyId: string, message: string): void {
    const calls = this.#byKey.get(keyId);
    if (!calls) return;
    this.#byKey.delete(keyId);
    this.log.info({ keyId, streams: calls.size }, "ended the open streams of an API key that can no longer be used");
    const reason = new ConnectError(message, Code.Unauthenticated);
    for (const call of calls) call.abort(reason);
  }
}
