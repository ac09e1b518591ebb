import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import { type ExitStatus } from "./server-process.js";
import { withTimeout } from "./with-timeout.js";

const testRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const fixture = join(testRoot, "fixtures/worker-process.ts");

/** What a handler of a kind does in the worker process (see `fixtures/worker-process.ts`). */
export type WorkerHandlerMode = "noop" | "block-until-killed";

/** One JSON line the worker process wrote on stdout. */
export interface WorkerLine {
  event: "registered" | "started" | "aborted" | "finished" | "stopped";
  pid: number;
  workerId?: string;
  jobId?: string;
  kind?: string;
  attempt?: number;
  reason?: string;
  [field: string]: unknown;
}

/** Options of {@link startWorkerProcess}. */
export interface WorkerProcessOptions {
  /** The server's `http://host:port`. */
  url: string;
  queues: string[];
  /** Job kind → what its handler does. */
  handlers: Record<string, WorkerHandlerMode>;
  /** The worker's capacity. Default 10. */
  concurrency?: number;
  /** How long to wait for the `registered` line. Default 30 s (the process compiles TypeScript first). */
  registeredTimeoutMs?: number;
}

/** A worker running as its own OS process; see {@link startWorkerProcess}. */
export interface WorkerProcess {
  readonly pid: number;
  /** The id the server gave its stream, from the `registered` line. */
  readonly workerId: string;
  /** Every line written so far, in order. */
  readonly lines: readonly WorkerLine[];
  /** Everything the process wrote, stdout and stderr, for failure messages. */
  output(): string;
  /** Resolves with the first line (already written or still to come) that matches. */
  waitForLine(match: (line: WorkerLine) => boolean, description: string, timeoutMs?: number): Promise<WorkerLine>;
  /** Resolves with `count` distinct lines that match, in order of arrival. */
  waitForLines(count: number, match: (line: WorkerLine) => boolean, description: string, timeoutMs?: number): Promise<WorkerLine[]>;
  /** Resolves once the process has exited and its output is closed. */
  readonly exited: Promise<ExitStatus>;
  /** Kills it with SIGKILL (no cleanup, no report reaches the server) and waits until it is gone. */
  kill(timeoutMs?: number): Promise<ExitStatus>;
  /** Sends SIGTERM (the worker shuts down gracefully) and waits for the exit. */
  stop(timeoutMs?: number): Promise<ExitStatus>;
}

const live = new Set<ChildProcess>();

afterAll(async () => {
  await Promise.all(
    [...live].map(async (child) => {
      const gone = new Promise<void>((resolveGone) => child.once("close", () => resolveGone()));
      child.kill("SIGKILL");
      await withTimeout(gone, 10_000, `worker process ${child.pid} to die after SIGKILL`);
    }),
  );
});
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Starts `fixtures/worker-process.ts` on the Node that runs the tests, as the server
 * process is started, and resolves once it printed `registered`; fails with its whole
 * output if it exits first or the timeout passes. It is killed after the file's tests if
 * still running.
 */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture], {
    cwd: testRoot,
    env: {
      ...process.env,
      JOBWIRE_URL: options.url,
      JOBWIRE_WORKER_QUEUES: options.queues.join(","),
      JOBWIRE_WORKER_HANDLERS: JSON.stringify(options.handlers),
      JOBWIRE_WORKER_CONCURRENCY: String(options.concurrency ?? 10),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);

  const lines: WorkerLine[] = [];
  let output = "";
  const waiters = new Set<() => void>();
  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolveExit, rejectExit) => {
    child.once("error", rejectExit);
    child.once("close", (code, signal) => {
      live.delete(child);
      exitStatus = { code, signal };
      resolveExit(exitStatus);
    });
  });
  exited.catch(() => undefined);

  let pending = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
    pending += chunk;
    const texts = pending.split("\n");
    pending = texts.pop() ?? "";
    for (const text of texts) {
      if (!text.startsWith("{")) continue;
      try {
        lines.push(JSON.parse(text) as WorkerLine);
      } catch {
        // Not one of the fixture's lines; it stays in output() for failure messages.
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));

  const describe = () => `worker process ${child.pid} (${exitStatus ? `exited ${JSON.stringify(exitStatus)}` : "running"}); its output:\n${output}`;

  const waitForLines = (count: number, match: (line: WorkerLine) => boolean, description: string, timeoutMs = 20_000): Promise<WorkerLine[]> => {
    let wake: (() => void) | undefined;
    const found = new Promise<WorkerLine[]>((resolveFound) => {
      const check = () => {
        const matching = lines.filter(match);
        if (matching.length < count) return false;
        resolveFound(matching.slice(0, count));
        return true;
      };
      if (check()) return;
      wake = () => {
        if (check() && wake) waiters.delete(wake);
      };
      waiters.add(wake);
    });
    const exitedFirst = exited.then((status) => {
      // Lines written just before the exit have been read by now: look once more.
      if (lines.filter(match).length >= count) return lines.filter(match).slice(0, count);
      throw new Error(`worker process exited (${JSON.stringify(status)}) before writing ${description}; ${describe()}`);
    });
    return withTimeout(Promise.race([found, exitedFirst]), timeoutMs, () => `${description}; ${describe()}`).finally(() => {
      if (wake) waiters.delete(wake);
    });
  };
  const waitForLine = async (match: (line: WorkerLine) => boolean, description: string, timeoutMs?: number) =>
    (await waitForLines(1, match, description, timeoutMs))[0]!;

  let registered: WorkerLine;
  try {
    registered = await waitForLine((line) => line.event === "registered", "the registered line", options.registeredTimeoutMs ?? 30_000);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }

  const signalAndWait = (signal: NodeJS.Signals, timeoutMs: number) => {
    if (!exitStatus) child.kill(signal);
    return withTimeout(exited, timeoutMs, () => `exit after ${signal}; ${describe()}`);
  };
  return {
    pid: child.pid!,
    workerId: registered.workerId!,
    lines,
    output: () => output,
    waitForLine,
    waitForLines,
    exited,
    kill: (timeoutMs = 10_000) => signalAndWait("SIGKILL", timeoutMs),
    stop: (timeoutMs = 20_000) => signalAndWait("SIGTERM", timeoutMs),
  };
}
