import { parseRoleEvent, type RoleCommand, type RoleEvent, type RoleEventName } from "../role/protocol.js";
import { ManagedProcess } from "./managed-process.js";
import { benchRoot, nodeBinary, tsNodeArgs } from "./paths.js";
import { withTimeout } from "./wait-for.js";

type EventOf<E extends RoleEventName> = Extract<RoleEvent, { event: E }>;

interface Waiter {
  event: RoleEventName;
  resolve(event: RoleEvent): void;
  reject(error: Error): void;
}

/**
 * A role process (producer, worker, raw ceiling script) seen from the harness: commands go
 * to its stdin, events come back from its stdout (see `role/protocol.ts`). Waiting for an
 * event fails at once, with the process's output, if the role reports an error or exits.
 */
export class RoleProcess {
  readonly process: ManagedProcess;
  readonly #received = new Map<RoleEventName, RoleEvent[]>();
  readonly #waiters = new Set<Waiter>();
  #failure: Error | undefined;

  private constructor(process: ManagedProcess) {
    this.process = process;
    process.onLine((line) => {
      const event = parseRoleEvent(line);
      if (!event) return;
      if (event.event === "error") return this.#fail(new Error(`${process.name} failed: ${event.message}`));
      const waiter = [...this.#waiters].find((w) => w.event === event.event);
      if (waiter) {
        this.#waiters.delete(waiter);
        waiter.resolve(event);
      } else {
        const list = this.#received.get(event.event) ?? [];
        list.push(event);
        this.#received.set(event.event, list);
      }
    });
    void process.exited.then(() => this.#fail(new Error(process.describe())));
  }

  /**
   * Starts `script` (a TypeScript entry under `bench/src`) on the project's Node with
   * `name` for messages. It is not ready before its `loaded` event: see {@link loaded}.
   */
  static start(name: string, script: string, env: Record<string, string | undefined> = {}): RoleProcess {
    return new RoleProcess(ManagedProcess.start({ name, command: nodeBinary, args: tsNodeArgs(script), cwd: benchRoot, env }));
  }

  /** Resolves once the process has loaded its code and reads commands. */
  async loaded(timeoutMs = 30_000): Promise<this> {
    await this.next("loaded", timeoutMs);
    return this;
  }

  /** Writes a command to the role. */
  send(command: RoleCommand): void {
    this.process.writeLine(JSON.stringify(command));
  }

  /** Sends `command` and waits for the event that answers it. */
  request<E extends RoleEventName>(command: RoleCommand, answer: E, timeoutMs: number): Promise<EventOf<E>> {
    const reply = this.next(answer, timeoutMs);
    this.send(command);
    return reply;
  }

  /**
   * Resolves with the next `event` the role sends (or the earliest one already received and
   * not taken); fails loudly after `timeoutMs`, or as soon as the role fails or exits.
   */
  next<E extends RoleEventName>(event: E, timeoutMs: number): Promise<EventOf<E>> {
    const queued = this.#received.get(event)?.shift();
    if (queued) return Promise.resolve(queued as EventOf<E>);
    if (this.#failure) return Promise.reject(this.#failure);
    let waiter!: Waiter;
    const promise = new Promise<RoleEvent>((resolve, reject) => {
      waiter = { event, resolve, reject };
      this.#waiters.add(waiter);
    });
    return withTimeout(promise, timeoutMs, `"${event}" from ${this.process.name}`, () => this.process.describe()).finally(() =>
      this.#waiters.delete(waiter),
    ) as Promise<EventOf<E>>;
  }

  /** Takes every `event` already received and not yet taken, without waiting. */
  takeReceived<E extends RoleEventName>(event: E): EventOf<E>[] {
    const list = (this.#received.get(event) ?? []) as EventOf<E>[];
    this.#received.delete(event);
    return list;
  }

  /** Stops the role (SIGTERM, then SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.#failure ??= new Error(`${this.process.name} was stopped`);
    await this.process.stop(timeoutMs);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters) waiter.reject(this.#failure);
    this.#waiters.clear();
  }
}
