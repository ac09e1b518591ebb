import { MikroORM, type EntityManager } from "@mikro-orm/postgresql";
import { Migrator } from "@mikro-orm/migrations";
import pg from "pg";
import type { Logger } from "../logger.js";
import { JobEventEntity } from "./entities/job-event.js";
import { JobEntity, JobPhaseEntity } from "./entities/job.js";
import { QueueEntity } from "./entities/queue.js";
import { migrations } from "./migrations/index.js";

/** The database as the rest of the server sees it: the ORM and its `pg` pool. */
export interface Database {
  /** The ORM, for entity reads and migrations. Fork `orm.em` per request. */
  readonly orm: MikroORM;
  /**
   * The `pg` pool behind the ORM, for the reviewed hot-path SQL in `store/sql`. One pool
   * serves both, so the connection limit is the configured pool size.
   */
  readonly pool: pg.Pool;
  /**
   * Process ids of the Postgres backends behind the pool's connections (as notifications
   * name their sender): what this server sent itself.
   */
  readonly poolBackendPids: ReadonlySet<number>;
  /** Applies pending migrations; returns the names of those applied. */
  migrate(): Promise<string[]>;
  /** Whether every known migration has been applied. */
  isMigrated(): Promise<boolean>;
  /**
   * Closes the pool. Connections still checked out after `graceMs` belong to work that
   * outlived the server's shutdown grace: their backends are terminated, so their
   * transactions roll back and the pool can close.
   */
  close(graceMs?: number): Promise<void>;
}

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** A `postgres://` connection string. */
  url: string;
  /** Connections in the pool. */
  poolSize: number;
  /** Seconds after which a pooled connection is replaced once released; unset: never (one-shot commands). */
  connectionLifetimeS?: number;
  logger: Logger;
}

/** Connects to Postgres through MikroORM (driver `pg`); does not migrate. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const log = options.logger.child({ component: "database" });
  const orm = await MikroORM.init({
    clientUrl: options.url,
    entities: [QueueEntity, JobEntity, JobPhaseEntity, JobEventEntity],
    extensions: [Migrator],
    pool: { min: 0, max: options.poolSize },
    // Named statements (the hot paths: claim, insert, complete, ownership checks) are
    // planned once per connection. Left to itself Postgres re-plans the claim and the insert
    // on every execution, since their generic plan never looks cheaper than a custom one:
    // planning cost more than executing them (0.6-0.8 ms against 0.3-0.6 ms, measured with
    // pg_stat_statements' track_planning). No statement passes a state or another
    // partial-index column as a parameter, so generic plans use the same indexes.
    //
    // A connection keeps those plans as long as it lives, and a busy pool never lets one go
    // idle long enough to close: plans made while a table was small (a new deployment, the
    // minutes before autovacuum first analyzes it) would outlive that by days. A connection
    // is replaced after `connectionLifetimeS` (pg-pool's maxLifetimeSeconds), so plans follow
    // the statistics, at the cost of planning each statement once more per connection then.
    driverOptions: { options: "-c plan_cache_mode=force_generic_plan", maxLifetimeSeconds: options.connectionLifetimeS ?? 0 },
    // The ORM's own request-scoped identity map is not used: handlers fork explicitly.
    allowGlobalContext: false,
    debug: false,
    migrations: {
      tableName: "jobwire_migrations",
      migrationsList: migrations,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      snapshotOnMigrate: false,
      silent: true,
    },
    logger: (message) => log.debug(message),
  });
  const pool = (await orm.em.getConnection().getNativeClient()) as pg.Pool;
  const checkedOut = new Set<pg.PoolClient>();
  pool.on("acquire", (client) => checkedOut.add(client));
  pool.on("release", (_error, client) => checkedOut.delete(client));
  const poolBackendPids = new Set<number>();
  pool.on("connect", (client) => poolBackendPids.add(backendPidOf(client)));
  pool.on("remove", (client) => poolBackendPids.delete(backendPidOf(client)));
  return {
    orm,
    pool,
    poolBackendPids,
    async migrate() {
      const applied = await orm.migrator.up();
      return applied.map((m) => m.name);
    },
    async isMigrated() {
      return (await orm.migrator.getPending()).length === 0;
    },
    async close(graceMs = 2_000) {
      const closed = orm.close(true);
      let timer: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([
        closed.then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
      ]);
      clearTimeout(timer);
      if (inTime) return;
      const pids = [...checkedOut].map((client) => (client as unknown as { processID: number | null }).processID).filter((pid) => pid !== null);
      log.warn({ connections: pids.length }, "terminating database work that outlived the shutdown grace");
      const terminator = new pg.Client({ connectionString: options.url, application_name: "jobwire-shutdown" });
      try {
        await terminator.connect();
        await terminator.query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [pids]);
      } finally {
        await terminator.end().catch(() => undefined);
      }
      await closed;
    },
  };
}

export type { EntityManager };

/** The process id of a connected client's backend (set by Postgres's BackendKeyData). */
function backendPidOf(client: pg.PoolClient): number {
  return (client as pg.PoolClient & { processID: number }).processID;
}
