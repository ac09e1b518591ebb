import type { BenchSystem } from "../systems/bench-system.js";
import { postgresAlone } from "../workloads/ceiling.js";
import { concurrencyKeyPairs } from "../workloads/concurrency-key.js";
import { metrics } from "../workloads/metrics.js";
import { formatValue } from "./format.js";
import type { MachineInfo } from "./machine.js";
import type { BenchOptions } from "./options.js";
import { renderTable } from "./report-table.js";
import type { Results } from "./results.js";
import { renderTargets, type TargetCheck } from "./targets.js";

/** Everything the printed report shows. */
export interface ReportInput {
  options: BenchOptions;
  machine: MachineInfo;
  postgres: { version: string; settings: Readonly<Record<string, string>> };
  redisVersion: string | undefined;
  /** Every system of the run, those not run included. */
  systems: readonly BenchSystem[];
  results: Results;
  targets: readonly TargetCheck[];
  /** Workloads skipped in this run, with why. */
  skipped: ReadonlyMap<string, string>;
  durationMs: number;
}

/** The report printed at the end of `npm run bench`: setup, table, bound, targets, configurations. */
export function renderReport(input: ReportInput): string {
  const { options, machine, postgres, results } = input;
  const s = options.sizes;
  const n = (value: number) => value.toLocaleString("en-US");
  const ceiling = results.median("ceiling", postgresAlone.id);
  const sections = [
    `Jobwire benchmarks, ${options.quick ? "QUICK mode (smaller sizes, 1 repetition, no 1,000,000-job backlog)" : "full run"}, ` +
      `${options.repetitions} repetition(s) interleaved (6a: ${concurrencyKeyPairs(options.repetitions)} keyed / plain pair(s)), medians shown; took ${took(input.durationMs)}`,
    `machine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.kernel}, Node ${machine.node}`,
    `postgres ${postgres.version} (embedded, shared by Jobwire, graphile-worker and pg-boss; a fresh database per system and workload): ` +
      Object.entries(postgres.settings).filter(([name]) => name !== "server_version").map(([name, value]) => `${name}=${value}`).join(", "),
    `redis: ${input.redisVersion ?? "not installed"}`,
    `sizes: enqueue ${n(s.enqueueEach)} one call each (${s.inFlight} in flight) and ${n(s.enqueueBatches)} in batches of ${n(s.batchSize)}; ` +
      `processing ${n(s.processing)} pre-enqueued at concurrency ${s.concurrency}; latency ${n(s.latency)} jobs at ${s.latencyPerSecond}/s; ` +
      (s.backlog ? `backlog ${n(s.backlog.total)} (first ${n(s.backlog.measured)} timed, ${s.backlog.repetitions} repetition); ` : "no backlog; ") +
      `raw ceiling ${n(s.ceiling)} lifecycles`,
    "",
    renderTable({
      results,
      columns: input.systems.map((system) => ({ id: system.id, label: system.label })),
      skipped: new Set(input.skipped.keys()),
    }),
    ...results.notes.map((entry) => `* ${metrics[entry.metric].label}, ${labelOf(input.systems, entry.system)}: ${entry.note}`),
    "",
    `bound: ${metrics.ceiling.label}: ${ceiling === undefined ? "not measured" : `${formatValue(ceiling, metrics.ceiling)} jobs/s`}`,
    ...[...input.skipped].map(([workload, reason]) => `skipped: ${workload}: ${reason}`),
    "",
    "targets (reported, not asserted):",
    renderTargets(input.targets),
    "",
    "configurations:",
    ...input.systems.flatMap((system) => [
      `  ${system.label} — ${system.version}${results.notRunReason(system.id) ? ` — NOT RUN: ${results.notRunReason(system.id)}` : ""}`,
      ...system.configuration.map((line) => `    - ${line}`),
    ]),
  ];
  if (results.failures.length > 0) {
    sections.push("", `FAILED runs (${results.failures.length}):`);
    for (const failure of results.failures) {
      sections.push(`  ${failure.workload} on ${failure.system}, repetition ${failure.repetition}: ${failure.message.split("\n")[0]}`);
    }
  }
  return sections.join("\n");
}

function labelOf(systems: readonly BenchSystem[], id: string): string {
  return systems.find((system) => system.id === id)?.label ?? id;
}

function took(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 60_000).toFixed(1)} min`;
}
