import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Workspace packages resolve to their TypeScript sources (see the `source` export
    // condition in sdk/package.json), so tests never run stale builds.
    conditions: ["source"],
  },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  environments: {
    ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
    client: { resolve: { conditions: ["source"] } },
  },
  test: {
    include: ["**/*.test.ts"],
    globalSetup: ["./support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files run in parallel, each on its own database; two cores here, so two at a time.
    maxWorkers: 2,
    allowOnly: false,
    passWithNoTests: false,
  },
});
