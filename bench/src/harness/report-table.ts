import { metrics, type MetricId, type MetricSpec } from "../workloads/metrics.js";
import type { Subject } from "../workloads/workload.js";
import { formatRatio, formatValue, pad } from "./format.js";
import type { Results } from "./results.js";

/** What the table needs besides the results. */
export interface TableInput {
  results: Results;
  /** Jobwire first, then the peers; each peer's cell carries the ratio Jobwire / peer. */
  columns: readonly Subject[];
  /** Workloads skipped in this run (by id), e.g. the backlog in quick mode. */
  skipped: ReadonlySet<string>;
}

/**
 * The results table: a row per metric (the workload number first), a column per
 * system with the median of the repetitions, and in each peer's cell the ratio of Jobwire's
 * median to the peer's. Arrows say which way is better; `*` marks a value with a caveat
 * (listed under the table). The raw ceiling is not a row: it is
 * printed under the table as the bound.
 */
export function renderTable({ results, columns, skipped }: TableInput): string {
  const [reference, ...peers] = columns;
  if (!reference) return "(no systems ran)";
  const rows = (Object.entries(metrics) as [MetricId, MetricSpec][]).filter(([id]) => id !== "ceiling");
  const header = ["workload (median)", "unit", reference.label, ...peers.map((peer) => `${peer.label} (ratio)`)];
  const body = rows.map(([id, spec]) => {
    const referenceMedian = results.median(id, reference.id);
    const mark = (subject: Subject) => (results.annotated(id, subject.id) ? "*" : "");
    const cells = [spec.label, `${spec.unit} ${spec.better === "higher" ? "↑" : "↓"}`];
    cells.push(referenceMedian !== undefined ? formatValue(referenceMedian, spec) + mark(reference) : emptyCell(results, spec, reference, skipped, true));
    for (const peer of peers) {
      const peerMedian = results.median(id, peer.id);
      if (peerMedian === undefined) cells.push(emptyCell(results, spec, peer, skipped, false));
      else if (referenceMedian === undefined || peerMedian === 0) cells.push(formatValue(peerMedian, spec) + mark(peer));
      else cells.push(`${formatValue(peerMedian, spec)}${mark(peer)} (${formatRatio(referenceMedian / peerMedian)})`);
    }
    return cells;
  });
  const widths = header.map((title, i) => Math.max(title.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => pad(cell, widths[i]!, i < 2 ? "left" : "right")).join("  ").trimEnd();
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...body.map(line)].join("\n");
}

/** What a cell without a value says, and why. */
function emptyCell(results: Results, spec: MetricSpec, subject: Subject, skipped: ReadonlySet<string>, isReference: boolean): string {
  if (results.notRunReason(subject.id)) return "not run";
  if (results.failed(spec.workload, subject.id)) return "FAILED";
  if (skipped.has(spec.workload)) return isReference ? "skipped" : "-";
  // Rows that only some systems have: workload 6, the memory of a server process.
  return "-";
}
