import type { HandlerContext } from "@connectrpc/connect";
import { checkMetadataSize } from "./metadata-size.js";
import type { OpenStreams } from "./open-streams.js";
import { refileUndecodableRequests } from "./undecodable-requests.js";

/** What the request gate needs. */
export interface RequestGateDeps {
  /** Largest request metadata, in bytes. */
  maxMetadataBytes: number;
  /** The open server streams per principal. */
  streams: OpenStreams;
  /**
   * Authenticates the caller and checks the RPC against the authorization table, leaving
   * the caller in the context (see `auth/access-control.ts`); throws to refuse.
   */
  authorize(context: HandlerContext): Promise<void>;
  /** Who a call's streams count against, once `authorize` has run. */
  principalOf(context: HandlerContext): string;
}

/**
 * The connect-es request gate: runs for every call once its headers are in and before its
 * body is read, so a refused call costs no body. It makes requests that do not decode
 * INVALID_ARGUMENT, refuses metadata over the limit, authorizes the caller, and counts
 * server streams against their principal's limit (until the call ends). Limit refusals are
 * RESOURCE_EXHAUSTED naming the limit.
 */
export function requestGate(deps: RequestGateDeps) {
  return async (context: HandlerContext): Promise<void> => {
    refileUndecodableRequests(context);
    checkMetadataSize(context.requestHeader, deps.maxMetadataBytes);
    await deps.authorize(context);
    if (context.method.methodKind !== "unary") {
      const close = deps.streams.open(deps.principalOf(context));
      // The call's signal aborts when it ends, however it ends.
      if (context.signal.aborted) close();
      else context.signal.addEventListener("abort", close, { once: true });
    }
  };
}
