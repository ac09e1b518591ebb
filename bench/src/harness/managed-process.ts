import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { cpuProfileFlags, recordProfiledProcess } from "./cpu-profiles.js";
import { nodeBinary } from "./paths.js";
import { peakRssBytes } from "./peak-rss.js";
import { withTimeout } from "./wait-for.js";

/** How a process ended: an exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of {@link ManagedProcess.start}. */
export interface ManagedProcessOptions {
  /** A short name for messages, e.g. `jobwire server`. */
  name: string;
  command: string;
  args: string[];
  /** Added to the harness's environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const outputLimit = 64 * 1024;
const live = new Set<ManagedProcess>();

/**
 * A child process the harness started: its output is kept (the last 64 KiB) for failure
 * messages, its stdout is offered line by line, and it is always ended, by {@link stop} or,
 * whatever happens to the run, by {@link killAllNow} on the way out.
 */
export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Resolves once the process has exited. */
  readonly exited: Promise<ExitStatus>;
  #status: ExitStatus | undefined;
  #output = "";
  readonly #child: ChildProcess;
  readonly #lineListeners: ((line: string) => void)[] = [];

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    if (child.pid === undefined) throw new Error(`${name}: could not start`);
    this.pid = child.pid;
    live.add(this);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      this.#remember(`${line}\n`);
      for (const listener of this.#lineListeners) listener(line);
    });
    child.stderr!.on("data", (chunk: Buffer) => this.#remember(chunk.toString()));
    // A role process that fails while the harness writes a command: the exit says more.
    child.stdin?.on("error", () => undefined);
    this.exited = new Promise<ExitStatus>((resolve) => {
      // "close", not "exit": by then stdout has been read to the end, last lines included.
      child.once("close", (code, signal) => {
        this.#status = { code, signal };
        live.delete(this);
        resolve(this.#status);
      });
    });
  }

  /** Starts `command` with stdin, stdout and stderr piped to the harness. */
  static start(options: ManagedProcessOptions): ManagedProcess {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [key, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    const args = options.command === nodeBinary ? [...cpuProfileFlags(), ...options.args] : options.args;
    const child = spawn(options.command, args, { cwd: options.cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    const started = new ManagedProcess(options.name, child);
    recordProfiledProcess(started.pid, options.name);
    return started;
  }

  /** How the process ended, or `undefined` while it runs. */
  get exitStatus(): ExitStatus | undefined {
    return this.#status;
  }

  /** The last 64 KiB the process wrote, stdout and stderr interleaved, for failure messages. */
  output(): string {
    return this.#output;
  }

  /** A failure message naming the process, with how it ended and its last output. */
  describe(): string {
    const status = this.#status ? ` exited (code ${this.#status.code}, signal ${this.#status.signal})` : " running";
    const tail = this.#output.slice(-4000).trimEnd();
    return `${this.name} (pid ${this.pid})${status}; its last output:\n${tail || "(none)"}`;
  }

  /** Calls `listener` with each line the process writes to stdout from now on. */
  onLine(listener: (line: string) => void): void {
    this.#lineListeners.push(listener);
  }

  /** Writes one line to the process's stdin. */
  writeLine(line: string): void {
    this.#child.stdin?.write(`${line}\n`);
  }

  /** The process's peak RSS so far (VmHWM); `undefined` once it has exited. */
  peakRssBytes(): number | undefined {
    return this.#status ? undefined : peakRssBytes(this.pid);
  }

  /**
   * Asks the process to stop with `signal` (default SIGTERM) and waits for it to exit; past
   * `timeoutMs` it is killed with SIGKILL. Never rejects.
   */
  async stop(timeoutMs = 10_000, signal: NodeJS.Signals = "SIGTERM"): Promise<ExitStatus> {
    if (this.#status) return this.#status;
    this.#child.stdin?.end();
    this.#child.kill(signal);
    try {
      return await withTimeout(this.exited, timeoutMs, `${this.name} to exit after ${signal}`);
    } catch {
      this.#child.kill("SIGKILL");
      return this.exited;
    }
  }

  #remember(text: string): void {
    this.#output = (this.#output + text).slice(-outputLimit);
  }

  /** Sends SIGKILL to every process still running, synchronously (for the `exit` hook). */
  static killAllNow(): void {
    for (const process of live) process.#child.kill("SIGKILL");
  }

  /** Stops every process still running, in parallel. */
  static async stopAll(timeoutMs = 10_000): Promise<void> {
    await Promise.all([...live].map((process) => process.stop(timeoutMs)));
  }
}
