import { configFromEnv } from "./config.js";
import { startEmbeddedPostgres } from "./db/embedded-postgres.js";
import { createLogger } from "./logger.js";
import { openDatabase } from "./store/orm.js";

/**
 * `npm run migrate`: applies pending migrations to `DATABASE_URL`, or to the embedded
 * Postgres when it is unset, and exits.
 */
const config = configFromEnv();
const logger = createLogger(config.logLevel);
const embedded = config.databaseUrl
  ? undefined
  : await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger });
try {
  const db = await openDatabase({ url: config.databaseUrl ?? embedded!.url, poolSize: 1, logger });
  try {
    const applied = await db.migrate();
    logger.info({ applied }, applied.length > 0 ? "applied migrations" : "database is up to date");
  } finally {
    await db.close();
  }
} finally {
  await embedded?.stop();
}
