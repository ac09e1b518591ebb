import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Counts the server streams each principal has open on this replica and refuses one past
 * the limit. Who counts: the request gate for RPC streams (LeaseJobs, StreamEvents,
 * Health.Watch) and the SSE endpoint.
 */
export class OpenStreams {
  readonly #open = new Map<string, number>();

  constructor(readonly maxPerPrincipal: number) {}

  /**
   * Counts one more stream of `principal`, or throws RESOURCE_EXHAUSTED naming the limit
   * when it already has the most it may. Returns the function that stops counting it; calling
   * that more than once counts once.
   */
  open(principal: string): () => void {
    const count = this.#open.get(principal) ?? 0;
    if (count >= this.maxPerPrincipal) {
      throw new ConnectError(
        `principal ${principal} already has ${count} streams open which is the limit (JOBWIRE_MAX_STREAMS_PER_PRINCIPAL)`,
        Code.ResourceExhausted,
      );
    }
    this.#open.set(principal, count + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const left = (this.#open.get(principal) ?? 1) - 1;
      if (left === 0) this.#open.delete(principal);
      else this.#open.set(principal, left);
    };
  }

  /** Streams `principal` has open now. */
  count(principal: string): number {
    return this.#open.get(principal) ?? 0;
  }
}
