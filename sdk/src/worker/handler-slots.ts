/**
 * Counts the handlers allowed to run at once. `acquire` waits for a free slot in FIFO
 * order, or until `signal` aborts (then it resolves without a slot, so the caller can
 * report the job without running it).
 */
export class HandlerSlots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  /** Resolves with a release function once a slot is held (or a no-op once `signal` aborts). */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve) => {
      const granted = () => {
        signal.removeEventListener("abort", gaveUp);
        resolve(this.#releaser());
      };
      const gaveUp = () => {
        const index = this.#waiting.indexOf(granted);
        if (index >= 0) this.#waiting.splice(index, 1);
        resolve(() => {});
      };
      if (signal.aborted) return gaveUp();
      this.#waiting.push(granted);
      signal.addEventListener("abort", gaveUp, { once: true });
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}
