import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, startEmbeddedPostgres, type EmbeddedPostgresHandle } from "@jobwire/server";
import pg from "pg";
import { freePort } from "./free-port.js";
import { readStatementProfile, statementStatsFlags, type StatementProfile } from "./statement-profiles.js";

/** A database of its own for one system and one workload. */
export interface BenchDatabase {
  readonly name: string;
  /** Superuser connection string of this database. */
  readonly url: string;
  /** Runs one statement on this database over a short-lived connection. */
  query<R extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<R[]>;
  /** Closes the harness's connection and drops the database (ending any session still on it). */
  drop(): Promise<void>;
}

/**
 * The run's one Postgres: the embedded server from `@jobwire/server`, in a fresh temporary
 * folder, with Postgres's default settings (fsync and synchronous_commit on). Jobwire and the
 * Postgres peers share it; each system and workload gets a fresh database on it.
 */
export class PostgresCluster {
  readonly #handle: EmbeddedPostgresHandle;
  readonly #dataDir: string;
  /** Superuser connection string of the `postgres` database. */
  readonly adminUrl: string;
  /** `server_version`. */
  readonly version: string;
  /** The settings that decide durability and capacity, as the server reports them. */
  readonly settings: Readonly<Record<string, string>>;
  /** With `statementStats`: each dropped database's statement profile, in the order they were dropped. */
  readonly statementProfiles: StatementProfile[] = [];
  readonly #statementStats: boolean;

  private constructor(handle: EmbeddedPostgresHandle, dataDir: string, settings: Record<string, string>, statementStats: boolean) {
    this.#handle = handle;
    this.#dataDir = dataDir;
    this.#statementStats = statementStats;
    this.adminUrl = handle.url;
    this.version = settings.server_version ?? "unknown";
    this.settings = settings;
  }

  /**
   * Initialises and starts the cluster on a free loopback port. With `statementStats`
   * (`--profile`), `pg_stat_statements` is loaded, and each database's statements are read
   * into {@link statementProfiles} before it is dropped.
   */
  static async start({ statementStats = false } = {}): Promise<PostgresCluster> {
    const dir = await mkdtemp(join(tmpdir(), "jobwire-bench-pg-"));
    // As root, Postgres runs as the `postgres` user, which must reach its folder in here.
    await chmod(dir, 0o755);
    const dataDir = join(dir, "data");
    const handle = await startEmbeddedPostgres({
      dataDir,
      port: await freePort(),
      logger: createLogger("warn"),
      postgresFlags: statementStats ? statementStatsFlags : [],
    });
    const client = new pg.Client({ connectionString: handle.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
        `SELECT name, setting, unit FROM pg_settings
         WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level',
                        'shared_buffers', 'max_connections', 'max_wal_size')
         ORDER BY name`,
      );
      const settings = Object.fromEntries(rows.map((row) => [row.name, row.unit ? `${row.setting} x ${row.unit}` : row.setting]));
      if (statementStats) await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
      return new PostgresCluster(handle, dir, settings, statementStats);
    } finally {
      await client.end();
    }
  }

  /** Creates an empty database named after `prefix` plus a random suffix. */
  async createDatabase(prefix: string): Promise<BenchDatabase> {
    const name = `${prefix.replace(/[^a-z0-9]+/g, "_")}_${randomBytes(4).toString("hex")}`;
    await this.#admin(`CREATE DATABASE ${name}`);
    const url = this.#handle.urlFor(name);
    return {
      name,
      url,
      query: async <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return (await client.query<R>(sql, values)).rows;
        } finally {
          await client.end();
        }
      },
      drop: async () => {
        if (this.#statementStats) await this.#withAdmin(async (admin) => this.statementProfiles.push(await readStatementProfile(admin, name)));
        await this.#admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      },
    };
  }

  /** Stops the cluster and removes its folder. */
  async stop(): Promise<void> {
    try {
      await this.#handle.stop();
    } finally {
      // Retried: after a signal to the whole process group, Postgres may still be removing its
      // own files while this runs (ENOTEMPTY).
      await rm(this.#dataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    }
  }

  /**
   * For the process's `exit` hook, where nothing can be awaited: asks the postmaster for a
   * fast shutdown (SIGINT) and removes the folder.
   */
  stopNow(): void {
    try {
      const pid = Number(readFileSync(join(this.#dataDir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
      if (pid > 0) process.kill(pid, "SIGINT");
    } catch {
      // Already stopped.
    }
    rmSync(this.#dataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }

  async #admin(sql: string): Promise<void> {
    await this.#withAdmin((client) => client.query(sql));
  }

  /** Runs `work` on a connection of its own to the `postgres` database. */
  async #withAdmin(work: (client: pg.Client) => Promise<unknown>): Promise<void> {
    const client = new pg.Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      await work(client);
    } finally {
      await client.end();
    }
  }
}
