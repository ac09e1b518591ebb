import net from "node:net";

/** A TCP relay in front of a server that counts the bytes it forwards each way. */
export interface ByteCountingRelay {
  /** `127.0.0.1:port`, for clients that take a gRPC target. */
  readonly target: string;
  /** Bytes forwarded from clients to the server so far. */
  bytesToServer(): number;
  /** Bytes forwarded from the server to clients so far. */
  bytesToClient(): number;
  /** Stops accepting and drops every open connection. */
  close(): Promise<void>;
}

/**
 * Starts a relay on a free loopback port that forwards every connection to `host:port`
 * unchanged. It does not look into the bytes: tests use the counts to see what a client and
 * the server put on the wire, e.g. that gzip made a large message small. The caller closes
 * it (`onTestFinished(() => relay.close())`).
 */
export async function startByteCountingRelay(host: string, port: number): Promise<ByteCountingRelay> {
  let toServer = 0;
  let toClient = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    }
    client.on("data", (chunk: Buffer) => (toServer += chunk.length));
    upstream.on("data", (chunk: Buffer) => (toClient += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
    // One side failing ends the connection for both, as it would without the relay.
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port: relayPort } = server.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    target: `127.0.0.1:${relayPort}`,
    bytesToServer: () => toServer,
    bytesToClient: () => toClient,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
