import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Where `--profile` has Node write the CPU profiles of the processes the harness starts; unset without it. */
let profileDir: string | undefined;
/** What the harness is running now, to label the processes it starts. */
let currentLabel = "";
/** Each profiled process: pid → its name and what it ran for. */
const profiled = new Map<number, { name: string; label: string }>();

/** From now on, Node processes the harness starts write a CPU profile (`--cpu-prof`) into `dir` when they exit. */
export function enableCpuProfiles(dir: string): void {
  profileDir = dir;
}

/** Labels the processes started from now on (e.g. `processing 1/3`), for the summary. */
export function labelProfiledProcesses(label: string): void {
  currentLabel = label;
}

/** The flags that make a Node process write its CPU profile, if `--profile` is on; none otherwise. */
export function cpuProfileFlags(): string[] {
  return profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
}

/** Remembers which process `pid` is, so that its profile can be named. */
export function recordProfiledProcess(pid: number, name: string): void {
  if (profileDir) profiled.set(pid, { name, label: currentLabel });
}

/** Where one profiled process spent its CPU time. */
export interface CpuProfileSummary {
  process: string;
  label: string;
  file: string;
  /** Wall time the profile covers, and the part of it not idle, in ms. */
  totalMs: number;
  busyMs: number;
  /** Busy time by where the code comes from (a package, Node's own code, this repo's files, GC), largest first, in ms. */
  bySource: { source: string; ms: number }[];
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Reads every profile written so far and sums each one's samples by source. */
export function summarizeCpuProfiles(): CpuProfileSummary[] {
  if (!profileDir) return [];
  const summaries: CpuProfileSummary[] = [];
  for (const file of readdirSync(profileDir).filter((name) => name.endsWith(".cpuprofile")).sort()) {
    // Node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
    const pid = Number(file.split(".")[3]);
    const who = profiled.get(pid) ?? { name: `pid ${pid}`, label: "" };
    const profile = JSON.parse(readFileSync(join(profileDir, file), "utf8")) as CpuProfile;
    const sourceOf = new Map(profile.nodes.map((node) => [node.id, sourceOfFrame(node.callFrame)]));
    const bySource = new Map<string, number>();
    let totalUs = 0;
    profile.samples.forEach((id, i) => {
      const us = profile.timeDeltas[i] ?? 0;
      totalUs += us;
      const source = sourceOf.get(id) ?? "(unknown)";
      bySource.set(source, (bySource.get(source) ?? 0) + us);
    });
    const idleUs = bySource.get("(idle)") ?? 0;
    bySource.delete("(idle)");
    summaries.push({
      process: who.name,
      label: who.label,
      file: join(profileDir, file),
      totalMs: totalUs / 1000,
      busyMs: (totalUs - idleUs) / 1000,
      bySource: [...bySource].map(([source, us]) => ({ source, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
    });
  }
  return summaries;
}

/** A package under node_modules, one of Node's own modules, a file of this repo, or V8's own entries (GC, idle, program). */
function sourceOfFrame({ functionName, url }: { functionName: string; url: string }): string {
  if (!url) return functionName.startsWith("(") ? functionName : `native ${functionName}`;
  // The innermost package: a dependency nested in another's node_modules is itself.
  const inPackage = [...url.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)].at(-1);
  if (inPackage) return inPackage[1]!;
  // Node's own modules by name: node:internal/http2/core → node:http2.
  if (url.startsWith("node:")) return `node:${url.replace(/^node:(internal\/)?/, "").split("/")[0]}`;
  const inRepo = /\/(server|sdk|bench)\/src\/(.*)$/.exec(url);
  return inRepo ? `${inRepo[1]}/src/${inRepo[2]}` : url;
}

/** The summary as report lines: per process, its busy time and the sources that took at least 2% of it. */
export function renderCpuProfiles(summaries: readonly CpuProfileSummary[]): string {
  if (summaries.length === 0) return "";
  const lines = ["CPU profiles (--profile; profiling slows every process, so this run's numbers are not comparable with others):"];
  for (const summary of summaries) {
    const share = (ms: number) => `${((ms / summary.busyMs) * 100).toFixed(0)}%`;
    const top = summary.bySource.filter((entry) => entry.ms >= summary.busyMs * 0.02).slice(0, 12);
    lines.push(
      `- ${summary.process}${summary.label ? ` (${summary.label})` : ""}: busy ${(summary.busyMs / 1000).toFixed(1)} s of ${(summary.totalMs / 1000).toFixed(1)} s`,
      `    ${top.map((entry) => `${entry.source} ${share(entry.ms)}`).join(", ")}`,
    );
  }
  return lines.join("\n");
}
