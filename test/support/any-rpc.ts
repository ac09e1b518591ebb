import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Transport } from "@connectrpc/connect";

type AnyMethod = (request: object, options: { headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number }) => unknown;

/**
 * Calls any RPC with an empty request (and `headers`), reading only the first message of a
 * server stream. Resolves with the ConnectError it failed with, or undefined when it
 * answered: enough to see how the server's gate treats a call, whatever the method.
 */
export async function callWithEmptyRequest(
  transport: Transport,
  service: DescService,
  method: DescMethod,
  headers: Record<string, string> = {},
): Promise<ConnectError | undefined> {
  const client = createClient(service, transport) as unknown as Record<string, AnyMethod>;
  const call = client[method.localName]!;
  const abort = new AbortController();
  try {
    if (method.methodKind === "unary") {
      await call({}, { headers, timeoutMs: 10_000 });
    } else {
      const stream = call({}, { headers, signal: abort.signal, timeoutMs: 10_000 }) as AsyncIterable<unknown>;
      for await (const _first of stream) break;
    }
    return undefined;
  } catch (error) {
    return ConnectError.from(error);
  } finally {
    abort.abort();
  }
}
