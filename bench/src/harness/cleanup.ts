import { ManagedProcess } from "./managed-process.js";
import type { PostgresCluster } from "./postgres-cluster.js";

let postgres: PostgresCluster | undefined;
let exiting = false;
const stopping = new AbortController();

/** Aborted once the run is being stopped (a signal, the time bound): start nothing new. */
export const runStopping: AbortSignal = stopping.signal;

/** Registers the run's Postgres, so that every way out of the process stops it. */
export function cleanUpPostgres(cluster: PostgresCluster): void {
  postgres = cluster;
}

/**
 * Stops every child process and the run's Postgres, then exits with `code`. Used on the
 * normal way out, on SIGINT/SIGTERM and when the run passes its time bound.
 */
export async function cleanUpAndExit(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    stopping.abort();
    const forced = setTimeout(() => process.exit(code), 30_000);
    forced.unref();
    await ManagedProcess.stopAll(5_000).catch(() => undefined);
    await postgres?.stop().catch(() => undefined);
    postgres = undefined;
  }
  process.exit(code);
}

/**
 * Makes sure nothing the run started outlives it: SIGINT and SIGTERM clean up and exit; the
 * `exit` hook, which cannot wait, kills what is left with SIGKILL and asks Postgres for a
 * fast shutdown.
 */
export function installCleanupHooks(log: (message: string) => void): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping every process the bench started`);
      void cleanUpAndExit(130);
    });
  }
  process.on("exit", () => {
    ManagedProcess.killAllNow();
    postgres?.stopNow();
  });
}

/**
 * Bounds the whole run: past `ms`, it says so loudly, cleans up and exits with status 1.
 * Returns a function that cancels the bound.
 */
export function boundRun(ms: number, log: (message: string) => void): () => void {
  const timer = setTimeout(() => {
    log(`the run passed its bound of ${Math.round(ms / 60_000)} minutes: stopping it`);
    void cleanUpAndExit(1);
  }, ms);
  timer.unref();
  return () => clearTimeout(timer);
}
