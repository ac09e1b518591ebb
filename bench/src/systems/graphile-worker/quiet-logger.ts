import { Logger } from "graphile-worker";

/** graphile-worker's logger, writing only warnings and errors, to stderr (stdout carries the role protocol). */
export const quietLogger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") process.stderr.write(`[graphile-worker ${level}] ${message}\n`);
});
