import { ConnectError } from "@connectrpc/connect";

/** The ConnectError a call failed with; fails the test if the call succeeded. */
export async function failureOf(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => ConnectError.from(error),
  );
  if (!outcome) throw new Error("expected the call to fail, but it succeeded");
  return outcome;
}
