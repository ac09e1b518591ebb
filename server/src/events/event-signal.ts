/**
 * Wakes event streams when new events may have committed: after this replica's own writes
 * and on the `jobwire_events` NOTIFY of other replicas. A generation counter closes the gap
 * between a stream's last read and its wait: a wake-up in between is not lost.
 */
export class EventSignal {
  #generation = 0;
  #waiters = new Set<() => void>();

  /** The current generation; pass it to {@link waitAfter}. */
  get generation(): number {
    return this.#generation;
  }

  /** New events may be readable. */
  wake(): void {
    this.#generation++;
    for (const waiter of this.#waiters) waiter();
    this.#waiters.clear();
  }

  /**
   * Resolves true as soon as the generation differs from `seen` (at once if it already
   * does), false after `timeoutMs` or when `signal` aborts.
   */
  waitAfter(seen: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.#generation !== seen) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (woken: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#waiters.delete(onWake);
        resolve(woken);
      };
      const onWake = () => finish(true);
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(onWake);
    });
  }
}
