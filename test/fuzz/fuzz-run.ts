import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@jobwire/sdk/gen/grpc/health/v1/health_pb";
import type pg from "pg";
import { binaryMutation, type BinaryMutation } from "./binary-mutations.js";
import { databaseFingerprint } from "./fingerprint.js";
import { neighbourFingerprint } from "./neighbour.js";
import { jsonMutation, type JsonMutation } from "./json-mutations.js";
import { fuzzedRpcs, type FuzzedRpc } from "./rpc-catalog.js";
import { acceptableErrorCodes, channels, Senders, type Channel, type Outcome } from "./senders.js";
import type { FuzzWorld } from "./world.js";

/** One generated case: a request for one RPC, the channel it goes over, and its raw mutations. */
export interface FuzzCase {
  rpc: FuzzedRpc;
  channel: Channel;
  request: Record<string, unknown>;
  json: JsonMutation;
  binary: BinaryMutation;
}

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  /** The server under test. */
  baseUrl: string;
  /** Its database, for the fingerprint. */
  pool: pg.Pool;
  /** The fuzzer's own admin key, sent with every request (`fuzzer-key.ts`). */
  apiKey: string;
  /** What exists there (see `world.ts`). */
  world: FuzzWorld;
  /** Cases to run. */
  numRuns: number;
  /** fast-check seed; random when unset. Printed, so a run can be repeated. */
  seed?: number;
  /** Called every `progressEvery` cases. */
  onProgress?: (done: number, report: FuzzReport) => void;
  progressEvery?: number;
  /** Called with a line per case, for debugging. */
  trace?: (line: string) => void;
  /** Stops the run early (the report says how many cases ran). */
  signal?: AbortSignal;
  /** Only these channels (default: all). */
  channels?: readonly Channel[];
  /** Only RPCs whose name contains one of these (default: all). */
  rpcFilter?: readonly string[];
}

/** One way the server misbehaved, with the first case that showed it. */
export interface FuzzFailure {
  /** What went wrong: `internal`, `malformed answer`, `wrote on rejection`, `unhealthy`, … */
  problem: string;
  rpc: string;
  channel: Channel;
  /** The outcome of the request. */
  outcome: Outcome;
  /** The request as generated (JSON-ish, clipped). */
  request: string;
  /** How many cases showed the same problem. */
  count: number;
}

/** What a run did. */
export interface FuzzReport {
  seed: number;
  cases: number;
  /** Cases by outcome code (`ok`, `invalid_argument`, …, `none` for unsendable). */
  outcomes: Record<string, number>;
  /** Cases per RPC. */
  perRpc: Record<string, number>;
  failures: FuzzFailure[];
  durationMs: number;
  /** The slowest answers, slowest first. */
  slowest: { ms: number; rpc: string; channel: Channel; code: string }[];
}

/** The generator of cases for these RPCs. */
export function fuzzCases(rpcs: FuzzedRpc[], over: readonly Channel[] = channels): fc.Arbitrary<FuzzCase> {
  return fc.constantFrom(...rpcs).chain((rpc) =>
    fc.record({ rpc: fc.constant(rpc), channel: fc.constantFrom(...over), request: rpc.requests, json: jsonMutation, binary: binaryMutation }),
  );
}

/**
 * Runs `numRuns` generated cases one after another against the server, the first of them
 * one for each RPC, and checks each:
 * the answer is a success or a well-formed Connect/gRPC error whose code is one a refused
 * request may get (never `internal`, `unknown`, `unavailable`, …, and never
 * `unauthenticated`: every case carries a valid admin key); a refused request left
 * the database fingerprint as it was; nothing of the neighbour namespace changed, whatever
 * the answer (see `neighbour.ts`); the health check answers SERVING afterwards.
 * Failures are collected, not thrown, so one run reports every kind of failure it met.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rpcs = fuzzedRpcs(options.world).filter((rpc) => !options.rpcFilter || options.rpcFilter.some((part) => rpc.name.includes(part)));
  const senders = new Senders(options.baseUrl, options.apiKey);
  const health = createClient(Health, createGrpcTransport({ baseUrl: options.baseUrl }));
  const report: FuzzReport = { seed, cases: 0, outcomes: {}, perRpc: {}, failures: [], durationMs: 0, slowest: [] };
  const byKey = new Map<string, FuzzFailure>();
  const fail = (problem: string, c: FuzzCase, outcome: Outcome) => {
    const key = `${problem}|${c.rpc.name}|${c.channel}|${outcome.code}|${(outcome.message ?? outcome.malformed ?? "").slice(0, 60)}`;
    const known = byKey.get(key);
    if (known) {
      known.count++;
      return;
    }
    const failure: FuzzFailure = { problem, rpc: c.rpc.name, channel: c.channel, outcome, request: describeRequest(c.request), count: 1 };
    byKey.set(key, failure);
    report.failures.push(failure);
  };

  let fingerprint = await databaseFingerprint(options.pool);
  let neighbour = await neighbourFingerprint(options.pool);
  const runCase = async (c: FuzzCase) => {
    if (options.signal?.aborted) return;
    const sentAt = performance.now();
    const outcome = await senders.send(c.rpc, c.channel, c.request, c.json, c.binary);
    const ms = Math.round(performance.now() - sentAt);
    if (report.slowest.length < 5 || ms > report.slowest.at(-1)!.ms) {
      report.slowest = [...report.slowest, { ms, rpc: c.rpc.name, channel: c.channel, code: outcome.code }].sort((a, b) => b.ms - a.ms).slice(0, 5);
    }
    report.cases++;
    report.outcomes[outcome.code] = (report.outcomes[outcome.code] ?? 0) + 1;
    report.perRpc[c.rpc.name] = (report.perRpc[c.rpc.name] ?? 0) + 1;
    options.trace?.(`#${report.cases} ${c.rpc.name} ${c.channel} ${outcome.code} ${(outcome.message ?? outcome.malformed ?? "").slice(0, 120)} ${describeRequest(c.request).slice(0, 200)}`);

    if (outcome.malformed) fail("malformed answer", c, outcome);
    // Every request carries the fuzzer's valid admin key: a refusal of it means a fuzzed
    // request revoked it or broke authentication, and every later case would be refused too.
    else if (outcome.code === "unauthenticated") fail("refused the fuzzer's own admin key", c, outcome);
    else if (outcome.code !== "ok" && outcome.code !== "none" && !acceptableErrorCodes.has(outcome.code)) fail(`answered ${outcome.code}`, c, outcome);

    const after = await databaseFingerprint(options.pool);
    if (outcome.code !== "ok" && after !== fingerprint) fail("changed the database although refused", c, { ...outcome, message: `${outcome.message ?? ""} [before ${fingerprint}; after ${after}]` });
    fingerprint = after;
    // Accepted or refused, nothing of another namespace may change.
    const neighbourAfter = await neighbourFingerprint(options.pool);
    if (neighbourAfter !== neighbour) fail("changed another namespace", c, { ...outcome, message: `${outcome.message ?? ""} [before ${neighbour}; after ${neighbourAfter}]` });
    neighbour = neighbourAfter;

    const status = await health.check({ service: "" }, { timeoutMs: 10_000 }).then(
      (answer) => answer.status,
      (error: unknown) => String(error),
    );
    if (status !== ServingStatus.SERVING) fail("health check failed afterwards", c, { ...outcome, message: `health: ${String(status)}` });

    if (options.onProgress && report.cases % (options.progressEvery ?? 1000) === 0) options.onProgress(report.cases, report);
  };
  // The property never fails: every problem is recorded instead, so that one run reports
  // all it found (and fast-check never has to print a value nested thousands deep).
  const property = fc.asyncProperty(fuzzCases(rpcs, options.channels), async (c) => {
    try {
      await runCase(c);
    } catch (error) {
      fail("fuzzer error", c, { code: "none", message: String((error as Error)?.stack ?? error) });
    }
  });
  try {
    // The first cases are one for each RPC (drawn from the same seed), so that even a short
    // run reaches every RPC (picked at random, 300 cases leave one of 46 RPCs out in about
    // one run of sixteen).
    const oneEach = rpcs.map((rpc, index) => fc.sample(fuzzCases([rpc], options.channels), { numRuns: 1, seed: seed + index })[0]!);
    await fc.assert(property, { numRuns: options.numRuns, seed, endOnFailure: true, examples: oneEach.slice(0, options.numRuns).map((c) => [c] as [FuzzCase]) });
  } finally {
    senders.close();
  }
  report.durationMs = Date.now() - started;
  return report;
}

/** A request as readable text: JSON-like, with bigints marked, long strings and lists cut, deep nesting elided. */
function describeRequest(request: Record<string, unknown>): string {
  const text = describeValue(request, 0);
  return text.length > 800 ? `${text.slice(0, 800)}…` : text;
}

function describeValue(value: unknown, depth: number): string {
  if (depth > 12) return "…";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : `"${value}"`;
  if (typeof value === "string") return JSON.stringify(value.length > 100 ? `${value.slice(0, 60)}… (${value.length} chars)` : value);
  if (value === null || value === undefined || typeof value !== "object") return String(value);
  if (value instanceof Uint8Array) return `bytes(${value.length})`;
  if (Array.isArray(value)) {
    const items = value.slice(0, 3).map((item) => describeValue(item, depth + 1));
    if (value.length > 3) items.push(`… (${value.length} entries)`);
    return `[${items.join(",")}]`;
  }
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  const shown = entries.slice(0, 12).map(([key, item]) => `${JSON.stringify(key)}:${describeValue(item, depth + 1)}`);
  if (entries.length > 12) shown.push(`… (${entries.length} keys)`);
  return `{${shown.join(",")}}`;
}

/** The report as lines of text: counts, then every failure with its example. */
export function formatReport(report: FuzzReport): string {
  const lines = [
    `fuzz: ${report.cases} cases in ${(report.durationMs / 1000).toFixed(1)} s (seed ${report.seed}), ${report.failures.length} kinds of failure`,
    `outcomes: ${Object.entries(report.outcomes).sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(", ")}`,
    `slowest answers: ${report.slowest.map((s) => `${s.ms} ms (${s.rpc.split(".").at(-1)} over ${s.channel}, ${s.code})`).join(", ")}`,
    `RPCs: ${Object.keys(report.perRpc).length} (${Object.entries(report.perRpc).map(([rpc, n]) => `${rpc.split(".").at(-1)} ${n}`).join(", ")})`,
  ];
  for (const failure of report.failures) {
    lines.push(
      "",
      `FAILURE (${failure.count}×): ${failure.problem} — ${failure.rpc} over ${failure.channel}`,
      `  outcome: ${failure.outcome.code}${failure.outcome.message ? ` "${failure.outcome.message.slice(0, 400)}"` : ""}${failure.outcome.malformed ? ` — ${failure.outcome.malformed.slice(0, 400)}` : ""}`,
      `  request: ${failure.request}`,
      ...(failure.outcome.sent ? [`  sent: ${failure.outcome.sent.slice(0, 400)}`] : []),
    );
  }
  return lines.join("\n");
}
