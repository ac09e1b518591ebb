import type { MetricSpec } from "../workloads/metrics.js";

/** A value in its metric's unit: rates as whole numbers with separators, milliseconds to 2 decimals. */
export function formatValue(value: number, spec: MetricSpec): string {
  switch (spec.unit) {
    case "jobs/s":
    case "MB":
    case "µs":
      return Math.round(value).toLocaleString("en-US");
    case "ms":
      return value < 100 ? value.toFixed(2) : Math.round(value).toLocaleString("en-US");
    default:
      return value.toFixed(2);
  }
}

/** A ratio such as `1.52x`. */
export function formatRatio(ratio: number): string {
  return `${ratio >= 100 ? Math.round(ratio) : ratio.toFixed(2)}x`;
}

/** Pads `text` to `width` on the right (`left`) or the left. */
export function pad(text: string, width: number, align: "left" | "right"): string {
  return align === "left" ? text.padEnd(width) : text.padStart(width);
}
