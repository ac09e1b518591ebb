import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Codes after which the same report may succeed if sent again. `Canceled` is among them:
 * reports are never cancelled by the SDK, so it only comes from a connection that broke
 * (an HTTP/2 stream reset when the server died).
 */
const transientCodes = new Set([
  Code.Canceled,
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.Unknown,
  Code.Internal,
  Code.Aborted,
  Code.ResourceExhausted,
]);

/** What became of a report. */
export type ReportOutcome<T> = { ok: true; value: T } | { ok: false; error: ConnectError };

/**
 * Sends a report (CompleteJob, FailJob, …) until the server answers it, retrying transient
 * failures (network errors, a restarting server) with jittered exponential backoff for up
 * to `budgetMs`. Safe because the server answers a repeated report with the same lease OK.
 * Resolves with the answer or the final error; never rejects.
 */
export async function reportWithRetry<T>(send: () => Promise<T>, budgetMs: number, signal?: AbortSignal): Promise<ReportOutcome<T>> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return { ok: true, value: await send() };
    } catch (error) {
      const connectError = ConnectError.from(error);
      const elapsed = Date.now() - started;
      if (!transientCodes.has(connectError.code) || elapsed >= budgetMs || signal?.aborted) return { ok: false, error: connectError };
      const delay = Math.min(5_000, 50 * 2 ** attempt, budgetMs - elapsed) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
