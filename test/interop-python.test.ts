import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { JobState } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { startByteCountingRelay } from "./support/byte-counting-relay.js";
import { grpcQueueClient } from "./support/clients.js";
import { startTestServer } from "./support/server.js";

/**
 * Debian's interpreter, where `python3-grpcio` and `python3-protobuf` install; the
 * `python3` first on PATH may be another one (pyenv) without them.
 */
const python = "/usr/bin/python3";
const interopScript = fileURLToPath(new URL("./python/jobwire_interop.py", import.meta.url));
const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const buf = join(repoRoot, "node_modules", ".bin", "buf");
/** How long one child process (buf, a Python scenario) may run before the test fails. */
const processTimeoutMs = 30_000;

/** What a finished child process left behind. */
interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to its exit, asynchronously: the server runs in this very process, so a
 * synchronous spawn would block it and every call would hit its deadline. Killed, and the
 * promise rejected, after {@link processTimeoutMs}.
 */
function runProcess(file: string, args: string[], cwd = repoRoot): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, signal: AbortSignal.timeout(processTimeoutMs), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", (error) => reject(new Error(`${file} ${args.join(" ")} failed to run: ${error.message}\n${stderr}`)));
    child.once("close", (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
  });
}

let pythonChecked: Promise<void> | undefined;

/**
 * Fails, saying what to install, when Debian's Python cannot import grpc and protobuf.
 * Nothing is skipped in this project: locally as in CI (where .ci/run installs them), a
 * missing package is a failure with the fix in its message.
 */
function requirePythonGrpc(): Promise<void> {
  pythonChecked ??= (async () => {
    const result = await runProcess(python, ["-I", "-c", "import grpc, google.protobuf"]).catch((error: Error) => ({
      exitCode: null,
      signal: null,
      stdout: "",
      stderr: error.message,
    }));
    if (result.exitCode !== 0) {
      throw new Error(
        `${python} cannot import grpc and google.protobuf, which the Python interop tests need.\n` +
          `Install Debian's packages: apt-get install python3-grpcio python3-protobuf\n` +
          `(${result.stderr.trim().split("\n").at(-1)})`,
      );
    }
  })();
  return pythonChecked;
}

let server: JobwireServer;
let image: string;

beforeAll(async () => {
  server = await startTestServer();
  const dir = await mkdtemp(join(tmpdir(), "jobwire-interop-python-"));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  // The contract as a FileDescriptorSet with its imports (google/protobuf/*), so the Python
  // side builds its message classes at run time with no code generation.
  image = join(dir, "jobwire.binpb");
  const built = await runProcess(buf, ["build", "proto", "--as-file-descriptor-set", "-o", image]);
  if (built.exitCode !== 0) throw new Error(`buf build failed (exit ${built.exitCode}):\n${built.stderr}`);
});

/**
 * Runs one scenario of test/python/jobwire_interop.py against `target` (host:port) and
 * returns the JSON summary it printed; a failed run fails the test with Python's traceback.
 */
async function runScenario(scenario: string, target = `127.0.0.1:${server.port}`): Promise<Record<string, any>> {
  await requirePythonGrpc();
  // -I: only Debian's dist-packages, whatever PYTHONPATH or a user site holds.
  const result = await runProcess(python, ["-I", interopScript, scenario, "--target", target, "--image", image]);
  if (result.exitCode !== 0) {
    throw new Error(`python scenario ${scenario} exited with ${result.exitCode ?? result.signal}:\n${result.stderr}${result.stdout}`);
  }
  return JSON.parse(result.stdout) as Record<string, any>;
}

describe("a Python grpcio client (Debian), from a descriptor set with no code generation", () => {
  it("enqueues a job with a JSON payload, metadata and phases, then gets, lists and cancels it", async () => {
    const summary = await runScenario("lifecycle");
    const { enqueued, got, cancelled, afterCancel } = summary;
    expect(enqueued.state).toBe("JOB_STATE_PENDING");
    expect(got.id).toBe(enqueued.id);
    expect(got.payload).toEqual(summary.sentPayload);
    expect(got.metadata).toEqual({ tenant: "acme", run: summary.run });
    expect(got.priority).toBe(5);
    expect(got.owner).toBe("local");
    expect(got.phases).toEqual([
      { name: "render", state: "PHASE_STATE_PENDING" },
      { name: "send", state: "PHASE_STATE_PENDING" },
    ]);
    expect(summary.listedIds).toEqual([enqueued.id]);
    expect(cancelled.state).toBe("JOB_STATE_CANCELLED");
    expect(cancelled.cancelReason).toBe("not needed");
    expect(cancelled.phases.map((phase: { state: string }) => phase.state)).toEqual(["PHASE_STATE_CANCELLED", "PHASE_STATE_CANCELLED"]);
    expect(afterCancel.state).toBe("JOB_STATE_CANCELLED");

    // What Python encoded, a TypeScript client reads back the same.
    const { job } = await grpcQueueClient(server.url).getJob({ id: enqueued.id });
    expect(job?.state).toBe(JobState.CANCELLED);
    expect(job?.payload && toJson(ValueSchema, job.payload)).toEqual(summary.sentPayload);
    expect(job?.metadata).toEqual({ tenant: "acme", run: summary.run });
  });

  it("gets INVALID_ARGUMENT with details naming the field, and NOT_FOUND for an unknown job id", async () => {
    const { emptyQueue, duplicatePhase, badJobId, unknownJob } = await runScenario("errors");
    expect(emptyQueue.code).toBe("INVALID_ARGUMENT");
    expect(emptyQueue.details).toBe("job.queue is required");
    expect(duplicatePhase.code).toBe("INVALID_ARGUMENT");
    expect(duplicatePhase.details).toBe('job.phases[1] duplicates phase "a"');
    expect(badJobId.code).toBe("INVALID_ARGUMENT");
    expect(badJobId.details).toBe("id must be a job id (a UUID)");
    expect(unknownJob.code).toBe("NOT_FOUND");
  });

  it("sends custom metadata and gzip-compressed requests, and gets gzip-compressed responses", async () => {
    const relay = await startByteCountingRelay("127.0.0.1", server.port);
    onTestFinished(() => relay.close());
    const summary = await runScenario("gzip-and-metadata", relay.target);
    expect(summary.enqueueCode).toBe("OK");
    expect(summary.getCode).toBe("OK");
    expect(summary.payloadRoundTrips).toBe(true);
    // The payload crossed the relay once each way (Enqueue up, GetJob down); uncompressed it
    // alone would be over 256 KiB, gzipped it is about 1 KiB.
    expect(summary.payloadJsonBytes).toBeGreaterThan(256 * 1024);
    expect(relay.bytesToServer()).toBeLessThan(32 * 1024);
    expect(relay.bytesToClient()).toBeLessThan(32 * 1024);
  });

  it("sees SERVING through grpc.health.v1 Check and the first message of Watch", async () => {
    const summary = await runScenario("health-watch");
    expect(summary.server).toBe("SERVING");
    expect(summary.queueService).toBe("SERVING");
    expect(summary.unknown.code).toBe("NOT_FOUND");
    expect(summary.watchFirst).toBe("SERVING");
    expect(summary.watchEndedAs).toBe("CANCELLED");
  });
});
