import { readFileSync } from "node:fs";
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

/**
 * The `node` arguments of the Jobwire server process: the flags of the server's `npm start`
 * script (read from `server/package.json`, so that the bench runs the server as users start
 * it) and the entry. Fails loudly if the script no longer has the shape `node <flags>
 * src/main.ts`.
 */
export function jobwireServerArgs(): string[] {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "server/package.json"), "utf8")) as { scripts?: { start?: string } };
  const words = (manifest.scripts?.start ?? "").trim().split(/\s+/);
  if (words[0] !== "node" || words.at(-1) !== "src/main.ts") {
    throw new Error(`server/package.json's start script is not "node <flags> src/main.ts": ${manifest.scripts?.start}`);
  }
  return [...words.slice(1, -1), jobwireServerEntry];
}

/** Where each run writes its JSON (git-ignored). */
export const resultsDir = join(benchRoot, "results");

/** The `node` arguments that run a TypeScript entry from source, as `npm start` does. */
export function tsNodeArgs(entry: string): string[] {
  return ["--conditions=source", "--import", "tsx", entry];
}
