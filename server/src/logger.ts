import { pino, type Logger } from "pino";

/** The server's structured JSON logger (pino), writing to stdout. */
export type { Logger };

/** Creates the logger; `level` is a pino level name or `silent`. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "jobwire" },
    // Never log connection strings with their passwords, wherever they end up in a record.
    redact: { paths: ["databaseUrl", "*.databaseUrl", "config.databaseUrl"], censor: "[redacted]" },
  });
}
