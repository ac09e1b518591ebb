import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";

/**
 * Messages connect-es gives requests it cannot decode, all with code `INTERNAL`: protobuf
 * bytes that do not parse (truncated, invalid UTF-8, bad tags, nested past the recursion
 * limit), and a message flagged as compressed on a request that named no compression.
 * Both are the client's fault. (JSON that does not parse is already `INVALID_ARGUMENT`.)
 */
const undecodable = [/^parse binary: /, /^received compressed envelope, but do not know how to decompress$/];

/** Whether `error` is connect-es refusing request bytes it could not decode. */
export function isUndecodableRequest(error: unknown): error is ConnectError {
  return error instanceof ConnectError && error.code === Code.Internal && undecodable.some((pattern) => pattern.test(error.rawMessage));
}

/**
 * Makes a request that connect-es cannot decode fail with `INVALID_ARGUMENT` instead of
 * `INTERNAL`. connect-es decodes a unary request before any interceptor runs, so no
 * interceptor sees that error; but every protocol handler aborts the call's context with
 * the error just before it writes the error out. A listener on that abort, registered by
 * the request gate before the body is read, re-files the error in place.
 */
export function refileUndecodableRequests(context: HandlerContext): void {
  context.signal.addEventListener(
    "abort",
    () => {
      const reason: unknown = context.signal.reason;
      if (!isUndecodableRequest(reason)) return;
      // `code` is readonly in the types only; the handler reads it after the abort.
      (reason as { code: Code }).code = Code.InvalidArgument;
      reason.message = reason.message.replace("[internal]", "[invalid_argument]");
    },
    { once: true },
  );
}
