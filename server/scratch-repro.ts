import { startJobwire, defaultServerConfig, createLogger, createApiKey } from "./src/index.ts";
import { createJobwireClient } from "@jobwire/sdk";
import { startEmbeddedPostgres } from "./src/db/embedded-postgres.ts";
const pg = await startEmbeddedPostgres({ dataDir: "/tmp/scratch/repro-data", port: 55600, logger: createLogger("warn") });
const url = pg.url;
for (let round = 0; round < 3; round++) {
  const db = `repro${round}_${Date.now()}`;
  const { default: pgm } = await import("pg");
  const admin = new pgm.Client({ connectionString: url }); await admin.connect(); await admin.query(`CREATE DATABASE ${db}`); await admin.end();
  const u = new URL(url); u.pathname = `/${db}`;
  const server = await startJobwire({ ...defaultServerConfig, port: 0, databaseUrl: u.toString(), logLevel: "error" }, createLogger("error"));
  const pool = new pgm.Pool({ connectionString: u.toString(), max: 1 });
  const key = (await createApiKey(pool, { principal: "bench", role: "producer" }))!.key;
  await pool.end();
  const client = createJobwireClient({ baseUrl: server.url, apiKey: key });
  let inFlight = 0, done = 0, failed = 0;
  await new Promise<void>((resolve) => {
    const next = () => {
      while (inFlight < 32 && done + inFlight < 3000) {
        inFlight++;
        client.enqueue("bench", "noop", { n: done }).then(() => {}, (e) => { failed++; if (failed < 3) console.log("ERR", String(e)); }).finally(() => { inFlight--; done++; if (done === 3000) resolve(); else next(); });
      }
    };
    next();
  });
  console.log(`round ${round}: failed ${failed}`);
  await server.close();
}
await pg.stop();
