import { readFile } from "node:fs/promises";
import http2 from "node:http2";
import type net from "node:net";
import tls from "node:tls";
import type { TlsConfig } from "../auth/auth-config.js";
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
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const track: DualHandler = (request, response) => {
    inFlight++;
    response.once("close", () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
    handler(request, response);
  };
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
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  server.on("connection", (socket: net.Socket) => {
    // No Nagle: small frames (a lease, a unary answer) must leave at once.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  // A failed handshake (no or a wrong client certificate, plain text on the TLS port) only
  // ends that connection.
  server.on("tlsClientError", (_error: Error, socket: tls.TLSSocket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  return {
    port: address.port,
    inFlight: () => inFlight,
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (drained = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
        ]);
        clearTimeout(timer);
      }
      // HTTP/1.1 keep-alive connections have no GOAWAY: once nothing is in flight they go.
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
