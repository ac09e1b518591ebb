import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file lives in `bench/src/harness`). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The bench workspace, `repoRoot/bench`. */
export const benchRoot = join(repoRoot, "bench");

/** The bench sources, where every role script lives. */
export const benchSources = join(benchRoot, "src");

/**
 * The project's Node 24 (the `node` devDependency). Every process the harness starts runs on
 * it, never on the machine's older system Node.
 */
export const nodeBinary = join(repoRoot, "node_modules/.bin/node");

/** The Jobwire server's process entry, run exactly as `npm start` runs it. */
export const jobwireServerEntry = join(repoRoot, "server/src/main.ts");

/** Where each run writes its JSON (git-ignored). */
export const resultsDir = join(benchRoot, "results");

/** The `node` arguments that run a TypeScript entry from source, as `npm start` does. */
export function tsNodeArgs(entry: string): string[] {
  return ["--conditions=source", "--import", "tsx", entry];
}
