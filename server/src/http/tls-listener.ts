import { readFile } from "node:fs/promises";
import http2 from "node:http2";
import type net from "node:net";
import tls from "node:tls";
import type { TlsConfig } from "../auth/auth-config.js";
import { ConnectionTracker, listenOn } from "./connection-tracker.js";
import type { DualHandler, DualListener, ListenerLimits } from "./listener.js";

/** The certificate material of a TLS listener, PEM-encoded. */
export interface TlsMaterial {
  /** The server's certificate chain. */
  cert: Buffer;
  /** Its private key. */
  key: Buffer;
  /** CA(s) that client certificates must chain to; unset: no client certificate asked for. */
  clientCa?: Buffer;
}

/**
 * Reads the configured PEM files and checks that they make a usable TLS context, so that
 * a bad file fails the start with the variable's name (never the file's content).
 */
export async function readTlsMaterial(config: TlsConfig): Promise<TlsMaterial> {
  const read = async (file: string, variable: string) => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new Error(`${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
  };
  const material: TlsMaterial = {
    cert: await read(config.certFile, "JOBWIRE_TLS_CERT"),
    key: await read(config.keyFile, "JOBWIRE_TLS_KEY"),
    clientCa: config.clientCaFile ? await read(config.clientCaFile, "JOBWIRE_TLS_CLIENT_CA") : undefined,
  };
  try {
    tls.createSecureContext({ cert: material.cert, key: material.key, ca: material.clientCa });
  } catch (error) {
    throw new Error(`JOBWIRE_TLS_CERT, JOBWIRE_TLS_KEY or JOBWIRE_TLS_CLIENT_CA do not make a TLS context: ${(error as Error).message}`);
  }
  return material;
}

/**
 * Serves HTTP/2 and HTTP/1.1 over TLS on one port: ALPN picks `h2` (gRPC, Connect over
 * HTTP/2) or `http/1.1` (Connect, gRPC-Web, SSE, probes), which `allowHTTP1` hands to the
 * same handler. With `clientCa`, the handshake fails for a client that does not present a
 * certificate signed by it. Closing behaves as {@link listenHttp1AndH2c}'s.
 */
export async function listenTls(handler: DualHandler, host: string, port: number, material: TlsMaterial, limits: ListenerLimits): Promise<DualListener> {
  const connections = new ConnectionTracker();
  const track = connections.counting(handler);
  const options: http2.SecureServerOptions = {
    cert: material.cert,
    key: material.key,
    allowHTTP1: true,
    // The same bounds as the plain-text listener: streams per connection, header sizes,
    // and a connection that does not finish its handshake in time is dropped.
    settings: { maxConcurrentStreams: limits.maxStreamsPerConnection, maxHeaderListSize: limits.maxHeaderBytes },
    maxHeaderListPairs: Math.ceil(limits.maxHeaderBytes / 32) + 8,
    handshakeTimeout: limits.handshakeTimeoutMs,
    ...(material.clientCa ? { ca: material.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  };
  const server = http2.createSecureServer(options, track as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  // Long-lived server streams must not be cut by an idle timeout.
  server.setTimeout(0);
  server.on("connection", (socket: net.Socket) => {
    // No Nagle: small frames (a lease, a unary answer) must leave at once.
    socket.setNoDelay(true);
    connections.addSocket(socket);
  });
  server.on("session", (session) => connections.addSession(session));
  // A failed handshake (no or a wrong client certificate, plain text on the TLS port) only
  // ends that connection.
  server.on("tlsClientError", (_error: Error, socket: tls.TLSSocket) => socket.destroy());

  return {
    port: await listenOn(server, port, host),
    inFlight: () => connections.inFlight,
    // HTTP/1.1 keep-alive connections have no GOAWAY: once nothing is in flight they go.
    close: (graceMs) => connections.close(server, graceMs),
  };
}
