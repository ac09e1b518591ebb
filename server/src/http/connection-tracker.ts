import type http2 from "node:http2";
import type net from "node:net";
import type { DualHandler } from "./listener.js";

/**
 * What a listener needs for a graceful close: its requests in flight, HTTP/2 sessions and
 * sockets. {@link close} asks clients to go (GOAWAY), waits for the requests in flight up to
 * a bound, then drops every connection; long-lived streams end with it.
 */
export class ConnectionTracker {
  #inFlight = 0;
  #drained: (() => void) | undefined;
  readonly #sessions = new Set<http2.Http2Session>();
  readonly #sockets = new Set<net.Socket>();

  /** Requests being served now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** `handler`, counting each request until its response closes. */
  counting(handler: DualHandler): DualHandler {
    return (request, response) => {
      this.#inFlight++;
      response.once("close", () => {
        this.#inFlight--;
        if (this.#inFlight === 0) this.#drained?.();
      });
      handler(request, response);
    };
  }

  /** Remembers a connection until it closes. */
  addSocket(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
  }

  /** Remembers an HTTP/2 session until it closes. */
  addSession(session: http2.Http2Session): void {
    this.#sessions.add(session);
    session.once("close", () => this.#sessions.delete(session));
  }

  /**
   * Stops `server` accepting, sends GOAWAY on every session (and runs `askIdleToGo`, e.g.
   * closing idle HTTP/1.1 connections), waits up to `graceMs` for the requests in flight,
   * then destroys every session and socket; resolves once `server` has closed.
   */
  async close(server: net.Server, graceMs: number, askIdleToGo: () => void = () => undefined): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    askIdleToGo();
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

/** Starts `server` listening; resolves with the port it got. */
export async function listenOn(server: net.Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}
