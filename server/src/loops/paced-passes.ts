/** Options of {@link PacedPasses}. */
export interface PacedPassesOptions {
  /** Shortest time between the starts of two passes, however often it is woken. */
  minIntervalMs: number;
  /** Longest time between two passes without a wake-up (the fallback poll). */
  fallbackMs: number;
}

/**
 * Runs a background pass over committed rows when woken, spaced at least
 * `minIntervalMs` apart, and at the latest every `fallbackMs`. Under load every commit
 * wakes it, so it makes one pass per interval rather than one per commit; a wake-up during
 * a pass runs one more pass after it. The pass returns how soon it wants to run again
 * (e.g. when the next row falls due). Used by the loops that act on committed rows: a lost
 * wake-up only delays them until the fallback.
 */
export class PacedPasses {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #soon = false;
  #lastPassAt = 0;

  constructor(
    private readonly pass: () => Promise<number>,
    private readonly options: PacedPassesOptions,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Rows may be waiting now: pass as soon as the spacing allows. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const wait = this.#lastPassAt + this.options.minIntervalMs - Date.now();
    if (wait > 0) {
      if (!this.#soon) {
        clearTimeout(this.#timer);
        this.#soon = true;
        this.#timer = setTimeout(() => {
          this.#soon = false;
          this.wake();
        }, wait);
      }
      return;
    }
    clearTimeout(this.#timer);
    this.#soon = false;
    this.#lastPassAt = Date.now();
    this.#running = this.#passOnce().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  async #passOnce(): Promise<void> {
    let nextMs = this.options.fallbackMs;
    try {
      nextMs = Math.min(nextMs, await this.pass());
    } catch (error) {
      this.onError(error);
    }
    if (!this.#stopped && !this.#soon) this.#timer = setTimeout(() => this.wake(), Math.max(this.options.minIntervalMs, nextMs));
  }

  /** Whether {@link stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops passing; resolves once a pass in progress has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
