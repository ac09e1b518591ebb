import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { resultsDir } from "./paths.js";

/**
 * Writes the run's JSON to `bench/results/<timestamp>.json` (the folder is git-ignored) and
 * returns its path.
 */
export async function writeResultsFile(startedAt: Date, data: object): Promise<string> {
  await mkdir(resultsDir, { recursive: true });
  const path = join(resultsDir, `${resultsFileStem(startedAt)}.json`);
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

/** The run's files are named by when it started: `2026-12-06T08-27-10-732Z`. */
export function resultsFileStem(startedAt: Date): string {
  return startedAt.toISOString().replace(/[:.]/g, "-");
}
