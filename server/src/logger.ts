import { pino, type DestinationStream, type Logger } from "pino";

/** The server's structured JSON logger (pino), writing to stdout. */
export type { Logger };

/**
 * Creates the logger; `level` is a pino level name or `silent`. Writes to stdout unless
 * given another `destination` (command-line tools whose stdout is their answer).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "jobwire" },
    // Never log connection strings with their passwords, wherever they end up in a record.
    redact: { paths: ["databaseUrl", "*.databaseUrl", "config.databaseUrl"], censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
