import type { ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ReportOutcome, type CompleteJobRequestSchema } from "../gen/jobwire/v1/worker_service_pb.js";
import { reportWithRetry } from "./report-with-retry.js";

/** One completion to send. */
export type Completion = MessageInitShape<typeof CompleteJobRequestSchema>;

/** What became of one completion: the server's outcome, or the error the whole call ended with. */
export type CompletionResult = { outcome: ReportOutcome } | { error: ConnectError };

interface Pending {
  completion: Completion;
  resolve(result: CompletionResult): void;
}

/**
 * Sends completions in CompleteJobs calls. The completions made in one turn of the event
 * loop leave together once the turn ends: a worker that runs a batch of short jobs in one
 * turn reports them in one call, rather than the first few alone and the rest only when
 * one of those calls returns (a round trip in every batch's path, measured in issue 6's
 * bench). A completion that waits for a free call goes in the next one. Under load one
 * request, one server statement and one commit serve many jobs. Each call is retried
 * through transient failures (the server answers repeats with REPEATED).
 */
export class CompletionBatcher {
  #waiting: Pending[] = [];
  #inFlight = 0;
  #startQueued = false;

  constructor(
    private readonly send: (completions: Completion[]) => Promise<ReportOutcome[]>,
    private readonly retryBudgetMs: number,
    private readonly maxBatchSize = 1000,
    private readonly maxInFlight = 8,
  ) {}

  /** Sends `completion` in the next call; resolves with its own result, never rejects. */
  complete(completion: Completion): Promise<CompletionResult> {
    return new Promise((resolve) => {
      this.#waiting.push({ completion, resolve });
      if (this.#startQueued) return;
      // After the turn's I/O callbacks and microtasks: a job's completion is several
      // promise hops from the lease that started it, so a microtask would leave too early.
      this.#startQueued = true;
      setImmediate(() => {
        this.#startQueued = false;
        this.#startCalls();
      });
    });
  }

  #startCalls(): void {
    while (this.#inFlight < this.maxInFlight && this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.maxBatchSize);
      this.#inFlight++;
      this.#call(batch).finally(() => {
        this.#inFlight--;
        this.#startCalls();
      });
    }
  }

  async #call(batch: Pending[]): Promise<void> {
    const answer = await reportWithRetry(() => this.send(batch.map((pending) => pending.completion)), this.retryBudgetMs);
    batch.forEach((pending, index) => {
      if (!answer.ok) pending.resolve({ error: answer.error });
      else pending.resolve({ outcome: answer.value[index] ?? ReportOutcome.UNSPECIFIED });
    });
  }
}
