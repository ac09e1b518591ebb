import type { HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../jobs/principal.js";
import { checkMetadataSize } from "./metadata-size.js";
import type { OpenStreams } from "./open-streams.js";
import { refileUndecodableRequests } from "./undecodable-requests.js";

/** What the request gate needs. */
export interface RequestGateDeps {
  /** Largest request metadata, in bytes. */
  maxMetadataBytes: number;
  /** The open server streams per principal. */
  streams: OpenStreams;
  /** The principal a request acts as. */
  principalOf(headers: Headers): Principal;
}

/**
 * The connect-es request gate: runs for every call once its headers are in and before its
 * body is read, so a refused call costs no body. It refuses metadata over the limit, counts
 * server streams against their principal's limit (until the call ends), and makes requests
 * that do not decode INVALID_ARGUMENT. Refusals are RESOURCE_EXHAUSTED naming the limit.
 */
export function requestGate(deps: RequestGateDeps) {
  return (context: HandlerContext): void => {
    refileUndecodableRequests(context);
    checkMetadataSize(context.requestHeader, deps.maxMetadataBytes);
    if (context.method.methodKind !== "unary") {
      const close = deps.streams.open(deps.principalOf(context.requestHeader).id);
      // The call's signal aborts when it ends, however it ends.
      if (context.signal.aborted) close();
      else context.signal.addEventListener("abort", close, { once: true });
    }
  };
}
