import type { JsonValue } from "../json.js";
import type { AbortReason } from "./errors.js";

/** What a handler gets besides its payload. */
export interface JobContext {
  /** The job's id. */
  readonly jobId: string;
  /** The job's kind and queue. */
  readonly kind: string;
  readonly queue: string;
  /** This attempt's number (1 for the first) and the job's maximum. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The job's metadata. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The previous attempt's failure message, if this is a retry. */
  readonly lastError: string | undefined;
  /** The last progress an earlier attempt reported, or null. */
  readonly previousProgress: JsonValue;
  /**
   * Aborted when the handler should stop; `signal.reason` is a {@link JobAbortedError}
   * whose `reason` says why. Pass it to `fetch` and other cancellable calls.
   */
  readonly signal: AbortSignal;
  /** The abort reason, once `signal` is aborted. */
  readonly abortReason: AbortReason | undefined;
  /** Stores progress on the job (visible through GetJob) and writes a PROGRESS event. */
  progress(progress: JsonValue): Promise<void>;
  /**
   * Runs a declared phase once. If an earlier attempt completed it, returns its stored
   * result without running `fn`; otherwise runs `fn` and checkpoints the result before
   * returning it. Throws the abort reason, without running `fn`, when `signal` is aborted
   * (a cancel lands on the phase boundary).
   */
  step<T extends JsonValue>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** A job handler: receives the payload, resolves with the result (any JSON, or nothing). */
export type JobHandler<P extends JsonValue = JsonValue, R extends JsonValue | void = JsonValue | void> = (
  payload: P,
  ctx: JobContext,
) => Promise<R>;
