import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BadRequestSchema } from "@jobwire/sdk/gen/google/rpc/error_details_pb";
import { BatchNotFoundError, JobNotFoundError, JobStateError, NotBatchOwnerError, NotJobOwnerError } from "../jobs/job-errors.js";
import type { Logger } from "../logger.js";

/**
 * `INVALID_ARGUMENT` naming the offending field, e.g. `jobs[3].queue is required`, with a
 * `google.rpc.BadRequest` field violation as error detail for clients that read details.
 * Messages avoid the characters `: , ; / ? @ & = + $ #`: connect-es percent-encodes them in
 * `grpc-message` and grpc-js decodes it with `decodeURI`, which leaves them escaped.
 */
export function invalidArgument(field: string, problem: string): ConnectError {
  return new ConnectError(`${field} ${problem}`, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: { fieldViolations: [{ field, description: problem }] } },
  ]);
}

/**
 * Maps what the domain and the database throw to the closed set of Connect codes. Domain
 * errors carry their own meaning; Postgres data exceptions (class 22) mean a value got
 * past validation that the database refused, still the caller's input. Anything else is
 * `INTERNAL` with a generic message: the cause is logged, never sent.
 */
export function connectErrorFrom(error: unknown, log: Logger): ConnectError {
  if (error instanceof ConnectError) return withShortMessage(error);
  if (error instanceof JobNotFoundError) return new ConnectError(error.message, Code.NotFound);
  if (error instanceof JobStateError) return new ConnectError(error.message, Code.FailedPrecondition);
  if (error instanceof NotJobOwnerError) return new ConnectError(error.message, Code.PermissionDenied);
  if (error instanceof BatchNotFoundError) return new ConnectError(error.message, Code.NotFound);
  if (error instanceof NotBatchOwnerError) return new ConnectError(error.message, Code.PermissionDenied);
  const pgCode = (error as { code?: unknown } | null)?.code;
  if (typeof pgCode === "string" && pgCode.startsWith("22")) {
    log.warn({ err: error }, "database refused a request value");
    return new ConnectError("a request value was refused by the database", Code.InvalidArgument);
  }
  // A deadlock or serialization failure: the transaction was rolled back and may be retried.
  if (pgCode === "40P01" || pgCode === "40001") {
    log.warn({ err: error }, "transaction aborted by a concurrent one");
    return new ConnectError("the change collided with a concurrent one and was rolled back; retry it", Code.Aborted);
  }
  log.error({ err: error }, "internal error");
  return new ConnectError("internal error", Code.Internal);
}

/**
 * The longest error message sent. gRPC carries it percent-encoded in the `grpc-message`
 * trailer, where each byte may take three: a message that echoes a large input would make
 * the trailers too large for HTTP/2 and break the caller's connection instead of reporting.
 */
const maxMessageLength = 1024;

function withShortMessage(error: ConnectError): ConnectError {
  if (error.rawMessage.length <= maxMessageLength) return error;
  // Errors raised here carry outgoing details (a message and its schema), as made above.
  const details = error.details as ConstructorParameters<typeof ConnectError>[3];
  return new ConnectError(`${error.rawMessage.slice(0, maxMessageLength)}…`, error.code, error.metadata, details, error.cause);
}

/**
 * An interceptor that applies {@link connectErrorFrom} to every handler's failure: thrown by
 * a unary handler, or raised while a server stream is being produced.
 */
export function errorMappingInterceptor(log: Logger): Interceptor {
  return (next) => async (request) => {
    try {
      const response = await next(request);
      if (!response.stream) return response;
      return { ...response, message: mapStreamErrors(response.message, log) };
    } catch (error) {
      throw connectErrorFrom(error, log);
    }
  };
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, log: Logger): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw connectErrorFrom(error, log);
  }
}
