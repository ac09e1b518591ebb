/**
 * The raw ceiling's role process (see `ceiling.ts`): `count` job lifecycles over
 * `connections` connections, each one INSERT transaction then one UPDATE transaction, as
 * prepared statements in autocommit mode.
 */
import pg from "pg";
import { announce, serveRole } from "../role/channel.js";

const clients: pg.Client[] = [];

serveRole({
  async onCommand(command) {
    if (command.cmd !== "ceiling") throw new Error(`the ceiling script does not understand ${JSON.stringify(command)}`);
    const { endpoint, count, connections } = command;
    for (let i = 0; i < connections; i++) {
      const client = new pg.Client({ connectionString: endpoint.databaseUrl });
      clients.push(client);
      await client.connect();
    }
    await clients[0]!.query(`
      CREATE TABLE raw_job (
        id bigserial PRIMARY KEY,
        state text NOT NULL DEFAULT 'pending',
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      )`);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      clients.map(async (client) => {
        while (next < count) {
          const n = next++;
          const { rows } = await client.query<{ id: string }>({
            name: "insert-job",
            text: "INSERT INTO raw_job (payload) VALUES ($1) RETURNING id",
            values: [{ n }],
          });
          await client.query({
            name: "finish-job",
            text: "UPDATE raw_job SET state = 'done', finished_at = now() WHERE id = $1 AND state = 'pending'",
            values: [rows[0]!.id],
          });
        }
      }),
    );
    announce({ event: "ceiling", count, ms: performance.now() - started });
  },
  async stop() {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  },
});
