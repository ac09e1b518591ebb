import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../server/src/db/embedded-postgres.js";
import { createLogger } from "../../server/src/logger.js";
import { freePort } from "./free-port.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Superuser connection string of the run's one embedded Postgres. */
    postgresAdminUrl: string;
  }
}

/**
 * Starts the one embedded Postgres of the test run, in a fresh temporary folder; each test
 * file then creates its own database on it (see `database.ts`).
 */
export default async function setup(project: TestProject) {
  const dataDir = await mkdtemp(join(tmpdir(), "jobwire-test-pg-"));
  // mkdtemp makes the folder private; as root, Postgres runs as the `postgres` user and must
  // be able to reach its data folder inside it.
  await chmod(dataDir, 0o755);
  const postgres = await startEmbeddedPostgres({
    dataDir: join(dataDir, "data"),
    port: await freePort(),
    // Tests trade durability for speed; the server's own default keeps fsync on.
    postgresFlags: ["-c", "max_connections=400", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
    logger: createLogger("warn"),
  });
  project.provide("postgresAdminUrl", postgres.url);
  return async () => {
    await postgres.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
