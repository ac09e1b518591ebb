/** Options of {@link StatementBatcher}. */
export interface StatementBatcherOptions {
  /** Most items in one batch. */
  maxBatchSize: number;
  /** Most batches running at once. */
  maxInFlight: number;
}

interface Pending<In, Out> {
  item: In;
  resolve(value: Out): void;
  reject(error: unknown): void;
}

/**
 * Coalesces independent requests into set-based statements: an item submitted while no
 * batch can start waits, and everything that waits when a batch ends forms the next one.
 * A lone request runs at once (no timer, no added latency); under load each statement
 * and each commit serves many requests. If a batch fails, its items run again one by one,
 * so one item's failure never fails another.
 */
export class StatementBatcher<In, Out> {
  #waiting: Pending<In, Out>[] = [];
  #inFlight = 0;
  #startQueued = false;

  constructor(
    private readonly runBatch: (items: In[]) => Promise<Out[]>,
    private readonly options: StatementBatcherOptions,
  ) {}

  /** Runs `item` in the next batch and resolves with its own result. */
  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#startQueued) return;
      // Batches start once the current run of microtasks is through, so that the items
      // submitted together (the jobs of one EnqueueJobs call, say) share one batch rather
      // than filling the free batches one item each. No timer: nothing waits for I/O.
      this.#startQueued = true;
      queueMicrotask(() => {
        this.#startQueued = false;
        this.#startBatches();
      });
    });
  }

  #startBatches(): void {
    while (this.#inFlight < this.options.maxInFlight && this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.options.maxBatchSize);
      this.#inFlight++;
      this.#run(batch).finally(() => {
        this.#inFlight--;
        this.#startBatches();
      });
    }
  }

  async #run(batch: Pending<In, Out>[]): Promise<void> {
    try {
      const results = await this.runBatch(batch.map((pending) => pending.item));
      batch.forEach((pending, index) => pending.resolve(results[index]!));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      await Promise.all(
        batch.map(async (pending) => {
          try {
            const [result] = await this.runBatch([pending.item]);
            pending.resolve(result!);
          } catch (itemError) {
            pending.reject(itemError);
          }
        }),
      );
    }
  }
}
