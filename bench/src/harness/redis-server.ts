import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { delimiter, join } from "node:path";
import { freePort } from "./free-port.js";
import { ManagedProcess } from "./managed-process.js";
import { withTimeout } from "./wait-for.js";

/**
 * How Redis keeps data: `none` (no RDB snapshots, no AOF: a crash loses everything) or
 * `aof-always` (`--appendonly yes --appendfsync always`: every write is fsynced before it
 * is acknowledged, the durability comparable to Postgres with synchronous_commit on).
 */
export type RedisPersistence = "none" | "aof-always";

/** The command that installs Debian's Redis, printed when it is missing. */
export const redisInstallCommand =
  userInfo().uid === 0 ? "apt-get update && apt-get install -y redis-server" : "sudo apt-get update && sudo apt-get install -y redis-server";

/**
 * Installs Debian's `redis-server` when the harness runs as root (as on CI and the project's
 * machines) and it is missing; returns the install's output on failure, undefined on success.
 * Without root, nothing is installed: the caller prints {@link redisInstallCommand}.
 */
export function installRedisServer(): string | undefined {
  if (userInfo().uid !== 0) return "not root: cannot install packages";
  try {
    execFileSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server"], {
      stdio: "pipe",
      timeout: 300_000,
    });
    // The package enables and starts a system service; the harness runs its own servers.
    execFileSync("sh", ["-c", "service redis-server stop >/dev/null 2>&1 || true"], { stdio: "ignore" });
    return undefined;
  } catch (error) {
    return String(error);
  }
}

/** The path of Debian's `redis-server`, or `undefined` when it is not installed. */
export function findRedisServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  return dirs.map((dir) => join(dir, "redis-server")).find((path) => existsSync(path));
}

/** `redis-server --version`, e.g. `7.0.15`. */
export function redisVersion(binary: string): string {
  const out = execFileSync(binary, ["--version"], { encoding: "utf8" });
  return /v=(\S+)/.exec(out)?.[1] ?? out.trim();
}

/** The `redis-server` flags of each persistence mode. */
export function redisFlags(persistence: RedisPersistence): string[] {
  return persistence === "none"
    ? ["--save", "", "--appendonly", "no"]
    : ["--save", "", "--appendonly", "yes", "--appendfsync", "always"];
}

/** A `redis-server` the harness started. */
export interface RedisInstance {
  /** `redis://127.0.0.1:port`. */
  readonly url: string;
  readonly process: ManagedProcess;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` on a free loopback port with its data in a fresh temporary folder,
 * and resolves once it logs that it accepts connections.
 */
export async function startRedis(binary: string, persistence: RedisPersistence): Promise<RedisInstance> {
  const dir = await mkdtemp(join(tmpdir(), "jobwire-bench-redis-"));
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no", "--logfile", "", ...redisFlags(persistence)];
  const process = ManagedProcess.start({ name: `redis-server (${persistence})`, command: binary, args });
  const ready = new Promise<void>((resolve) => process.onLine((line) => line.includes("Ready to accept connections") && resolve()));
  try {
    await withTimeout(Promise.race([ready, process.exited.then(() => Promise.reject(new Error(process.describe())))]), 15_000, "redis-server to accept connections", () => process.describe());
  } catch (error) {
    await process.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    process,
    async stop() {
      await process.stop();
      await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    },
  };
}
