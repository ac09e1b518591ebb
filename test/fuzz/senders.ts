import http from "node:http";
import http2 from "node:http2";
import zlib from "node:zlib";
import { create, fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { FuzzedRpc } from "./rpc-catalog.js";
import { frameMessage, mutateMessage, type BinaryMutation } from "./binary-mutations.js";
import { mutateJson, type JsonMutation } from "./json-mutations.js";

/**
 * The ways a request reaches the server: typed connect-node clients speaking gRPC,
 * gRPC-Web, Connect JSON and Connect binary, and raw bytes (Connect JSON over HTTP/1.1 with
 * `node:http`, gRPC frames over h2c with `node:http2`) that no client would send.
 */
export const channels = ["grpc", "grpc-web", "connect-json", "connect-proto", "raw-json", "raw-grpc"] as const;
/** One of {@link channels}. */
export type Channel = (typeof channels)[number];

type TypedChannel = Exclude<Channel, "raw-json" | "raw-grpc">;

/** What came back. */
export interface Outcome {
  /** `ok`, or the error code as Connect spells it (`invalid_argument`), or `none` when unsent. */
  code: string;
  /** The error message, if any. */
  message?: string;
  /** What is wrong with the answer itself (not a known code, bad framing, no answer), if anything. */
  malformed?: string;
  /** A short description of what was sent on the wire, for failure reports. */
  sent?: string;
}

/** Connect's names of the codes, by number. */
export const codeNames: Record<number, string> = {
  1: "canceled", 2: "unknown", 3: "invalid_argument", 4: "deadline_exceeded", 5: "not_found", 6: "already_exists",
  7: "permission_denied", 8: "resource_exhausted", 9: "failed_precondition", 10: "aborted", 11: "out_of_range",
  12: "unimplemented", 13: "internal", 14: "unavailable", 15: "data_loss", 16: "unauthenticated",
};

/** The HTTP status the Connect protocol gives each code. */
const connectHttpStatus: Record<string, number> = {
  canceled: 499, unknown: 500, invalid_argument: 400, deadline_exceeded: 504, not_found: 404, already_exists: 409,
  permission_denied: 403, resource_exhausted: 429, failed_precondition: 400, aborted: 409, out_of_range: 400,
  unimplemented: 501, internal: 500, unavailable: 503, data_loss: 500, unauthenticated: 401,
};

/**
 * Requests larger than this go over an HTTP/2 connection of their own. When the server
 * answers before it has read a request (a message over its size limit is refused from its
 * length prefix), Node's HTTP/2 client keeps counting the unsent rest against its session's
 * memory and, past 10 MiB, refuses every new stream with ENHANCE_YOUR_CALM; on a shared
 * connection that would fail every later case for a reason that is the client's own.
 */
const largeRequestBytes = 1024 * 1024;

/**
 * The fuzzer's own HTTP/2 sessions may hold a whole request of up to 40 MiB in their
 * buffers (Node's default is 10 MiB, past which the client refuses its own streams).
 */
const clientSessionOptions: http2.ClientSessionOptions = { maxSessionMemory: 256 };

/**
 * How long any one request may take before it counts as unanswered. Generous: a batch of a
 * thousand deeply nested payloads takes the client seconds to encode on a busy machine.
 */
const answerTimeoutMs = 60_000;

/**
 * Sends fuzzed requests to one server over every channel, reusing connections, each with
 * `Authorization: Bearer <apiKey>`.
 */
export class Senders {
  #transports: Record<TypedChannel, Transport>;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  #session: http2.ClientHttp2Session | undefined;
  readonly #authorization: string;

  constructor(
    readonly baseUrl: string,
    apiKey: string,
  ) {
    this.#authorization = `Bearer ${apiKey}`;
    this.#transports = this.#typedTransports();
  }

  #typedTransports(sessionManager?: Http2SessionManager): Record<TypedChannel, Transport> {
    return typedTransports(this.baseUrl, this.#authorization, sessionManager);
  }

  /** Sends `init` (mutated for the raw channels) to `rpc` over `channel`. */
  async send(rpc: FuzzedRpc, channel: Channel, init: Record<string, unknown>, json: JsonMutation, binary: BinaryMutation): Promise<Outcome> {
    let message;
    try {
      message = create(rpc.method.input, init);
    } catch (error) {
      return { code: "none", sent: `unbuildable: ${String(error)}` };
    }
    switch (channel) {
      case "raw-json": {
        let base: JsonValue = {};
        try {
          base = toJson(rpc.method.input, message);
        } catch {
          // NaN and out-of-range well-known types have no JSON form: mutate an empty object.
        }
        return this.#rawJson(rpc, mutateJson(base, json));
      }
      case "raw-grpc": {
        let bytes: Uint8Array = new Uint8Array();
        try {
          bytes = toBinary(rpc.method.input, message);
        } catch {
          // Leave the message empty; the frame mutations still apply.
        }
        return this.#rawGrpc(rpc, frameMessage(mutateMessage(bytes, rpc.method.input, binary), binary), binary.headers);
      }
      default:
        return this.#typed(rpc, channel, message);
    }
  }

  /** Closes the connections. */
  close(): void {
    this.#agent.destroy();
    this.#session?.close();
  }

  async #typed(rpc: FuzzedRpc, channel: TypedChannel, message: object): Promise<Outcome> {
    // A message the client cannot encode (NaN or out-of-range times in JSON, nesting deeper
    // than the encoder's stack) is not sent: the client would refuse it itself, which says
    // nothing about the server.
    let size: number;
    try {
      if (channel === "connect-json") size = JSON.stringify(toJson(rpc.method.input, message as never)).length;
      else size = toBinary(rpc.method.input, message as never).length;
    } catch {
      return { code: "none", sent: `no ${channel === "connect-json" ? "JSON" : "binary"} form` };
    }
    // A large request goes over a connection of its own, closed afterwards (see largeRequestBytes).
    const oneOff = size > largeRequestBytes && (channel === "grpc" || channel === "connect-proto") ? new Http2SessionManager(this.baseUrl, undefined, clientSessionOptions) : undefined;
    const transport = oneOff ? this.#typedTransports(oneOff)[channel] : this.#transports[channel];
    const client = createClient(rpc.service, transport) as unknown as Record<string, (req: unknown, options: object) => unknown>;
    const call = client[rpc.method.localName]!;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error("no answer")), answerTimeoutMs);
    try {
      if (rpc.method.methodKind === "unary") {
        const response = await (call(message, { signal: abort.signal }) as Promise<unknown>);
        if (!response) return { code: "ok", malformed: "empty response" };
        return { code: "ok" };
      }
      const stream = call(message, { signal: abort.signal }) as AsyncIterable<unknown>;
      for await (const first of stream) {
        void first;
        return { code: "ok" };
      }
      return { code: "ok" };
    } catch (error) {
      if (abort.signal.aborted) {
        // Node's HTTP/2 client keeps counting the unsent part of an abandoned upload against
        // its session's memory and then refuses new streams with ENHANCE_YOUR_CALM: start
        // over on fresh connections rather than blame the server for that.
        this.#transports = this.#typedTransports();
        return { code: "none", malformed: `no answer within ${answerTimeoutMs} ms` };
      }
      const connectError = ConnectError.from(error);
      return { code: codeNames[connectError.code] ?? `code ${connectError.code}`, message: connectError.rawMessage };
    } finally {
      clearTimeout(timer);
      abort.abort();
      oneOff?.abort();
    }
  }

  /** Connect JSON over HTTP/1.1: unary as a plain POST, server streams enveloped. */
  #rawJson(rpc: FuzzedRpc, body: Buffer): Promise<Outcome> {
    const streaming = rpc.method.methodKind === "server_streaming";
    const url = new URL(`/${rpc.name}`, this.baseUrl);
    const payload = streaming ? envelope(0, body) : body;
    const sent = `POST ${url.pathname} ${clip(body)}`;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const finish = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        resolve({ ...outcome, sent });
      };
      const timer = setTimeout(() => finish({ code: "none", malformed: `no answer within ${answerTimeoutMs} ms` }), answerTimeoutMs);
      const request = http.request(url, {
        method: "POST",
        agent: this.#agent,
        headers: {
          "content-type": streaming ? "application/connect+json" : "application/json",
          "content-length": payload.length,
          "connect-protocol-version": "1",
          authorization: this.#authorization,
        },
      });
      request.on("error", (error) => finish({ code: "none", malformed: `request failed: ${error.message}` }));
      request.on("response", (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
          if (streaming) {
            const outcome = readConnectStream(Buffer.concat(chunks), rpc.method.output, response.statusCode ?? 0);
            if (outcome) finish(outcome);
          }
        });
        response.on("error", (error) => finish({ code: "none", malformed: `response failed: ${error.message}` }));
        response.on("end", () => {
          const all = Buffer.concat(chunks);
          if (streaming) finish(readConnectStream(all, rpc.method.output, response.statusCode ?? 0) ?? { code: "none", malformed: `stream ended after ${all.length} bytes without a complete frame` });
          else finish(readConnectUnary(all, rpc.method.output, response.statusCode ?? 0, String(response.headers["content-type"])));
        });
      });
      request.end(payload);
    });
  }

  #h2(): http2.ClientHttp2Session {
    if (!this.#session || this.#session.closed || this.#session.destroyed) {
      this.#session = http2.connect(this.baseUrl, clientSessionOptions);
      this.#session.on("error", () => undefined);
    }
    return this.#session;
  }

  /** gRPC frames over h2c: reads headers, messages and trailers itself. */
  #rawGrpc(rpc: FuzzedRpc, body: Buffer, extraHeaders: Record<string, string>): Promise<Outcome> {
    const streaming = rpc.method.methodKind === "server_streaming";
    const sent = `h2 POST /${rpc.name} ${JSON.stringify(extraHeaders)} ${body.subarray(0, 80).toString("hex")}${body.length > 80 ? `… (${body.length} bytes)` : ""}`;
    const oneOff = body.length > largeRequestBytes ? http2.connect(this.baseUrl, clientSessionOptions) : undefined;
    oneOff?.on("error", () => undefined);
    const session = oneOff ?? this.#h2();
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const stream = session.request({
        ":method": "POST",
        ":path": `/${rpc.name}`,
        "content-type": "application/grpc+proto",
        te: "trailers",
        authorization: this.#authorization,
        ...extraHeaders,
      });
      const finish = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        oneOff?.destroy();
        resolve({ ...outcome, sent });
      };
      const timer = setTimeout(() => {
        finish({ code: "none", malformed: `no answer within ${answerTimeoutMs} ms` });
        // As for the typed clients: an abandoned upload can wedge the session.
        this.#session?.destroy();
      }, answerTimeoutMs);
      let headers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("error", (error) => finish({ code: "none", malformed: `stream failed: ${error.message}` }));
      stream.on("response", (responseHeaders) => {
        headers = responseHeaders;
        if (Number(headers[":status"]) !== 200) finish({ code: "none", malformed: `HTTP status ${headers[":status"]}` });
        else if (!String(headers["content-type"]).startsWith("application/grpc")) finish({ code: "none", malformed: `content-type ${headers["content-type"]}` });
      });
      stream.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        if (!streaming) return;
        const frames = readFrames(Buffer.concat(chunks));
        if (frames.messages.length > 0) finish(decodes(frames.messages[0]!, frames.flags[0]!, headers["grpc-encoding"], rpc.method.output, "first stream message"));
      });
      stream.on("trailers", (trailers) => {
        const all = Buffer.concat(chunks);
        const frames = readFrames(all);
        finish(grpcOutcome(trailers, frames, headers["grpc-encoding"], rpc.method.output));
      });
      stream.on("close", () => {
        if (settled) return;
        // Trailers-only: the status arrived with the headers.
        if (headers["grpc-status"] !== undefined) finish(grpcOutcome(headers, readFrames(Buffer.concat(chunks)), headers["grpc-encoding"], rpc.method.output));
        else finish({ code: "none", malformed: `stream closed (rst code ${stream.rstCode}) without grpc-status` });
      });
      stream.end(body);
    });
  }

}

function typedTransports(baseUrl: string, authorization: string, sessionManager?: Http2SessionManager): Record<TypedChannel, Transport> {
  const binaryOptions = { recursionLimit: 10_000 };
  const interceptors = [authorizationHeader(authorization)];
  return {
    grpc: createGrpcTransport({ baseUrl, binaryOptions, sessionManager, interceptors }),
    "grpc-web": createGrpcWebTransport({ baseUrl, httpVersion: "1.1", binaryOptions, interceptors }),
    "connect-json": createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, interceptors }),
    "connect-proto": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, binaryOptions, sessionManager, interceptors }),
  };
}

/** Sends `authorization` as the `Authorization` header of every call. */
export function authorizationHeader(authorization: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", authorization);
    return next(request);
  };
}

function clip(body: Buffer): string {
  const text = body.subarray(0, 200).toString("utf8");
  return body.length > 200 ? `${text}… (${body.length} bytes)` : text;
}

function envelope(flags: number, body: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(flags, 0);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

interface Frames {
  messages: Buffer[];
  flags: number[];
  /** Bytes after the last complete frame. */
  rest: number;
}

function readFrames(all: Buffer): Frames {
  const frames: Frames = { messages: [], flags: [], rest: 0 };
  let at = 0;
  while (all.length - at >= 5) {
    const length = all.readUInt32BE(at + 1);
    if (all.length - at - 5 < length) break;
    frames.flags.push(all[at]!);
    frames.messages.push(all.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  frames.rest = all.length - at;
  return frames;
}

/** Answers nest as deep as the payloads they carry (64 JSON levels, two messages each). */
const readOptions = { recursionLimit: 1_000 };

/** Whether a gRPC answer message decodes as `schema`, gunzipping it first when its frame says so. */
function decodes(bytes: Buffer, flags: number, encoding: string | string[] | undefined, schema: DescMessage, what: string): Outcome {
  try {
    let message = bytes;
    if ((flags & 1) === 1) {
      if (encoding === "gzip") message = zlib.gunzipSync(bytes);
      else if (encoding === "br") message = zlib.brotliDecompressSync(bytes);
      else return { code: "ok", malformed: `${what} is compressed with ${JSON.stringify(encoding)}` };
    }
    fromBinary(schema, message, readOptions);
    return { code: "ok" };
  } catch (error) {
    return { code: "ok", malformed: `${what} does not decode as ${schema.typeName}: ${String(error)}` };
  }
}

function grpcOutcome(trailers: http2.IncomingHttpHeaders, frames: Frames, encoding: string | string[] | undefined, output: DescMessage): Outcome {
  const raw = trailers["grpc-status"];
  const status = Number(raw);
  if (raw === undefined || !Number.isInteger(status) || status < 0 || status > 16) return { code: "none", malformed: `grpc-status ${JSON.stringify(raw)}` };
  const message = decodeURIComponentSafe(String(trailers["grpc-message"] ?? ""));
  if (status !== 0) return { code: codeNames[status]!, message };
  if (frames.rest !== 0) return { code: "ok", malformed: `${frames.rest} stray bytes after the frames` };
  if (frames.messages.length !== 1) return { code: "ok", malformed: `${frames.messages.length} messages in a unary answer` };
  return decodes(frames.messages[0]!, frames.flags[0]!, encoding, output, "answer");
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function readConnectUnary(body: Buffer, output: DescMessage, status: number, contentType: string): Outcome {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return { code: "none", malformed: `HTTP ${status} with a body that is not JSON (${contentType}): ${clip(body)}` };
  }
  if (status === 200) {
    try {
      fromJson(output, json as JsonValue, readOptions);
      return { code: "ok" };
    } catch (error) {
      return { code: "ok", malformed: `answer does not decode as ${output.typeName}: ${String(error)}` };
    }
  }
  const error = json as { code?: unknown; message?: unknown };
  if (typeof error.code !== "string" || !(error.code in connectHttpStatus)) return { code: "none", malformed: `HTTP ${status} with error code ${JSON.stringify(error.code)}` };
  const outcome: Outcome = { code: error.code, message: typeof error.message === "string" ? error.message : undefined };
  if (connectHttpStatus[error.code] !== status) outcome.malformed = `HTTP ${status} does not match code ${error.code} (${connectHttpStatus[error.code]})`;
  return outcome;
}

/** An outcome once the stream says enough: its first message, or its end-of-stream error. */
function readConnectStream(all: Buffer, output: DescMessage, status: number): Outcome | undefined {
  if (status !== 200) {
    // Connect answers a stream that fails before it starts with an HTTP error status.
    return { code: "none", malformed: `HTTP ${status} on a streaming call: ${clip(all)}` };
  }
  const frames = readFrames(all);
  if (frames.messages.length === 0) return undefined;
  const flags = frames.flags[0]!;
  const first = frames.messages[0]!;
  if (flags === 0) {
    try {
      fromJson(output, JSON.parse(first.toString("utf8")) as JsonValue, readOptions);
      return { code: "ok" };
    } catch (error) {
      return { code: "ok", malformed: `first stream message does not decode: ${String(error)}` };
    }
  }
  if (flags !== 2) return { code: "none", malformed: `frame flags ${flags}` };
  let end: { error?: { code?: unknown; message?: unknown } };
  try {
    end = JSON.parse(first.toString("utf8")) as typeof end;
  } catch {
    return { code: "none", malformed: `end-of-stream frame is not JSON: ${clip(first)}` };
  }
  if (!end.error) return { code: "ok" };
  if (typeof end.error.code !== "string" || !(end.error.code in connectHttpStatus)) return { code: "none", malformed: `end-of-stream error code ${JSON.stringify(end.error.code)}` };
  return { code: end.error.code, message: typeof end.error.message === "string" ? end.error.message : undefined };
}

/** Codes a server may answer to any request it refuses; the rest say it broke or hung. */
export const acceptableErrorCodes = new Set([
  "invalid_argument", "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
  "out_of_range", "unimplemented", "unauthenticated",
]);
