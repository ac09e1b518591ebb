import { readdirSync, readFileSync } from "node:fs";

/** `USER_HZ`: the unit of the CPU times in `/proc` (100 on every Linux this runs on). */
const ticksPerSecond = 100;

/** CPU time used on this machine so far, in `/proc`'s clock ticks. */
export interface CpuTicks {
  /** By every process named `postgres`: the server, its backends and its background workers. */
  postgres: number;
  /** By every Node process (Node 24 names its main thread `MainThread`): servers, workers and this harness. */
  node: number;
  /** By the whole machine, all processes and the kernel (`/proc/stat`: user, nice, system, irq, softirq). */
  machine: number;
}

/** CPU time a job took, in microseconds, split as {@link CpuTicks}. */
export type CpuPerJob = CpuTicks;

/**
 * Reads {@link CpuTicks} from `/proc`; `undefined` where there is none. A process that ends
 * between two readings takes its time with it, so read around a span in which the processes
 * that matter live throughout (a drain: its server and worker run before and after it).
 */
export function readCpuTicks(): CpuTicks | undefined {
  let machineLine: string;
  try {
    machineLine = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice: what ran here is
  // user, nice, system, irq and softirq (steal ran elsewhere; guest is already in user).
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = machineLine.trim().split(/\s+/).slice(1).map(Number);
  const machine = user + nice + system + irq + softirq;
  let postgres = 0;
  let node = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const used = processTicks(entry);
    if (!used) continue;
    if (used.name === "postgres") postgres += used.ticks;
    else if (used.name === "node" || used.name === "MainThread") node += used.ticks;
  }
  return { postgres, node, machine };
}

/** The CPU each of `jobs` took between two readings, in microseconds; `undefined` without both. */
export function cpuPerJob(before: CpuTicks | undefined, after: CpuTicks | undefined, jobs: number): CpuPerJob | undefined {
  if (!before || !after || jobs <= 0) return undefined;
  const micros = (ticks: number) => (ticks * 1_000_000) / ticksPerSecond / jobs;
  return {
    postgres: micros(after.postgres - before.postgres),
    node: micros(after.node - before.node),
    machine: micros(after.machine - before.machine),
  };
}

/** A process's name and its user plus system time, from `/proc/<pid>/stat`; undefined if it is gone. */
function processTicks(pid: string): { name: string; ticks: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The name is in parentheses and may hold spaces; the fields after it are space-separated.
  const close = stat.lastIndexOf(")");
  const fields = stat.slice(close + 2).split(" ");
  // After the name: state (0) … utime (11), stime (12).
  return { name: stat.slice(stat.indexOf("(") + 1, close), ticks: Number(fields[11]) + Number(fields[12]) };
}
