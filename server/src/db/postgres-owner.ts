import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The process that started a Postgres, if it still runs. */
export interface PostgresOwner {
  pid: number;
  command: string;
}

/**
 * The live Node process that started the Postgres whose postmaster is `postmasterPid`: the
 * embedded Postgres of a server that still runs on the same data folder. Undefined when that
 * Postgres is an orphan (a server that died without stopping it: its parent is now init, or
 * a subreaper that is not Node), or is gone. Reads `/proc` on Linux, asks `ps` elsewhere.
 */
export async function livePostgresOwner(postmasterPid: number): Promise<PostgresOwner | undefined> {
  const parent = await parentOf(postmasterPid);
  if (parent === undefined || parent <= 1) return undefined;
  const command = await commandOf(parent);
  return command !== undefined && /\bnode(js)?\b/.test(command) ? { pid: parent, command } : undefined;
}

async function parentOf(pid: number): Promise<number | undefined> {
  try {
    if (process.platform === "linux") {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      // "pid (comm) state ppid …": comm may hold spaces and parentheses; read past the last ")".
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    }
    const parent = Number((await run("ps", ["-o", "ppid=", "-p", String(pid)])).stdout.trim());
    return Number.isInteger(parent) && parent > 0 ? parent : undefined;
  } catch {
    return undefined;
  }
}

async function commandOf(pid: number): Promise<string | undefined> {
  try {
    if (process.platform === "linux") return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ").trim();
    return (await run("ps", ["-o", "command=", "-p", String(pid)])).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}
