import type pg from "pg";
import { withTimeout } from "./with-timeout.js";

/** Resolves once another backend waits for a lock `holder` holds (polls the live pg_locks). */
export async function waitUntilBlockedBy(observer: pg.Client, holder: pg.Client): Promise<void> {
  let waiting = true;
  const blocked = (async () => {
    while (waiting) {
      const { rows } = await observer.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND $1 = ANY(pg_blocking_pids(pid))",
        [(holder as unknown as { processID: number }).processID],
      );
      if (rows[0]!.n > 0) return;
    }
  })();
  await withTimeout(blocked, 15_000, "a request to wait on the held row lock").finally(() => (waiting = false));
}
