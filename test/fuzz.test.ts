import type { JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it } from "vitest";
import { formatReport, runFuzz } from "./fuzz/fuzz-run.js";
import { createFuzzerKey } from "./fuzz/fuzzer-key.js";
import { fuzzedServices } from "./fuzz/rpc-catalog.js";
import { fuzzServerConfig } from "./fuzz/server-config.js";
import { buildNeighbour, withNeighbourIds } from "./fuzz/neighbour.js";
import { buildWorld, type FuzzWorld } from "./fuzz/world.js";
import { startTestServer } from "./support/server.js";

let server: JobwireServer;
let apiKey: string;
let world: FuzzWorld;

beforeAll(async () => {
  server = await startTestServer(fuzzServerConfig);
  apiKey = await createFuzzerKey(server);
  // The neighbour is built first: the fuzzed world's event cursors then come after its events.
  const neighbour = await buildNeighbour(server);
  world = withNeighbourIds(await buildWorld(server.url, apiKey), neighbour);
});

/**
 * A short run of the property-based fuzzer (`npm run fuzz` runs 10,000 cases). The seed is
 * random unless FUZZ_SEED is set; a failure prints it, so `FUZZ_SEED=<seed> npm run fuzz`
 * repeats the run.
 */
describe("fuzzing every RPC with valid-looking and hostile requests", () => {
  it("answers only successes and well-formed errors with known codes, writes nothing when it refuses, never touches another namespace, and stays up", async () => {
    const report = await runFuzz({
      baseUrl: server.url,
      pool: server.db.pool,
      apiKey,
      world,
      numRuns: 300,
      seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined,
    });

    expect(report.failures, formatReport(report)).toEqual([]);
    expect(report.cases).toBe(300);
    // Every RPC of every fuzzed service got cases.
    const rpcs = fuzzedServices.flatMap((service) => service.methods.map((method) => `${service.typeName}/${method.name}`));
    expect(Object.keys(report.perRpc).sort()).toEqual(rpcs.sort());
  });
});
