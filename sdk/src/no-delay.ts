import net from "node:net";
import type http2 from "node:http2";

/**
 * HTTP/2 session options whose cleartext connections have Nagle's algorithm off. A gRPC
 * request is written as a HEADERS frame then a DATA frame; with Nagle on, the second small
 * write waits for the ACK of the first, which the server delays by up to 40 ms. Returns no
 * options for TLS URLs, whose connections Node makes itself.
 */
export function noDelaySessionOptions(baseUrl: string): http2.ClientSessionOptions {
  const url = new URL(baseUrl);
  if (url.protocol !== "http:") return {};
  return {
    createConnection: () =>
      net.connect({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80), noDelay: true }),
  };
}
