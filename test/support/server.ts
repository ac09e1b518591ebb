import { afterAll } from "vitest";
import { createLogger, defaultServerConfig, startJobwire, type JobwireServer, type ServerConfig } from "@jobwire/server";
import { createTestDatabase } from "./database.js";

/**
 * Starts a real Jobwire server in this test process, on a free port and on a database of
 * its own, and closes it after the file's tests (or sooner, with its own `close()`).
 * `overrides` change its configuration. Authentication is off unless `overrides.auth`
 * turns it on: tests of anything else act as the default principal, an admin, as they
 * did before API keys; the tests of authentication (`auth*.test.ts`) turn it on.
 */
export async function startTestServer(overrides: Partial<ServerConfig> = {}): Promise<JobwireServer> {
  const databaseUrl = overrides.databaseUrl ?? (await createTestDatabase());
  const server = await startJobwire(
    {
      ...defaultServerConfig,
      port: 0,
      dbPoolSize: 8,
      logLevel: "silent",
      shutdownGraceMs: 5_000,
      auth: { ...defaultServerConfig.auth, enabled: false },
      ...overrides,
      databaseUrl,
    },
    createLogger(process.env.JOBWIRE_TEST_LOG_LEVEL ?? "silent"),
  );
  started.add(server);
  return server;
}

// Registered at import, at file level: vitest runs no `afterAll` registered inside a hook.
const started = new Set<JobwireServer>();
afterAll(async () => {
  await Promise.all([...started].map((server) => server.close()));
  started.clear();
});
