import { setTimeout as delay } from "node:timers/promises";

/** Thrown when something the harness waits on does not happen in time. */
export class BenchTimeoutError extends Error {
  override name = "BenchTimeoutError";
}

/**
 * Resolves with `promise`, or rejects with a {@link BenchTimeoutError} naming `what` once
 * `timeoutMs` has passed. `detail` adds context (e.g. a process's output) to the message.
 */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string, detail?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const extra = detail?.();
      reject(new BenchTimeoutError(`timed out after ${Math.round(timeoutMs)} ms waiting for ${what}${extra ? `\n${extra}` : ""}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Options of {@link pollUntil}. */
export interface PollOptions {
  /** Fail loudly after this long. */
  timeoutMs: number;
  /** Pause between probes. Default 20 ms. */
  intervalMs?: number;
  /** Checked between probes: a reason to stop waiting at once (e.g. a process died). */
  abortIf?: () => string | undefined;
}

/**
 * Probes until `probe` returns something other than `undefined` and resolves with it. This
 * waits on the thing itself (a port answering, a count in a database), never on a guess of
 * how long it takes; the loop is bounded by `timeoutMs` and fails loudly naming `what`.
 */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    const reason = options.abortIf?.();
    if (reason) throw new Error(`gave up waiting for ${what}: ${reason}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      throw new BenchTimeoutError(
        `timed out after ${options.timeoutMs} ms waiting for ${what}` + (lastError ? ` (last error: ${String(lastError)})` : ""),
      );
    }
    await delay(options.intervalMs ?? 20);
  }
}
