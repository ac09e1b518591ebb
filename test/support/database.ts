import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

/**
 * Creates a fresh, empty database on the run's embedded Postgres and returns its
 * connection string. Every test file calls this once, so no two files share state.
 */
export async function createTestDatabase(): Promise<string> {
  const adminUrl = inject("postgresAdminUrl");
  const name = `jobwire_test_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
