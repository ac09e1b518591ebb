/**
 * Runs a background pass at the next due time: armed by {@link dueAt} for the earliest
 * moment anyone asked for, by the pass itself (which returns how long until its next due
 * row), and at the latest every `fallbackMs`. A pass asked for while one runs runs again
 * right after it. Used by the loops that act on time (leases, schedules, retention): a lost
 * wake-up only delays them until the fallback.
 */
export class DuePasses {
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(
    private readonly pass: () => Promise<number>,
    private readonly fallbackMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Something is due at `epochMs`: make sure a pass runs by then. */
  dueAt(epochMs: number): void {
    if (epochMs < this.#armedAt) this.#arm(Math.max(0, epochMs - Date.now()));
  }

  /** Runs a pass as soon as possible. */
  runSoon(): void {
    this.#arm(0);
  }

  /** Whether {@link stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops arming passes; a pass in progress ends by itself. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #arm(delayMs: number): void {
    if (this.#stopped) return;
    // Something due in months is further away than setTimeout can wait (2^31 ms, which it
    // would turn into 1 ms): never sleep longer than the fallback poll.
    delayMs = Math.min(delayMs, this.fallbackMs);
    clearTimeout(this.#timer);
    this.#armedAt = Date.now() + delayMs;
    this.#timer = setTimeout(() => this.#start(), delayMs);
  }

  #start(): void {
    this.#armedAt = Number.POSITIVE_INFINITY;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#runPasses().finally(() => {
      this.#running = undefined;
    });
  }

  async #runPasses(): Promise<void> {
    let nextMs = this.fallbackMs;
    do {
      this.#again = false;
      try {
        nextMs = await this.pass();
      } catch (error) {
        // A pass cut off by shutdown fails with the pool it was using: nothing to report.
        if (!this.#stopped) this.onError(error);
        nextMs = this.fallbackMs;
      }
    } while (this.#again && !this.#stopped);
    // Sooner than a timer armed during the pass (dueAt may have armed a later one), never later.
    this.dueAt(Date.now() + nextMs);
  }
}
