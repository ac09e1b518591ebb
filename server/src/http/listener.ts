import http from "node:http";
import http2 from "node:http2";
import { ConnectionTracker, listenOn } from "./connection-tracker.js";
import net from "node:net";

/** The first bytes of every HTTP/2 connection without TLS (RFC 9113, section 3.4). */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A request handler that serves both HTTP/1.1 and HTTP/2 requests. */
export type DualHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** Bounds the listener puts on every connection. */
export interface ListenerLimits {
  /**
   * Largest header block the HTTP layer accepts (HTTP/1.1 `maxHeaderSize`, HTTP/2
   * SETTINGS_MAX_HEADER_LIST_SIZE); larger is refused with 431 or a reset stream.
   */
  maxHeaderBytes: number;
  /** Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerConnection: number;
  /**
   * How long a new connection may take to show whether it speaks HTTP/2 or HTTP/1.1, and
   * an HTTP/1.1 request to send its headers; a connection that takes longer is closed.
   */
  handshakeTimeoutMs: number;
}

/** One port that speaks HTTP/1.1 and h2c; see {@link listenHttp1AndH2c}. */
export interface DualListener {
  /** The port actually bound (useful when 0 was asked for). */
  readonly port: number;
  /** Requests being served right now. */
  inFlight(): number;
  /**
   * Stops accepting connections, lets requests in flight finish for up to `graceMs`, then
   * destroys whatever is still open. Resolves once every connection is gone.
   */
  close(graceMs: number): Promise<void>;
}

/**
 * Serves HTTP/1.1 and cleartext HTTP/2 (h2c with prior knowledge, as gRPC clients use) on
 * one port. On a plain-text `http2.createServer`, `allowHTTP1` has no effect, so a `net`
 * server looks at the first bytes of each connection: the HTTP/2 preface goes to the
 * HTTP/2 server, anything else to the HTTP/1.1 server.
 */
export async function listenHttp1AndH2c(handler: DualHandler, host: string, port: number, limits: ListenerLimits): Promise<DualListener> {
  const connections = new ConnectionTracker();
  const track = connections.counting(handler);
  const h1 = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      // How often Node looks for requests past their headers timeout.
      connectionsCheckingInterval: Math.min(30_000, limits.handshakeTimeoutMs),
    },
    track as http.RequestListener,
  );
  // Long-lived server streams must not be cut by Node's request timeouts.
  h1.requestTimeout = 0;
  h1.headersTimeout = limits.handshakeTimeoutMs;
  // Node tracks connections for the headers timeout only from the server's 'listening'
  // event; this server never listens itself (the net server below hands it connections),
  // so without this the timeout would never apply.
  h1.emit("listening");
  const h2 = http2.createServer(
    {
      settings: { maxConcurrentStreams: limits.maxStreamsPerConnection, maxHeaderListSize: limits.maxHeaderBytes },
      // Every header entry counts at least 32 bytes of the list size, so this many always fit.
      maxHeaderListPairs: Math.ceil(limits.maxHeaderBytes / 32) + 8,
    },
    track as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  );
  h2.on("session", (session) => connections.addSession(session));

  // No Nagle: small frames (a lease, a unary answer) must leave at once, not wait for an ACK.
  const server = net.createServer({ noDelay: true }, (socket) => {
    connections.addSocket(socket);
    socket.on("error", () => socket.destroy());
    routeByPreface(socket, h1, h2, limits.handshakeTimeoutMs);
  });
  return {
    port: await listenOn(server, port, host),
    inFlight: () => connections.inFlight,
    async close(graceMs) {
      // GOAWAY on HTTP/2, and idle HTTP/1.1 connections closed.
      await connections.close(server, graceMs, () => h1.closeIdleConnections());
      // Stops the HTTP/1.1 server's connection checks; it was never listening itself.
      h1.close(() => undefined);
    },
  };
}

function routeByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server, timeoutMs: number): void {
  let received = Buffer.alloc(0);
  const onTimeout = () => socket.destroy();
  socket.setTimeout(timeoutMs, onTimeout);
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const compared = Math.min(received.length, http2Preface.length);
    const isPrefix = received.subarray(0, compared).equals(http2Preface.subarray(0, compared));
    if (isPrefix && received.length < http2Preface.length) return; // need more bytes to decide
    socket.setTimeout(0);
    socket.off("timeout", onTimeout);
    socket.off("data", onData);
    socket.pause();
    socket.unshift(received);
    if (isPrefix) {
      // The HTTP/2 session takes over the socket's handle and reads the unshifted bytes
      // itself; resuming the JS stream here would steal frames from it.
      h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}
