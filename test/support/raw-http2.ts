import http2 from "node:http2";
import { withTimeout } from "./with-timeout.js";

/** What came back for one raw HTTP/2 request. */
export interface RawAnswer {
  /** HTTP status (`:status`). */
  status: number;
  headers: http2.IncomingHttpHeaders;
  /** Trailers, or the headers again for a trailers-only answer. */
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** `grpc-status` as a number, from the trailers or a trailers-only answer; undefined if absent. */
  grpcStatus: number | undefined;
  /** `grpc-message`, percent-decoded. */
  grpcMessage: string;
  /** The RST_STREAM code the stream closed with (0 for a clean end). */
  rstCode: number;
}

/** A gRPC length-prefixed frame: flags, a 4-byte big-endian length (by default the body's), the body. */
export function grpcFrame(body: Buffer | Uint8Array, options: { flags?: number; length?: number } = {}): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(options.flags ?? 0, 0);
  prefix.writeUInt32BE(options.length ?? body.length, 1);
  return Buffer.concat([prefix, Buffer.from(body)]);
}

/**
 * Sends one request with `node:http2` on `session` (or a connection of its own) and reads
 * the whole answer, failing loudly after `timeoutMs`. For gRPC pass
 * `content-type: application/grpc` and frames made with {@link grpcFrame}.
 */
export async function rawHttp2Request(
  url: string,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
  options: { session?: http2.ClientHttp2Session; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  const session = options.session ?? http2.connect(url);
  session.on("error", () => undefined);
  try {
    const answer = new Promise<RawAnswer>((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": path, ...headers });
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      stream.on("response", (received) => (responseHeaders = received));
      stream.on("trailers", (received) => (trailers = received));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", () => undefined);
      stream.on("close", () => {
        if (!responseHeaders[":status"]) {
          reject(new Error(`stream closed without an answer (rst code ${stream.rstCode})`));
          return;
        }
        const last = trailers ?? responseHeaders;
        const status = last["grpc-status"];
        resolve({
          status: Number(responseHeaders[":status"]),
          headers: responseHeaders,
          trailers: last,
          body: Buffer.concat(chunks),
          grpcStatus: status === undefined ? undefined : Number(status),
          grpcMessage: decodeURIComponent(String(last["grpc-message"] ?? "")),
          rstCode: stream.rstCode ?? 0,
        });
      });
      stream.end(body);
    });
    return await withTimeout(answer, options.timeoutMs ?? 15_000, `an answer to POST ${path}`);
  } finally {
    if (!options.session) session.close();
  }
}
