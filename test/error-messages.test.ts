import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@jobwire/sdk/gen/google/rpc/error_details_pb";
import { describe, expect, it } from "vitest";
import { connectErrorFrom, invalidArgument } from "../server/src/rpc/connect-errors.js";
import { createLogger } from "../server/src/logger.js";

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
