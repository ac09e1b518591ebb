import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { BadRequestSchema } from "@jobwire/sdk/gen/google/rpc/error_details_pb";
import { describe, expect, it } from "vitest";
import { connectErrorFrom, invalidArgument } from "../server/src/rpc/connect-errors.js";
import { createLogger } from "../server/src/logger.js";
import { refileUndecodableRequests } from "../server/src/rpc/undecodable-requests.js";

const log = createLogger("silent");

describe("error messages sent to clients", () => {
  it("a message longer than 1024 characters is cut, keeping the code and the details", () => {
    const error = connectErrorFrom(invalidArgument("field", "x".repeat(100_000)), log);

    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage.length).toBe(1025);
    expect(error.rawMessage.startsWith("field xxx")).toBe(true);
    expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("field");
  });

  it("a short message is passed on as it is", () => {
    const original = new ConnectError("job 1 not found", Code.NotFound);

    expect(connectErrorFrom(original, log)).toBe(original);
  });
});

describe("requests that do not decode", () => {
  it("are re-filed as INVALID_ARGUMENT even when the call was aborted before (by its deadline, say)", () => {
    const controller = new AbortController();
    controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    const context = { signal: controller.signal, abort: (reason?: unknown) => controller.abort(reason) };
    refileUndecodableRequests(context as unknown as HandlerContext);
    const parseError = new ConnectError("parse binary: premature EOF", Code.Internal);

    context.abort(parseError);

    expect(parseError.code).toBe(Code.InvalidArgument);
    expect(parseError.message).toBe("[invalid_argument] parse binary: premature EOF");
  });

  it("leave other errors alone", () => {
    const context = { signal: new AbortController().signal, abort: (_reason?: unknown) => undefined };
    refileUndecodableRequests(context as unknown as HandlerContext);
    const internal = new ConnectError("internal error", Code.Internal);

    context.abort(internal);

    expect(internal.code).toBe(Code.Internal);
  });
});
