import { fileURLToPath } from "node:url";
import { RoleProcess } from "../harness/role-process.js";
import { boundFor } from "./roles.js";
import type { Subject, Workload } from "./workload.js";

/** The raw ceiling's column: Postgres alone, no queue. */
export const postgresAlone: Subject = { id: "postgres", label: "Postgres" };

const script = fileURLToPath(new URL("./ceiling-process.ts", import.meta.url));

/**
 * Workload 7, the raw ceiling: how many minimal job lifecycles per second this machine's
 * Postgres commits, with its default settings, from a `pg` script in its own process over
 * 32 connections: per job one INSERT transaction and one UPDATE transaction on a minimal
 * table. No queue can commit its jobs faster through two transactions a job; it is printed
 * as the bound under the table.
 */
export const ceiling: Workload = {
  id: "ceiling",
  skipped: () => undefined,
  systems: () => [postgresAlone],
  async runOnce(context) {
    const { ceiling: count } = context.options.sizes;
    const database = await context.environment.postgres.createDatabase("ceiling");
    const role = RoleProcess.start("raw ceiling script", script);
    try {
      await role.loaded();
      const { ms } = await role.request({ cmd: "ceiling", endpoint: { databaseUrl: database.url }, count, connections: 32 }, "ceiling", boundFor(count));
      context.results.record("ceiling", postgresAlone.id, (count / ms) * 1000);
    } finally {
      await role.stop();
      await database.drop();
    }
  },
};
