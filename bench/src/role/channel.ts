import { createInterface } from "node:readline";
import type { RoleCommand, RoleEvent } from "./protocol.js";

/** Tells the harness something: one JSON line on stdout. */
export function announce(event: RoleEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** The current time in epoch milliseconds with sub-millisecond precision. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Options of {@link serveRole}. */
export interface RoleHandlers {
  /** Handles one command; commands are handled one at a time, in order. */
  onCommand(command: RoleCommand): Promise<void>;
  /** Releases connections before the process exits. Bounded by 5 s. */
  stop(): Promise<void>;
}

/**
 * Runs a role process: announces `loaded`, then handles the commands the harness writes to
 * stdin. SIGTERM, SIGINT or the end of stdin (the harness is gone) stop the role and exit; a
 * failing command is announced as `error` and exits with status 1, so nothing is left running.
 */
export function serveRole(handlers: RoleHandlers): void {
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    const forced = setTimeout(() => process.exit(code), 5_000);
    forced.unref();
    handlers.stop().then(
      () => process.exit(code),
      () => process.exit(code),
    );
  };
  const fail = (error: unknown) => {
    announce({ event: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    stop(1);
  };
  process.once("SIGTERM", () => stop(0));
  process.once("SIGINT", () => stop(0));
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);

  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (!line.trim()) return;
    queue = queue.then(() => handlers.onCommand(JSON.parse(line) as RoleCommand)).catch(fail);
  });
  lines.on("close", () => stop(0));
  announce({ event: "loaded" });
}
