import { readFileSync } from "node:fs";

/**
 * The peak resident set size of a live process in bytes: `VmHWM` ("high water mark") from
 * `/proc/<pid>/status`, which the kernel keeps for the whole life of the process. Sampled
 * once at the end of a workload, it is the peak over the workload. `undefined` when the
 * process is gone or the platform has no `/proc`.
 */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
