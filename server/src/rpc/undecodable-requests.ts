import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";

/**
 * Messages connect-es gives requests it cannot decode, all with code `INTERNAL`: protobuf
 * bytes that do not parse (truncated, invalid UTF-8, bad tags, nested past the recursion
 * limit), a message flagged as compressed on a request that named no compression, and a
 * gzip body that does not inflate (truncated, a bare header). All are the client's fault.
 * (JSON that does not parse is already `INVALID_ARGUMENT`.)
 */
const undecodable = [/^parse binary: /, /^received compressed envelope, but do not know how to decompress$/, /^decompression failed$/];

/** Whether `error` is connect-es refusing request bytes it could not decode. */
export function isUndecodableRequest(error: unknown): error is ConnectError {
  return error instanceof ConnectError && error.code === Code.Internal && undecodable.some((pattern) => pattern.test(error.rawMessage));
}

/**
 * Makes a request that connect-es cannot decode fail with `INVALID_ARGUMENT` instead of
 * `INTERNAL`. connect-es decodes a unary request before any interceptor runs, so no
 * interceptor sees that error; but every protocol handler passes the error to the call
 * context's `abort` just before it writes the error out. The request gate, which gets that
 * context before the body is read, wraps `abort` to re-file the error on its way through.
 * (An abort listener would miss it when the call was already aborted, by its deadline say.)
 */
export function refileUndecodableRequests(context: HandlerContext): void {
  // The handlers' contexts have `abort`; the public type does not show it.
  const controller = context as HandlerContext & { abort?: (reason?: unknown) => void };
  if (typeof controller.abort !== "function") return;
  const abort = controller.abort.bind(controller);
  controller.abort = (reason?: unknown) => {
    if (isUndecodableRequest(reason)) {
      // `code` is readonly in the types only; the handler reads it after the abort.
      (reason as { code: Code }).code = Code.InvalidArgument;
      reason.message = reason.message.replace("[internal]", "[invalid_argument]");
    }
    abort(reason);
  };
}
